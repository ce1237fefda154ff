//! Long replays after `since`: a resume over a large backlog converges on a busy connection, instead of being cut
//! off as a slow consumer once the replay ends; and a log pruned in the middle of a replay is never skipped
//! silently.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{call, next_push, raw, TestServer};
use serde_json::{json, Value};
use tidings_client::Client;
use tidings_protocol::ServerMessage;
use tidings_server::storage::{Sqlite, Storage};

/// Creates `count` orders through `client`, `width` at a time, each carrying `note` bytes of text, and returns
/// how many it made.
async fn create_many(client: &Client, count: u64, width: u64, note: usize) -> u64 {
    let mut tasks = Vec::new();
    for lane in 0..width {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut made = 0;
            for n in (lane..count).step_by(width as usize) {
                let data =
                    json!({ "productId": format!("P{n}"), "quantity": 1, "totalAmount": 1.0, "note": "n".repeat(note) });
                call(&client, "create", &format!("b{n}"), json!({ "resourceType": "order", "data": data })).await;
                made += 1;
            }
            made
        }));
    }
    let mut made = 0;
    for task in tasks {
        made += task.await.expect("a writer");
    }
    made
}

/// A subscriber resumes from 0 over 12,000 events while writers keep adding more: the replay takes many pages,
/// and far more live events arrive during it than its mailbox holds. It must receive every event once, in order,
/// and stay connected: the session hands out its mailbox between pages, where the live events of the replayed
/// topic are dropped (the next page reads them from the log).
#[tokio::test]
async fn a_long_resume_on_a_busy_connection_receives_everything_and_stays_connected() {
    let server = TestServer::start_with(|c| {
        c.limits.outbound_queue = 32;
        c.limits.rate_per_second = 100_000;
        c.limits.rate_burst = 100_000;
    })
    .await;
    let (alice, _alice_pushes) = server.signed_in("alice").await;
    const BACKLOG: u64 = 12_000;
    assert_eq!(create_many(&alice, BACKLOG, 32, 0).await, BACKLOG);

    // Writers keep going while the subscriber resumes.
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for lane in 0..16 {
        let (alice, stop, live) = (alice.clone(), Arc::clone(&stop), Arc::clone(&live));
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let data = json!({ "productId": format!("L{lane}-{n}"), "quantity": 1, "totalAmount": 1.0 });
                call(&alice, "create", &format!("l{lane}-{n}"), json!({ "resourceType": "order", "data": data })).await;
                live.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        }));
    }
    while live.load(Ordering::SeqCst) < 50 {
        tokio::task::yield_now().await;
    }

    let (admin, mut pushes) = server.signed_in_as("root", &["admin"]).await;
    let reply = call(&admin, "subscribe", "s", json!({ "topic": "order", "since": 0 })).await;
    assert_eq!(reply["recovered"], json!(true), "{reply}");
    let mut expected = 1;
    let mut head = u64::MAX;
    while expected <= head {
        match next_push(&mut pushes).await {
            ServerMessage::Event(event) => {
                let seq = event.seq.map(|s| s.get()).expect("a seq");
                assert_eq!(seq, expected, "events arrive once each, in order");
                expected += 1;
            }
            other => panic!("after {} events: {other:?}", expected - 1),
        }
        // Once the replay has passed the backlog, the writers stop, and the subscriber waits for their last.
        if expected == BACKLOG + 1 {
            stop.store(true, Ordering::SeqCst);
            for writer in writers.drain(..) {
                writer.await.expect("a writer");
            }
            head = BACKLOG + live.load(Ordering::SeqCst);
            assert!(head > BACKLOG + 32, "more live events came than a mailbox holds: {head}");
        }
    }
}

/// The log is pruned past where a replay has come while the replay waits for its client to read. The next page
/// then starts later than the last one ended: the subscriber must get every event up to the hole and then an
/// `unsubscribe` (UNAVAILABLE) saying to subscribe again, never the events after the hole as if nothing was lost.
#[tokio::test]
async fn a_log_pruned_during_a_replay_ends_the_subscription_instead_of_skipping() {
    let server = TestServer::start_with(|c| {
        c.limits.rate_per_second = 100_000;
        c.limits.rate_burst = 100_000;
    })
    .await;
    let (alice, _alice_pushes) = server.signed_in("alice").await;
    // 600 events of 30 KB: the first page of the replay (500) is far more than the sockets between buffer.
    assert_eq!(create_many(&alice, 600, 16, 30_000).await, 600);

    let mut socket = raw::open(server.addr).await;
    let token = server.token_for("root", &["admin"], std::time::Duration::from_secs(600));
    for (id, ty, payload) in [
        ("c", "connect", json!({ "protocolVersion": "1.0" })),
        ("a", "auth", json!({ "token": token })),
        ("s", "subscribe", json!({ "topic": "order", "since": 0 })),
    ] {
        let message = json!({ "type": ty, "timestamp": 1, "requestId": id, "payload": payload });
        socket.send_text(&message.to_string()).await;
        let reply: Value = serde_json::from_str(&socket.next_text().await.expect("a reply")).expect("json");
        assert_eq!(reply["requestId"], json!(id), "{reply}");
    }
    // The replay now waits for this socket to be read. Meanwhile the log loses all but its newest 10 events.
    let log = Sqlite::open(&server.data_dir().join("tidings.db"), std::time::Duration::from_secs(60)).expect("log");
    assert_eq!(log.prune_events(10, 0).await.expect("pruned"), 590);

    let mut expected = 1;
    loop {
        let message: Value = serde_json::from_str(&socket.next_text().await.expect("a message")).expect("json");
        match message["type"].as_str() {
            Some("event") => {
                assert_eq!(message["payload"]["seq"], json!(expected), "an event after a hole, with no word of it");
                expected += 1;
            }
            Some("unsubscribe") => {
                assert_eq!(message["payload"]["reason"]["code"], json!("UNAVAILABLE"), "{message}");
                break;
            }
            _ => panic!("unexpected {message}"),
        }
    }
    assert!(expected > 1 && expected <= 591, "the replay sent {} events before the hole", expected - 1);
}
