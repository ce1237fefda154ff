//! The server's life: health and readiness over HTTP, and a graceful shutdown seen from connected clients.

mod common;

use common::{expect_disconnect, TestServer};

#[tokio::test]
async fn a_shutdown_tells_every_client_to_come_back_and_closes_with_1001() {
    let server = TestServer::start().await;
    let (_alice, mut alice_pushes) = server.signed_in("alice").await;
    let (_anon, mut anon_pushes) = server.connected().await;
    let stopping = tokio::spawn(server.stop());
    for pushes in [&mut alice_pushes, &mut anon_pushes] {
        let (notice, code) = expect_disconnect(pushes).await;
        assert_eq!((notice.code, notice.reconnect, code), (1001, true, Some(1001)));
    }
    stopping.await.expect("no panic").expect("the server stops cleanly within its bound");
}

#[tokio::test]
async fn health_and_readiness_answer_over_http() {
    let server = TestServer::start().await;
    assert_eq!(common::http(&server, "GET", "/healthz", None).await, (200, "ok\n".to_owned()));
    assert_eq!(common::http(&server, "GET", "/readyz", None).await, (200, "ready\n".to_owned()));
}
