//! Queries checked against a resource type: the protocol's [`Query`] (docs/protocol.md, 7.7) resolved into a
//! [`Condition`] whose every term names a known field and compares values of that field's type.
//!
//! A condition has three evaluators that must agree on every resource: [`Condition::matches`] in memory
//! (`eval.rs`, for events), SQLite's SQL and PostgreSQL's SQL (`storage/*/query.rs`, for lists). The meaning is
//! defined once, here, in terms small enough for each of them:
//!
//! - a field that is absent, `null`, or of another JSON type than the operand is *unmatched*: every comparison
//!   with it is false, so `ne`, `nin` and `not` of such a term are true;
//! - numbers compare as numbers (`1` equals `1.0`); strings compare by Unicode code point, case-sensitively;
//! - `eq null` is "absent or null", `exists` "present and not null", `prefix` and `contains` are case-sensitive.
//!
//! `ne`, `nin`, `exists: false` and `eq null` are rewritten as `not` of their opposite, so the evaluators know
//! five tests and three combinations only.

mod change;
mod eval;

pub use change::{judge, Change};
pub use eval::{Looked, Required, Subject};

use serde_json::Value;
use tidings_protocol::{And, FieldError, Not, Op, Or, Query, Term};

/// A query resolved against a type: what every evaluator runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// Every one holds.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// This does not hold.
    Not(Box<Condition>),
    /// A test of one field.
    Test(Field, Test),
}

impl Condition {
    /// Whether a test of this condition reads the top-level data field `name` (or a path inside it).
    pub fn reads_data_field(&self, name: &str) -> bool {
        match self {
            Condition::All(parts) | Condition::Any(parts) => parts.iter().any(|part| part.reads_data_field(name)),
            Condition::Not(inner) => inner.reads_data_field(name),
            Condition::Test(Field::Data(path), _) => path.first().is_some_and(|first| first == name),
            Condition::Test(..) => false,
        }
    }
}

/// A field of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// `id`, a string.
    Id,
    /// `ownerId`, a string.
    OwnerId,
    /// `version`, a number.
    Version,
    /// `createdAt`, a number (Unix ms).
    CreatedAt,
    /// `updatedAt`, a number (Unix ms).
    UpdatedAt,
    /// A path into `data`: field names, outermost first.
    Data(Vec<String>),
}

/// An operand, of the one JSON type a test compares.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A string.
    Text(String),
    /// A number (integers within ±2^53-1 are exact).
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// What a test asks of a field's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// Equal to one of these (one operand for `eq`; all of one type).
    In(Vec<Operand>),
    /// Compares so with the operand (a string or a number).
    Compare(Ordering, Operand),
    /// Present and not null.
    Exists,
    /// A string that starts with this.
    Prefix(String),
    /// A string that contains this.
    Substring(String),
    /// An array with an element equal to this.
    Element(Operand),
}

/// The order tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

impl Ordering {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Ordering::Less => "<",
            Ordering::LessOrEqual => "<=",
            Ordering::Greater => ">",
            Ordering::GreaterOrEqual => ">=",
        }
    }
}

/// The JSON type a field holds, as far as the type's schema says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Bool,
    Array,
    /// The schema gives no single type: any operand type is allowed, and the value decides.
    Any,
}

/// Resolves `query` against the JSON Schema of a type's data; `pointer` is where the query is in the message.
/// Every bad term is reported, each at its own pointer.
pub fn check(query: &Query, schema: &Value, pointer: &str) -> Result<Condition, Vec<FieldError>> {
    let mut errors = Vec::new();
    let condition = resolve(query, schema, pointer, &mut errors);
    if errors.is_empty() {
        Ok(condition)
    } else {
        Err(errors)
    }
}

fn resolve(query: &Query, schema: &Value, pointer: &str, errors: &mut Vec<FieldError>) -> Condition {
    match query {
        Query::And(And { and }) => Condition::All(
            and.iter().enumerate().map(|(n, q)| resolve(q, schema, &format!("{pointer}/and/{n}"), errors)).collect(),
        ),
        Query::Or(Or { or }) => Condition::Any(
            or.iter().enumerate().map(|(n, q)| resolve(q, schema, &format!("{pointer}/or/{n}"), errors)).collect(),
        ),
        Query::Not(Not { not }) => Condition::Not(Box::new(resolve(not, schema, &format!("{pointer}/not"), errors))),
        Query::Term(term) => match resolve_term(term, schema, pointer) {
            Ok(condition) => condition,
            Err(error) => {
                errors.push(error);
                Condition::All(Vec::new())
            }
        },
    }
}

