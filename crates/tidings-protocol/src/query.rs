//! The query language of protocol 1.1 (docs/protocol.md, 7.7): conditions on resources, as JSON structures.
//!
//! A query is a tree: `{"and": [...]}`, `{"or": [...]}`, `{"not": ...}`, or a term `{"field": ..., <op>: value}`
//! with exactly one operator. The shapes are checked by serde and the JSON Schema; what neither can say (the
//! depth, the number of terms, one operator per term) by [`Query::check`], which the decoder runs on every read.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::error::FieldError;
use crate::fields::FieldPath;

/// A condition on resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Query {
    /// Every one of these holds.
    And(And),
    /// At least one of these holds.
    Or(Or),
    /// This does not hold.
    Not(Not),
    /// One comparison of a field (boxed: a term has a slot for every operator).
    Term(Box<Term>),
}

/// `{"and": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct And {
    /// The conditions, 1 to 32.
    #[schemars(length(min = 1, max = 32))]
    pub and: Vec<Query>,
}

/// `{"or": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Or {
    /// The conditions, 1 to 32.
    #[schemars(length(min = 1, max = 32))]
    pub or: Vec<Query>,
}

/// `{"not": ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Not {
    /// The condition that must not hold.
    pub not: Box<Query>,
}

/// A term: a field and exactly one operator, whose value is the operand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 2, "maxProperties" = 2))]
pub struct Term {
    /// `id`, `ownerId`, `version`, `createdAt`, `updatedAt`, or `data.` and a path into the resource's data.
    pub field: FieldPath,
    /// Equal to this (`null`: absent or null).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    #[schemars(with = "Option<ScalarValue>")]
    pub eq: Option<Value>,
    /// Not equal to this (`null`: present and not null).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    #[schemars(with = "Option<ScalarValue>")]
    pub ne: Option<Value>,
    /// Less than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<OrderedValue>")]
    pub lt: Option<Value>,
    /// Less than or equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<OrderedValue>")]
    pub lte: Option<Value>,
    /// Greater than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<OrderedValue>")]
    pub gt: Option<Value>,
    /// Greater than or equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<OrderedValue>")]
    pub gte: Option<Value>,
    /// Equal to one of these.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<ValueList>")]
    pub is_in: Option<Vec<Value>>,
    /// Equal to none of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<ValueList>")]
    pub nin: Option<Vec<Value>>,
    /// `true`: present and not null; `false`: absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    /// A string that starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub prefix: Option<String>,
    /// A string that contains this, or an array with an element equal to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<ElementValue>")]
    pub contains: Option<Value>,
}

/// A scalar operand: a string, a number, `true`, `false` or `null`.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum ScalarValue {
    Text(#[schemars(length(max = 1024))] String),
    Number(f64),
    Bool(bool),
    Null(()),
}

/// An operand that has an order: a string or a number.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum OrderedValue {
    Text(#[schemars(length(max = 1024))] String),
    Number(f64),
}

/// An operand that an array's element or a string can be compared with.
#[derive(JsonSchema)]
#[schemars(untagged)]
#[allow(dead_code)]
enum ElementValue {
    Text(#[schemars(length(max = 1024))] String),
    Number(f64),
    Bool(bool),
}

/// The operands of `in` and `nin`: 1 to 100 strings, numbers or booleans.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct ValueList(#[schemars(length(min = 1, max = 100))] Vec<ElementValue>);

/// Keeps an explicit `null` apart from an absent field: `{"field": "data.note", "eq": null}` asks for a missing
/// note, where serde's default would read it as no operator at all.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The operators, as they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `lt`
    Lt,
    /// `lte`
    Lte,
    /// `gt`
    Gt,
    /// `gte`
    Gte,
    /// `in`
    In,
    /// `nin`
    Nin,
    /// `exists`
    Exists,
    /// `prefix`
    Prefix,
    /// `contains`
    Contains,
}

