//! The three evaluators of a query agree: for random queries over random resources (missing fields, nulls, values
//! of the wrong type, unicode, large numbers), the backend's SQL lists exactly the resources that the in-memory
//! evaluator says match.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidings_protocol::Query;
use tidings_server::query::{check, Condition, Subject};

use super::*;

/// The type's schema: one field of each kind, nested and untyped ones too.
pub(crate) fn schema() -> Value {
    json!({ "type": "object", "properties": {
        "s": { "type": "string" },
        "n": { "type": "number" },
        "b": { "type": "boolean" },
        "tags": { "type": "array", "items": { "type": "string" } },
        "nums": { "type": "array", "items": { "type": "number" } },
        "obj": { "type": "object", "properties": { "city": { "type": "string" }, "n": { "type": "integer" } } },
        "any": {},
        "note": { "type": ["string", "null"] },
        "null": { "type": "string" }
    }})
}

pub(crate) const STRINGS: [&str; 10] = ["", "a", "ab", "abc", "B", "é", "日本", "a%_", "Oslo", "oslo"];
const NUMBERS: [f64; 9] = [-1.5, -1.0, 0.0, 1.0, 1.5, 2.0, 100.0, 1e15, 9_007_199_254_740_991.0];

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e16 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// Any JSON value a stored field might hold, mostly scalars.
fn any_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..10) {
        0 => Value::Null,
        1 | 2 => json!(STRINGS[rng.random_range(0..STRINGS.len())]),
        3 | 4 => number(NUMBERS[rng.random_range(0..NUMBERS.len())]),
        5 => json!(rng.random_bool(0.5)),
        6 | 7 => {
            let len = rng.random_range(0..4);
            Value::Array((0..len).map(|_| scalar(rng)).collect())
        }
        8 => {
            json!({ "city": STRINGS[rng.random_range(0..STRINGS.len())], "n": number(NUMBERS[rng.random_range(0..4)]) })
        }
        _ => json!(1.0),
    }
}

fn scalar(rng: &mut StdRng) -> Value {
    match rng.random_range(0..3) {
        0 => json!(STRINGS[rng.random_range(0..STRINGS.len())]),
        1 => number(NUMBERS[rng.random_range(0..NUMBERS.len())]),
        _ => json!(rng.random_bool(0.5)),
    }
}

pub(crate) fn resource_data(rng: &mut StdRng) -> serde_json::Map<String, Value> {
    let mut data = serde_json::Map::new();
    // `null` too: a field may be called that, and PostgreSQL's array literals read a bare `null` as NULL.
    for field in ["s", "n", "b", "tags", "nums", "obj", "any", "note", "null"] {
        if rng.random_bool(0.8) {
            data.insert(field.to_owned(), any_value(rng));
        }
    }
    data
}

const PATHS: [&str; 13] = [
    "data.s",
    "data.n",
    "data.b",
    "data.tags",
    "data.nums",
    "data.obj.city",
    "data.obj.n",
    "data.any",
    "data.note",
    "data.null",
    "id",
    "ownerId",
    "version",
];
const OPS: [&str; 11] = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "nin", "exists", "prefix", "contains"];

/// A random query; many fail the type check, and those are skipped by the caller.
fn random_query(rng: &mut StdRng, depth: usize) -> Value {
    if depth < 3 && rng.random_bool(0.3) {
        let count = rng.random_range(1..4);
        let list: Vec<Value> = (0..count).map(|_| random_query(rng, depth + 1)).collect();
        return match rng.random_range(0..3) {
            0 => json!({ "and": list }),
            1 => json!({ "or": list }),
            _ => json!({ "not": list[0] }),
        };
    }
    let field = PATHS[rng.random_range(0..PATHS.len())];
    let op = OPS[rng.random_range(0..OPS.len())];
    let value = match op {
        "in" | "nin" => {
            let first = scalar(rng);
            let count = rng.random_range(1..4);
            // Of one type, as the check wants: more of the first's kind.
            let same: Vec<Value> = (0..count)
                .map(|_| loop {
                    let next = scalar(rng);
                    if std::mem::discriminant(&next) == std::mem::discriminant(&first)
                        && next.is_number() == first.is_number()
                    {
                        break next;
                    }
                })
                .collect();
            Value::Array(same)
        }
        "exists" => json!(rng.random_bool(0.5)),
        "prefix" => json!(STRINGS[rng.random_range(0..STRINGS.len())]),
        "eq" | "ne" if rng.random_bool(0.1) => Value::Null,
        _ if field == "id" || field == "ownerId" => json!(["R-1", "R-2", "u1", "u2", "R"][rng.random_range(0..5)]),
        _ => scalar(rng),
    };
    json!({ "field": field, op: value })
}

