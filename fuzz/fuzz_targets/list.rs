//! List reads with arbitrary filters, queries, orders (of several keys too), projections, counts and page sizes
//! over a fixed set of orders: storage never fails, and paging through every page with `nextCursor` yields exactly
//! the orders the filter and the query match, each once, in the requested order, as an independent evaluation here
//! says (the query by the in-memory evaluator, so that the SQL of lists and the evaluator of events are held to one
//! meaning); a count is the number they match, and a projection keeps only the fields asked for.
//!
//! The input is a client message (a `read` of `order` without `id`, as the decoder corpus has them); its first
//! byte picks the reader: an admin, who sees every order, or a user, who sees their own.

#![no_main]

use std::cmp::Ordering;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tidings_protocol::{decode_client, ClientMessage, Create, ErrorCode, ReadResult, Resource, ResourceType, Scalar};
use tidings_server::auth::Identity;

/// The orders every run reads: owners, equal and distinct values, and strings that need escaping in SQL.
fn orders() -> &'static [Resource] {
    static ORDERS: OnceLock<Vec<Resource>> = OnceLock::new();
    ORDERS.get_or_init(|| {
        let resources = &tidings_fuzz::shared().resources;
        let admin = tidings_fuzz::identity("root", &["admin"]);
        let products = ["A", "B", "b", "a'; DROP TABLE resources; --", "é", "Z\"", "10", "9", "%", "_"];
        let statuses = ["pending", "paid", "shipped", "cancelled"];
        let mut created = Vec::new();
        for n in 0..60_usize {
            let owner = tidings_fuzz::identity(["alice", "bob", "carol"][n % 3], &[]);
            let amount = [0.0, 0.5, 1.0, 2.25, 1e9][n % 5];
            let data = json!({
                "productId": products[n % products.len()],
                "quantity": 1 + (n * 7) % 5,
                "totalAmount": amount,
            });
            let create = Create {
                resource_type: ResourceType::new("order").expect("a type"),
                data: data.as_object().cloned().expect("an object"),
            };
            let order = tidings_fuzz::runtime()
                .block_on(resources.create(&owner, None, create))
                .expect("the order is created")
                .resource;
            // Admins set the status; a quarter keep the default.
            let status = statuses[n % statuses.len()];
            let patch = json!({ "status": status }).as_object().cloned().expect("an object");
            let update = tidings_protocol::Update {
                resource_type: order.resource_type.clone(),
                id: order.id.clone(),
                patch,
                expected_version: None,
            };
            let order = tidings_fuzz::runtime().block_on(resources.update(&admin, update)).expect("the status is set");
            created.push(order);
        }
        created
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&who, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(envelope) = decode_client(text) else { return };
    let ClientMessage::Read(first) = envelope.message else { return };
    if first.id.is_some() || first.resource_type.as_str() != "order" {
        return;
    }
    let reader = match who % 2 {
        0 => tidings_fuzz::identity("root", &["admin"]),
        _ => tidings_fuzz::identity("alice", &[]),
    };
    let Some(expected) = expected(orders(), &first, &reader) else { return };
    let resources = &tidings_fuzz::shared().resources;

    let mut read = first.clone();
    let mut listed: Vec<Resource> = Vec::new();
    for _page in 0..=orders().len() {
        let result = tidings_fuzz::runtime().block_on(resources.read(&reader, read.clone()));
        let page = match result {
            Ok(ReadResult::List(page)) => page,
            Ok(ReadResult::One(one)) => panic!("a list read returned one resource: {one:?}"),
            // A cursor from the fuzzer, or a filter or order the type refuses, is the client's mistake.
            Err(error) if error.code == ErrorCode::InvalidParams && listed.is_empty() => return,
            Err(error) => panic!("a list read failed: {error}"),
        };
        // A count is of the whole list, whichever page carries it; a projection keeps the fields asked for only.
        if let Some(total) = page.total {
            assert_eq!(total, expected.len() as u64, "the count of {text} is not the number of orders it matches");
        }
        if let Some(fields) = &first.fields {
            let kept = |name: &String| fields.iter().any(|field| field.as_str() == name);
            assert!(page.items.iter().all(|item| item.data.keys().all(kept)), "{text} returned fields not asked for");
        }
        listed.extend(page.items);
        match page.next_cursor {
            Some(cursor) => read.cursor = Some(cursor),
            None => break,
        }
    }
    if first.cursor.is_some() {
        // The fuzzer's own cursor was accepted: what follows it is a suffix of the whole list.
        let ids: Vec<&str> = expected.iter().map(|r| r.id.as_str()).collect();
        let got: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
        assert!(ids.ends_with(&got), "pages after a cursor are not the end of the list");
        return;
    }
    let ids: Vec<&str> = expected.iter().map(|r| r.id.as_str()).collect();
    let got: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(got, ids, "the pages of {text} are not the orders the filter matches, in order");
});

