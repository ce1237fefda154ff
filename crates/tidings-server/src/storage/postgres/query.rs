//! A query's condition as PostgreSQL SQL over the `resources` table, by the rules in `query/mod.rs`.
//!
//! Data fields are compared as JSONB where JSONB's own order is the rule's (equality of any type: `"1"` is not
//! `1`, and `1` is `1.0`; the order of numbers), so that an index on `data #> path` (`index_sql`) serves
//! equality, `in` and number ranges. Strings are ordered as text in the "C" collation, by code point, as SQLite
//! and Rust do. Nothing is cast from JSON text, so no term can fail on a value of another type; the one
//! subquery that could (`jsonb_array_elements` of a non-array) sits behind a `CASE`, the only construct whose
//! order of evaluation PostgreSQL promises.
//!
//! A test of an absent field is NULL. Where the condition counts positively (not under a `not`), NULL excludes a
//! row just as false does, so tests are written bare, which keeps them indexable; under a `not` each is wrapped
//! in `COALESCE(..., false)`.

use sqlx::AssertSqlSafe;

use super::list::Arg;
use super::{db_error, Postgres};
use crate::query::{Condition, Field, Operand, Test};
use crate::storage::StorageError;

/// The condition as an SQL expression, its operands appended to `args`.
pub(super) fn condition_sql(condition: &Condition, args: &mut Vec<Arg>) -> String {
    written(condition, true, args)
}

/// The index that a test of data field `path` of type `resource_type` can use: on the very expression the tests
/// compare. Names are letters, digits and `_` (checked when the type is compiled).
fn index_sql(resource_type: &str, path: &str) -> String {
    let name = super::super::index_name(resource_type, path);
    let path = path_literal(path.split('.'));
    format!("CREATE INDEX IF NOT EXISTS \"{name}\" ON resources (resource_type, (data #> {path}))")
}

/// A data path as a text array literal, each name quoted: unquoted, a field named `null` would be SQL NULL.
fn path_literal<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.map(|name| format!("\"{name}\"")).collect();
    format!("'{{{}}}'", quoted.join(","))
}

/// Creates each index of `index_sql` that is missing.
pub(super) async fn ensure_indexes(db: &Postgres, resource_type: &str, paths: &[String]) -> Result<(), StorageError> {
    let mut c = db.connection().await?;
    for path in paths {
        // Nodes starting together may race to create one index: the loser's error says it exists.
        match sqlx::raw_sql(AssertSqlSafe(index_sql(resource_type, path))).execute(&mut *c).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("23505" | "42P07")) => {}
            Err(e) => return Err(db_error(e)),
        }
    }
    Ok(())
}

fn written(condition: &Condition, positive: bool, args: &mut Vec<Arg>) -> String {
    match condition {
        Condition::All(all) if all.is_empty() => "true".to_owned(),
        Condition::Any(any) if any.is_empty() => "false".to_owned(),
        Condition::All(all) => joined(all, " AND ", positive, args),
        Condition::Any(any) => joined(any, " OR ", positive, args),
        Condition::Not(not) => format!("(NOT {})", written(not, !positive, args)),
        Condition::Test(field, test) if positive => format!("({})", test_sql(field, test, args)),
        Condition::Test(field, test) => format!("COALESCE(({}), false)", test_sql(field, test, args)),
    }
}

fn joined(conditions: &[Condition], with: &str, positive: bool, args: &mut Vec<Arg>) -> String {
    let parts: Vec<String> = conditions.iter().map(|c| written(c, positive, args)).collect();
    format!("({})", parts.join(with))
}

fn param(args: &mut Vec<Arg>, arg: Arg) -> String {
    args.push(arg);
    format!("${}", args.len())
}

/// An operand as JSON text, which PostgreSQL casts to JSONB.
fn json_text(operand: &Operand) -> String {
    match operand {
        Operand::Text(text) => serde_json::Value::from(text.as_str()).to_string(),
        Operand::Number(n) => serde_json::Number::from_f64(*n).map_or_else(|| "null".to_owned(), |n| n.to_string()),
        Operand::Bool(b) => b.to_string(),
    }
}

