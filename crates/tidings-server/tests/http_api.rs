//! The HTTP API on a real server: every endpoint, every error status, owners kept apart, safe retries, and errors
//! that carry the same code and pointers as the WebSocket `error` for the same fault.

mod common;

use common::rest::{self, Reply};
use common::TestServer;
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_protocol::{Deleted, Resource, ResourceList};

/// The path of the orders.
const ORDERS: &str = "/api/v1/resources/order";

/// A user of the HTTP API: the server and a bearer token.
struct User<'a> {
    server: &'a TestServer,
    auth: String,
}

impl<'a> User<'a> {
    fn new(server: &'a TestServer, user: &str, roles: &[&str]) -> Self {
        let token = server.token_for(user, roles, std::time::Duration::from_secs(3600));
        User { server, auth: format!("Bearer {token}") }
    }

    /// Sends a request with the token, `headers`, and `body` as JSON when given.
    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        let mut all = vec![("Authorization", self.auth.as_str())];
        let text = body.map(Value::to_string).unwrap_or_default();
        if body.is_some() && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
            all.push(("Content-Type", "application/json"));
        }
        all.extend_from_slice(headers);
        rest::send(self.server.addr, method, path, &all, text.as_bytes()).await
    }

    async fn create(&self, data: Value) -> Resource {
        let reply = self.call("POST", ORDERS, &[], Some(&data)).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        typed(&reply)
    }
}

fn order(product: &str, quantity: u64) -> Value {
    json!({ "productId": product, "quantity": quantity, "totalAmount": 9.5 })
}

/// The body as a protocol type: the shapes of the HTTP API are the protocol's.
fn typed<T: serde::de::DeserializeOwned>(reply: &Reply) -> T {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
}

/// The code and sorted pointers of an error body.
fn fault(body: &Value) -> (String, Vec<String>) {
    let errors = body["details"]["errors"].as_array().cloned().unwrap_or_default();
    let mut pointers: Vec<String> = errors.iter().filter_map(|e| e["pointer"].as_str().map(str::to_owned)).collect();
    pointers.sort();
    (body["code"].as_str().unwrap_or_default().to_owned(), pointers)
}

/// Asserts an error answer: its status, code and pointers, a JSON content type, and a message for people.
fn assert_error(reply: &Reply, status: u16, code: &str, pointers: &[&str]) {
    let body = reply.json();
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(fault(&body), (code.to_owned(), pointers.iter().map(|p| (*p).to_owned()).collect()), "{reply:?}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"), "{reply:?}");
}

