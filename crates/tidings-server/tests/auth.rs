//! Authentication over a real server: tokens accepted and refused, refresh, expiry with grace, per-user limits.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{expect_disconnect, next_push, TestServer};
use serde_json::{json, Value};
use tidings_client::ClientError;
use tidings_protocol::{now_ms, ErrorCode, ErrorPayload, ServerMessage};

const CAROL: &str = r#"{"userId":"carol"}"#;

fn reason(error: &ClientError) -> (Option<ErrorCode>, Option<Value>) {
    let payload: Option<&ErrorPayload> = match error {
        ClientError::AuthFailed(e) => Some(e),
        _ => None,
    };
    (payload.map(|e| e.code), payload.and_then(|e| e.details.as_ref()?.get("reason").cloned()))
}

#[tokio::test]
async fn auth_success_carries_the_user_roles_and_expiry() {
    let server = TestServer::start().await;
    let (client, _pushes) = server.connected().await;
    let token = server.token_for("alice", &["admin"], Duration::from_secs(600));
    let success = client.auth(&token).await.expect("auth");
    assert_eq!(success.user_id.as_str(), "alice");
    assert_eq!(success.roles, ["admin"]);
    let in_ten_minutes = now_ms() + 600_000;
    assert!(success.expires_at.abs_diff(in_ten_minutes) < 2_000, "expiresAt {}", success.expires_at);
}

#[tokio::test]
async fn refused_tokens_get_auth_failed_with_their_reason_and_the_connection_may_retry() {
    let server = TestServer::start().await;
    let (client, _pushes) = server.connected().await;
    let good = server.token("alice");

    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(json!({"sub": "mallory", "exp": 9_999_999_999_u64}).to_string());
    let tampered = parts.join(".");
    let unsigned = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), parts[1]);
    let other_server =
        TestServer::start_with(|c| c.auth.secret = Some("another-secret-of-thirty-two-bytes!!".into())).await;
    let foreign = other_server.token("alice");

    let cases = [
        (tampered.as_str(), ErrorCode::Unauthorized, "bad_signature"),
        (unsigned.as_str(), ErrorCode::Unauthorized, "algorithm_not_allowed"),
        (foreign.as_str(), ErrorCode::Unauthorized, "bad_signature"),
        ("garbage", ErrorCode::Unauthorized, "malformed"),
    ];
    for (token, code, why) in cases {
        let error = client.auth(token).await.expect_err("refused");
        assert_eq!(reason(&error), (Some(code), Some(json!(why))), "{error}");
    }

    let mismatch = json!({"type":"auth","timestamp":1,"requestId":"m","payload":{"token":good,"userId":"bob"}});
    let reply = client.request_text("m", mismatch.to_string()).await.expect("reply");
    let ServerMessage::AuthFailed(failed) = reply.message else { panic!("expected auth_failed: {reply:?}") };
    assert_eq!(failed.details.and_then(|d| d.get("reason").cloned()), Some(json!("user_mismatch")));

    // After all that, a good token still works on the same connection.
    assert_eq!(client.auth(&good).await.expect("auth").user_id.as_str(), "alice");
}

#[tokio::test]
async fn an_expired_token_is_refused_as_token_expired() {
    let server = TestServer::start().await;
    let (client, _pushes) = server.connected().await;
    let error = client.auth(&common::expired_token("alice")).await.expect_err("expired");
    assert_eq!(reason(&error), (Some(ErrorCode::TokenExpired), Some(json!("expired"))));
}

/// A token accepted within `auth.leeway_seconds` after its `exp` keeps its session until the leeway ends too: the
/// session must not accept it and then call it expired at once (which sent clients into a re-auth loop).
#[tokio::test]
async fn a_token_accepted_within_the_leeway_is_not_expired_at_once() {
    let server = TestServer::start_with(|c| c.auth.leeway_seconds = 600).await;
    let (client, _pushes) = server.connected().await;
    // Expired a minute ago: within the ten minutes of leeway.
    let success = client.auth(&common::expired_token("alice")).await.expect("accepted within the leeway");
    assert_eq!(success.user_id.as_str(), "alice");
    // The session answers the next operation instead of refusing it as TOKEN_EXPIRED.
    let (reply_type, reply) = common::exchange(&client, "read", "after-auth", json!({ "resourceType": "order" })).await;
    assert_eq!(reply_type, "read", "{reply}");
}

