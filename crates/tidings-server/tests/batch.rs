//! Atomic batches (docs/protocol.md, 7.8) on a real server, over the WebSocket and `POST /api/v1/batch`: an order
//! placed together with the stock it takes, all or nothing; events with consecutive `seq`s per type; a batch that
//! fails on its third operation changes nothing and says which operation and field; a retry with the same
//! requestId is answered from its receipt; the rules and limits of single messages hold. On SQLite and PostgreSQL.

mod common;

use common::rest;
use common::{call, exchange, next_event, on_both_backends_with, TestServer};
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_server::Config;

on_both_backends_with!(super::with_stock;
    a_batch_applies_every_operation_and_its_events_are_consecutive_per_type,
    a_batch_that_fails_on_its_third_operation_changes_nothing,
    a_retried_batch_is_answered_from_its_receipt,
    a_batch_keeps_the_rules_of_single_messages,
    over_http_a_batch_is_the_same,
);

/// The default orders, and a second type, `stock`, whose count cannot go below zero.
fn with_stock(config: &mut Config) {
    let mut stock = config.resource_types[0].clone();
    stock.name = "stock".to_owned();
    stock.id_prefix = "STK".to_owned();
    stock.schema = json!({
        "type": "object",
        "properties": { "sku": { "type": "string" }, "available": { "type": "integer", "minimum": 0 } },
        "required": ["sku", "available"]
    });
    stock.field_roles.clear();
    stock.notify_owner_on.clear();
    stock.indexes.clear();
    config.resource_types.push(stock);
}

fn order(product: &str, quantity: u64) -> Value {
    json!({ "op": "create", "resourceType": "order",
            "data": { "productId": product, "quantity": quantity, "totalAmount": 20 } })
}

fn take_stock(id: &str, available: i64, version: u64) -> Value {
    json!({ "op": "update", "resourceType": "stock", "id": id, "patch": { "available": available },
            "expectedVersion": version })
}

