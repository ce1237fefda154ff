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
        let (sql, args, kind) = list_sql(&query)?;
        let mut c = self.connection().await?;
        let rows = sqlx::query_with(AssertSqlSafe(sql), arguments(args)?).fetch_all(&mut *c).await.map_err(db_error)?;
        rows.iter().map(|row| listed(row, &kind)).collect()
    }

    /// [`Storage::list_at_head`](crate::storage::Storage::list_at_head): one REPEATABLE READ transaction sees the
    /// head and the rows as one commit left them (writers of a type commit in `seq` order, holding its head row).
    pub(super) async fn list_page_at_head(&self, query: ListQuery) -> Result<(Vec<Listed>, u64), StorageError> {
        let (sql, args, kind) = list_sql(&query)?;
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
        let page = rows.iter().map(|row| listed(row, &kind)).collect::<Result<_, _>>()?;
        Ok((page, uint(head.unwrap_or(0))?))
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

/// A row of a list page: the record, and its order key as [`list_sql`] computed it.
fn listed(row: &PgRow, kind: &KeyKind) -> Result<Listed, StorageError> {
    let key = match kind {
        KeyKind::Int => Value::from(row.try_get::<i64, _>(7).map_err(db_error)?),
        KeyKind::Text => Value::String(row.try_get(7).map_err(db_error)?),
        KeyKind::Float => {
            serde_json::Number::from_f64(row.try_get(7).map_err(db_error)?).map_or(Value::Null, Value::Number)
        }
    };
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

/// Builds the SQL of a list page: equality filters on JSONB fields, keyset pagination on (order key, id).
fn list_sql(query: &ListQuery) -> Result<(String, Vec<Arg>, KeyKind), StorageError> {
    fn param(args: &mut Vec<Arg>, arg: Arg) -> String {
        args.push(arg);
        format!("${}", args.len())
    }
    let mut args = vec![Arg::Text(Some(query.resource_type.clone()))];
    let (key, kind) = match &query.order {
        OrderKey::CreatedAt => ("created_at".to_owned(), KeyKind::Int),
        OrderKey::UpdatedAt => ("updated_at".to_owned(), KeyKind::Int),
        OrderKey::Id => ("id".to_owned(), KeyKind::Text),
        OrderKey::Field(field, ty) => {
            let f = param(&mut args, Arg::Text(Some(checked(field)?.to_owned())));
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
    };
    let mut sql = format!("SELECT {RECORD_COLUMNS}, {key} AS order_key FROM resources WHERE resource_type = $1");
    if let Some(owner) = &query.owner {
        let p = param(&mut args, Arg::Text(Some(owner.clone())));
        sql.push_str(&format!(" AND owner_id = {p}"));
    }
    for (field, value) in &query.filter {
        let f = param(&mut args, Arg::Text(Some(checked(field)?.to_owned())));
        match value {
            // JSON null matches a field that is null or absent.
            Value::Null => sql.push_str(&format!(" AND COALESCE(jsonb_typeof(data -> {f}::text), 'null') = 'null'")),
            // JSONB equality keeps JSON types apart ("3" is not 3) and compares numbers by value (3 is 3.0).
            Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                let v = param(&mut args, Arg::Text(Some(value.to_string())));
                sql.push_str(&format!(" AND data -> {f}::text = {v}::jsonb"));
            }
            _ => return Err(StorageError::Internal("a filter value must be a scalar".to_owned())),
        }
    }
    if let Some(condition) = &query.condition {
        sql.push_str(&format!(" AND {}", super::query::condition_sql(condition, &mut args)));
    }
    let direction = if query.descending { "DESC" } else { "ASC" };
    let comparison = if query.descending { "<" } else { ">" };
    if let Some((after_key, after_id)) = &query.after {
        // A cursor whose key has the wrong type binds NULL, so the comparison matches nothing: an empty page.
        let (p, cast) = match kind {
            KeyKind::Int => (param(&mut args, Arg::Int(after_key.as_i64())), "bigint"),
            KeyKind::Text => (param(&mut args, Arg::Text(after_key.as_str().map(str::to_owned))), "text"),
            KeyKind::Float => (param(&mut args, Arg::Float(after_key.as_f64())), "float8"),
        };
        let id = param(&mut args, Arg::Text(Some(after_id.clone())));
        let collate = if matches!(kind, KeyKind::Text) { r#" COLLATE "C""# } else { "" };
        sql.push_str(&format!(" AND ({key}, id) {comparison} ({p}::{cast}{collate}, {id}::text)"));
    }
    let limit = param(&mut args, Arg::Int(Some(i64::try_from(query.limit).unwrap_or(i64::MAX))));
    sql.push_str(&format!(" ORDER BY order_key {direction}, id {direction} LIMIT {limit}"));
    Ok((sql, args, kind))
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