#[tokio::test]
async fn a_fresh_token_extends_the_session_and_another_user_is_refused() {
    let server = TestServer::start().await;
    let (client, _pushes) = server.connected().await;
    let first = client.auth(&server.token_for("alice", &[], Duration::from_secs(60))).await.expect("auth");
    let second = client.auth(&server.token_for("alice", &["admin"], Duration::from_secs(7200))).await.expect("refresh");
    assert!(second.expires_at > first.expires_at + 3_600_000);
    assert_eq!(second.roles, ["admin"]);

    let error = client.auth(&server.token("bob")).await.expect_err("another user");
    assert_eq!(reason(&error).1, Some(json!("user_change")));
    client.ping().await.expect("the session goes on as alice");
}

#[tokio::test]
async fn an_expiring_token_gets_a_grace_period_and_a_fresh_auth_restores_the_session() {
    let server = TestServer::start_with(|c| c.auth.token_grace_ms = 5_000).await;
    let (client, mut pushes) = server.connected().await;
    client.auth(&server.token_for("alice", &[], Duration::from_secs(1))).await.expect("auth");

    let ServerMessage::Error(expired) = next_push(&mut pushes).await else { panic!("expected TOKEN_EXPIRED") };
    assert_eq!(expired.code, ErrorCode::TokenExpired);
    let details = expired.details.expect("details");
    let grace = details.get("graceMs").and_then(Value::as_u64).expect("graceMs");
    assert!((4_000..=5_000).contains(&grace), "graceMs {grace}");
    assert!(details.get("expiredAt").and_then(Value::as_u64).is_some());

    let read = json!({"type":"read","timestamp":1,"requestId":"g1","payload":{"resourceType":"order"}});
    let reply = client.request_text("g1", read.to_string()).await.expect("reply");
    assert!(matches!(reply.message, ServerMessage::Error(ref e) if e.code == ErrorCode::TokenExpired), "{reply:?}");
    client.ping().await.expect("ping is allowed during the grace period");

    client.auth(&server.token("alice")).await.expect("a fresh token restores the session");
    let reply = client.request_text("g2", read.to_string().replace("g1", "g2")).await.expect("reply");
    assert!(!matches!(reply.message, ServerMessage::Error(ref e) if e.code == ErrorCode::TokenExpired), "{reply:?}");
}

#[tokio::test]
async fn without_a_fresh_token_the_session_ends_with_4501() {
    let server = TestServer::start_with(|c| c.auth.token_grace_ms = 300).await;
    let (client, mut pushes) = server.connected().await;
    client.auth(&server.token_for("alice", &[], Duration::from_secs(1))).await.expect("auth");
    assert!(matches!(next_push(&mut pushes).await, ServerMessage::Error(e) if e.code == ErrorCode::TokenExpired));
    let (notice, code) = expect_disconnect(&mut pushes).await;
    assert_eq!((notice.code, notice.reconnect, code), (4501, false, Some(4501)));
}

#[tokio::test]
async fn a_user_over_the_connection_limit_is_closed_with_4503() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_user = 2).await;
    let _first = server.signed_in("alice").await;
    let _second = server.signed_in("alice").await;
    let _bob = server.signed_in("bob").await;
    let (client, mut pushes) = server.connected().await;
    let error = client.auth(&server.token("alice")).await.expect_err("third connection");
    assert!(matches!(error, ClientError::Closed | ClientError::Timeout), "{error}");
    let (notice, code) = expect_disconnect(&mut pushes).await;
    assert_eq!((notice.code, code), (4503, Some(4503)));

    // Places are given back when connections close: once the first one is gone, alice may connect again.
    let (first, mut first_pushes) = _first;
    first.disconnect().expect("disconnect");
    assert!(matches!(first_pushes.next_within(common::PATIENCE).await, Some(tidings_client::Push::Closed { .. })));
    let mut attempts = 0;
    loop {
        // The server gives the place back right after it closes; each attempt is one round trip later.
        let (client, _pushes) = server.connected().await;
        if client.auth(&server.token("alice")).await.is_ok() {
            break;
        }
        attempts += 1;
        assert!(attempts < 20, "alice's place was never given back");
    }
}

