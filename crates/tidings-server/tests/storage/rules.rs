//! The access rules' three evaluators agree: for random rules (shorthands, and terms over the resource and the
//! user's claims, with `and`, `or` and `not`) and random users, the rule specialized for the user lists in SQL
//! exactly the resources that a read by id allows (`Rule::allows`, in memory), and the scope the hub keeps its
//! subscribers by (all, own, a condition, nothing) reaches exactly those too.

use std::sync::Arc as SharedArc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidings_server::auth::Identity;
use tidings_server::hub::Scope;
use tidings_server::query::Subject;
use tidings_server::resources::access::{compile, Operation};

use super::queries::{random_items, schema, STRINGS};
use super::*;

/// Resource fields a rule may test, and the claims it may compare them with.
const FIELDS: [&str; 7] = [
    "resource.data.s",
    "resource.data.n",
    "resource.data.tags",
    "resource.data.obj.city",
    "resource.ownerId",
    "resource.id",
    "resource.data.b",
];
const CLAIMS: [&str; 5] = ["sub", "claims.org", "claims.level", "claims.teams", "claims.missing"];
const OPS: [&str; 8] = ["eq", "ne", "in", "nin", "lt", "gte", "prefix", "contains"];

fn random_rule(rng: &mut StdRng, depth: usize) -> Value {
    if depth < 2 && rng.random_bool(0.3) {
        let list: Vec<Value> = (0..rng.random_range(1..3)).map(|_| random_rule(rng, depth + 1)).collect();
        return match rng.random_range(0..3) {
            0 => json!({ "and": list }),
            1 => json!({ "or": list }),
            _ => json!({ "not": list[0] }),
        };
    }
    match rng.random_range(0..10) {
        0 => {
            let role = ["admin", "agent"][rng.random_range(0..2)];
            json!({ "field": "auth.roles", "contains": role })
        }
        1 => {
            let op = ["gte", "lt", "eq"][rng.random_range(0..3)];
            json!({ "field": "auth.claims.level", op: rng.random_range(0..4) })
        }
        _ => {
            let field = FIELDS[rng.random_range(0..FIELDS.len())];
            let op = OPS[rng.random_range(0..OPS.len())];
            let operand = if rng.random_bool(0.7) {
                json!({ "auth": CLAIMS[rng.random_range(0..CLAIMS.len())] })
            } else {
                json!(STRINGS[rng.random_range(0..STRINGS.len())])
            };
            let operand = if matches!(op, "in" | "nin") && !operand.is_object() { json!([operand]) } else { operand };
            json!({ "field": field, op: operand })
        }
    }
}

fn random_entries(rng: &mut StdRng) -> Vec<Value> {
    (0..rng.random_range(1..3))
        .map(|_| match rng.random_range(0..6) {
            0 => json!("owner"),
            1 => json!("role:admin"),
            2 if rng.random_bool(0.2) => json!("authenticated"),
            _ => random_rule(rng, 0),
        })
        .collect()
}

fn random_user(rng: &mut StdRng) -> Identity {
    let mut claims = serde_json::Map::new();
    match rng.random_range(0..5) {
        0 => {}
        1 => drop(claims.insert("org".to_owned(), json!(rng.random_range(0..3)))),
        _ => drop(claims.insert("org".to_owned(), json!(STRINGS[rng.random_range(0..STRINGS.len())]))),
    }
    if rng.random_bool(0.6) {
        claims.insert("level".to_owned(), json!(rng.random_range(0..4)));
    }
    if rng.random_bool(0.5) {
        let teams: Vec<&str> =
            (0..rng.random_range(0..3)).map(|_| STRINGS[rng.random_range(0..STRINGS.len())]).collect();
        claims.insert("teams".to_owned(), json!(teams));
    }
    let roles: Vec<&str> = ["admin", "agent"].into_iter().filter(|_| rng.random_bool(0.25)).collect();
    let user = format!("u{}", rng.random_range(0..3));
    Identity { claims: SharedArc::new(claims), ..Identity::of(&user, &roles) }
}

pub(crate) async fn rules_list_read_and_scope_the_same_resources(storage: Arc<dyn Storage>) {
    let mut rng = StdRng::seed_from_u64(20_261_202);
    let records = random_items(&storage, &mut rng, 60).await;
    let schema = schema();
    let (mut compared, mut seen, mut partial) = (0, 0, 0);
    while compared < 300 {
        let entries = random_entries(&mut rng);
        let Ok(rule) = compile(&entries, Operation::Read, &schema, "permissions.read") else { continue };
        compared += 1;
        let who = random_user(&mut rng);
        let condition = rule.specialize(&who, None, &schema);
        let allowed: BTreeSet<String> = records
            .iter()
            .filter(|r| rule.allows(&who, Some(Subject::of(r)), None, &schema))
            .map(|r| r.id.clone())
            .collect();
        let listed = super::queries::list_all(&storage, &condition).await;
        let context = || format!("rule {}\nuser {} {:?} {:?}", json!(entries), who.user_id, who.roles, who.claims);
        assert_eq!(listed, allowed, "SQL and a read by id disagree\n{}", context());
        let scoped: BTreeSet<String> = match rule.scope(&who, &schema) {
            None => BTreeSet::new(),
            Some(Scope::All) => records.iter().map(|r| r.id.clone()).collect(),
            Some(Scope::Own(owner)) => records.iter().filter(|r| r.owner_id == owner).map(|r| r.id.clone()).collect(),
            Some(Scope::Where(condition)) => {
                records.iter().filter(|r| condition.matches(&Subject::of(r))).map(|r| r.id.clone()).collect()
            }
        };
        assert_eq!(scoped, allowed, "the hub's scope and a read by id disagree\n{}", context());
        seen += allowed.len();
        partial += usize::from(!allowed.is_empty() && allowed.len() < records.len());
    }
    // Not every rule allowed all or nothing.
    assert!(partial > 30 && seen > 0, "{partial} rules allowed some but not all");
}