#[tokio::test]
async fn every_endpoint_does_what_its_websocket_operation_does() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice", &[]);

    let reply = alice.call("POST", ORDERS, &[], Some(&order("P1", 2))).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let created: Resource = typed(&reply);
    let id = created.id.as_str().to_owned();
    let path = format!("{ORDERS}/{id}");
    assert_eq!(reply.header("location"), Some(path.as_str()));
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!((created.version.get(), created.owner_id.as_str()), (1, "alice"));
    assert_eq!(created.data["status"], "pending", "the schema's default applies");

    let reply = alice.call("GET", &path, &[], None).await;
    assert_eq!((reply.status, typed::<Resource>(&reply)), (200, created.clone()));

    let patch = json!({ "quantity": 3 });
    let merge = [("Content-Type", "application/merge-patch+json"), ("If-Match", "\"1\"")];
    let reply = alice.call("PATCH", &path, &merge, Some(&patch)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let updated: Resource = typed(&reply);
    assert_eq!((updated.version.get(), &updated.data["quantity"]), (2, &json!(3)));
    assert_eq!(reply.header("etag"), Some("\"2\""));

    // A stale version is CONFLICT, with the current version, from If-Match or the query alike.
    let reply = alice.call("PATCH", &path, &merge, Some(&patch)).await;
    assert_error(&reply, 409, "CONFLICT", &[]);
    assert_eq!(reply.json()["details"]["currentVersion"], 2);
    let reply = alice.call("DELETE", &format!("{path}?expectedVersion=1"), &[], None).await;
    assert_error(&reply, 409, "CONFLICT", &[]);

    let reply = alice.call("GET", ORDERS, &[], None).await;
    let page: ResourceList = typed(&reply);
    assert_eq!((reply.status, page.items.len(), page.next_cursor), (200, 1, None));

    let reply = alice.call("DELETE", &format!("{path}?expectedVersion=2"), &[("If-Match", "\"2\"")], None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let deleted: Deleted = typed(&reply);
    assert_eq!((deleted.id.as_str(), deleted.version.get()), (id.as_str(), 3));
    for method in ["GET", "DELETE"] {
        assert_error(&alice.call(method, &path, &[], None).await, 404, "NOT_FOUND", &[]);
    }
    assert_error(&alice.call("PATCH", &path, &[], Some(&patch)).await, 404, "NOT_FOUND", &[]);
}

#[tokio::test]
async fn lists_filter_order_and_page() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice", &[]);
    for (product, quantity) in [("P1", 5), ("P2", 3), ("42", 9), ("P1", 1), ("true", 3)] {
        alice.create(order(product, quantity)).await;
    }
    let count = |reply: &Reply| typed::<ResourceList>(reply).items.len();
    assert_eq!(count(&alice.call("GET", &format!("{ORDERS}?filter.quantity=3"), &[], None).await), 2);
    assert_eq!(
        count(&alice.call("GET", &format!("{ORDERS}?filter.productId=P1&filter.quantity=1"), &[], None).await),
        1
    );
    // A value that reads as JSON is JSON; quotes make it a string.
    assert_eq!(count(&alice.call("GET", &format!("{ORDERS}?filter.productId=42"), &[], None).await), 0);
    assert_eq!(count(&alice.call("GET", &format!("{ORDERS}?filter.productId=%2242%22"), &[], None).await), 1);
    assert_eq!(count(&alice.call("GET", &format!("{ORDERS}?filter.productId=%22true%22"), &[], None).await), 1);
    assert_eq!(count(&alice.call("GET", &format!("{ORDERS}?filter.status=pending&limit=100"), &[], None).await), 5);

    let mut quantities = Vec::new();
    let mut query = "orderBy=-quantity&limit=2".to_owned();
    let mut last_cursor = String::new();
    for _ in 0..5 {
        let reply = alice.call("GET", &format!("{ORDERS}?{query}"), &[], None).await;
        let page: ResourceList = typed(&reply);
        quantities.extend(page.items.iter().filter_map(|r| r.data["quantity"].as_u64()));
        let Some(cursor) = page.next_cursor else { break };
        last_cursor = cursor.as_str().to_owned();
        query = format!("orderBy=-quantity&limit=2&cursor={last_cursor}");
    }
    assert_eq!(quantities, [9, 5, 3, 3, 1]);

    let reply = alice.call("GET", &format!("{ORDERS}?filter.colour=red&orderBy=nope"), &[], None).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/filter/colour", "/orderBy"]);
    let reply = alice.call("GET", &format!("{ORDERS}?orderBy=createdAt&cursor={last_cursor}"), &[], None).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/cursor"]);
    let reply = alice.call("GET", &format!("{ORDERS}?limit=1&limit=2&filter.9x=1&cursor="), &[], None).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/cursor", "/filter/9x", "/limit"]);
    let many: Vec<String> = (0..17).map(|n| format!("filter.f{n}=1")).collect();
    let reply = alice.call("GET", &format!("{ORDERS}?{}", many.join("&")), &[], None).await;
    assert_eq!(fault(&reply.json()).1.first().map(String::as_str), Some("/filter"), "{reply:?}");
}

