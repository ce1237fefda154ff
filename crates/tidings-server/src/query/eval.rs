//! The in-memory evaluator: whether a resource matches a condition, by the rules in `query/mod.rs`, without a
//! storage read. It must agree with the SQL of both backends; `tests/query.rs` compares them.

use serde_json::{Map, Value};

use super::{Condition, Field, Operand, Ordering, Test};
use crate::storage::{EventKind, EventRecord, Record};

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

/// An equality that every resource a condition matches has: the condition's one test, or one of the tests that
/// must all hold, of a data field equal to one of a few values. An event whose resource has none of them there,
/// before the change or after it, cannot concern the condition, which then need not be evaluated: most of the
/// distinct queries on a type are usually of this kind (`status = pending`, `customer = X`), and an event meets
/// few of them.
#[derive(Clone, Debug)]
pub struct Required {
    path: Vec<String>,
    values: Vec<Operand>,
}

impl Condition {
    /// The equality every match of this condition has, if there is one.
    pub fn required(&self) -> Option<Required> {
        let equality = |condition: &Condition| match condition {
            Condition::Test(Field::Data(path), Test::In(values)) => {
                Some(Required { path: path.clone(), values: values.clone() })
            }
            _ => None,
        };
        match self {
            Condition::All(all) => all.iter().find_map(equality),
            other => equality(other),
        }
    }
}

/// The values of the data fields that [`Required`] equalities test, in one event's resource after and before its
/// change: each field is looked up once per event, not once per query.
#[derive(Debug)]
pub struct Looked<'e> {
    event: &'e EventRecord,
    /// Whether the event says what the resource was before (a create was nothing): else a query may be concerned
    /// whatever its fields, since a leave is told when it cannot be known whether it matched.
    screens: bool,
    values: Vec<(&'e [String], Option<&'e Value>, Option<&'e Value>)>,
}

impl<'e> Looked<'e> {
    /// Nothing looked up yet, in `event`.
    pub fn new(event: &'e EventRecord) -> Self {
        let screens = event.kind == EventKind::Created || event.previous.is_some();
        Looked { event, screens, values: Vec::new() }
    }

    /// Whether the event may concern a condition that requires `required`: false only when the resource had
    /// none of its values at its field, before and after the change.
    pub fn may_concern(&mut self, required: &'e Required) -> bool {
        if !self.screens {
            return true;
        }
        let path = required.path.as_slice();
        let (after, before) = match self.values.iter().find(|(looked, ..)| *looked == path) {
            Some(&(_, after, before)) => (after, before),
            None => {
                let after = at_path(&self.event.data, path);
                let before = self.event.previous.as_ref().and_then(|previous| at_path(&previous.data, path));
                self.values.push((path, after, before));
                (after, before)
            }
        };
        let meets = |value: Option<&Value>| value.is_some_and(|v| required.values.iter().any(|o| equal(v, o)));
        meets(after) || meets(before)
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
