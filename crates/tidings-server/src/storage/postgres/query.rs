//! A query's condition as PostgreSQL SQL over the `resources` table, by the rules in `query/mod.rs`. Every term
//! is a boolean that is never NULL; casts happen only inside a `CASE` that has checked the JSON type first
//! (PostgreSQL does not promise to evaluate `AND` left to right), and strings compare in the "C" collation, by
//! code point, as SQLite and Rust do.

use super::list::Arg;
use crate::query::{Condition, Field, Operand, Test};

/// The condition as an SQL expression, its operands appended to `args`.
pub(super) fn condition_sql(condition: &Condition, args: &mut Vec<Arg>) -> String {
    match condition {
        Condition::All(all) if all.is_empty() => "true".to_owned(),
        Condition::Any(any) if any.is_empty() => "false".to_owned(),
        Condition::All(all) => joined(all, " AND ", args),
        Condition::Any(any) => joined(any, " OR ", args),
        Condition::Not(not) => format!("(NOT {})", condition_sql(not, args)),
        Condition::Test(field, test) => format!("COALESCE(({}), false)", test_sql(field, test, args)),
    }
}

fn joined(conditions: &[Condition], with: &str, args: &mut Vec<Arg>) -> String {
    let parts: Vec<String> = conditions.iter().map(|c| condition_sql(c, args)).collect();
    format!("({})", parts.join(with))
}

fn param(args: &mut Vec<Arg>, arg: Arg) -> String {
    args.push(arg);
    format!("${}", args.len())
}

/// The operands, all of one kind, bound as one array; with the JSON type that holds them and how a JSON value's
/// text is cast to compare with them.
fn bind_all(args: &mut Vec<Arg>, operands: &[Operand]) -> (String, &'static str, &'static str) {
    match operands.first() {
        Some(Operand::Number(_)) => {
            let list = operands.iter().filter_map(|o| if let Operand::Number(n) = o { Some(*n) } else { None });
            (param(args, Arg::FloatList(list.collect())), "number", "::float8")
        }
        Some(Operand::Bool(_)) => {
            let list = operands.iter().filter_map(|o| if let Operand::Bool(b) = o { Some(*b) } else { None });
            (param(args, Arg::BoolList(list.collect())), "boolean", "::boolean")
        }
        _ => {
            let list = operands.iter().filter_map(|o| if let Operand::Text(t) = o { Some(t.clone()) } else { None });
            (param(args, Arg::TextList(list.collect())), "string", r#" COLLATE "C""#)
        }
    }
}

/// A comparison of `text` (a JSON value's text, or NULL) of JSON type `json_type` with bound operands, written
/// so that the cast happens only when the type is right.
fn typed(json_type: &str, expected: &str, compare: String) -> String {
    format!("CASE WHEN {json_type} = '{expected}' THEN {compare} ELSE false END")
}

fn test_sql(field: &Field, test: &Test, args: &mut Vec<Arg>) -> String {
    let Field::Data(path) = field else { return own_sql(field, test, args) };
    let p = param(args, Arg::TextList(path.clone()));
    let (json, text) = (format!("(data #> {p}::text[])"), format!("(data #>> {p}::text[])"));
    let ty = format!("jsonb_typeof({json})");
    match test {
        Test::Exists => format!("{ty} <> 'null'"),
        Test::In(operands) => {
            let (list, expected, cast) = bind_all(args, operands);
            let element_type = match expected {
                "number" => "float8",
                "boolean" => "boolean",
                _ => "text",
            };
            typed(&ty, expected, format!("({text}){cast} = ANY({list}::{element_type}[])"))
        }
        Test::Compare(ordering, operand) => {
            let (expected, cast, arg, arg_cast) = match operand {
                Operand::Number(n) => ("number", "::float8", Arg::Float(Some(*n)), "::float8"),
                Operand::Text(t) => ("string", r#" COLLATE "C""#, Arg::Text(Some(t.clone())), "::text"),
                Operand::Bool(_) => return "false".to_owned(),
            };
            let o = param(args, arg);
            typed(&ty, expected, format!("({text}){cast} {} {o}{arg_cast}", ordering.sql()))
        }
        Test::Prefix(prefix) => {
            let o = param(args, Arg::Text(Some(prefix.clone())));
            typed(&ty, "string", format!("starts_with({text}, {o}::text)"))
        }
        Test::Substring(part) => {
            let o = param(args, Arg::Text(Some(part.clone())));
            typed(&ty, "string", format!("strpos({text}, {o}::text) > 0"))
        }
        Test::Element(operand) => {
            let (list, expected, cast) = bind_all(args, std::slice::from_ref(operand));
            let element_type = match expected {
                "number" => "float8",
                "boolean" => "boolean",
                _ => "text",
            };
            let element = typed(
                "jsonb_typeof(element)",
                expected,
                format!("(element #>> '{{}}'){cast} = ANY({list}::{element_type}[])"),
            );
            typed(
                &ty,
                "array",
                format!("EXISTS (SELECT 1 FROM jsonb_array_elements({json}) AS e(element) WHERE {element})"),
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
            let (list, _, _) = bind_all(args, operands);
            if text {
                format!("{column} = ANY({list}::text[])")
            } else {
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
