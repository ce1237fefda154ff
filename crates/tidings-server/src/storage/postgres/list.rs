//! The SQL of a list page on PostgreSQL: equality filters on JSONB fields, a query's condition, keyset pagination on
//! (order key, id); and how PostgreSQL would run it.

use serde_json::Value;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, AssertSqlSafe, Row};

use super::{db_error, no_connection, record_of, uint, Postgres, RECORD_COLUMNS};
use crate::storage::{ListQuery, Listed, OrderKey, StorageError};

impl Postgres {
    /// [`Storage::list`](crate::storage::Storage::list).
    pub(super) async fn list_page(&self, query: ListQuery) -> Result<Vec<Listed>, StorageError> {
        let (sql, args, kinds) = list_sql(&query)?;
        let mut c = self.connection().await?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), arguments(args)?).fetch_all(&mut *c).await.map_err(db_error)?;
        rows.iter().map(|row| listed(row, &kinds)).collect()
    }

    /// [`Storage::list_at_head`](crate::storage::Storage::list_at_head): one REPEATABLE READ transaction sees the
    /// head and the rows as one commit left them (writers of a type commit in `seq` order, holding its head row).
    pub(super) async fn list_page_at_head(&self, query: ListQuery) -> Result<(Vec<Listed>, u64), StorageError> {
        let (sql, args, kinds) = list_sql(&query)?;
        let mut tx =
            self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(no_connection)?;
        let head: Option<i64> = sqlx::query_scalar("SELECT seq FROM topic_heads WHERE resource_type = $1")
            .bind(&query.resource_type)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
        let rows =
            sqlx::query_with(AssertSqlSafe(sql), arguments(args)?).fetch_all(&mut *tx).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let page = rows.iter().map(|row| listed(row, &kinds)).collect::<Result<_, _>>()?;
        Ok((page, uint(head.unwrap_or(0))?))
    }

    /// [`Storage::count`](crate::storage::Storage::count).
    pub(super) async fn count_list(&self, query: ListQuery) -> Result<u64, StorageError> {
        let mut args = vec![Arg::Text(Some(query.resource_type.clone()))];
        let mut sql = "SELECT COUNT(*) FROM resources WHERE resource_type = $1".to_owned();
        if let Some(owner) = &query.owner {
            let p = param(&mut args, Arg::Text(Some(owner.clone())));
            sql.push_str(&format!(" AND owner_id = {p}"));
        }
        filter_sql(&query, &mut sql, &mut args)?;
        let mut c = self.connection().await?;
        let total: i64 =
            sqlx::query_scalar_with(AssertSqlSafe(sql), arguments(args)?).fetch_one(&mut *c).await.map_err(db_error)?;
        uint(total)
    }

    /// How PostgreSQL would run a list, with the statistics of `resources` refreshed first (`ANALYZE`): the plan,
    /// one line per step. For operators checking that their `indexes` serve their queries, and for the tests that
    /// check it.
    pub async fn explain_list(&self, query: ListQuery) -> Result<Vec<String>, StorageError> {
        let (sql, args, _) = list_sql(&query)?;
        let mut c = self.connection().await?;
        sqlx::query("ANALYZE resources").execute(&mut *c).await.map_err(db_error)?;
        sqlx::query_scalar_with::<_, String, _>(AssertSqlSafe(format!("EXPLAIN {sql}")), arguments(args)?)
            .fetch_all(&mut *c)
            .await
            .map_err(db_error)
    }
}

/// The values of a list query, bound in order.
fn arguments(args: Vec<Arg>) -> Result<PgArguments, StorageError> {
    let mut bound = PgArguments::default();
    for arg in args {
        match arg {
            Arg::Text(v) => bound.add(v),
            Arg::Int(v) => bound.add(v),
            Arg::Float(v) => bound.add(v),
            Arg::TextList(v) => bound.add(v),
            Arg::FloatList(v) => bound.add(v),
        }
        .map_err(|e| StorageError::Internal(format!("cannot bind a list argument: {e}")))?;
    }
    Ok(bound)
}