#[tokio::test]
async fn users_get_404_for_the_orders_of_others_and_an_admin_sees_all() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice", &[]);
    let bob = User::new(&server, "bob", &[]);
    let admin = User::new(&server, "root", &["admin"]);
    let order = alice.create(order("P1", 2)).await;
    let path = format!("{ORDERS}/{}", order.id);

    assert_error(&bob.call("GET", &path, &[], None).await, 404, "NOT_FOUND", &[]);
    assert_error(&bob.call("PATCH", &path, &[], Some(&json!({ "quantity": 5 }))).await, 404, "NOT_FOUND", &[]);
    assert_error(&bob.call("DELETE", &path, &[], None).await, 404, "NOT_FOUND", &[]);
    assert_eq!(typed::<ResourceList>(&bob.call("GET", ORDERS, &[], None).await).items, []);

    let reply = admin.call("GET", &path, &[], None).await;
    assert_eq!((reply.status, typed::<Resource>(&reply).owner_id.as_str()), (200, "alice"));
    assert_eq!(typed::<ResourceList>(&admin.call("GET", ORDERS, &[], None).await).items.len(), 1);

    // The status is the admin's to change: FORBIDDEN for the owner, with the field named.
    let paid = json!({ "status": "paid" });
    assert_error(&alice.call("PATCH", &path, &[], Some(&paid)).await, 403, "FORBIDDEN", &["/patch/status"]);
    let with_status = json!({ "productId": "P", "quantity": 1, "totalAmount": 1, "status": "paid" });
    assert_error(&alice.call("POST", ORDERS, &[], Some(&with_status)).await, 403, "FORBIDDEN", &["/data/status"]);
    let reply = admin.call("PATCH", &path, &[], Some(&paid)).await;
    assert_eq!((reply.status, &typed::<Resource>(&reply).data["status"]), (200, &json!("paid")));
    let reply = admin.call("DELETE", &path, &[], None).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn an_idempotency_key_makes_a_create_safe_to_retry() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice", &[]);
    let key = [("Idempotency-Key", "3f1c1a52-9d1e-4a6b-8f0e-6d2b7c9a0e11")];
    let first = alice.call("POST", ORDERS, &key, Some(&order("P1", 2))).await;
    let again = alice.call("POST", ORDERS, &key, Some(&order("P1", 2))).await;
    assert_eq!((first.status, again.status), (201, 200), "{first:?} {again:?}");
    assert_eq!(typed::<Resource>(&first), typed::<Resource>(&again), "the replay is the first create's resource");

    // The key is the WebSocket create's requestId: a retry over WebSocket gets the same order.
    let (client, _pushes) = server.signed_in("alice").await;
    let message = json!({ "type": "create", "timestamp": 1, "requestId": key[0].1,
                          "payload": { "resourceType": "order", "data": order("P1", 2) } });
    let reply = client.request_text(key[0].1, message.to_string()).await.expect("a reply");
    let tidings_protocol::ServerMessage::Create(over_ws) = reply.message else { panic!("a create reply: {reply:?}") };
    assert_eq!(over_ws, typed::<Resource>(&first));

    let reused = alice.call("POST", ORDERS, &key, Some(&order("P2", 1))).await;
    assert_error(&reused, 409, "CONFLICT", &[]);
    assert_eq!(reused.json()["details"]["reason"], "request_id_reused");
    let long = "k".repeat(129);
    let reply = alice.call("POST", ORDERS, &[("Idempotency-Key", &long)], Some(&order("P1", 2))).await;
    assert_error(&reply, 400, "INVALID_MESSAGE", &["/requestId"]);
    // Without a key nothing is deduplicated.
    let one = alice.create(order("P1", 2)).await;
    let two = alice.create(order("P1", 2)).await;
    assert_ne!(one.id, two.id);
}

