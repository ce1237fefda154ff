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
    let told = unauthorized.json();
    assert_eq!(told["details"]["reason"], "missing_credentials", "{told}");
    assert!(told["message"].as_str().is_some_and(|m| m.contains("Bearer") && m.contains("X-Api-Key")), "{told}");
}

/// GET with an `Authorization: Bearer` token instead of an API key, as the admin console sends.
async fn as_user(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let bearer = format!("Bearer {token}");
    let reply = rest::send(server.addr, "GET", path, &[("Authorization", bearer.as_str())], b"").await;
    (reply.status, reply.json())
}

#[tokio::test]
async fn a_user_with_the_admin_role_uses_the_admin_api_with_their_token_and_others_are_forbidden() {
    let server = TestServer::start_with(|c| c.api_keys = vec![KEY.to_owned()]).await;
    let root = server.token_for("root", &["tidings-admin"], std::time::Duration::from_secs(60));
    let (status, listed) = as_user(&server, &root, "/api/v1/admin/connections").await;
    assert_eq!((status, listed["total"].as_u64()), (200, Some(0)), "{listed}");

    let (status, refused) = as_user(&server, &server.token("alice"), "/api/v1/admin/connections").await;
    assert_eq!(
        (status, refused["code"].as_str(), refused["details"]["reason"].as_str()),
        (403, Some("FORBIDDEN"), Some("not_admin"))
    );
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("'tidings-admin'")), "{refused}");
    // An app's own `admin` role is not the server's: its holders are no operators.
    let app_admin = server.token_for("alice", &["admin"], std::time::Duration::from_secs(60));
    assert_eq!(as_user(&server, &app_admin, "/api/v1/admin/connections").await.0, 403);
    let (status, refused) = as_user(&server, "not-a-token", "/api/v1/admin/types").await;
    assert_eq!((status, refused["code"].as_str()), (401, Some("UNAUTHORIZED")), "{refused}");

    // A server whose admin role is empty takes API keys only; a server without keys still takes an admin's token.
    let keys_only = TestServer::start_with(|c| {
        c.api_keys = vec![KEY.to_owned()];
        c.admin_role = String::new();
    })
    .await;
    let root = keys_only.token_for("root", &["tidings-admin"], std::time::Duration::from_secs(60));
    assert_eq!(as_user(&keys_only, &root, "/api/v1/admin/cluster").await.0, 401, "a token counts for nothing there");
    assert_eq!(admin(&keys_only, "GET", "/api/v1/admin/cluster").await.0, 200);
    let tokens_only = TestServer::start().await;
    let root = tokens_only.token_for("root", &["tidings-admin"], std::time::Duration::from_secs(60));
    assert_eq!(as_user(&tokens_only, &root, "/api/v1/admin/cluster").await.0, 200);
}

#[tokio::test]
async fn operators_see_the_resource_types_with_their_schemas_and_the_cluster() {
    let server = TestServer::start_with(|c| {
        c.api_keys = vec![KEY.to_owned()];
        let hook = json!({ "url": "http://127.0.0.1:9/before", "secret": "a-secret-for-the-hook" });
        c.resource_types[0].before = Some(serde_json::from_value(hook).expect("a hook"));
    })
    .await;
    let (status, types) = admin(&server, "GET", "/api/v1/admin/types").await;
    assert_eq!(status, 200, "{types}");
    let order = types["types"].as_array().and_then(|t| t.iter().find(|t| t["name"] == "order")).expect("order");
    assert_eq!(order["schema"]["properties"]["status"]["default"], "pending", "{order}");
    assert_eq!(order["id_prefix"], "ORD");
    assert_eq!(order["before"]["secret"], "(set)", "the hook's secret is not shown: {order}");
    assert!(!types.to_string().contains("a-secret-for-the-hook"));

    let (_alice, _pushes) = server.signed_in("alice").await;
    let (status, cluster) = admin(&server, "GET", "/api/v1/admin/cluster").await;
    assert_eq!(status, 200, "{cluster}");
    let node = server.addr.to_string();
    assert_eq!((cluster["node"].as_str(), cluster["broker"]["kind"].as_str()), (Some(node.as_str()), Some("memory")));
    assert_eq!(cluster["nodes"], json!([{ "node": node, "self": true, "heardMsAgo": 0 }]), "a single node");
    assert_eq!((cluster["connections"].as_u64(), cluster["broker"]["connected"].as_bool()), (Some(1), Some(true)));
}

#[tokio::test]
async fn the_admin_console_is_served_at_admin_unless_the_pages_are_off() {
    let server = TestServer::start().await;
    let page = rest::send(server.addr, "GET", "/admin", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/assets/admin.js"), "the console's page");
    let off = TestServer::start_with(|c| c.web_page = false).await;
    assert_eq!(rest::send(off.addr, "GET", "/admin", &[], b"").await.status, 404);
}
