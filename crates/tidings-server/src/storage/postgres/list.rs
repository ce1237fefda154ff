//! The SQL of a list page on PostgreSQL: equality filters on JSONB fields, a query's condition, keyset pagination on
//! (order key, id); and how PostgreSQL would run it.

use serde_json::Value;

use sqlx::AssertSqlSafe;

use super::{db_error, Postgres, RECORD_COLUMNS};
use crate::storage::{ListQuery, OrderKey, StorageError};

impl Postgres {
    /// How PostgreSQL would run a list, with the statistics of `resources` refreshed first (`ANALYZE`): the plan,
    /// one line per step. For operators checking that their `indexes` serve their queries, and for the tests that
    /// check it.
    pub async fn explain_list(&self, query: ListQuery) -> Result<Vec<String>, StorageError> {
        let (sql, args, _) = list_sql(&query)?;
        let mut c = self.connection().await?;
        sqlx::query("ANALYZE resources").execute(&mut *c).await.map_err(db_error)?;
        let mut statement = sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("EXPLAIN {sql}")));
        for arg in args {
            statement = match arg {
                Arg::Text(v) => statement.bind(v),
                Arg::Int(v) => statement.bind(v),
                Arg::Float(v) => statement.bind(v),
                Arg::TextList(v) => statement.bind(v),
                Arg::FloatList(v) => statement.bind(v),
            };
        }
        statement.fetch_all(&mut *c).await.map_err(db_error)
    }
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
pub(super) enum KeyKind {
    Int,
    Text,
    Float,
}

/// Builds the SQL of a list page: equality filters on JSONB fields, keyset pagination on (order key, id).
pub(super) fn list_sql(query: &ListQuery) -> Result<(String, Vec<Arg>, KeyKind), StorageError> {
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
