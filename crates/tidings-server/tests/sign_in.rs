//! Signing in costs no storage write on its way: the users who sign in are written down together, later, and a
//! notification to everyone still reaches each of them. This file is its own process, so that the storage
//! counters of `/metrics` move only by what its test does.

mod common;

use common::{next_push, rest, TestServer};
use serde_json::json;
use tidings_protocol::ServerMessage;

const KEY: &str = "a-key-for-the-sign-in-tests";

/// How many times `/metrics` says storage ran `op`.
fn storage_calls(metrics: &str, op: &str) -> u64 {
    let op = format!("op=\"{op}\"");
    metrics
        .lines()
        .filter(|line| line.starts_with("tidings_storage_duration_seconds_count{") && line.contains(&op))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Sixty users sign in at once. Storage is asked to remember users once a second at most (and when the
/// notification below needs them), not once each; and a notification to everyone, sent the moment the last
/// of them is in, reaches all sixty.
#[tokio::test]
async fn users_signing_in_together_are_written_down_together_and_all_hear_a_notification_to_everyone() {
    const USERS: usize = 60;
    let started = std::time::Instant::now();
    let server = TestServer::start_with(|c| c.api_keys = vec![KEY.to_owned()]).await;
    let signing_in = (0..USERS).map(|n| {
        let server = &server;
        async move { server.signed_in(&format!("user-{n:02}")).await }
    });
    let mut users = futures_util::future::join_all(signing_in).await;

    // The roster is written once a second whatever signs in meanwhile (a slow machine may take more than one).
    let seconds = started.elapsed().as_secs() + 1;
    let metrics = common::http(&server, "GET", "/metrics", None).await.1;
    let writes = storage_calls(&metrics, "remember_users");
    assert!(writes <= seconds && writes < USERS as u64, "{writes} writes in {seconds} s: {metrics}");
    let body = json!({ "to": "*", "title": "Maintenance at noon" }).to_string();
    let headers = [("X-Api-Key", KEY), ("Content-Type", "application/json")];
    let sent = rest::send(server.addr, "POST", "/api/v1/notifications", &headers, body.as_bytes()).await;
    assert_eq!((sent.status, sent.json()["recipients"].as_u64()), (202, Some(USERS as u64)), "{}", sent.body);
    for (_client, pushes) in &mut users {
        match next_push(pushes).await {
            ServerMessage::Notification(notification) => assert_eq!(notification.title.as_str(), "Maintenance at noon"),
            other => panic!("expected the notification, got {other:?}"),
        }
    }
    let seconds = started.elapsed().as_secs() + 1;
    let metrics = common::http(&server, "GET", "/metrics", None).await.1;
    assert!(storage_calls(&metrics, "remember_users") <= seconds + 1, "{metrics}");
    assert_eq!(storage_calls(&metrics, "take_pending"), USERS as u64, "each sign-in looks for what waits: {metrics}");
}
