//! Resources over WebSocket on a real server: create, read, list, update, delete, rules and safe retries.
//!
//! Every test runs twice, on SQLite and on PostgreSQL (`NAME::sqlite`, `NAME::postgres`).

mod common;

use std::collections::BTreeSet;

use common::{exchange as call, on_both_backends, TestServer};
use serde_json::{json, Value};
use tidings_client::{Client, ClientError};
use tidings_protocol::{
    ClientMessage, Create, Delete, ErrorCode, ReadResult, Resource, ResourceId, ResourceType, ServerMessage,
};

on_both_backends!(
    the_design_notes_create_returns_a_pending_order,
    an_invalid_order_names_every_bad_field,
    users_see_and_change_only_their_own_orders_and_an_admin_all,
    only_an_admin_changes_the_status,
    updates_merge_and_respect_the_expected_version,
    deletes_respect_the_expected_version_and_happen_once,
    lists_filter_order_and_page_without_repeating_anything,
    a_repeated_create_returns_the_first_result_across_reconnects_and_restarts,
    operations_need_authentication,
    a_list_reply_is_typed_for_the_rust_client,
    the_same_order_created_from_two_sessions_is_two_orders,
    pipelined_creates_are_stored_and_answered_in_the_order_sent,
);

async fn create_order(client: &Client, quantity: u64) -> Resource {
    let data = json!({ "productId": "P12345", "quantity": quantity, "totalAmount": 9.5 });
    let create = Create { resource_type: ResourceType::new("order").expect("type"), data: object(data) };
    match client.request(ClientMessage::Create(create)).await.expect("created") {
        ServerMessage::Create(resource) => resource,
        other => panic!("expected create, got {other:?}"),
    }
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

fn pointers(payload: &Value) -> Vec<String> {
    let errors = payload["details"]["errors"].as_array().cloned().unwrap_or_default();
    let mut pointers: Vec<String> = errors.iter().filter_map(|e| e["pointer"].as_str().map(str::to_owned)).collect();
    pointers.sort();
    pointers
}

async fn the_design_notes_create_returns_a_pending_order(server: TestServer) {
    let (client, _pushes) = server.signed_in("alice").await;
    let notes = r#"{ "type": "create", "timestamp": 1630423456, "requestId": "req-123",
        "payload": { "resourceType": "order", "data": { "productId": "P12345", "quantity": 2, "totalAmount": 99.99 } } }"#;
    let reply = client.request_text("req-123", notes.to_owned()).await.expect("reply");
    assert_eq!(reply.request_id.as_ref().map(|r| r.as_str()), Some("req-123"));
    let ServerMessage::Create(order) = reply.message else { panic!("expected create: {reply:?}") };
    assert_eq!(order.resource_type.as_str(), "order");
    assert!(order.id.as_str().starts_with("ORD-"), "{}", order.id);
    assert_eq!((order.version.get(), order.owner_id.as_str()), (1, "alice"));
    assert_eq!(order.created_at, order.updated_at);
    assert_eq!(
        Value::Object(order.data),
        json!({ "productId": "P12345", "quantity": 2, "totalAmount": 99.99, "status": "pending" })
    );
}

async fn an_invalid_order_names_every_bad_field(server: TestServer) {
    let (client, _pushes) = server.signed_in("alice").await;
    let (ty, payload) = call(
        &client,
        "create",
        "bad",
        json!({ "resourceType": "order", "data": { "quantity": 0, "totalAmount": -1 } }),
    )
    .await;
    assert_eq!((ty.as_str(), payload["code"].as_str()), ("error", Some("INVALID_PARAMS")));
    assert_eq!(pointers(&payload), ["/payload/data/productId", "/payload/data/quantity", "/payload/data/totalAmount"]);
    let (admin, _b) = server.signed_in_as("root", &["admin"]).await;
    let lost = json!({ "resourceType": "order", "data": { "productId": "P", "quantity": 1, "totalAmount": 1, "status": "lost" } });
    let (_, payload) = call(&admin, "create", "lost", lost).await;
    assert_eq!(
        (payload["code"].as_str(), pointers(&payload)),
        (Some("INVALID_PARAMS"), vec!["/payload/data/status".to_owned()])
    );
    let (_, payload) = call(&client, "create", "nope", json!({ "resourceType": "invoice", "data": {} })).await;
    assert_eq!(payload["code"], "NOT_FOUND");
}