/// The orders `reader` should get for `read`, in order; `None` when the read names fields the type does not order
/// by (the server answers those with INVALID_PARAMS, which the target accepts).
fn expected(orders: &[Resource], read: &tidings_protocol::Read, reader: &Identity) -> Option<Vec<Resource>> {
    let admin = reader.roles.iter().any(|r| r == "admin");
    // A query the type refuses is INVALID_PARAMS, which the target accepts.
    let condition = match &read.query {
        Some(query) => Some(tidings_server::query::check(query, &order_schema(), "/query").ok()?),
        None => None,
    };
    let mut matching: Vec<Resource> = orders
        .iter()
        .filter(|order| admin || order.owner_id.as_str() == reader.user_id)
        .filter(|order| read.filter.iter().flatten().all(|(field, want)| matches(order.data.get(field.as_str()), want)))
        .filter(|order| condition.as_ref().is_none_or(|condition| condition.matches(&subject(order))))
        .cloned()
        .collect();
    let keys: Vec<(String, bool)> = match &read.order_by {
        Some(order) => order.keys().iter().map(|key| (key.field().to_owned(), key.descending())).collect(),
        None => vec![("createdAt".to_owned(), false)],
    };
    let key = |order: &Resource, field: &str| -> Value {
        match field {
            "createdAt" => json!(order.created_at),
            "updatedAt" => json!(order.updated_at),
            "id" => json!(order.id.as_str()),
            other => order.data.get(other).cloned().unwrap_or(Value::Null),
        }
    };
    let known = ["createdAt", "updatedAt", "id", "productId", "quantity", "totalAmount", "status"];
    if keys.iter().any(|(field, _)| !known.contains(&field.as_str())) {
        return None;
    }
    // Each key in its direction; the id decides the last ties, in the direction of the last key.
    matching.sort_by(|a, b| {
        let mut order = std::cmp::Ordering::Equal;
        for (field, descending) in &keys {
            let by_key = compare(&key(a, field), &key(b, field));
            order = order.then(if *descending { by_key.reverse() } else { by_key });
        }
        let by_id = a.id.as_str().cmp(b.id.as_str());
        order.then(if keys.last().is_some_and(|(_, descending)| *descending) { by_id.reverse() } else { by_id })
    });
    Some(matching)
}

/// The schema of the `order` type the orders were created with.
fn order_schema() -> Value {
    tidings_server::config::default_types().remove(0).schema
}

/// What a query reads of an order.
fn subject(order: &Resource) -> tidings_server::query::Subject<'_> {
    tidings_server::query::Subject {
        id: order.id.as_str(),
        owner_id: order.owner_id.as_str(),
        version: order.version.get(),
        created_at: order.created_at,
        updated_at: order.updated_at,
        data: &order.data,
    }
}

/// The filter's equality: `null` matches an absent or null field; numbers compare by value; other scalars match
/// only the same JSON type and value.
fn matches(value: Option<&Value>, want: &Scalar) -> bool {
    match (want, value) {
        (Scalar::Null, None | Some(Value::Null)) => true,
        (Scalar::Bool(want), Some(Value::Bool(have))) => want == have,
        (Scalar::Number(want), Some(Value::Number(have))) => match (want.as_i64(), have.as_i64()) {
            (Some(want), Some(have)) => want == have,
            _ => want.as_f64() == have.as_f64(),
        },
        (Scalar::String(want), Some(Value::String(have))) => want == have,
        _ => false,
    }
}

/// Orders two keys of the same field: numbers by value, strings by their UTF-8 bytes.
fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => {
            a.as_f64().unwrap_or(0.0).partial_cmp(&b.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
        _ => Ordering::Equal,
    }
}
