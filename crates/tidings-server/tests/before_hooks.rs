//! Before-commit hooks against a real endpoint on loopback that decides as a team's own logic would: it rejects
//! an order with a field error, rewrites another's data, refuses a cancel and a delete, and is slow once. Nothing
//! it refuses is written, what it rewrites is checked against the schema, a retried create asks it once, and a
//! hook that does not answer fails the change (or lets it through, when told to). On SQLite and PostgreSQL.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{call, exchange, TestServer};
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_server::config::BeforeHookConfig;
use tidings_server::Config;

/// The endpoint: decides by what it is sent, and counts the creates it was asked about.
struct Endpoint {
    url: String,
    creates: Arc<AtomicUsize>,
}

async fn endpoint() -> Endpoint {
    let creates = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&creates);
    let app = axum::Router::new().route(
        "/before",
        axum::routing::post(move |axum::Json(change): axum::Json<Value>| {
            let counted = Arc::clone(&counted);
            async move {
                let data = &change["data"];
                let answer = match change["operation"].as_str() {
                    Some("create") => {
                        counted.fetch_add(1, Ordering::SeqCst);
                        match data["productId"].as_str() {
                            _ if data["quantity"].as_u64().is_some_and(|q| q > 10) => json!({
                                "allow": false, "code": "INVALID_PARAMS", "message": "too many of one product",
                                "errors": [{ "pointer": "/data/quantity", "reason": "at most 10 per order" }]
                            }),
                            Some("GIFT") => {
                                let mut rewritten = data.clone();
                                rewritten["totalAmount"] = json!(0);
                                json!({ "data": rewritten })
                            }
                            Some("BROKEN") => json!({ "data": { "productId": "BROKEN", "quantity": "many" } }),
                            Some("SLOW") => {
                                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                                json!({})
                            }
                            _ => json!({}),
                        }
                    }
                    Some("update") if change["resource"]["data"]["status"] == "shipped" => {
                        json!({ "allow": false, "code": "CONFLICT", "message": "a shipped order stays shipped" })
                    }
                    Some("delete") if change["resource"]["data"]["status"] != "pending" => {
                        json!({ "allow": false, "message": "orders past pending are archived, not deleted" })
                    }
                    _ => json!({ "allow": true }),
                };
                axum::Json(answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}/before", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Endpoint { url, creates }
}

/// The hook on orders, at `url`.
fn hooked(url: &str, fail_open: bool) -> impl FnOnce(&mut Config) {
    let url = url.to_owned();
    move |config: &mut Config| {
        config.resource_types[0].before = Some(BeforeHookConfig {
            url,
            operations: ["create", "update", "delete"].map(str::to_owned).to_vec(),
            timeout_ms: 400,
            fail_open,
            secret: None,
        });
    }
}

#[tokio::test]
async fn the_hook_rejects_rewrites_and_refuses_and_nothing_it_refuses_is_written_on_sqlite() {
    the_hook_rejects_rewrites_and_refuses_and_nothing_it_refuses_is_written(None).await;
}

#[tokio::test]
async fn the_hook_rejects_rewrites_and_refuses_and_nothing_it_refuses_is_written_on_postgres() {
    the_hook_rejects_rewrites_and_refuses_and_nothing_it_refuses_is_written(Some("before_hooks")).await;
}

fn order(product: &str, quantity: u64) -> Value {
    json!({ "resourceType": "order", "data": { "productId": product, "quantity": quantity, "totalAmount": 30 } })
}

async fn reply(client: &Client, ty: &str, request_id: &str, payload: Value) -> (String, Value) {
    exchange(client, ty, request_id, payload).await
}

async fn the_hook_rejects_rewrites_and_refuses_and_nothing_it_refuses_is_written(postgres: Option<&str>) {
    let endpoint = endpoint().await;
    let server = match postgres {
        None => TestServer::start_with(hooked(&endpoint.url, false)).await,
        Some(test) => match TestServer::start_on_postgres_with(test, hooked(&endpoint.url, false)).await {
            Some(server) => server,
            None => return,
        },
    };
    let (alice, _pushes) = server.signed_in("alice").await;
    let (admin, _admin_pushes) = server.signed_in_as("root", &["admin"]).await;

    // Rejected with the hook's code, message and field error, beside the field; nothing is written.
    let (kind, refused) = reply(&alice, "create", "c1", order("P1", 12)).await;
    assert_eq!(kind, "error");
    assert_eq!(
        (refused["code"].clone(), refused["message"].clone()),
        (json!("INVALID_PARAMS"), json!("too many of one product"))
    );
    // The hook points into the payload; the WebSocket reply points from the message root, as every error does.
    assert_eq!(
        refused["details"]["errors"],
        json!([{ "pointer": "/payload/data/quantity", "reason": "at most 10 per order" }])
    );
    let listed = call(&admin, "read", "l", json!({ "resourceType": "order" })).await;
    assert_eq!(listed["items"], json!([]), "a refused create writes nothing");

    // Rewritten by the hook: what is stored is the hook's data.
    let gift = call(&alice, "create", "c2", order("GIFT", 1)).await;
    assert_eq!(gift["data"]["totalAmount"], 0);
    let stored = call(&alice, "read", "r", json!({ "resourceType": "order", "id": gift["id"] })).await;
    assert_eq!(stored["data"]["totalAmount"], 0);
    // Rewritten into data the schema refuses: INVALID_PARAMS, nothing written.
    let (kind, broken) = reply(&alice, "create", "c3", order("BROKEN", 1)).await;
    assert_eq!((kind.as_str(), broken["code"].as_str()), ("error", Some("INVALID_PARAMS")), "{broken}");

    // A create retried with its requestId after it was committed asks the hook once.
    let asked_before = endpoint.creates.load(Ordering::SeqCst);
    let first = call(&alice, "create", "c4", order("P2", 2)).await;
    let again = call(&alice, "create", "c4", order("P2", 2)).await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(endpoint.creates.load(Ordering::SeqCst), asked_before + 1, "one committed change, one question");
    // The same when the retry is sent before the first one's reply (both in one write): a create of a hooked
    // type waits for the creates before it, so the retry finds the first one's receipt.
    let mut raw = common::raw::open(server.addr).await;
    let envelope = |ty: &str, request_id: &str, payload: Value| {
        json!({ "type": ty, "timestamp": 1, "requestId": request_id, "payload": payload }).to_string()
    };
    raw.send_text(&envelope("auth", "a", json!({ "token": server.token("alice") }))).await;
    while raw.next_json().await["requestId"] != "a" {}
    let asked_before = endpoint.creates.load(Ordering::SeqCst);
    raw.send_texts(&[envelope("create", "p1", order("P5", 1)), envelope("create", "p1", order("P5", 1))]).await;
    let (one, two) = (raw.next_json().await, raw.next_json().await);
    assert_eq!((one["type"].as_str(), two["type"].as_str()), (Some("create"), Some("create")), "{one} {two}");
    assert_eq!(one["payload"]["id"], two["payload"]["id"]);
    assert_eq!(endpoint.creates.load(Ordering::SeqCst), asked_before + 1, "a pipelined retry asks no more");
    call(&alice, "delete", "d0", json!({ "resourceType": "order", "id": one["payload"]["id"] })).await;

    // An update the hook refuses, with its code; one it accepts.
    let id = first["id"].as_str().expect("an id").to_owned();
    let ship = json!({ "resourceType": "order", "id": id, "patch": { "status": "shipped" } });
    call(&admin, "update", "u1", ship).await;
    let cancel = json!({ "resourceType": "order", "id": id, "patch": { "status": "cancelled" } });
    let (kind, conflict) = reply(&admin, "update", "u2", cancel).await;
    assert_eq!((kind.as_str(), conflict["code"].as_str()), ("error", Some("CONFLICT")), "{conflict}");
    assert_eq!(conflict["message"], "a shipped order stays shipped");
    let still = call(&alice, "read", "r", json!({ "resourceType": "order", "id": id })).await;
    assert_eq!((still["data"]["status"].clone(), still["version"].clone()), (json!("shipped"), json!(2)));

    // A delete the hook refuses (FORBIDDEN, its default code), and one it lets through.
    let (kind, kept) = reply(&alice, "delete", "d1", json!({ "resourceType": "order", "id": id })).await;
    assert_eq!((kind.as_str(), kept["code"].as_str()), ("error", Some("FORBIDDEN")), "{kept}");
    let pending = call(&alice, "create", "c5", order("P3", 1)).await;
    call(&alice, "delete", "d2", json!({ "resourceType": "order", "id": pending["id"] })).await;

    // A hook that does not answer within its timeout fails the change closed: UNAVAILABLE, nothing written.
    let (kind, slow) = reply(&alice, "create", "c6", order("SLOW", 1)).await;
    assert_eq!((kind.as_str(), slow["code"].as_str()), ("error", Some("UNAVAILABLE")), "{slow}");
    let listed = call(&admin, "read", "l", json!({ "resourceType": "order" })).await;
    let products: Vec<Value> =
        listed["items"].as_array().expect("items").iter().map(|i| i["data"]["productId"].clone()).collect();
    assert_eq!(products, [json!("GIFT"), json!("P2")]);

    // Told to fail open, the same slow hook lets the change through.
    let server = server.restart_with(hooked(&endpoint.url, true)).await;
    let (alice, _pushes) = server.signed_in("alice").await;
    let through = call(&alice, "create", "c7", order("SLOW", 1)).await;
    assert_eq!(through["data"]["productId"], "SLOW");
}