async fn users_see_and_change_only_their_own_orders_and_an_admin_all(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let (bob, _b) = server.signed_in("bob").await;
    let (admin, _c) = server.signed_in_as("root", &["admin"]).await;
    let order = create_order(&alice, 2).await;
    let id = order.id.as_str();

    for (ty, payload) in [
        ("read", json!({ "resourceType": "order", "id": id })),
        ("update", json!({ "resourceType": "order", "id": id, "patch": { "quantity": 5 } })),
        ("delete", json!({ "resourceType": "order", "id": id })),
    ] {
        let (_, reply) = call(&bob, ty, "b", payload).await;
        assert_eq!(reply["code"], "NOT_FOUND", "bob's {ty} must learn nothing: {reply}");
    }
    let (_, list) = call(&bob, "read", "bl", json!({ "resourceType": "order" })).await;
    assert_eq!(list["items"], json!([]), "bob's list is empty");

    let (ty, read) = call(&admin, "read", "r", json!({ "resourceType": "order", "id": id })).await;
    assert_eq!((ty.as_str(), read["ownerId"].as_str()), ("read", Some("alice")));
    let (_, list) = call(&admin, "read", "al", json!({ "resourceType": "order" })).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (_, list) = call(&alice, "read", "ml", json!({ "resourceType": "order" })).await;
    assert_eq!(list["items"][0]["id"], id);
}

async fn only_an_admin_changes_the_status(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let (admin, _b) = server.signed_in_as("root", &["admin"]).await;
    let order = create_order(&alice, 2).await;
    let id = order.id.as_str();

    let (_, refused) =
        call(&alice, "update", "u1", json!({ "resourceType": "order", "id": id, "patch": { "status": "paid" } })).await;
    assert_eq!(refused["code"], "FORBIDDEN");
    assert_eq!(pointers(&refused), ["/payload/patch/status"]);
    let (_, refused) =
        call(&alice, "create", "c1", json!({ "resourceType": "order", "data": { "productId": "P", "quantity": 1, "totalAmount": 1, "status": "paid" } }))
            .await;
    assert_eq!(
        (refused["code"].as_str(), pointers(&refused)),
        (Some("FORBIDDEN"), vec!["/payload/data/status".to_owned()])
    );

    let (ty, paid) =
        call(&admin, "update", "u2", json!({ "resourceType": "order", "id": id, "patch": { "status": "paid" } })).await;
    assert_eq!(
        (ty.as_str(), paid["version"].as_u64(), paid["data"]["status"].as_str()),
        ("update", Some(2), Some("paid"))
    );
    // The owner may still change what is theirs to change.
    let (ty, more) =
        call(&alice, "update", "u3", json!({ "resourceType": "order", "id": id, "patch": { "quantity": 3 } })).await;
    assert_eq!(
        (ty.as_str(), more["version"].as_u64(), more["data"]["status"].as_str()),
        ("update", Some(3), Some("paid"))
    );
}