/// Stores `count` items `R-0`... of random data, owned by `u0`, `u1` and `u2` in turn.
pub(crate) async fn random_items(storage: &Arc<dyn Storage>, rng: &mut StdRng, count: usize) -> Vec<Record> {
    let mut records = Vec::new();
    for n in 0..count {
        let new = NewRecord {
            resource_type: "item".to_owned(),
            id: format!("R-{n}"),
            owner_id: format!("u{}", n % 3),
            data: resource_data(rng),
        };
        let CreateOutcome::Created(record, _) = storage.create(new, None).await.expect("create") else {
            panic!("a new id")
        };
        records.push(record);
    }
    records
}

pub(crate) async fn queries_list_exactly_what_the_in_memory_evaluator_matches(storage: Arc<dyn Storage>) {
    let mut rng = StdRng::seed_from_u64(20_261_201);
    let records = random_items(&storage, &mut rng, 80).await;
    let (mut compared, mut matched) = (0, 0);
    while compared < 400 {
        let text = random_query(&mut rng, 0);
        let Ok(query) = serde_json::from_value::<Query>(text.clone()) else { continue };
        if !query.check("/q").is_empty() {
            continue;
        }
        let Ok(condition) = check(&query, &schema(), "/q") else { continue };
        compared += 1;
        let expected: BTreeSet<String> =
            records.iter().filter(|r| condition.matches(&Subject::of(r))).map(|r| r.id.clone()).collect();
        let listed = list_all(&storage, &condition).await;
        matched += expected.len();
        if listed != expected {
            let differ: Vec<&Record> =
                records.iter().filter(|r| listed.contains(&r.id) != expected.contains(&r.id)).take(3).collect();
            panic!(
                "query {text}\nSQL listed {} and memory matched {}; they differ on:\n{}",
                listed.len(),
                expected.len(),
                differ
                    .iter()
                    .map(|r| format!("  {} (in SQL: {}): {}", r.id, listed.contains(&r.id), json!(r.data)))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    // The queries were not all trivially empty or full.
    assert!(matched > 400 && matched < 400 * 80 - 400, "{matched} matches in all");
}

pub(crate) async fn list_all(storage: &Arc<dyn Storage>, condition: &Condition) -> BTreeSet<String> {
    let query = ListQuery { condition: Some(condition.clone()), ..list_query(OrderKey::Id, false, 1000) };
    storage.list(query).await.expect("list").into_iter().map(|listed| listed.record.id).collect()
}

pub(crate) async fn a_list_by_an_indexed_field_reads_its_index(place: &Place) {
    let rare = Condition::Test(
        tidings_server::query::Field::Data(vec!["status".to_owned()]),
        tidings_server::query::Test::In(vec![tidings_server::query::Operand::Text("s7".to_owned())]),
    );
    let query = || ListQuery {
        resource_type: "item".to_owned(),
        condition: Some(rare.clone()),
        ..list_query(OrderKey::CreatedAt, false, 21)
    };
    let storage = place.open().await;
    // A hundred values of four resources each: selective enough that reading the index beats reading every item
    // in order, by either planner's statistics.
    for n in 0..400 {
        let status = format!("s{}", n % 100);
        let new = NewRecord {
            resource_type: "item".to_owned(),
            id: format!("I-{n}"),
            owner_id: "u".to_owned(),
            data: json!({ "status": status }).as_object().cloned().expect("an object"),
        };
        storage.create(new, None).await.expect("create");
    }
    let index = "data_item__status";
    let before = explain(place, query()).await;
    assert!(!before.iter().any(|step| step.contains(index)), "no index yet: {before:?}");
    storage.ensure_indexes("item", &["status".to_owned()]).await.expect("indexes");
    storage.ensure_indexes("item", &["status".to_owned()]).await.expect("indexes again: nothing to do");
    let after = explain(place, query()).await;
    assert!(after.iter().any(|step| step.contains(index)), "the list reads the index: {after:?}");
    // And it lists what it should.
    let listed: Vec<String> = storage.list(query()).await.expect("list").into_iter().map(|l| l.record.id).collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
}

/// The plan of a list, from the backend at `place`.
async fn explain(place: &Place, query: ListQuery) -> Vec<String> {
    match place {
        Place::Sqlite(dir) => {
            let db = Sqlite::open(&dir.path().join("tidings.db"), DAY).expect("sqlite opens");
            db.explain_list(query).await.expect("a plan")
        }
        Place::Postgres(database) => {
            let db = Postgres::open(&database.url, DAY).await.expect("postgres opens");
            db.explain_list(query).await.expect("a plan")
        }
    }
}