fn test_sql(field: &Field, test: &Test, args: &mut Vec<Arg>) -> String {
    let Field::Data(path) = field else { return own_sql(field, test, args) };
    // Names are letters, digits and `_` (FieldPath), so the path is safe to write into the SQL, and written so
    // it is the expression of the index.
    let path = path_literal(path.iter().map(String::as_str));
    let (json, text) = (format!("(data #> {path})"), format!("(data #>> {path})"));
    let ty = format!("jsonb_typeof({json})");
    match test {
        Test::Exists => format!("{ty} <> 'null'"),
        Test::In(operands) => {
            let list = param(args, Arg::TextList(operands.iter().map(json_text).collect()));
            format!("{json} = ANY({list}::text[]::jsonb[])")
        }
        Test::Compare(ordering, Operand::Number(n)) => {
            let o = param(args, Arg::Text(Some(json_text(&Operand::Number(*n)))));
            format!("{ty} = 'number' AND {json} {} {o}::text::jsonb", ordering.sql())
        }
        Test::Compare(ordering, Operand::Text(t)) => {
            let o = param(args, Arg::Text(Some(t.clone())));
            format!(r#"{ty} = 'string' AND {text} COLLATE "C" {} {o}::text"#, ordering.sql())
        }
        Test::Compare(_, Operand::Bool(_)) => "false".to_owned(),
        Test::Prefix(prefix) => {
            let o = param(args, Arg::Text(Some(prefix.clone())));
            format!("{ty} = 'string' AND starts_with({text}, {o}::text)")
        }
        Test::Substring(part) => {
            let o = param(args, Arg::Text(Some(part.clone())));
            format!("{ty} = 'string' AND strpos({text}, {o}::text) > 0")
        }
        Test::Element(operand) => {
            let o = param(args, Arg::Text(Some(json_text(operand))));
            format!(
                "CASE WHEN {ty} = 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({json}) AS e(element)
                 WHERE element = {o}::text::jsonb) ELSE false END"
            )
        }
    }
}

/// A test of one of the resource's own columns, which are never absent and always of their one type.
fn own_sql(field: &Field, test: &Test, args: &mut Vec<Arg>) -> String {
    let (column, text) = match field {
        Field::Id => ("id", true),
        Field::OwnerId => ("owner_id", true),
        Field::Version => ("version", false),
        Field::CreatedAt => ("created_at", false),
        Field::UpdatedAt => ("updated_at", false),
        Field::Data(_) => ("NULL", false),
    };
    let fits = |operand: &Operand| matches!((operand, text), (Operand::Text(_), true) | (Operand::Number(_), false));
    match test {
        Test::Exists => "true".to_owned(),
        Test::In(operands) if operands.iter().all(fits) && !operands.is_empty() => {
            if text {
                let values =
                    operands.iter().filter_map(|o| if let Operand::Text(t) = o { Some(t.clone()) } else { None });
                let list = param(args, Arg::TextList(values.collect()));
                format!("{column} = ANY({list}::text[])")
            } else {
                let values = operands.iter().filter_map(|o| if let Operand::Number(n) = o { Some(*n) } else { None });
                let list = param(args, Arg::FloatList(values.collect()));
                format!("{column}::float8 = ANY({list}::float8[])")
            }
        }
        Test::Compare(ordering, Operand::Text(t)) if text => {
            let o = param(args, Arg::Text(Some(t.clone())));
            format!(r#"{column} COLLATE "C" {} {o}::text"#, ordering.sql())
        }
        Test::Compare(ordering, Operand::Number(n)) if !text => {
            let o = param(args, Arg::Float(Some(*n)));
            format!("{column}::float8 {} {o}::float8", ordering.sql())
        }
        Test::Prefix(prefix) if text => {
            let o = param(args, Arg::Text(Some(prefix.clone())));
            format!("starts_with({column}, {o}::text)")
        }
        Test::Substring(part) if text => {
            let o = param(args, Arg::Text(Some(part.clone())));
            format!("strpos({column}, {o}::text) > 0")
        }
        _ => "false".to_owned(),
    }
}