impl Op {
    /// The operator's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::In => "in",
            Op::Nin => "nin",
            Op::Exists => "exists",
            Op::Prefix => "prefix",
            Op::Contains => "contains",
        }
    }
}

impl Term {
    /// The term's one operator and its operand (`in` and `nin` as an array, `exists` and `prefix` as their
    /// JSON value); `None` unless exactly one operator is given.
    pub fn operator(&self) -> Option<(Op, Value)> {
        let given = [
            (Op::Eq, self.eq.clone()),
            (Op::Ne, self.ne.clone()),
            (Op::Lt, self.lt.clone()),
            (Op::Lte, self.lte.clone()),
            (Op::Gt, self.gt.clone()),
            (Op::Gte, self.gte.clone()),
            (Op::In, self.is_in.clone().map(Value::Array)),
            (Op::Nin, self.nin.clone().map(Value::Array)),
            (Op::Exists, self.exists.map(Value::Bool)),
            (Op::Prefix, self.prefix.clone().map(Value::String)),
            (Op::Contains, self.contains.clone()),
        ];
        let mut present = given.into_iter().filter_map(|(op, value)| value.map(|v| (op, v)));
        let first = present.next()?;
        present.next().is_none().then_some(first)
    }
}

impl Query {
    /// How deep `and`, `or` and `not` may nest.
    pub const MAX_DEPTH: usize = 8;
    /// How many terms one query may have.
    pub const MAX_TERMS: usize = 64;
    /// How many values `in` and `nin` may list.
    pub const MAX_VALUES: usize = 100;
    /// The longest string operand, in characters.
    pub const MAX_TEXT: usize = 1024;

    /// Checks what the JSON Schema cannot: at most [`Self::MAX_DEPTH`] levels and [`Self::MAX_TERMS`] terms, and
    /// one operator per term. `pointer` is where the query is in the message (`/payload/query`).
    pub fn check(&self, pointer: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut terms = 0;
        self.walk(pointer, 0, &mut terms, &mut errors);
        if terms > Self::MAX_TERMS {
            errors.push(FieldError::new(pointer, format!("must have at most {} terms", Self::MAX_TERMS)));
        }
        errors
    }

    /// Reads a query from JSON as the decoder would: on failure, every fault with its pointer under `pointer`
    /// (for queries that arrive outside a message, such as the HTTP API's `query` parameter).
    pub fn from_json(value: &Value, pointer: &str) -> Result<Query, Vec<FieldError>> {
        let Ok(query) = serde_json::from_value::<Query>(value.clone()) else {
            let mut errors = crate::schema::query_errors(value, pointer);
            if errors.is_empty() {
                errors.push(FieldError::new(pointer, "must be a query (docs/protocol.md, 7.7)"));
            }
            return Err(errors);
        };
        let errors = query.check(pointer);
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }

