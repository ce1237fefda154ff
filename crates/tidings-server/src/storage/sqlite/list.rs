//! The SQL of a list page on SQLite: equality filters on JSON fields, a query's condition, keyset pagination on
//! (order key, id); and how SQLite would run it.

use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use rusqlite::{Connection, OptionalExtension};

use super::{record_of, sql_error, Sqlite, RECORD_COLUMNS};
use crate::storage::{ListQuery, Listed, OrderKey, StorageError};

impl Sqlite {
    /// How SQLite would run a list, with the statistics of `resources` refreshed first (`ANALYZE`): its query
    /// plan, one step per line (`SEARCH resources USING INDEX ...`). For operators checking that their `indexes`
    /// serve their queries, and for the tests that check it.
    pub async fn explain_list(&self, query: ListQuery) -> Result<Vec<String>, StorageError> {
        let (sql, args) = list_sql(&query)?;
        self.write(|c, _| c.execute_batch("ANALYZE resources").map_err(|e| sql_error(&e))).await?;
        self.read(move |c| {
            let mut statement = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).map_err(|e| sql_error(&e))?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(args), |row| row.get::<_, String>(3))
                .map_err(|e| sql_error(&e))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(|e| sql_error(&e))
        })
        .await
    }
}

/// The rows of a list page built by [`list_sql`].
pub(super) fn rows(c: &Connection, sql: &str, args: Vec<SqlValue>) -> Result<Vec<Listed>, StorageError> {
    let mut statement = c.prepare_cached(sql).map_err(|e| sql_error(&e))?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(args), |row| {
            // The order keys follow the record's seven columns.
            let keys = 7..row.as_ref().column_count();
            let key = keys.map(|n| row.get::<_, SqlValue>(n).map(json_of)).collect::<Result<Vec<_>, _>>()?;
            Ok(Listed { record: record_of(row)?, key })
        })
        .map_err(|e| sql_error(&e))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| sql_error(&e))
}

/// The rows of a list page and the type's head, read in one transaction: WAL gives it one snapshot of the
/// database, so the page shows the resources exactly as the head's event left them.
pub(super) fn rows_at_head(
    c: &Connection,
    resource_type: &str,
    sql: &str,
    args: Vec<SqlValue>,
) -> Result<(Vec<Listed>, u64), StorageError> {
    c.execute_batch("BEGIN").map_err(|e| sql_error(&e))?;
    let read = (|| {
        let head: Option<u64> =
            super::query_row(c, "SELECT seq FROM topic_heads WHERE resource_type = ?", [resource_type], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| sql_error(&e))?;
        Ok((rows(c, sql, args)?, head.unwrap_or(0)))
    })();
    // A read-only transaction: ending it either way gives the snapshot back, and a failure to end it is a
    // failure of the read.
    if let Err(error) = c.execute_batch("COMMIT") {
        let _ = c.execute_batch("ROLLBACK");
        return Err(sql_error(&error));
    }
    read
}

