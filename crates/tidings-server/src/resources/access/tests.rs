//! Unit tests of the access rules: shorthands, rules over claims and data, and mistakes refused at start.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::*;
use crate::query::Subject;

fn schema() -> Value {
    json!({ "type": "object", "properties": {
        "orgId": { "type": "string" },
        "status": { "type": "string" },
        "public": { "type": "boolean" },
        "total": { "type": "number" }
    }})
}

fn user(id: &str, roles: &[&str], claims: Value) -> Identity {
    let mut who = Identity::of(id, roles);
    who.claims = Arc::new(claims.as_object().cloned().unwrap_or_default());
    who
}

fn rule(operation: Operation, entries: Value) -> Rule {
    compile(entries.as_array().expect("a list"), operation, &schema(), "permissions.test").expect("compiles")
}

fn record<'a>(owner: &'a str, data: &'a Map<String, Value>) -> Subject<'a> {
    Subject { id: "PRJ-1", owner_id: owner, version: 1, created_at: 1, updated_at: 1, data }
}

fn data(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

#[test]
fn shorthands_mean_what_they_meant() {
    let read = rule(Operation::Read, json!(["owner", "role:admin"]));
    let alice = user("alice", &[], json!({}));
    let root = user("root", &["admin"], json!({}));
    assert_eq!(read.scope(&alice, &schema()), Some(Scope::Own("alice".to_owned())));
    assert_eq!(read.scope(&root, &schema()), Some(Scope::All));
    assert_eq!(rule(Operation::Read, json!(["role:admin"])).scope(&alice, &schema()), None);
    assert_eq!(rule(Operation::Read, json!(["authenticated"])).scope(&alice, &schema()), Some(Scope::All));
    assert_eq!(rule(Operation::Read, json!([])).scope(&root, &schema()), None, "an empty list allows nobody");
    let empty = Map::new();
    assert!(read.allows(&alice, Some(record("alice", &empty)), None, &schema()));
    assert!(!read.allows(&alice, Some(record("bob", &empty)), None, &schema()));
    assert!(read.allows(&root, Some(record("bob", &empty)), None, &schema()));
    let create = rule(Operation::Create, json!(["owner"]));
    assert!(create.allows(&alice, None, Some(&empty), &schema()), "anyone creates as the owner");
}

#[test]
fn a_rule_over_a_claim_becomes_a_condition_on_the_resource() {
    let read = rule(
        Operation::Read,
        json!(["role:admin", { "field": "resource.data.orgId", "eq": { "auth": "claims.org" } }]),
    );
    let ann = user("ann", &[], json!({ "org": "acme" }));
    let Some(Scope::Where(condition)) = read.scope(&ann, &schema()) else { panic!("a condition") };
    let acme = data(json!({ "orgId": "acme" }));
    let globex = data(json!({ "orgId": "globex" }));
    assert!(condition.matches(&record("zoe", &acme)));
    assert!(!condition.matches(&record("zoe", &globex)));
    // Without the claim, the term is unmatched: nothing of the type is visible.
    assert_eq!(read.scope(&user("nobody", &[], json!({})), &schema()), None);
    assert_eq!(read.scope(&user("root", &["admin"], json!({})), &schema()), Some(Scope::All));
}

#[test]
fn claims_are_found_by_dotted_and_bracketed_paths() {
    let read = rule(
        Operation::Read,
        json!([{ "field": "resource.data.orgId", "in": { "auth": "claims[\"https://example.com/tenant\"].orgs" } }]),
    );
    let member = user("m", &[], json!({ "https://example.com/tenant": { "orgs": ["acme", "initech"] } }));
    let Some(Scope::Where(condition)) = read.scope(&member, &schema()) else { panic!("a condition") };
    assert!(condition.matches(&record("x", &data(json!({ "orgId": "initech" })))));
    assert!(!condition.matches(&record("x", &data(json!({ "orgId": "globex" })))));
}

#[test]
fn a_rule_over_data_says_what_may_be_written() {
    // Status may only be set by the warehouse, and only to shipped; other fields by the owner.
    let update = rule(
        Operation::Update,
        json!([{ "and": [
            { "field": "resource.ownerId", "eq": { "auth": "sub" } },
            { "or": [
                { "field": "data.status", "exists": false },
                { "and": [ { "field": "auth.roles", "contains": "warehouse" }, { "field": "data.status", "eq": "shipped" } ] }
            ] }
        ] }]),
    );
    let stored = data(json!({ "status": "pending" }));
    let owner = user("alice", &[], json!({}));
    let warehouse = user("alice", &["warehouse"], json!({}));
    let total = data(json!({ "total": 3 }));
    let shipped = data(json!({ "status": "shipped" }));
    let paid = data(json!({ "status": "paid" }));
    assert!(update.allows(&owner, Some(record("alice", &stored)), Some(&total), &schema()));
    assert!(!update.allows(&owner, Some(record("alice", &stored)), Some(&shipped), &schema()));
    assert!(update.allows(&warehouse, Some(record("alice", &stored)), Some(&shipped), &schema()));
    assert!(!update.allows(&warehouse, Some(record("alice", &stored)), Some(&paid), &schema()));
    assert!(!update.allows(&warehouse, Some(record("bob", &stored)), Some(&shipped), &schema()));
}

#[test]
fn mistakes_are_refused_with_where_they_are() {
    let refused = |operation, entries: Value| {
        compile(entries.as_array().expect("a list"), operation, &schema(), "permissions.read")
            .expect_err("refused")
            .to_string()
    };
    assert!(refused(Operation::Read, json!(["everyone"])).contains("everyone"));
    assert!(refused(Operation::Read, json!([{ "field": "resource.data.colour", "eq": "red" }])).contains("[0]"));
    assert!(refused(Operation::Read, json!([{ "field": "resource.data.total", "eq": "many" }])).contains("number"));
    assert!(refused(Operation::Read, json!([{ "field": "data.status", "eq": "x" }])).contains("create and update"));
    assert!(refused(Operation::Create, json!([{ "field": "resource.ownerId", "eq": "x" }])).contains("use data"));
    assert!(refused(Operation::Read, json!([{ "field": "auth.claims.", "eq": "x" }])).contains("claims"));
    assert!(refused(Operation::Read, json!([{ "field": "auth.sub", "eq": "x", "ne": "y" }])).contains("exactly one"));
    assert!(refused(Operation::Read, json!([{ "or": [] }])).contains("non-empty"));
    assert!(refused(Operation::Field, json!(["owner"])).contains("user only"));
    assert!(refused(Operation::Field, json!([{ "field": "resource.ownerId", "eq": "x" }])).contains("auth only"));
    let finance = rule(Operation::Field, json!(["role:finance", { "field": "auth.claims.cfo", "eq": true }]));
    assert!(finance.holds_for(&user("fay", &["finance"], json!({}))));
    assert!(finance.holds_for(&user("carl", &[], json!({ "cfo": true }))));
    assert!(!finance.holds_for(&user("ann", &[], json!({ "cfo": "yes" }))));
    let nested = refused(Operation::Read, json!([{ "and": [ { "field": "auth.sub", "gt": true } ] }]));
    assert!(nested.contains("permissions.read[0].and[0]"), "{nested}");
}
