//! Storage outages over WebSocket: while PostgreSQL refuses connections a change is answered UNAVAILABLE and the
//! session goes on; once the database is back, changes succeed again without restarting the server.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::json;
use tidings_client::Client;
use tidings_protocol::{ClientMessage, Create, ErrorCode, ResourceType, ServerMessage};

fn create_order() -> ClientMessage {
    let data = json!({ "productId": "P1", "quantity": 1, "totalAmount": 2 });
    ClientMessage::Create(Create {
        resource_type: ResourceType::new("order").expect("type"),
        data: data.as_object().cloned().expect("an object"),
    })
}

async fn orders(client: &Client) -> usize {
    let read = json!({ "type": "read", "timestamp": 1, "requestId": "list", "payload": { "resourceType": "order" } });
    let reply = client.request_text("list", read.to_string()).await.expect("a reply");
    match reply.message {
        ServerMessage::Read(tidings_protocol::ReadResult::List(list)) => list.items.len(),
        other => panic!("expected a list, got {other:?}"),
    }
}

#[tokio::test]
async fn a_create_is_unavailable_while_postgres_refuses_and_succeeds_once_it_is_back() {
    let Some(server) = TestServer::start_on_postgres("a_create_is_unavailable_while_postgres_refuses").await else {
        return;
    };
    let database = server.database().expect("a PostgreSQL database");
    let (alice, _pushes) = server.signed_in("alice").await;
    alice.request(create_order()).await.expect("created while the database is up");
    assert_eq!(common::http(&server, "GET", "/readyz", None).await.0, 200);

    // Only this test's database refuses: other tests, on databases of their own, go on undisturbed.
    database.refuse_connections().await;
    let started = Instant::now();
    let error = alice.request(create_order()).await.expect_err("the database is gone");
    let payload = error.payload().expect("an error reply");
    assert_eq!(payload.code, ErrorCode::Unavailable, "{payload:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "answered within the pool's acquire timeout");
    let details = payload.details.as_ref().expect("details");
    assert!(details.get("retryAfterMs").is_some_and(|ms| ms.is_u64()), "a retry hint: {details:?}");
    alice.ping().await.expect("the connection stays usable");
    let read = alice
        .request_text(
            "r",
            json!({ "type": "read", "timestamp": 1, "requestId": "r", "payload": { "resourceType": "order" } })
                .to_string(),
        )
        .await
        .expect("a reply");
    assert!(matches!(read.message, ServerMessage::Error(ref e) if e.code == ErrorCode::Unavailable), "{read:?}");
    let (status, body) = common::http(&server, "GET", "/readyz", None).await;
    assert_eq!(status, 503, "not ready while storage is gone: {body}");
    assert_eq!(common::http(&server, "GET", "/healthz", None).await.0, 200, "but alive");

    database.allow_connections().await;
    alice.request(create_order()).await.expect("created once the database is back, without a restart");
    assert_eq!(common::http(&server, "GET", "/readyz", None).await.0, 200, "ready again");
    assert_eq!(orders(&alice).await, 2, "the refused create wrote nothing");
}