/// A row of a list page: the record, and its order keys as [`list_sql`] computed them (after the record's seven
/// columns).
fn listed(row: &PgRow, kinds: &[KeyKind]) -> Result<Listed, StorageError> {
    let mut key = Vec::with_capacity(kinds.len());
    for (n, kind) in kinds.iter().enumerate() {
        key.push(match kind {
            KeyKind::Int => Value::from(row.try_get::<i64, _>(7 + n).map_err(db_error)?),
            KeyKind::Text => Value::String(row.try_get(7 + n).map_err(db_error)?),
            KeyKind::Float => {
                serde_json::Number::from_f64(row.try_get(7 + n).map_err(db_error)?).map_or(Value::Null, Value::Number)
            }
        });
    }
    Ok(Listed { record: record_of(row)?, key })
}

/// A value bound to a list query.
pub(super) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    TextList(Vec<String>),
    FloatList(Vec<f64>),
}

/// How a list's order key is computed, bound and read back.
enum KeyKind {
    Int,
    Text,
    Float,
}

fn param(args: &mut Vec<Arg>, arg: Arg) -> String {
    args.push(arg);
    format!("${}", args.len())
}

/// Builds the SQL of a list page: equality filters on JSONB fields, a query's condition, keyset pagination on
/// (order keys, id). The keys are selected as `order_key_0`, `order_key_1`, ... after the record's columns.
fn list_sql(query: &ListQuery) -> Result<(String, Vec<Arg>, Vec<KeyKind>), StorageError> {
    let mut args = vec![Arg::Text(Some(query.resource_type.clone()))];
    let mut keys = Vec::with_capacity(query.order.len());
    for sort in &query.order {
        keys.push(key_sql(&sort.key, &mut args)?);
    }
    let selected: Vec<String> =
        keys.iter().enumerate().map(|(n, (key, _))| format!(", {key} AS order_key_{n}")).collect();
    let mut sql = format!("SELECT {RECORD_COLUMNS}{} FROM resources WHERE resource_type = $1", selected.concat());
    if let Some(owner) = &query.owner {
        let p = param(&mut args, Arg::Text(Some(owner.clone())));
        sql.push_str(&format!(" AND owner_id = {p}"));
    }
    filter_sql(query, &mut sql, &mut args)?;
    let last_descending = query.order.last().is_some_and(|sort| sort.descending);
    if let Some((after_keys, after_id)) = &query.after {
        if after_keys.len() != keys.len() {
            return Err(StorageError::Internal("a cursor must hold one value per order key".to_owned()));
        }
        let mut columns: Vec<(&str, bool, Bound)> = keys
            .iter()
            .zip(&query.order)
            .zip(after_keys)
            .map(|(((key, kind), sort), value)| (key.as_str(), sort.descending, Bound::of(kind, value)))
            .collect();
        columns.push(("id", last_descending, Bound::Text(Some(after_id.clone()), "")));
        sql.push_str(&format!(" AND {}", after_sql(&columns, &mut args)));
    }
    let mut order: Vec<String> = (0..keys.len())
        .map(|n| format!("order_key_{n} {}", if query.order[n].descending { "DESC" } else { "ASC" }))
        .collect();
    order.push(format!("id {}", if last_descending { "DESC" } else { "ASC" }));
    let limit = param(&mut args, Arg::Int(Some(i64::try_from(query.limit).unwrap_or(i64::MAX))));
    sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", order.join(", ")));
    Ok((sql, args, keys.into_iter().map(|(_, kind)| kind).collect()))
}