/// One term resolved against a type's schema (also how access rules resolve theirs, `resources/access.rs`).
pub(crate) fn resolve_term(term: &Term, schema: &Value, pointer: &str) -> Result<Condition, FieldError> {
    let Some((op, value)) = term.operator() else {
        return Err(FieldError::new(pointer, "must have a field and exactly one operator"));
    };
    let at = format!("{pointer}/{}", op.name());
    let (field, kind) = field_of(term.field.as_str(), schema)
        .ok_or_else(|| FieldError::new(format!("{pointer}/field"), "is not a field of this type's data"))?;
    let operand = |value: &Value, at: &str| operand_of(value, kind, at);
    let test = match op {
        Op::Eq | Op::Ne if value.is_null() => {
            // Absent or null is "not present": `eq null` is `not exists`, `ne null` is `exists`.
            let exists = Condition::Test(field, Test::Exists);
            return Ok(if op == Op::Eq { Condition::Not(Box::new(exists)) } else { exists });
        }
        Op::Eq | Op::Ne => Test::In(vec![operand(&value, &at)?]),
        Op::In | Op::Nin => {
            let items = value.as_array().cloned().unwrap_or_default();
            let operands = items
                .iter()
                .enumerate()
                .map(|(n, item)| operand(item, &format!("{at}/{n}")))
                .collect::<Result<Vec<_>, _>>()?;
            if operands.windows(2).any(|w| std::mem::discriminant(&w[0]) != std::mem::discriminant(&w[1])) {
                return Err(FieldError::new(at, "must hold values of one type"));
            }
            Test::In(operands)
        }
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
            let ordering = match op {
                Op::Lt => Ordering::Less,
                Op::Lte => Ordering::LessOrEqual,
                Op::Gt => Ordering::Greater,
                _ => Ordering::GreaterOrEqual,
            };
            match operand(&value, &at)? {
                Operand::Bool(_) => return Err(FieldError::new(at, "must be a string or a number")),
                ordered => Test::Compare(ordering, ordered),
            }
        }
        Op::Exists => {
            let exists = Condition::Test(field, Test::Exists);
            return Ok(if value == Value::Bool(true) { exists } else { Condition::Not(Box::new(exists)) });
        }
        Op::Prefix if value.as_str().is_some_and(|text| text.contains('\0')) => {
            return Err(FieldError::new(at, "must not contain the NUL character"));
        }
        Op::Prefix => match kind {
            Kind::Text | Kind::Any => Test::Prefix(value.as_str().unwrap_or_default().to_owned()),
            _ => return Err(FieldError::new(at, "applies to string fields only")),
        },
        Op::Contains => match (kind, &value) {
            (Kind::Text, Value::String(text)) if text.contains('\0') => {
                return Err(FieldError::new(at, "must not contain the NUL character"));
            }
            (Kind::Text, Value::String(text)) => Test::Substring(text.clone()),
            (Kind::Text, _) => return Err(FieldError::new(at, "must be a string, as the field is")),
            (Kind::Array | Kind::Any, _) => Test::Element(operand_of(&value, Kind::Any, &at)?),
            _ => return Err(FieldError::new(at, "applies to string and array fields only")),
        },
    };
    let condition = Condition::Test(field, test);
    Ok(if matches!(op, Op::Ne | Op::Nin) { Condition::Not(Box::new(condition)) } else { condition })
}