async fn updates_merge_and_respect_the_expected_version(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let order = create_order(&alice, 2).await;
    let id = order.id.as_str();
    let (ty, changed) = call(
        &alice,
        "update",
        "u1",
        json!({ "resourceType": "order", "id": id, "patch": { "quantity": 4 }, "expectedVersion": 1 }),
    )
    .await;
    assert_eq!(ty, "update");
    assert_eq!(
        changed["data"],
        json!({ "productId": "P12345", "quantity": 4, "totalAmount": 9.5, "status": "pending" })
    );
    assert!(changed["updatedAt"].as_u64() >= changed["createdAt"].as_u64());

    let (_, stale) = call(
        &alice,
        "update",
        "u2",
        json!({ "resourceType": "order", "id": id, "patch": { "quantity": 5 }, "expectedVersion": 1 }),
    )
    .await;
    assert_eq!((stale["code"].as_str(), stale["details"]["currentVersion"].as_u64()), (Some("CONFLICT"), Some(2)));

    let (_, invalid) = call(
        &alice,
        "update",
        "u3",
        json!({ "resourceType": "order", "id": id, "patch": { "productId": null, "quantity": 0 } }),
    )
    .await;
    assert_eq!(invalid["code"], "INVALID_PARAMS");
    assert_eq!(pointers(&invalid), ["/payload/patch/productId", "/payload/patch/quantity"]);

    let (ty, same) =
        call(&alice, "update", "u4", json!({ "resourceType": "order", "id": id, "patch": { "quantity": 4 } })).await;
    assert_eq!(
        (ty.as_str(), same["version"].as_u64()),
        ("update", Some(2)),
        "a patch that changes nothing keeps the version"
    );
}

async fn deletes_respect_the_expected_version_and_happen_once(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    let order = create_order(&alice, 2).await;
    let id = ResourceId::new(order.id.as_str()).expect("id");
    let delete = |version: Option<u64>| {
        ClientMessage::Delete(Delete {
            resource_type: ResourceType::new("order").expect("type"),
            id: id.clone(),
            expected_version: version.map(|v| tidings_protocol::Version::new(v).expect("version")),
        })
    };
    let conflict = alice.request(delete(Some(7))).await.expect_err("stale");
    assert_eq!(conflict.payload().map(|e| e.code), Some(ErrorCode::Conflict));
    let ServerMessage::Delete(deleted) = alice.request(delete(Some(1))).await.expect("deleted") else {
        panic!("delete reply")
    };
    assert_eq!((deleted.id.as_str(), deleted.version.get()), (id.as_str(), 2));
    let again = alice.request(delete(None)).await.expect_err("gone");
    assert_eq!(again.payload().map(|e| e.code), Some(ErrorCode::NotFound));
    let (_, read) = call(&alice, "read", "r", json!({ "resourceType": "order", "id": id.as_str() })).await;
    assert_eq!(read["code"], "NOT_FOUND");
}

async fn lists_filter_order_and_page_without_repeating_anything(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    for quantity in [5, 3, 9, 1, 7, 3, 2] {
        create_order(&alice, quantity).await;
    }
    let (_, threes) = call(&alice, "read", "f", json!({ "resourceType": "order", "filter": { "quantity": 3 } })).await;
    assert_eq!(threes["items"].as_array().map(Vec::len), Some(2));
    let (_, none) = call(&alice, "read", "g", json!({ "resourceType": "order", "filter": { "quantity": "3" } })).await;
    assert_eq!(none["items"], json!([]), "a string never equals a number");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let mut payload = json!({ "resourceType": "order", "orderBy": "-quantity", "limit": 3 });
        if let Some(cursor) = &cursor {
            payload["cursor"] = json!(cursor);
        }
        let (ty, list) = call(&alice, "read", &format!("p{page}"), payload).await;
        assert_eq!(ty, "read", "{list}");
        for item in list["items"].as_array().expect("items") {
            seen.push((
                item["data"]["quantity"].as_u64().expect("quantity"),
                item["id"].as_str().expect("id").to_owned(),
            ));
        }
        match list["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(page < 5, "paging does not end");
    }
    let quantities: Vec<u64> = seen.iter().map(|(q, _)| *q).collect();
    assert_eq!(quantities, [9, 7, 5, 3, 3, 2, 1]);
    let ids: BTreeSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 7, "no item twice");

    let (_, wrong) =
        call(&alice, "read", "w", json!({ "resourceType": "order", "filter": { "colour": "red" }, "orderBy": "nope" }))
            .await;
    assert_eq!(pointers(&wrong), ["/payload/filter/colour", "/payload/orderBy"]);
    let foreign = cursor.unwrap_or_else(|| "eyJxIjoieCJ9".to_owned());
    let (_, wrong) =
        call(&alice, "read", "c", json!({ "resourceType": "order", "orderBy": "createdAt", "cursor": foreign })).await;
    assert_eq!(pointers(&wrong), ["/payload/cursor"]);
}