/// A cursor's value of one column, bound as the column compares. A value of the wrong type binds NULL, so the
/// comparison matches nothing: an empty page.
enum Bound {
    Int(Option<i64>),
    Text(Option<String>, &'static str),
    Float(Option<f64>),
}

impl Bound {
    fn of(kind: &KeyKind, value: &Value) -> Bound {
        match kind {
            KeyKind::Int => Bound::Int(value.as_i64()),
            KeyKind::Text => Bound::Text(value.as_str().map(str::to_owned), r#" COLLATE "C""#),
            KeyKind::Float => Bound::Float(value.as_f64()),
        }
    }

    /// Binds it, and returns the parameter with its cast.
    fn bind(&self, args: &mut Vec<Arg>) -> String {
        match self {
            Bound::Int(v) => format!("{}::bigint", param(args, Arg::Int(*v))),
            Bound::Text(v, collate) => format!("{}::text{collate}", param(args, Arg::Text(v.clone()))),
            Bound::Float(v) => format!("{}::float8", param(args, Arg::Float(*v))),
        }
    }
}

/// "After this position" for columns each in its own direction: one row-value comparison when every direction is
/// the same (which the planner walks an index for), else the expanded form: greater in the first column, or equal
/// there and greater in the next, and so on.
fn after_sql(columns: &[(&str, bool, Bound)], args: &mut Vec<Arg>) -> String {
    let beyond = |descending: bool| if descending { "<" } else { ">" };
    if columns.windows(2).all(|pair| pair[0].1 == pair[1].1) {
        let names: Vec<&str> = columns.iter().map(|(name, _, _)| *name).collect();
        let values: Vec<String> = columns.iter().map(|(_, _, bound)| bound.bind(args)).collect();
        return format!("({}) {} ({})", names.join(", "), beyond(columns[0].1), values.join(", "));
    }
    let mut branches = Vec::new();
    for (n, (name, descending, bound)) in columns.iter().enumerate() {
        let mut terms = Vec::new();
        for (earlier, _, equal) in &columns[..n] {
            terms.push(format!("{earlier} = {}", equal.bind(args)));
        }
        terms.push(format!("{name} {} {}", beyond(*descending), bound.bind(args)));
        branches.push(format!("({})", terms.join(" AND ")));
    }
    format!("({})", branches.join(" OR "))
}

/// The expression an order key compares, and how it is read back.
fn key_sql(key: &OrderKey, args: &mut Vec<Arg>) -> Result<(String, KeyKind), StorageError> {
    Ok(match key {
        OrderKey::CreatedAt => ("created_at".to_owned(), KeyKind::Int),
        OrderKey::UpdatedAt => ("updated_at".to_owned(), KeyKind::Int),
        OrderKey::Id => ("id".to_owned(), KeyKind::Text),
        OrderKey::Field(field, ty) => {
            let f = param(args, Arg::Text(Some(checked(field)?.to_owned())));
            // Absent fields (and values of another type) sort first, ascending, as the lowest value of the
            // type, as in SQLite; booleans sort as 0 and 1.
            if ty == "string" {
                let key = format!(
                    r#"(CASE WHEN jsonb_typeof(data -> {f}::text) = 'string' THEN data ->> {f}::text ELSE '' END)
                     COLLATE "C""#
                );
                (key, KeyKind::Text)
            } else {
                let key = format!(
                    "(CASE jsonb_typeof(data -> {f}::text) WHEN 'number' THEN (data ->> {f}::text)::float8
                     WHEN 'boolean' THEN CASE WHEN (data ->> {f}::text)::boolean THEN 1::float8 ELSE 0::float8 END
                     ELSE -1e308::float8 END)"
                );
                (key, KeyKind::Float)
            }
        }
    })
}

/// The filter's equalities and the query's condition.
fn filter_sql(query: &ListQuery, sql: &mut String, args: &mut Vec<Arg>) -> Result<(), StorageError> {
    for (field, value) in &query.filter {
        let f = param(args, Arg::Text(Some(checked(field)?.to_owned())));
        match value {
            // JSON null matches a field that is null or absent.
            Value::Null => sql.push_str(&format!(" AND COALESCE(jsonb_typeof(data -> {f}::text), 'null') = 'null'")),
            // JSONB equality keeps JSON types apart ("3" is not 3) and compares numbers by value (3 is 3.0).
            Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                let v = param(args, Arg::Text(Some(value.to_string())));
                sql.push_str(&format!(" AND data -> {f}::text = {v}::jsonb"));
            }
            _ => return Err(StorageError::Internal("a filter value must be a scalar".to_owned())),
        }
    }
    if let Some(condition) = &query.condition {
        sql.push_str(&format!(" AND {}", super::query::condition_sql(condition, args)));
    }
    Ok(())
}

/// A top-level field name; names are letters, digits and `_` only (they are bound as parameters anyway).
fn checked(field: &str) -> Result<&str, StorageError> {
    let safe = !field.is_empty() && field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if safe {
        Ok(field)
    } else {
        Err(StorageError::Internal(format!("unsafe field name {field:?}")))
    }
}