#[tokio::test]
async fn the_dev_sign_in_exists_only_on_an_unconfigured_loopback_server() {
    let configured = TestServer::start().await;
    assert_eq!(common::http(&configured, "POST", "/auth/dev-token", Some(CAROL)).await.0, 404);
    assert_eq!(
        common::http(&configured, "GET", "/auth/dev-token", None).await.0,
        404,
        "the page asks before offering it"
    );

    let unconfigured = TestServer::start_with(|c| c.auth.secret = None).await;
    assert_eq!(common::http(&unconfigured, "GET", "/auth/dev-token", None).await.0, 204);
    let (status, body) = common::http(&unconfigured, "POST", "/auth/dev-token", Some(CAROL)).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json body");
    let (client, _pushes) = unconfigured.connected().await;
    let success = client.auth(body["token"].as_str().expect("token")).await.expect("the dev token authenticates");
    assert_eq!(success.user_id.as_str(), "carol");
}

/// A page on a front end's dev server (Vite's `http://localhost:5173`) may get a dev token under `--dev`, across
/// origins; a page of another site may not, even where `allowed_origins` is `*`.
#[tokio::test]
async fn a_local_dev_servers_page_gets_a_dev_token_and_other_sites_pages_do_not() {
    let preflight = |origin: &'static str| {
        [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ]
    };
    let dev = TestServer::start_with(|c| c.dev = true).await;
    for local in ["http://localhost:5173", "http://[::1]:5173"] {
        let answer = common::rest::send(dev.addr, "OPTIONS", "/auth/dev-token", &preflight(local), b"").await;
        assert_eq!(answer.header("access-control-allow-origin"), Some(local), "{answer:?}");
    }
    for other in ["http://localhost.evil.example:5173", "http://127.0.0.1.evil.example", "null"] {
        let answer = common::rest::send(dev.addr, "OPTIONS", "/auth/dev-token", &preflight(other), b"").await;
        assert_eq!(answer.header("access-control-allow-origin"), None, "{other}: {answer:?}");
    }
    let body = CAROL.as_bytes();
    let headers = [("Origin", "http://localhost:5173"), ("Content-Type", "application/json")];
    let signed = common::rest::send(dev.addr, "POST", "/auth/dev-token", &headers, body).await;
    assert_eq!((signed.status, signed.header("access-control-allow-origin")), (200, Some("http://localhost:5173")));
    assert!(signed.json()["token"].is_string());

    let open = TestServer::start_with(|c| {
        c.auth.secret = None;
        c.allowed_origins = vec!["*".to_owned()];
    })
    .await;
    for origin in ["https://evil.example", "http://localhost:5173"] {
        let answer = common::rest::send(open.addr, "OPTIONS", "/auth/dev-token", &preflight(origin), b"").await;
        assert_eq!(answer.header("access-control-allow-origin"), None, "{origin} through *: {answer:?}");
    }
}

#[tokio::test]
async fn a_server_with_an_es256_public_key_accepts_only_tokens_of_its_private_key() {
    // A key pair made for these tests only (openssl ecparam -name prime256v1).
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let public = fixtures.join("es256-public.pem");
    let server = TestServer::start_with(|c| {
        c.auth.secret = None;
        c.auth.public_key_file = Some(public);
        c.auth.algorithm = Some("ES256".to_owned());
    })
    .await;
    let private = std::fs::read(fixtures.join("es256-private.pk8.pem")).expect("private key");
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&private).expect("ES256 key");
    let claims = json!({ "sub": "dana", "exp": now_ms() / 1000 + 600, "roles": ["admin"] });
    let token =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256), &claims, &key).expect("sign");

    let (client, _pushes) = server.connected().await;
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(common::SECRET.as_bytes()),
    )
    .expect("sign");
    let error = client.auth(&hs256).await.expect_err("HS256 is not this server's algorithm");
    assert_eq!(reason(&error).1, Some(json!("algorithm_not_allowed")));
    let success = client.auth(&token).await.expect("ES256 token");
    assert_eq!((success.user_id.as_str(), success.roles.as_slice()), ("dana", ["admin".to_owned()].as_slice()));
}