/// Creates a resource with a plain `create` (a requestId of its own) and returns its id.
async fn create(client: &Client, resource_type: &str, data: Value) -> String {
    static CREATES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let request_id = format!("c{}", CREATES.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let created = call(client, "create", &request_id, json!({ "resourceType": resource_type, "data": data })).await;
    created["id"].as_str().expect("an id").to_owned()
}

async fn read(client: &Client, resource_type: &str, id: &str) -> Value {
    let (_, reply) = exchange(client, "read", "r", json!({ "resourceType": resource_type, "id": id })).await;
    reply
}

async fn count(client: &Client, resource_type: &str) -> u64 {
    let page = call(client, "read", "n", json!({ "resourceType": resource_type, "count": true })).await;
    page["total"].as_u64().expect("a total")
}

async fn a_batch_applies_every_operation_and_its_events_are_consecutive_per_type(server: TestServer) {
    let (alice, mut pushes) = server.signed_in("alice").await;
    let stock = create(&alice, "stock", json!({ "sku": "P1", "available": 5 })).await;
    let old = create(&alice, "order", json!({ "productId": "P0", "quantity": 1, "totalAmount": 10 })).await;
    let doomed = create(&alice, "order", json!({ "productId": "P9", "quantity": 1, "totalAmount": 10 })).await;
    let orders = call(&alice, "subscribe", "s1", json!({ "topic": "order" })).await;
    call(&alice, "subscribe", "s2", json!({ "topic": "stock" })).await;
    let head = orders["seq"].as_u64().expect("the order topic's seq");

    let operations = json!([
        order("P1", 2),
        take_stock(&stock, 3, 1),
        { "op": "update", "resourceType": "order", "id": old, "patch": { "quantity": 4 } },
        { "op": "delete", "resourceType": "order", "id": doomed, "expectedVersion": 1 },
    ]);
    let reply = call(&alice, "batch", "b1", json!({ "operations": operations })).await;
    let results = reply["results"].as_array().expect("results");
    let ops: Vec<&str> = results.iter().map(|r| r["op"].as_str().unwrap_or("?")).collect();
    assert_eq!(ops, ["create", "update", "update", "delete"], "{reply}");
    let placed = results[0]["id"].as_str().expect("the new order's id").to_owned();
    assert_eq!(
        (results[0]["data"]["status"].clone(), results[0]["ownerId"].clone()),
        (json!("pending"), json!("alice"))
    );
    assert_eq!((results[1]["data"]["available"].clone(), results[1]["version"].clone()), (json!(3), json!(2)));
    assert_eq!(results[2]["data"]["quantity"], 4);
    assert_eq!((results[3]["id"].clone(), results[3]["version"].clone()), (json!(doomed), json!(2)));

    // Each type's events, in the batch's order, at consecutive seqs after the head the subscription started at.
    let mut order_events = Vec::new();
    let mut stock_events = Vec::new();
    while order_events.len() < 3 || stock_events.is_empty() {
        let event = next_event(&mut pushes).await;
        let seq = event.seq.map(|s| s.get()).expect("a seq");
        let id = event.id.as_ref().map(|id| id.as_str().to_owned()).unwrap_or_default();
        match event.resource_type.as_ref().map(|t| t.as_str()) {
            Some("order") => order_events.push((event.event_type.as_str().to_owned(), id, seq)),
            _ => stock_events.push((event.event_type.as_str().to_owned(), id, seq)),
        }
    }
    assert_eq!(
        order_events,
        [
            ("order_created".to_owned(), placed.clone(), head + 1),
            ("order_updated".to_owned(), old.clone(), head + 2),
            ("order_deleted".to_owned(), doomed.clone(), head + 3),
        ]
    );
    assert_eq!(stock_events[0].0, "stock_updated");
    assert_eq!(read(&alice, "order", &doomed).await["code"], "NOT_FOUND");
    assert_eq!(read(&alice, "stock", &stock).await["data"]["available"], 3);
}

async fn a_batch_that_fails_on_its_third_operation_changes_nothing(server: TestServer) {
    let (alice, mut pushes) = server.signed_in("alice").await;
    let stock = create(&alice, "stock", json!({ "sku": "P1", "available": 5 })).await;
    let other = create(&alice, "stock", json!({ "sku": "P2", "available": 1 })).await;
    call(&alice, "subscribe", "s1", json!({ "topic": "order" })).await;
    call(&alice, "subscribe", "s2", json!({ "topic": "stock" })).await;
    let orders_before = count(&alice, "order").await;

    // The third operation would take more of P2 than there is: the schema's minimum says no.
    let operations = json!([order("P1", 2), take_stock(&stock, 3, 1), take_stock(&other, -1, 1), order("P2", 1)]);
    let (kind, refused) = exchange(&alice, "batch", "b1", json!({ "operations": operations })).await;
    assert_eq!((kind.as_str(), refused["code"].as_str()), ("error", Some("INVALID_PARAMS")), "{refused}");
    assert_eq!(refused["details"]["index"], 2, "{refused}");
    assert_eq!(refused["details"]["errors"][0]["pointer"], "/payload/operations/2/patch/available", "{refused}");

    // A stale expectedVersion on the third: CONFLICT, naming it and the version there is.
    let operations = json!([order("P1", 2), take_stock(&stock, 3, 1), take_stock(&other, 0, 7)]);
    let (_, refused) = exchange(&alice, "batch", "b2", json!({ "operations": operations })).await;
    assert_eq!((refused["code"].as_str(), refused["details"]["index"].as_u64()), (Some("CONFLICT"), Some(2)));
    assert_eq!(refused["details"]["currentVersion"], 1, "{refused}");

    // Nothing of either batch was written, and nothing was published: the next event is a later change's.
    assert_eq!(count(&alice, "order").await, orders_before);
    let unchanged = read(&alice, "stock", &stock).await;
    assert_eq!((unchanged["version"].clone(), unchanged["data"]["available"].clone()), (json!(1), json!(5)));
    let later = create(&alice, "order", json!({ "productId": "P3", "quantity": 1, "totalAmount": 1 })).await;
    let event = next_event(&mut pushes).await;
    assert_eq!(event.id.as_ref().map(|id| id.as_str()), Some(later.as_str()), "{event:?}");
}

async fn a_retried_batch_is_answered_from_its_receipt(server: TestServer) {
    let (alice, _pushes) = server.signed_in("alice").await;
    let stock = create(&alice, "stock", json!({ "sku": "P1", "available": 5 })).await;
    let batch = json!({ "operations": [order("P1", 2), take_stock(&stock, 3, 1)] });
    let first = call(&alice, "batch", "place-1", batch.clone()).await;

    // The reply was lost, say; the same requestId again, even on a new connection, writes nothing more.
    let (again, _more) = server.signed_in("alice").await;
    let second = call(&again, "batch", "place-1", batch).await;
    assert_eq!(first, second, "the retry gets the first reply");
    assert_eq!(count(&alice, "order").await, 1);
    assert_eq!(read(&alice, "stock", &stock).await["version"], 2, "the stock was taken once");

    // The same requestId for another batch is a mistake, said as for a create.
    let other = json!({ "operations": [order("P1", 9)] });
    let (_, refused) = exchange(&alice, "batch", "place-1", other).await;
    assert_eq!(
        (refused["code"].as_str(), refused["details"]["reason"].as_str()),
        (Some("CONFLICT"), Some("request_id_reused"))
    );
}

async fn a_batch_keeps_the_rules_of_single_messages(server: TestServer) {
    let (alice, _pushes) = server.signed_in("alice").await;
    let (bob, _bob_pushes) = server.signed_in("bob").await;
    let hers = create(&alice, "order", json!({ "productId": "P1", "quantity": 1, "totalAmount": 10 })).await;

    // Bob may not see Alice's order, so for him it does not exist; his own create in the batch is not made.
    let operations =
        json!([order("P2", 1), { "op": "update", "resourceType": "order", "id": hers, "patch": { "quantity": 2 } }]);
    let (_, refused) = exchange(&bob, "batch", "b1", json!({ "operations": operations })).await;
    assert_eq!(
        (refused["code"].as_str(), refused["details"]["index"].as_u64()),
        (Some("NOT_FOUND"), Some(1)),
        "{refused}"
    );
    assert_eq!(count(&bob, "order").await, 0);

    // A field only admins may set is refused beside it, as in a create.
    let operations = json!([{ "op": "create", "resourceType": "order",
                               "data": { "productId": "P2", "quantity": 1, "totalAmount": 1, "status": "paid" } }]);
    let (_, refused) = exchange(&bob, "batch", "b2", json!({ "operations": operations })).await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    assert_eq!(refused["details"]["errors"][0]["pointer"], "/payload/operations/0/data/status", "{refused}");

    // One resource twice, no operation at all, an unknown op, and more than the limit.
    let twice = json!([
        { "op": "update", "resourceType": "order", "id": hers, "patch": { "quantity": 2 } },
        { "op": "delete", "resourceType": "order", "id": hers }
    ]);
    let (_, refused) = exchange(&alice, "batch", "b3", json!({ "operations": twice })).await;
    assert_eq!((refused["code"].as_str(), refused["details"]["index"].as_u64()), (Some("INVALID_PARAMS"), Some(1)));
    assert_eq!(refused["details"]["errors"][0]["pointer"], "/payload/operations/1/id", "{refused}");
    let (_, refused) = exchange(&alice, "batch", "b4", json!({ "operations": [] })).await;
    assert_eq!(refused["details"]["errors"][0]["pointer"], "/payload/operations", "{refused}");
    let (_, refused) = exchange(&alice, "batch", "b5", json!({ "operations": [{ "op": "upsert" }] })).await;
    assert_eq!(refused["code"], "INVALID_PARAMS", "{refused}");
    let many: Vec<Value> = (0..101).map(|n| order(&format!("P{n}"), 1)).collect();
    let (_, refused) = exchange(&alice, "batch", "b6", json!({ "operations": many })).await;
    assert_eq!((refused["code"].as_str(), refused["details"]["max"].as_u64()), (Some("LIMIT_EXCEEDED"), Some(100)));
    assert_eq!(read(&alice, "order", &hers).await["version"], 1, "none of these changed anything");
}

async fn over_http_a_batch_is_the_same(server: TestServer) {
    let (alice, _pushes) = server.signed_in("alice").await;
    let stock = create(&alice, "stock", json!({ "sku": "P1", "available": 1 })).await;
    let token = format!("Bearer {}", server.token("alice"));
    let post = |body: Value, key: Option<&'static str>| {
        let (addr, token) = (server.addr, token.clone());
        async move {
            let mut headers = vec![("Authorization", token.as_str()), ("Content-Type", "application/json")];
            if let Some(key) = key {
                headers.push(("Idempotency-Key", key));
            }
            let reply = rest::send(addr, "POST", "/api/v1/batch", &headers, body.to_string().as_bytes()).await;
            let body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
            (reply.status, body)
        }
    };

    // A failure on the third operation: the status of its code, pointers relative to the body, nothing written.
    let failing = json!({ "operations": [order("P1", 1), take_stock(&stock, 0, 1), take_stock(&stock, 0, 1)] });
    let (status, body) = post(failing, None).await;
    assert_eq!((status, body["details"]["index"].as_u64()), (400, Some(2)), "{body}");
    assert_eq!(body["details"]["errors"][0]["pointer"], "/operations/2/id", "{body}");
    let stale = json!({ "operations": [order("P1", 1), take_stock(&stock, 0, 3)] });
    let (status, body) = post(stale, None).await;
    assert_eq!((status, body["code"].as_str(), body["details"]["index"].as_u64()), (409, Some("CONFLICT"), Some(1)));
    assert_eq!(count(&alice, "order").await, 0);

    // Applied, and applied once for one Idempotency-Key.
    let placing = json!({ "operations": [order("P1", 1), take_stock(&stock, 0, 1)] });
    let (status, first) = post(placing.clone(), Some("http-1")).await;
    assert_eq!((status, first["results"][1]["data"]["available"].clone()), (200, json!(0)), "{first}");
    let (status, second) = post(placing, Some("http-1")).await;
    assert_eq!((status, &second), (200, &first));
    assert_eq!(count(&alice, "order").await, 1);
    let (status, body) = post(json!({ "operations": "all of them" }), None).await;
    assert_eq!((status, body["details"]["errors"][0]["pointer"].as_str()), (400, Some("/operations")), "{body}");
}
