//! A query's condition as SQLite SQL over the `resources` table, by the rules in `query/mod.rs`: a field of
//! another JSON type than the operand matches nothing.
//!
//! A test of an absent field is NULL in SQL. Where the condition counts positively (not under a `not`), NULL
//! excludes a row just as false does, so the test is written bare, which lets SQLite use an index on
//! `json_extract(data, path)` (`index_sql`); under a `not` it is wrapped in `COALESCE(..., 0)`, so that "not
//! unmatched" is true.

use rusqlite::types::Value as SqlValue;

use crate::query::{Condition, Field, Operand, Test};

/// The condition as an SQL expression, its operands appended to `args`.
pub(super) fn condition_sql(condition: &Condition, args: &mut Vec<SqlValue>) -> String {
    written(condition, true, args)
}

/// The index that a test of data field `path` of type `resource_type` can use: on the very expression the tests
/// compare. Names are letters, digits and `_` (checked when the type is compiled).
pub(super) fn index_sql(resource_type: &str, path: &str) -> String {
    let name = super::super::index_name(resource_type, path);
    format!("CREATE INDEX IF NOT EXISTS \"{name}\" ON resources (resource_type, json_extract(data, '$.{path}'))")
}

fn written(condition: &Condition, positive: bool, args: &mut Vec<SqlValue>) -> String {
    match condition {
        Condition::All(all) if all.is_empty() => "1".to_owned(),
        Condition::Any(any) if any.is_empty() => "0".to_owned(),
        Condition::All(all) => joined(all, " AND ", positive, args),
        Condition::Any(any) => joined(any, " OR ", positive, args),
        Condition::Not(not) => format!("(NOT {})", written(not, !positive, args)),
        Condition::Test(field, test) if positive => format!("({})", test_sql(field, test, args)),
        Condition::Test(field, test) => format!("COALESCE(({}), 0)", test_sql(field, test, args)),
    }
}

fn joined(conditions: &[Condition], with: &str, positive: bool, args: &mut Vec<SqlValue>) -> String {
    let parts: Vec<String> = conditions.iter().map(|c| written(c, positive, args)).collect();
    format!("({})", parts.join(with))
}

fn bind(args: &mut Vec<SqlValue>, operand: &Operand) -> String {
    args.push(match operand {
        Operand::Text(text) => SqlValue::Text(text.clone()),
        Operand::Number(n) => SqlValue::Real(*n),
        Operand::Bool(b) => SqlValue::Integer(i64::from(*b)),
    });
    format!("?{}", args.len())
}

/// The JSON types (`json_type`) that hold an operand's kind.
fn json_types(operand: &Operand) -> &'static str {
    match operand {
        Operand::Text(_) => "('text')",
        Operand::Number(_) => "('integer', 'real')",
        Operand::Bool(true) => "('true')",
        Operand::Bool(false) => "('false')",
    }
}

fn test_sql(field: &Field, test: &Test, args: &mut Vec<SqlValue>) -> String {
    let Field::Data(path) = field else { return own_sql(field, test, args) };
    // Names are letters, digits and `_` (FieldPath), so the JSON path is safe to write into the SQL.
    let path = format!("'$.{}'", path.join("."));
    let (ty, value) = (format!("json_type(data, {path})"), format!("json_extract(data, {path})"));
    match test {
        Test::Exists => format!("{ty} IS NOT NULL AND {ty} <> 'null'"),
        Test::In(operands) => match operands.first() {
            // Booleans are told by their JSON type alone: `true` and `false` are types of their own.
            Some(Operand::Bool(_)) => {
                let types: Vec<&str> = operands.iter().map(json_types).collect();
                types.iter().map(|t| format!("{ty} IN {t}")).collect::<Vec<_>>().join(" OR ")
            }
            Some(first) => {
                let types = json_types(first);
                let list: Vec<String> = operands.iter().map(|o| bind(args, o)).collect();
                format!("{ty} IN {types} AND {value} IN ({})", list.join(", "))
            }
            None => "0".to_owned(),
        },
        Test::Compare(ordering, operand) => {
            let types = json_types(operand);
            let p = bind(args, operand);
            format!("{ty} IN {types} AND {value} {} {p}", ordering.sql())
        }
        Test::Prefix(prefix) => {
            let p = bind(args, &Operand::Text(prefix.clone()));
            format!("{ty} = 'text' AND substr({value}, 1, length({p})) = {p}")
        }
        Test::Substring(part) => {
            let p = bind(args, &Operand::Text(part.clone()));
            format!("{ty} = 'text' AND instr({value}, {p}) > 0")
        }
        Test::Element(operand) => {
            let element = match operand {
                Operand::Bool(_) => format!("json_each.type IN {}", json_types(operand)),
                _ => {
                    let p = bind(args, operand);
                    format!("json_each.type IN {} AND json_each.value = {p}", json_types(operand))
                }
            };
            format!("{ty} = 'array' AND EXISTS (SELECT 1 FROM json_each(data, {path}) WHERE {element})")
        }
    }
}

/// A test of one of the resource's own columns, which are never absent and always of their one type.
fn own_sql(field: &Field, test: &Test, args: &mut Vec<SqlValue>) -> String {
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
        Test::Exists => "1".to_owned(),
        Test::In(operands) => {
            let list: Vec<String> = operands.iter().filter(|o| fits(o)).map(|o| bind(args, o)).collect();
            if list.is_empty() {
                "0".to_owned()
            } else {
                format!("{column} IN ({})", list.join(", "))
            }
        }
        Test::Compare(ordering, operand) if fits(operand) => {
            format!("{column} {} {}", ordering.sql(), bind(args, operand))
        }
        Test::Prefix(prefix) if text => {
            let p = bind(args, &Operand::Text(prefix.clone()));
            format!("substr({column}, 1, length({p})) = {p}")
        }
        Test::Substring(part) if text => format!("instr({column}, {}) > 0", bind(args, &Operand::Text(part.clone()))),
        _ => "0".to_owned(),
    }
}