#[tokio::test]
async fn tokens_are_checked_as_websocket_auth_checks_them() {
    let server = TestServer::start().await;
    let cases = [
        (None, "UNAUTHORIZED", "missing_token"),
        (Some("Basic YWxpY2U6c2VjcmV0".to_owned()), "UNAUTHORIZED", "missing_token"),
        (Some("Bearer not-a-jwt".to_owned()), "UNAUTHORIZED", "malformed"),
        (Some(format!("Bearer {}", common::expired_token("alice"))), "TOKEN_EXPIRED", "expired"),
    ];
    for (authorization, code, reason) in cases {
        let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("Authorization", a.as_str())).collect();
        let reply = rest::send(server.addr, "GET", ORDERS, &headers, b"").await;
        assert_error(&reply, 401, code, &[]);
        assert_eq!(reply.json()["details"]["reason"], reason, "{reply:?}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer realm=\"tidings\""), "{reply:?}");
    }
    let mut forged = server.token("alice");
    forged.pop();
    forged.push('x');
    let reply = rest::send(server.addr, "POST", ORDERS, &[("Authorization", &format!("Bearer {forged}"))], b"{}").await;
    assert_error(&reply, 401, "UNAUTHORIZED", &[]);
}

#[tokio::test]
async fn bad_requests_are_400_with_pointers_into_the_operation_payload() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice", &[]);
    let id = alice.create(order("P1", 2)).await.id;
    let path = format!("{ORDERS}/{id}");
    let (addr, auth) = (server.addr, alice.auth.clone());
    let raw =
        move |method: &'static str, path: String, headers: Vec<(&'static str, &'static str)>, body: &'static str| {
            let auth = auth.clone();
            async move {
                let mut all = vec![("Authorization", auth.as_str())];
                all.extend(headers);
                rest::send(addr, method, &path, &all, body.as_bytes()).await
            }
        };

    let reply = raw("POST", ORDERS.to_owned(), vec![], "{\"quantity\": 2,").await;
    assert_error(&reply, 400, "INVALID_MESSAGE", &["/data"]);
    assert!(reply.json()["details"]["line"].is_u64(), "{reply:?}");
    assert_error(&raw("POST", ORDERS.to_owned(), vec![], "[1]").await, 400, "INVALID_PARAMS", &["/data"]);
    assert_error(&raw("PATCH", path.clone(), vec![], "\"x\"").await, 400, "INVALID_PARAMS", &["/patch"]);
    let reply = raw("POST", ORDERS.to_owned(), vec![("Content-Type", "text/plain")], "{}").await;
    assert_error(&reply, 415, "INVALID_MESSAGE", &["/data"]);

    let bad = json!({ "quantity": 0, "totalAmount": -1 });
    let reply = alice.call("POST", ORDERS, &[], Some(&bad)).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/data/productId", "/data/quantity", "/data/totalAmount"]);
    let reply = alice.call("POST", "/api/v1/resources/Order", &[], Some(&json!([]))).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/data", "/resourceType"]);
    let reply = alice.call("GET", &format!("{ORDERS}/ORD%2F1"), &[], None).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/id"]);
    let reply = alice.call("PATCH", &path, &[("If-Match", "W/\"1\"")], Some(&json!({}))).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/expectedVersion"]);
    let reply = alice.call("DELETE", &format!("{path}?expectedVersion=0"), &[("If-Match", "\"1\"")], None).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/expectedVersion"]);
    let reply = alice.call("DELETE", &format!("{path}?expectedVersion=2"), &[("If-Match", "\"1\"")], None).await;
    assert_error(&reply, 400, "INVALID_PARAMS", &["/expectedVersion"]);

    // No such type, no such endpoint, no such method.
    let reply = alice.call("GET", "/api/v1/resources/invoice", &[], None).await;
    assert_error(&reply, 404, "NOT_FOUND", &[]);
    assert_eq!(reply.json()["details"]["resourceType"], "invoice");
    assert_error(&alice.call("GET", "/api/v1/orders", &[], None).await, 404, "NOT_FOUND", &[]);
    let reply = alice.call("PUT", &path, &[], Some(&json!({}))).await;
    assert_eq!(reply.status, 405, "{reply:?}");
    assert!(reply.header("allow").is_some_and(|allow| allow.contains("PATCH")), "{reply:?}");
    // `If-Match: *` only asks that the resource exists.
    let reply = alice.call("PATCH", &path, &[("If-Match", "*")], Some(&json!({ "quantity": 4 }))).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn bodies_are_bounded_and_users_rate_limited() {
    let server = TestServer::start_with(|config| {
        config.limits.max_message_bytes = 256;
        config.limits.rate_per_second = 1;
        config.limits.rate_burst = 3;
    })
    .await;
    let alice = User::new(&server, "alice", &[]);
    let big = json!({ "productId": "P".repeat(300), "quantity": 1, "totalAmount": 1 });
    let reply = alice.call("POST", ORDERS, &[], Some(&big)).await;
    assert_error(&reply, 413, "PAYLOAD_TOO_LARGE", &[]);
    let details = &reply.json()["details"];
    assert_eq!(details["maxBytes"], 256);
    assert!(details["size"].as_u64() > Some(256), "{reply:?}");

    // The bucket holds 3 and refills once a second: a few quick requests empty it, however slow the machine.
    let mut reply = alice.call("GET", ORDERS, &[], None).await;
    for _ in 0..20 {
        if reply.status != 200 {
            break;
        }
        reply = alice.call("GET", ORDERS, &[], None).await;
    }
    assert_error(&reply, 429, "RATE_LIMITED", &[]);
    assert!(reply.json()["details"]["retryAfterMs"].as_u64() > Some(0), "{reply:?}");
    assert_eq!(reply.header("retry-after"), Some("1"));
    // Buckets are per user.
    assert_eq!(User::new(&server, "bob", &[]).call("GET", ORDERS, &[], None).await.status, 200);
}

