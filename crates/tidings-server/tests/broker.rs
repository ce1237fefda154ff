//! One suite for every broker, memory and Redis: the contract written in `src/broker/mod.rs`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis::RedisServer;
use serde_json::Map;
use tidings_server::broker::{Broker, Bus, MemoryBroker, Publication, Received, RedisBroker};
use tidings_server::storage::{EventKind, EventRecord, NotificationRecord};
use tokio::sync::mpsc;

/// A place for nodes to meet: a bus in this process, or a real redis-server.
enum Backend {
    Memory(Bus),
    Redis(RedisServer),
}

impl Backend {
    fn node(&self, name: &str) -> (Arc<dyn Broker>, mpsc::Receiver<Received>) {
        match self {
            Backend::Memory(bus) => MemoryBroker::join(bus, name),
            Backend::Redis(redis) => RedisBroker::open(&redis.url(), "tidings-test", name).expect("opens"),
        }
    }
}

/// Runs a test of the contract against both brokers.
macro_rules! on_every_broker {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn memory() {
                super::$name(super::Backend::Memory(tidings_server::broker::Bus::new())).await;
            }

            #[tokio::test]
            async fn redis() {
                if let Some(redis) = super::RedisServer::start() {
                    super::$name(super::Backend::Redis(redis)).await;
                }
            }
        }
    )+};
}

on_every_broker!(
    every_other_node_receives_each_message_in_order_and_the_publisher_does_not,
    notifications_travel_like_events,
    a_node_that_may_have_missed_messages_is_told_to_resync,
);

fn event(seq: u64) -> EventRecord {
    EventRecord {
        resource_type: "order".to_owned(),
        seq,
        id: format!("ORD-{seq}"),
        version: 1,
        kind: EventKind::Created,
        owner_id: "alice".to_owned(),
        actor: "alice".to_owned(),
        data: Map::new(),
        occurred_at: 1_764_000_000_000 + seq,
        previous: None,
    }
}

/// The next thing a node receives, within a few seconds.
async fn next(inbound: &mut mpsc::Receiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), inbound.recv())
        .await
        .expect("the broker delivers within 10 s")
        .expect("the broker is open")
}

/// The next message, past any resync.
async fn next_message(inbound: &mut mpsc::Receiver<Received>) -> Publication {
    loop {
        if let Received::Publication(message) = next(inbound).await {
            return message;
        }
    }
}

/// Waits for a node's first resync: its receiving side is in place from then on.
async fn joined(inbound: &mut mpsc::Receiver<Received>) {
    assert_eq!(next(inbound).await, Received::Resync, "a node is told to resync when it connects");
}

async fn every_other_node_receives_each_message_in_order_and_the_publisher_does_not(backend: Backend) {
    let (a, mut a_in) = backend.node("a");
    let (b, mut b_in) = backend.node("b");
    let (_c, mut c_in) = backend.node("c");
    for inbound in [&mut a_in, &mut b_in, &mut c_in] {
        joined(inbound).await;
    }
    assert!(a.has_peers());
    for seq in 1..=300 {
        a.publish(Publication::Event { event: event(seq) });
    }
    for inbound in [&mut b_in, &mut c_in] {
        for seq in 1..=300 {
            assert_eq!(next_message(inbound).await, Publication::Event { event: event(seq) });
        }
    }
    // The first thing `a` hears is `b`'s marker: none of its own 300 came back to it.
    b.publish(Publication::Event { event: event(1000) });
    assert_eq!(next_message(&mut a_in).await, Publication::Event { event: event(1000) });
    assert!(a.connected() && b.connected());
}

async fn notifications_travel_like_events(backend: Backend) {
    let (a, mut a_in) = backend.node("a");
    let (_b, mut b_in) = backend.node("b");
    joined(&mut a_in).await;
    joined(&mut b_in).await;
    let records: Vec<NotificationRecord> = ["alice", "bob"]
        .iter()
        .enumerate()
        .map(|(n, user)| NotificationRecord {
            user_id: (*user).to_owned(),
            seq: n as u64 + 1,
            id: "NTF-1".to_owned(),
            level: "info".to_owned(),
            title: "Deploy at noon".to_owned(),
            body: "ünïcödé and \"quotes\"".to_owned(),
            data: serde_json::from_str(r#"{"link":"/changes"}"#).expect("json"),
            created_at: 1_764_000_000_000,
        })
        .collect();
    a.publish(Publication::Notifications { records: records.clone() });
    assert_eq!(next_message(&mut b_in).await, Publication::Notifications { records });
}

async fn a_node_that_may_have_missed_messages_is_told_to_resync(backend: Backend) {
    let (a, mut a_in) = backend.node("a");
    let (_b, mut b_in) = backend.node("b");
    joined(&mut a_in).await;
    joined(&mut b_in).await;
    let backend = match backend {
        // Redis restarted: everything published meanwhile is gone, and `b` must hear so.
        Backend::Redis(redis) => Backend::Redis(redis.restart()),
        // A node that does not read falls behind the bus: more than the bus and `b`'s inbox hold.
        Backend::Memory(bus) => {
            for seq in 1..=30_000 {
                a.publish(Publication::Event { event: event(seq) });
            }
            Backend::Memory(bus)
        }
    };
    loop {
        match next(&mut b_in).await {
            Received::Resync => break,
            Received::Publication(_) => continue,
        }
    }
    // And messages flow again afterwards, through a publisher that reconnected if it had to.
    let marker = Publication::Event { event: event(99_999) };
    'attempts: for attempt in 0.. {
        assert!(attempt < 40, "no message got through within 20 s of the resync");
        a.publish(marker.clone());
        // Whatever was queued before comes first; the marker, or a wait of 500 ms, ends this attempt.
        while let Ok(received) = tokio::time::timeout(Duration::from_millis(500), b_in.recv()).await {
            match received {
                Some(Received::Publication(message)) if message == marker => break 'attempts,
                Some(_) => continue,
                None => panic!("the broker closed"),
            }
        }
    }
    drop(backend);
}
