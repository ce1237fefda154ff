//! The in-memory evaluator: whether a resource matches a condition, by the rules in `query/mod.rs`, without a
//! storage read. It must agree with the SQL of both backends; `tests/query.rs` compares them.

use serde_json::{Map, Value};

use super::{Condition, Field, Operand, Ordering, Test};
use crate::storage::Record;

/// The fields of a resource that a condition reads.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// `id`.
    pub id: &'a str,
    /// `ownerId`.
    pub owner_id: &'a str,
    /// `version`.
    pub version: u64,
    /// `createdAt`, Unix ms.
    pub created_at: u64,
    /// `updatedAt`, Unix ms.
    pub updated_at: u64,
    /// `data`.
    pub data: &'a Map<String, Value>,
}

impl<'a> Subject<'a> {
    /// The fields of a stored resource.
    pub fn of(record: &'a Record) -> Self {
        Subject {
            id: &record.id,
            owner_id: &record.owner_id,
            version: record.version,
            created_at: record.created_at,
            updated_at: record.updated_at,
            data: &record.data,
        }
    }
}

impl Condition {
    /// Whether `subject` matches.
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        match self {
            Condition::All(all) => all.iter().all(|c| c.matches(subject)),
            Condition::Any(any) => any.iter().any(|c| c.matches(subject)),
            Condition::Not(not) => !not.matches(subject),
            Condition::Test(field, test) => {
                let own;
                let value = match field {
                    Field::Id => {
                        own = Value::from(subject.id);
                        Some(&own)
                    }
                    Field::OwnerId => {
                        own = Value::from(subject.owner_id);
                        Some(&own)
                    }
                    Field::Version => {
                        own = Value::from(subject.version);
                        Some(&own)
                    }
                    Field::CreatedAt => {
                        own = Value::from(subject.created_at);
                        Some(&own)
                    }
                    Field::UpdatedAt => {
                        own = Value::from(subject.updated_at);
                        Some(&own)
                    }
                    Field::Data(path) => at_path(subject.data, path),
                };
                value.is_some_and(|value| passes(test, value))
            }
        }
    }
}

fn at_path<'v>(data: &'v Map<String, Value>, path: &[String]) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let mut value = data.get(first)?;
    for name in rest {
        value = value.as_object()?.get(name)?;
    }
    Some(value)
}

fn passes(test: &Test, value: &Value) -> bool {
    match test {
        Test::Exists => !value.is_null(),
        Test::In(operands) => operands.iter().any(|operand| equal(value, operand)),
        Test::Compare(ordering, operand) => match (value, operand) {
            (Value::Number(n), Operand::Number(o)) => n.as_f64().is_some_and(|n| compares(n.partial_cmp(o), *ordering)),
            (Value::String(s), Operand::Text(o)) => compares(Some(s.as_str().cmp(o.as_str())), *ordering),
            _ => false,
        },
        Test::Prefix(prefix) => value.as_str().is_some_and(|s| s.starts_with(prefix.as_str())),
        Test::Substring(part) => value.as_str().is_some_and(|s| s.contains(part.as_str())),
        Test::Element(operand) => value.as_array().is_some_and(|items| items.iter().any(|item| equal(item, operand))),
    }
}

/// Equal and of the same JSON type; numbers by value.
fn equal(value: &Value, operand: &Operand) -> bool {
    match (value, operand) {
        (Value::String(s), Operand::Text(o)) => s == o,
        (Value::Number(n), Operand::Number(o)) => n.as_f64() == Some(*o),
        (Value::Bool(b), Operand::Bool(o)) => b == o,
        _ => false,
    }
}

fn compares(order: Option<std::cmp::Ordering>, wanted: Ordering) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    matches!(
        (order, wanted),
        (Some(Less), Ordering::Less | Ordering::LessOrEqual)
            | (Some(Equal), Ordering::LessOrEqual | Ordering::GreaterOrEqual)
            | (Some(Greater), Ordering::Greater | Ordering::GreaterOrEqual)
    )
}