    fn walk(&self, pointer: &str, depth: usize, terms: &mut usize, errors: &mut Vec<FieldError>) {
        if depth > Self::MAX_DEPTH {
            errors.push(FieldError::new(pointer, format!("must nest at most {} levels", Self::MAX_DEPTH)));
            return;
        }
        match self {
            Query::And(And { and: list }) | Query::Or(Or { or: list }) => {
                let key = if matches!(self, Query::And(_)) { "and" } else { "or" };
                for (n, query) in list.iter().enumerate() {
                    query.walk(&format!("{pointer}/{key}/{n}"), depth + 1, terms, errors);
                }
            }
            Query::Not(Not { not }) => not.walk(&format!("{pointer}/not"), depth + 1, terms, errors),
            Query::Term(term) => {
                *terms += 1;
                let Some((op, operand)) = term.operator() else {
                    return errors.push(FieldError::new(pointer, "must have a field and exactly one operator"));
                };
                // What the JSON Schema says too, but the decoder reads a valid-looking query without it.
                let at = format!("{pointer}/{}", op.name());
                let long = |value: &Value| value.as_str().is_some_and(|s| s.chars().count() > Self::MAX_TEXT);
                match &operand {
                    Value::Array(items) if !(1..=Self::MAX_VALUES).contains(&items.len()) => {
                        errors.push(FieldError::new(at, format!("must have 1 to {} values", Self::MAX_VALUES)));
                    }
                    Value::Array(items) => {
                        if let Some(n) = items.iter().position(long) {
                            errors.push(FieldError::new(format!("{at}/{n}"), "must be at most 1024 characters"));
                        }
                    }
                    value if long(value) => errors.push(FieldError::new(at, "must be at most 1024 characters")),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(json: Value) -> Query {
        serde_json::from_value(json).expect("a query")
    }

    #[test]
    fn terms_and_combinations_read_and_write_the_same() {
        let text = serde_json::json!({ "and": [
            { "field": "data.status", "eq": "pending" },
            { "or": [ { "field": "data.total", "gt": 100 }, { "not": { "field": "data.note", "exists": true } } ] },
            { "field": "data.customer.city", "in": ["Oslo", "Bergen"] },
            { "field": "ownerId", "eq": null },
        ]});
        let parsed = query(text.clone());
        assert_eq!(serde_json::to_value(&parsed).expect("serializes"), text);
        assert!(parsed.check("/payload/query").is_empty());
        let Query::And(And { and }) = parsed else { panic!("an and") };
        let Query::Term(last) = &and[3] else { panic!("a term") };
        assert_eq!(last.operator(), Some((Op::Eq, Value::Null)), "an explicit null is an operand");
    }

    #[test]
    fn a_term_needs_exactly_one_operator() {
        let two = query(serde_json::json!({ "field": "data.a", "eq": 1, "ne": 2 }));
        assert_eq!(two.check("/q").len(), 1);
        let none = query(serde_json::json!({ "and": [{ "field": "data.a" }] }));
        let errors = none.check("/q");
        assert_eq!(errors.iter().map(|e| e.pointer.as_str()).collect::<Vec<_>>(), ["/q/and/0"]);
    }

    #[test]
    fn depth_and_terms_are_bounded() {
        let mut deep = serde_json::json!({ "field": "id", "eq": "x" });
        for _ in 0..10 {
            deep = serde_json::json!({ "not": deep });
        }
        assert!(!query(deep).check("/q").is_empty(), "ten levels");
        let wide = serde_json::json!({ "or": (0..32).map(|_| serde_json::json!({ "and": [
            { "field": "id", "eq": "a" }, { "field": "id", "eq": "b" }, { "field": "id", "eq": "c" }
        ]})).collect::<Vec<_>>() });
        let errors = query(wide).check("/q");
        assert_eq!(errors.len(), 1, "96 terms: {errors:?}");
    }

    #[test]
    fn operands_are_bounded_as_the_spec_says() {
        let long = "x".repeat(1025);
        let many: Vec<u32> = (0..101).collect();
        for (text, at) in [
            (serde_json::json!({ "field": "data.a", "eq": long }), "/q/eq"),
            (serde_json::json!({ "field": "data.a", "in": many }), "/q/in"),
            (serde_json::json!({ "field": "data.a", "nin": [] }), "/q/nin"),
            (serde_json::json!({ "field": "data.a", "in": ["a", long] }), "/q/in/1"),
            (serde_json::json!({ "not": { "field": "data.a", "prefix": long } }), "/q/not/prefix"),
        ] {
            let errors = query(text).check("/q");
            assert_eq!(errors.iter().map(|e| e.pointer.as_str()).collect::<Vec<_>>(), [at]);
        }
    }

    #[test]
    fn unknown_keys_and_fields_are_refused() {
        assert!(serde_json::from_value::<Query>(serde_json::json!({ "field": "data.a", "like": "x" })).is_err());
        assert!(serde_json::from_value::<Query>(serde_json::json!({ "field": "status", "eq": "x" })).is_err());
        assert!(serde_json::from_value::<Query>(serde_json::json!({ "xor": [] })).is_err());
    }
}