async fn a_repeated_create_returns_the_first_result_across_reconnects_and_restarts(server: TestServer) {
    let create = json!({ "resourceType": "order", "data": { "productId": "P1", "quantity": 2, "totalAmount": 3 } });
    let first = {
        let (alice, _a) = server.signed_in("alice").await;
        let (_, first) = call(&alice, "create", "retry-1", create.clone()).await;
        let (_, again) = call(&alice, "create", "retry-1", create.clone()).await;
        assert_eq!(first, again, "the same reply on the same connection");
        first
    };
    let (alice, _a) = server.signed_in("alice").await;
    let (_, again) = call(&alice, "create", "retry-1", create.clone()).await;
    assert_eq!(first, again, "the same reply after a reconnect");
    let (_, reused) = call(
        &alice,
        "create",
        "retry-1",
        json!({ "resourceType": "order", "data": { "productId": "P2", "quantity": 1, "totalAmount": 1 } }),
    )
    .await;
    assert_eq!(
        (reused["code"].as_str(), reused["details"]["reason"].as_str()),
        (Some("CONFLICT"), Some("request_id_reused"))
    );
    // Another user's requestIds are their own.
    let (bob, _b) = server.signed_in("bob").await;
    let (_, bobs) = call(&bob, "create", "retry-1", create.clone()).await;
    assert_ne!(bobs["id"], first["id"]);
    drop((alice, bob));

    let server = server.restart().await;
    let (alice, _a) = server.signed_in("alice").await;
    let (_, after_restart) = call(&alice, "create", "retry-1", create).await;
    assert_eq!(first, after_restart, "the same reply after a restart");
    let (_, list) = call(&alice, "read", "l", json!({ "resourceType": "order" })).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "one order, however many retries");
}

async fn operations_need_authentication(server: TestServer) {
    let (client, _pushes) = server.connected().await;
    for ty in ["create", "read", "update", "delete"] {
        let (_, reply) =
            call(&client, ty, "x", json!({ "resourceType": "order", "id": "ORD-1", "patch": {}, "data": {} })).await;
        let code = reply["code"].as_str().map(str::to_owned);
        assert!(code.as_deref() == Some("UNAUTHORIZED") || code.as_deref() == Some("INVALID_PARAMS"), "{ty}: {reply}");
    }
    let error = client.request(ClientMessage::Read(read_list())).await.expect_err("refused");
    assert!(matches!(error, ClientError::Server(ref e) if e.code == ErrorCode::Unauthorized), "{error}");
}

fn read_list() -> tidings_protocol::Read {
    tidings_protocol::Read {
        resource_type: ResourceType::new("order").expect("type"),
        id: None,
        filter: None,
        query: None,
        order_by: None,
        limit: None,
        cursor: None,
        fields: None,
        count: None,
    }
}

async fn a_list_reply_is_typed_for_the_rust_client(server: TestServer) {
    let (alice, _a) = server.signed_in("alice").await;
    create_order(&alice, 1).await;
    let ServerMessage::Read(ReadResult::List(list)) =
        alice.request(ClientMessage::Read(read_list())).await.expect("list")
    else {
        panic!("a list")
    };
    assert_eq!((list.items.len(), list.next_cursor), (1, None));
}

/// A user who places the same order twice, from two tabs or two sessions, gets two orders: only a retry with the
/// same requestId is one create. The Rust client must therefore never reuse a requestId across connections.
async fn the_same_order_created_from_two_sessions_is_two_orders(server: TestServer) {
    let (first, _pushes) = server.signed_in("alice").await;
    let (second, _more) = server.signed_in("alice").await;
    let a = create_order(&first, 3).await;
    let b = create_order(&second, 3).await;
    assert_ne!(a.id, b.id, "the second session's create was taken for a retry of the first's");
    let again = create_order(&first, 3).await;
    assert!(again.id != a.id && again.id != b.id, "a second create on one connection is a new order too");
}