/// The operand `value`, which must be of the field's kind.
fn operand_of(value: &Value, kind: Kind, at: &str) -> Result<Operand, FieldError> {
    let operand = match value {
        Value::String(text) => Operand::Text(text.clone()),
        Value::Number(number) => Operand::Number(number.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => Operand::Bool(*b),
        _ => return Err(FieldError::new(at, "must be a string, a number or a boolean")),
    };
    let fits = matches!(
        (&operand, kind),
        (_, Kind::Any)
            | (Operand::Text(_), Kind::Text)
            | (Operand::Number(_), Kind::Number)
            | (Operand::Bool(_), Kind::Bool)
    );
    if !fits {
        let expected = match kind {
            Kind::Text => "a string",
            Kind::Number => "a number",
            Kind::Bool => "a boolean",
            Kind::Array | Kind::Any => "an element of the array (use contains)",
        };
        return Err(FieldError::new(at, format!("must be {expected}, as the field is")));
    }
    if matches!(&operand, Operand::Text(text) if text.contains('\0')) {
        // No stored string holds one (PostgreSQL cannot), and PostgreSQL refuses it as an operand.
        return Err(FieldError::new(at, "must not contain the NUL character"));
    }
    if matches!(operand, Operand::Number(n) if !n.is_finite() || n.abs() > tidings_protocol::MAX_SAFE_INTEGER as f64) {
        return Err(FieldError::new(at, "must be a number between -(2^53-1) and 2^53-1"));
    }
    Ok(operand)
}

/// The field at `path` and its kind, if the schema declares it.
fn field_of(path: &str, schema: &Value) -> Option<(Field, Kind)> {
    let own = match path {
        "id" => Some((Field::Id, Kind::Text)),
        "ownerId" => Some((Field::OwnerId, Kind::Text)),
        "version" => Some((Field::Version, Kind::Number)),
        "createdAt" => Some((Field::CreatedAt, Kind::Number)),
        "updatedAt" => Some((Field::UpdatedAt, Kind::Number)),
        _ => None,
    };
    if own.is_some() {
        return own;
    }
    let names: Vec<String> = path.strip_prefix("data.")?.split('.').map(str::to_owned).collect();
    let mut at = schema;
    for name in &names {
        at = at.get("properties")?.get(name)?;
    }
    Some((Field::Data(names), kind_of(at)))
}

fn kind_of(schema: &Value) -> Kind {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => Vec::new(),
    };
    match types.as_slice() {
        ["string"] => Kind::Text,
        ["number" | "integer"] => Kind::Number,
        ["boolean"] => Kind::Bool,
        ["array"] => Kind::Array,
        _ => Kind::Any,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({ "type": "object", "properties": {
            "status": { "type": "string" },
            "total": { "type": "number" },
            "paid": { "type": "boolean" },
            "tags": { "type": "array", "items": { "type": "string" } },
            "customer": { "type": "object", "properties": { "city": { "type": "string" } } },
            "note": { "type": ["string", "null"] },
            "extra": {}
        }})
    }

    fn resolved(query: Value) -> Result<Condition, Vec<String>> {
        let query: Query = serde_json::from_value(query).expect("a query");
        check(&query, &schema(), "/payload/query")
            .map_err(|errors| errors.into_iter().map(|e| format!("{} {}", e.pointer, e.reason)).collect())
    }

    #[test]
    fn terms_resolve_to_tests_and_negations() {
        assert_eq!(
            resolved(json!({ "field": "data.customer.city", "ne": "Oslo" })),
            Ok(Condition::Not(Box::new(Condition::Test(
                Field::Data(vec!["customer".into(), "city".into()]),
                Test::In(vec![Operand::Text("Oslo".into())])
            ))))
        );
        assert_eq!(
            resolved(json!({ "field": "data.note", "eq": null })),
            Ok(Condition::Not(Box::new(Condition::Test(Field::Data(vec!["note".into()]), Test::Exists))))
        );
        assert_eq!(
            resolved(json!({ "field": "data.tags", "contains": "rush" })),
            Ok(Condition::Test(Field::Data(vec!["tags".into()]), Test::Element(Operand::Text("rush".into()))))
        );
        assert!(resolved(json!({ "field": "data.extra", "gt": 3 })).is_ok(), "an untyped field takes any operand");
    }

    #[test]
    fn every_bad_term_is_reported_at_its_place() {
        let errors = resolved(json!({ "and": [
            { "field": "data.total", "eq": "100" },
            { "field": "data.nope", "eq": 1 },
            { "or": [ { "field": "data.paid", "gt": true }, { "field": "data.total", "prefix": "1" } ] },
            { "field": "data.status", "in": ["a", 1] },
            { "field": "createdAt", "gte": 1e300 },
            { "field": "id", "eq": "ORD-\u{0}" },
            { "field": "data.status", "prefix": "a\u{0}" },
        ]}))
        .expect_err("bad terms");
        assert_eq!(
            errors,
            [
                "/payload/query/and/0/eq must be a number, as the field is",
                "/payload/query/and/1/field is not a field of this type's data",
                "/payload/query/and/2/or/0/gt must be a string or a number",
                "/payload/query/and/2/or/1/prefix applies to string fields only",
                "/payload/query/and/3/in/1 must be a string, as the field is",
                "/payload/query/and/4/gte must be a number between -(2^53-1) and 2^53-1",
                "/payload/query/and/5/eq must not contain the NUL character",
                "/payload/query/and/6/prefix must not contain the NUL character",
            ]
        );
    }
}