/// Sends `payload` over WebSocket as a message of `ty` and returns the error's code and pointers, made relative
/// to the payload as the HTTP API's are.
async fn ws_fault(client: &Client, ty: &str, payload: Value) -> (String, Vec<String>) {
    let message = json!({ "type": ty, "timestamp": 1, "requestId": "r", "payload": payload });
    let reply = client.request_text("r", message.to_string()).await.expect("a reply");
    let value: Value = serde_json::from_str(&tidings_protocol::encode(&reply)).expect("json");
    assert_eq!(value["type"], "error", "{value}");
    let (code, pointers) = fault(&value["payload"]);
    let relative = pointers.iter().map(|p| p.strip_prefix("/payload").unwrap_or(p).to_owned()).collect();
    (code, relative)
}

#[tokio::test]
async fn errors_have_the_code_and_pointers_of_the_websocket_error_for_the_same_fault() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice", &[]);
    let (ws, _pushes) = server.signed_in("alice").await;
    let id = alice.create(order("P1", 2)).await.id;
    let path = format!("{ORDERS}/{id}");
    let cases: Vec<(Reply, &str, Value)> = vec![
        (
            alice.call("POST", ORDERS, &[], Some(&json!({ "quantity": "2", "extra": 1 }))).await,
            "create",
            json!({ "resourceType": "order", "data": { "quantity": "2", "extra": 1 } }),
        ),
        (
            alice.call("POST", "/api/v1/resources/Bad-Type", &[], Some(&json!(7))).await,
            "create",
            json!({ "resourceType": "Bad-Type", "data": 7 }),
        ),
        (
            alice.call("GET", "/api/v1/resources/notifications/N-1", &[], None).await,
            "read",
            json!({ "resourceType": "notifications", "id": "N-1" }),
        ),
        (
            alice.call("GET", &format!("{ORDERS}?filter.colour=red&orderBy=-nope&limit=101"), &[], None).await,
            "read",
            json!({ "resourceType": "order", "filter": { "colour": "red" }, "orderBy": "-nope", "limit": 101 }),
        ),
        (
            alice.call("PATCH", &path, &[("If-Match", "\"9\"")], Some(&json!({ "quantity": 3 }))).await,
            "update",
            json!({ "resourceType": "order", "id": id.as_str(), "patch": { "quantity": 3 }, "expectedVersion": 9 }),
        ),
        (
            alice.call("PATCH", &path, &[], Some(&json!({ "status": "paid", "quantity": 0 }))).await,
            "update",
            json!({ "resourceType": "order", "id": id.as_str(), "patch": { "status": "paid", "quantity": 0 } }),
        ),
        (
            alice.call("DELETE", &format!("{path}?expectedVersion=0"), &[], None).await,
            "delete",
            json!({ "resourceType": "order", "id": id.as_str(), "expectedVersion": 0 }),
        ),
        (
            alice.call("DELETE", &format!("{ORDERS}/ORD-NONE"), &[], None).await,
            "delete",
            json!({ "resourceType": "order", "id": "ORD-NONE" }),
        ),
    ];
    for (reply, ty, payload) in cases {
        let over_ws = ws_fault(&ws, ty, payload.clone()).await;
        assert_eq!(fault(&reply.json()), over_ws, "{ty} {payload}: {reply:?}");
        assert!(reply.status >= 400, "{reply:?}");
    }
}