/// A client that sends many requests without waiting (one write carries them all) gets what one after another
/// would give: replies in the order sent, a retried requestId answered with its first reply, an invalid create
/// and an undecodable message refused in their places, events in that order, and a read behind the creates that finds them all. (The server
/// stores consecutive creates together; docs/protocol.md, section 4.)
async fn pipelined_creates_are_stored_and_answered_in_the_order_sent(server: TestServer) {
    let mut socket = common::raw::open(server.addr).await;
    let envelope = |ty: &str, request_id: &str, payload: Value| {
        json!({ "type": ty, "timestamp": 1, "requestId": request_id, "payload": payload }).to_string()
    };
    let replied = |value: &Value, request_id: &str| value["requestId"] == request_id;
    socket.send_text(&envelope("auth", "a", json!({ "token": server.token("alice") }))).await;
    while !replied(&socket.next_json().await, "a") {}
    socket.send_text(&envelope("subscribe", "s", json!({ "topic": "order" }))).await;
    while !replied(&socket.next_json().await, "s") {}

    let order = |n: usize| json!({ "resourceType": "order", "data": { "productId": format!("P{n}"), "quantity": 1, "totalAmount": 1 } });
    let mut burst = Vec::new();
    let mut sent = Vec::new();
    for n in 0..30 {
        let request_id = format!("c{n}");
        let payload = match n {
            // Refused by the schema, in the middle of the burst.
            10 => json!({ "resourceType": "order", "data": { "quantity": 0 } }),
            // A retry of c5, while c5 may not be committed yet.
            20 => order(5),
            // Not a create at all: refused as it is decoded, before it reaches the creates' queue.
            15 => json!({ "data": {} }),
            _ => order(n),
        };
        let request_id = if n == 20 { "c5".to_owned() } else { request_id };
        burst.push(envelope("create", &request_id, payload));
        sent.push(request_id);
    }
    burst.push(envelope("read", "r", json!({ "resourceType": "order", "limit": 100 })));
    sent.push("r".to_owned());
    socket.send_texts(&burst).await;

    let mut replies = Vec::new();
    let mut events = Vec::new();
    while replies.len() < sent.len() {
        let message = socket.next_json().await;
        match message["type"].as_str() {
            Some("event") => events.push(message["payload"].clone()),
            _ => replies.push(message),
        }
    }
    let order_of: Vec<&str> = replies.iter().map(|r| r["requestId"].as_str().unwrap_or("-")).collect();
    assert_eq!(order_of, sent.iter().map(String::as_str).collect::<Vec<_>>(), "replies in the order sent");
    assert_eq!(replies[10]["type"], "error", "{}", replies[10]);
    assert_eq!(replies[10]["payload"]["code"], "INVALID_PARAMS");
    assert_eq!(replies[15]["type"], "error", "{}", replies[15]);
    assert_eq!(replies[20]["type"], "create");
    assert_eq!(replies[20]["payload"], replies[5]["payload"], "the retry is answered with the first reply");
    let created: Vec<&Value> = replies[..30].iter().filter(|r| r["type"] == "create").collect();
    assert_eq!(created.len(), 28);
    let listed = replies[30]["payload"]["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 27, "the read behind the creates finds every order they made");

    while events.len() < 27 {
        let message = socket.next_json().await;
        assert_eq!(message["type"], "event", "{message}");
        events.push(message["payload"].clone());
    }
    let products: Vec<String> =
        events.iter().map(|e| e["data"]["productId"].as_str().unwrap_or("-").to_owned()).collect();
    let expected: Vec<String> = (0..30).filter(|n| ![10, 15, 20].contains(n)).map(|n| format!("P{n}")).collect();
    assert_eq!(products, expected, "stored, and so published, in the order sent");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap_or(0)).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}