/// Builds the SQL of a list page: equality filters on JSON fields, a query's condition, keyset pagination on
/// (order keys, id). The keys are selected as `order_key_0`, `order_key_1`, ... after the record's columns.
pub(super) fn list_sql(query: &ListQuery) -> Result<(String, Vec<SqlValue>), StorageError> {
    let mut sql = format!("SELECT {RECORD_COLUMNS}");
    let mut keys = Vec::with_capacity(query.order.len());
    for (n, sort) in query.order.iter().enumerate() {
        let key = key_sql(&sort.key)?;
        sql.push_str(&format!(", {key} AS order_key_{n}"));
        keys.push(key);
    }
    let mut args = Vec::new();
    where_sql(query, &mut sql, &mut args)?;
    let last_descending = query.order.last().is_some_and(|sort| sort.descending);
    if let Some((after_keys, after_id)) = &query.after {
        if after_keys.len() != keys.len() {
            return Err(StorageError::Internal("a cursor must hold one value per order key".to_owned()));
        }
        let mut columns: Vec<(String, bool, SqlValue)> = keys
            .iter()
            .zip(&query.order)
            .zip(after_keys)
            .map(|((key, sort), value)| (key.clone(), sort.descending, sql_value(value)))
            .collect();
        columns.push(("id".to_owned(), last_descending, SqlValue::Text(after_id.clone())));
        sql.push_str(&format!(" AND {}", after_sql(&columns, &mut args)));
    }
    let mut order: Vec<String> = (0..keys.len())
        .map(|n| format!("order_key_{n} {}", if query.order[n].descending { "DESC" } else { "ASC" }))
        .collect();
    order.push(format!("id {}", if last_descending { "DESC" } else { "ASC" }));
    sql.push_str(&format!(" ORDER BY {} LIMIT ?", order.join(", ")));
    args.push(SqlValue::Integer(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    Ok((sql, args))
}

/// The SQL that counts the resources of a whole list (every page).
pub(super) fn count_sql(query: &ListQuery) -> Result<(String, Vec<SqlValue>), StorageError> {
    let mut sql = "SELECT COUNT(*)".to_owned();
    let mut args = Vec::new();
    where_sql(query, &mut sql, &mut args)?;
    Ok((sql, args))
}

/// `FROM` and `WHERE` of a list: its type, owner, filter and condition.
fn where_sql(query: &ListQuery, sql: &mut String, args: &mut Vec<SqlValue>) -> Result<(), StorageError> {
    sql.push_str(" FROM resources WHERE resource_type = ?");
    args.push(SqlValue::Text(query.resource_type.clone()));
    if let Some(owner) = &query.owner {
        sql.push_str(" AND owner_id = ?");
        args.push(SqlValue::Text(owner.clone()));
    }
    for (field, value) in &query.filter {
        let path = field_path(field)?;
        match value {
            Value::Null => {
                sql.push_str(&format!(" AND (json_type(data, '{path}') IS NULL OR json_type(data, '{path}') = 'null')"))
            }
            Value::Bool(b) => sql.push_str(&format!(" AND json_type(data, '{path}') = '{b}'")),
            Value::Number(n) => {
                sql.push_str(&format!(
                    " AND json_type(data, '{path}') IN ('integer', 'real') AND json_extract(data, '{path}') = ?"
                ));
                args.push(n.as_i64().map_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)), SqlValue::Integer));
            }
            Value::String(s) => {
                sql.push_str(&format!(" AND json_type(data, '{path}') = 'text' AND json_extract(data, '{path}') = ?"));
                args.push(SqlValue::Text(s.clone()));
            }
            _ => return Err(StorageError::Internal("a filter value must be a scalar".to_owned())),
        }
    }
    if let Some(condition) = &query.condition {
        sql.push_str(&format!(" AND {}", super::query::condition_sql(condition, args)));
    }
    Ok(())
}

/// The expression an order key compares.
fn key_sql(key: &OrderKey) -> Result<String, StorageError> {
    Ok(match key {
        OrderKey::CreatedAt => "created_at".to_owned(),
        OrderKey::UpdatedAt => "updated_at".to_owned(),
        OrderKey::Id => "id".to_owned(),
        OrderKey::Field(field, ty) => {
            let path = field_path(field)?;
            // Absent fields sort first (ascending) as the lowest value of their type.
            let missing = match ty.as_str() {
                "string" => "''",
                _ => "-1.0e308",
            };
            format!("COALESCE(json_extract(data, '{path}'), {missing})")
        }
    })
}

/// "After this position" for columns each in its own direction: one row-value comparison when every direction is
/// the same (which the planner walks an index for), else the expanded form: greater in the first column, or equal
/// there and greater in the next, and so on.
fn after_sql(columns: &[(String, bool, SqlValue)], args: &mut Vec<SqlValue>) -> String {
    let beyond = |descending: bool| if descending { "<" } else { ">" };
    if columns.windows(2).all(|pair| pair[0].1 == pair[1].1) {
        let names: Vec<&str> = columns.iter().map(|(name, _, _)| name.as_str()).collect();
        let marks = vec!["?"; columns.len()].join(", ");
        args.extend(columns.iter().map(|(_, _, value)| value.clone()));
        return format!("({}) {} ({marks})", names.join(", "), beyond(columns[0].1));
    }
    let mut branches = Vec::new();
    for (n, (name, descending, value)) in columns.iter().enumerate() {
        let mut terms = Vec::new();
        for (earlier, _, equal) in &columns[..n] {
            terms.push(format!("{earlier} = ?"));
            args.push(equal.clone());
        }
        terms.push(format!("{name} {} ?", beyond(*descending)));
        args.push(value.clone());
        branches.push(format!("({})", terms.join(" AND ")));
    }
    format!("({})", branches.join(" OR "))
}

/// The JSON path of a top-level field; field names are letters, digits and `_` only, so the path is safe in SQL.
fn field_path(field: &str) -> Result<String, StorageError> {
    let safe = !field.is_empty() && field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !safe {
        return Err(StorageError::Internal(format!("unsafe field name {field:?}")));
    }
    Ok(format!("$.{field}"))
}

fn sql_value(value: &Value) -> SqlValue {
    match value {
        Value::Number(n) => n.as_i64().map_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0)), SqlValue::Integer),
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        _ => SqlValue::Null,
    }
}

fn json_of(value: SqlValue) -> Value {
    match value {
        SqlValue::Integer(n) => Value::from(n),
        SqlValue::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        SqlValue::Text(s) => Value::String(s),
        _ => Value::Null,
    }
}