#[tokio::test]
async fn changes_made_over_http_are_events_for_websocket_subscribers() {
    let server = TestServer::start().await;
    let alice = User::new(&server, "alice", &[]);
    let (ws, mut pushes) = server.signed_in("alice").await;
    let subscribe = json!({ "type": "subscribe", "timestamp": 1, "requestId": "s", "payload": { "topic": "order" } });
    let reply = ws.request_text("s", subscribe.to_string()).await.expect("a reply");
    assert!(matches!(reply.message, tidings_protocol::ServerMessage::Subscribe(_)), "{reply:?}");

    let created = alice.create(order("P1", 2)).await;
    let path = format!("{ORDERS}/{}", created.id);
    assert_eq!(alice.call("PATCH", &path, &[], Some(&json!({ "quantity": 3 }))).await.status, 200);
    assert_eq!(alice.call("DELETE", &path, &[], None).await.status, 200);
    for (event_type, version) in [("order_created", 1), ("order_updated", 2), ("order_deleted", 3)] {
        let tidings_protocol::ServerMessage::Event(event) = common::next_push(&mut pushes).await else {
            panic!("expected the event of {event_type}")
        };
        assert_eq!(event.event_type.as_str(), event_type);
        assert_eq!((event.id.as_ref(), event.version.map(|v| v.get())), (Some(&created.id), Some(version)));
    }
}

/// A page of an origin that `allowed_origins` lists may call the API from a browser: its preflight is answered
/// with what it may send, and the answers name it, so the browser lets the page read them. Other origins get no
/// CORS headers, so a browser keeps their pages from reading anything.
#[tokio::test]
async fn a_listed_origin_may_call_the_api_from_a_browser_and_no_other() {
    let server = TestServer::start_with(|c| c.allowed_origins = vec!["https://app.example.com".to_owned()]).await;
    let preflight = |origin: &'static str| {
        let addr = server.addr;
        async move {
            let headers = [
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization, content-type, idempotency-key"),
            ];
            rest::send(addr, "OPTIONS", ORDERS, &headers, b"").await
        }
    };
    let allowed = preflight("https://app.example.com").await;
    assert!(allowed.status < 300, "{allowed:?}");
    assert_eq!(allowed.header("access-control-allow-origin"), Some("https://app.example.com"), "{allowed:?}");
    let headers = allowed.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(["authorization", "content-type", "idempotency-key"].iter().all(|h| headers.contains(h)), "{headers}");
    assert!(allowed.header("access-control-allow-methods").unwrap_or_default().contains("POST"), "{allowed:?}");
    let refused = preflight("https://evil.example.net").await;
    assert_eq!(refused.header("access-control-allow-origin"), None, "{refused:?}");

    let alice = User::new(&server, "alice", &[]);
    let created = alice.call("POST", ORDERS, &[("Origin", "https://app.example.com")], Some(&order("P1", 1))).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.header("access-control-allow-origin"), Some("https://app.example.com"));
    let exposed = created.header("access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(exposed.contains("etag") && exposed.contains("location"), "{created:?}");
    let other = alice.call("GET", ORDERS, &[("Origin", "https://evil.example.net")], None).await;
    assert_eq!(other.header("access-control-allow-origin"), None, "{other:?}");
}
