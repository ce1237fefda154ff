//! The admin API on a real server: list the live connections, disconnect one, disconnect a user's.

mod common;

use common::{call, expect_disconnect, rest, TestServer};
use serde_json::{json, Value};

const KEY: &str = "an-admin-key-for-the-tests";

async fn admin(server: &TestServer, method: &str, path: &str) -> (u16, Value) {
    let reply = rest::send(server.addr, method, path, &[("X-Api-Key", KEY)], b"").await;
    (reply.status, reply.json())
}

#[tokio::test]
async fn operators_list_connections_and_disconnect_them_with_a_reason() {
    let server = TestServer::start_with(|c| c.api_keys = vec![KEY.to_owned()]).await;
    let (alice, mut alice_pushes) = server.signed_in("alice").await;
    call(&alice, "subscribe", "s", json!({ "topic": "order" })).await;
    let (_bob1, mut bob1) = server.signed_in("bob").await;
    let (_bob2, mut bob2) = server.signed_in("bob").await;
    let (_anon, _n) = server.connected().await;

    let (status, listed) = admin(&server, "GET", "/api/v1/admin/connections").await;
    assert_eq!((status, listed["total"].as_u64()), (200, Some(4)), "{listed}");
    let connections = listed["connections"].as_array().expect("connections");
    let alices = connections.iter().find(|c| c["userId"] == "alice").expect("alice is listed");
    assert_eq!((alices["subscriptions"].clone(), alices["queueDepth"].as_u64()), (json!(["order"]), Some(0)));
    assert_eq!(alices["node"], json!(server.addr.to_string()));
    assert!(connections.iter().any(|c| c["userId"].is_null()), "an unauthenticated connection is listed too");

    let session = alices["sessionId"].as_str().expect("a session id");
    let (status, answer) =
        admin(&server, "DELETE", &format!("/api/v1/admin/connections/{session}?reason=maintenance")).await;
    assert_eq!((status, answer["disconnected"].as_u64()), (200, Some(1)));
    let (notice, code) = expect_disconnect(&mut alice_pushes).await;
    assert_eq!((notice.code, notice.reason.as_str(), notice.reconnect, code), (4502, "maintenance", false, Some(4502)));

    let (status, answer) = admin(&server, "DELETE", "/api/v1/admin/users/bob/connections").await;
    assert_eq!((status, answer["disconnected"].as_u64()), (200, Some(2)));
    for pushes in [&mut bob1, &mut bob2] {
        let (notice, _) = expect_disconnect(pushes).await;
        assert_eq!((notice.code, notice.reason.as_str()), (4502, "disconnected by an operator"));
    }
    let (status, missing) = admin(&server, "DELETE", "/api/v1/admin/connections/s-nope").await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("NOT_FOUND")));
    let unauthorized = rest::send(server.addr, "GET", "/api/v1/admin/connections", &[], b"").await;
    assert_eq!(unauthorized.status, 401);
}
