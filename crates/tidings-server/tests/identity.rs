//! Sign-in with identity providers: a real JWKS server on loopback whose keys rotate while connections are open,
//! issuer and audience checks, roles from a claim path, and a second provider (a shared secret for internal
//! services) beside it.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::jwks::{Provider, SigningKey, AUDIENCE, INTERNAL_SECRET, ISSUER};
use common::{exchange, TestServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tidings_protocol::now_ms;
use tidings_server::config::ProviderConfig;

/// A server that takes the provider's tokens (issuer, audience, roles at `realm_access.roles`) and, beside them,
/// tokens signed with the internal services' secret.
async fn server_for(provider: &Provider) -> TestServer {
    let url = provider.url.clone();
    TestServer::start_with(move |config| {
        config.auth.secret = None;
        config.auth.jwks_url = Some(url);
        config.auth.issuer = Some(ISSUER.to_owned());
        config.auth.audience = Some(AUDIENCE.to_owned());
        config.auth.roles_claim = Some("realm_access.roles".to_owned());
        config.auth.providers =
            vec![ProviderConfig { secret: Some(INTERNAL_SECRET.to_owned()), ..ProviderConfig::default() }];
    })
    .await
}

/// Signs in on a new connection: the reply's type and payload.
async fn sign_in(server: &TestServer, token: &str) -> (String, Value, tidings_client::Client) {
    let (client, _pushes) = server.connected().await;
    let (kind, reply) = exchange(&client, "auth", "a", json!({ "token": token })).await;
    (kind, reply, client)
}

#[tokio::test]
async fn tokens_of_a_jwks_provider_sign_in_and_its_keys_rotate_under_open_connections() {
    let (first, second) = (SigningKey::es256("key-1"), SigningKey::ed25519("key-2"));
    let provider = Provider::start(&[&first]).await;
    let server = server_for(&provider).await;
    assert_eq!(provider.fetches(), 1, "the keys are fetched at start");

    let (kind, reply, open) = sign_in(&server, &first.token("alice", json!({}))).await;
    assert_eq!(kind, "auth_success", "{reply}");
    assert_eq!((reply["userId"].as_str(), reply["roles"].clone()), (Some("alice"), json!(["admin"])));

    // The provider rotates: the old key is gone, a new one signs. A token of the new key is new to the server,
    // which fetches the keys again, once, without a restart; the open connection renews its sign-in with it.
    let third = SigningKey::rs256("key-3");
    provider.rotate(&[&second, &third]);
    let (kind, reply, _second) = sign_in(&server, &second.token("bob", json!({}))).await;
    assert_eq!(kind, "auth_success", "{reply}");
    assert_eq!(provider.fetches(), 2);
    let (kind, reply) = exchange(&open, "auth", "renew", json!({ "token": second.token("alice", json!({})) })).await;
    assert_eq!(kind, "auth_success", "a connection opened before the rotation goes on: {reply}");
    let (kind, reply) = exchange(&open, "ping", "p", json!({})).await;
    assert_eq!(kind, "pong", "{reply}");

    // The provider published an RSA key beside the Ed25519 one (RS256, what most providers sign with): its
    // tokens sign in from the keys already fetched.
    let (kind, reply, _third) = sign_in(&server, &third.token("carol", json!({}))).await;
    assert_eq!((kind.as_str(), reply["userId"].as_str()), ("auth_success", Some("carol")), "{reply}");
    assert_eq!(provider.fetches(), 2);

    // A key id the provider does not publish: refused, and fetched for at most once in a while, so that made-up
    // key ids cannot make the server hammer the provider.
    let stranger = SigningKey::es256("key-unknown");
    for _ in 0..3 {
        let (kind, reply, _c) = sign_in(&server, &stranger.token("mallory", json!({}))).await;
        assert_eq!(
            (kind.as_str(), reply["details"]["reason"].as_str()),
            ("auth_failed", Some("unknown_key")),
            "{reply}"
        );
    }
    assert!(provider.fetches() <= 3, "unknown key ids fetch at most once per ten seconds: {}", provider.fetches());
    server.stop().await.expect("stops");
}

#[tokio::test]
async fn a_provider_refuses_other_issuers_audiences_expired_tokens_and_published_secrets() {
    let key = SigningKey::es256("key-1");
    let provider = Provider::start(&[&key]).await;
    // A shared secret in the key set must never verify anything: anyone who can read the URL holds it.
    let published_secret = "a-secret-that-anyone-can-read-at-the-url";
    provider.keys.lock().expect("keys").push(json!({ "kty": "oct", "kid": "oct", "alg": "HS256",
                                                      "k": URL_SAFE_NO_PAD.encode(published_secret) }));
    let server = server_for(&provider).await;
    for (token, reason) in [
        (key.token("alice", json!({ "iss": "https://elsewhere.test/" })), "wrong_issuer"),
        (key.token("alice", json!({ "aud": "another-app" })), "wrong_audience"),
        (key.token("alice", json!({ "exp": now_ms() / 1000 - 60 })), "expired"),
    ] {
        let (kind, reply, _c) = sign_in(&server, &token).await;
        assert_eq!((kind.as_str(), reply["details"]["reason"].as_str()), ("auth_failed", Some(reason)), "{reply}");
    }
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("oct".to_owned());
    let claims = json!({ "sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now_ms() / 1000 + 60 });
    let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(published_secret.as_bytes()))
        .expect("a token");
    let (kind, reply, _c) = sign_in(&server, &forged).await;
    assert_eq!((kind.as_str(), reply["details"]["reason"].as_str()), ("auth_failed", Some("bad_signature")), "{reply}");

    // The internal services' provider, beside the JWKS one: its tokens name no issuer, and roles sit in `roles`.
    let internal = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "billing-service", "exp": now_ms() / 1000 + 60, "roles": ["service"] }),
        &EncodingKey::from_secret(INTERNAL_SECRET.as_bytes()),
    )
    .expect("a token");
    let (kind, reply, _c) = sign_in(&server, &internal).await;
    assert_eq!(kind, "auth_success", "{reply}");
    assert_eq!(reply["roles"], json!(["service"]));
    server.stop().await.expect("stops");
}
