//! A node's fan-out stays complete when the broker loses what another node published: the event log fills in;
//! and when the log no longer has what was lost, the node moves on and tells the subscribers that missed it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::watched::Watched;
use serde_json::json;
use tidings_protocol::Topic;
use tidings_server::broker::{Bus, MemoryBroker, Publication, Received};
use tidings_server::hub::{Delivery, Follow, Hub, Mailbox, Scope};
use tidings_server::notifications::{Draft, Notifier};
use tidings_server::relay::Relay;
use tidings_server::storage::{CreateOutcome, EventRecord, NewRecord, Recipients, Sqlite, Storage};
use tokio::sync::mpsc;

/// Node `b` of a two-node cluster on one bus and one database, with a subscriber to `order`.
struct NodeB {
    relay: Arc<Relay>,
    hub: Arc<Hub>,
    deliveries: tidings_server::hub::Deliveries,
    _mailbox: Mailbox,
}

async fn node_b(storage: &Arc<dyn Storage>, bus: &Bus) -> (NodeB, mpsc::Receiver<Received>) {
    let (broker, inbound) = MemoryBroker::join(bus, "b");
    let hub = Hub::new();
    let presence = tidings_server::presence::Presence::new("b", Arc::clone(&broker));
    let relay = Relay::new(Arc::clone(&hub), presence, broker, Arc::clone(storage));
    relay.start_streams(["order"]).await.expect("heads read");
    let (mailbox, deliveries, _slow) = Mailbox::new(1024);
    hub.subscribe(&Follow::topic(Topic::new("order").expect("topic")), &mailbox, Scope::All, None);
    (NodeB { relay, hub, deliveries, _mailbox: mailbox }, inbound)
}

fn storage(dir: &tempfile::TempDir) -> Arc<dyn Storage> {
    Arc::new(Sqlite::open(&dir.path().join("tidings.db"), Duration::from_secs(60)).expect("sqlite opens"))
}

/// Node `a` commits an order; whether its broker message gets anywhere is up to the caller.
async fn commit(storage: &Arc<dyn Storage>, n: usize) -> EventRecord {
    let new = NewRecord {
        resource_type: "order".to_owned(),
        id: format!("ORD-{n}"),
        owner_id: "alice".to_owned(),
        data: json!({ "productId": format!("P{n}"), "quantity": 1, "totalAmount": 1.0, "status": "pending" })
            .as_object()
            .cloned()
            .expect("object"),
    };
    match storage.create(new, None).await.expect("stored") {
        CreateOutcome::Created(_, event) => event,
        CreateOutcome::Replayed(_) => panic!("a fresh create"),
    }
}

async fn next_seq(node: &mut NodeB) -> u64 {
    tokio::time::timeout(Duration::from_secs(5), node.deliveries.recv())
        .await
        .expect("delivered within 5 s")
        .expect("the hub is there")
        .seq()
}

#[tokio::test]
async fn an_event_the_broker_lost_with_nothing_after_it_is_swept_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = storage(&dir);
    let bus = Bus::new();
    let (a, _a_inbound) = MemoryBroker::join(&bus, "a");
    let sweep = Duration::from_millis(50);
    let (mut b, inbound) = node_b(&storage, &bus).await;
    tokio::spawn(Arc::clone(&b.relay).run(inbound, vec!["order".to_owned()], sweep));

    // The first event travels through the broker.
    let first = commit(&storage, 1).await;
    a.publish(Publication::Event { event: first });
    assert_eq!(next_seq(&mut b).await, 1);
    // The second is committed, but its broker message is lost, and nothing comes after it to reveal a gap.
    commit(&storage, 2).await;
    assert_eq!(next_seq(&mut b).await, 2, "the sweep read it from the log");
    // A late copy from the broker is not delivered again.
    let third = commit(&storage, 3).await;
    a.publish(Publication::Event { event: third.clone() });
    assert_eq!(next_seq(&mut b).await, 3);
    a.publish(Publication::Event { event: third });
    assert!(tokio::time::timeout(Duration::from_millis(300), b.deliveries.recv()).await.is_err(), "no repeat");
}

#[tokio::test]
async fn a_hole_before_a_later_event_is_filled_from_the_log_without_waiting_for_a_sweep() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = storage(&dir);
    let bus = Bus::new();
    let (a, _a_inbound) = MemoryBroker::join(&bus, "a");
    // A sweep too slow to matter here.
    let sweep = Duration::from_secs(3600);
    let (mut b, inbound) = node_b(&storage, &bus).await;
    tokio::spawn(Arc::clone(&b.relay).run(inbound, vec!["order".to_owned()], sweep));

    commit(&storage, 1).await;
    commit(&storage, 2).await;
    let third = commit(&storage, 3).await;
    a.publish(Publication::Event { event: third });
    assert_eq!([next_seq(&mut b).await, next_seq(&mut b).await, next_seq(&mut b).await], [1, 2, 3]);
}

/// The next delivery, within 5 s.
async fn next(node: &mut NodeB) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), node.deliveries.recv())
        .await
        .expect("delivered within 5 s")
        .expect("the hub is there")
}

#[tokio::test]
async fn a_gap_whose_events_were_pruned_is_passed_and_its_subscribers_are_told() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = storage(&dir);
    let bus = Bus::new();
    let (a, _a_inbound) = MemoryBroker::join(&bus, "a");
    let (mut b, mut inbound) = node_b(&storage, &bus).await;
    let hub_of_b = b.hub.clone();
    let (one, mut one_deliveries, _slow) = Mailbox::new(64);
    hub_of_b.subscribe(&Follow::topic(Topic::new("order:ORD-1").expect("topic")), &one, Scope::All, None);
    // The broker's first word is a resync, which would read the log at a moment of its own choosing; it is taken
    // here, so that only the gap below reads the log.
    assert_eq!(inbound.recv().await, Some(Received::Resync));
    tokio::spawn(Arc::clone(&b.relay).run(inbound, vec!["order".to_owned()], Duration::from_secs(3600)));

    let first = commit(&storage, 1).await;
    a.publish(Publication::Event { event: first });
    assert_eq!(next(&mut b).await.seq(), 1);
    // Events 2 and 3 are committed but their broker messages are lost; then the log is pruned past 2 before
    // node b notices, so no fill can ever read it.
    commit(&storage, 2).await;
    commit(&storage, 3).await;
    let fourth = commit(&storage, 4).await;
    assert_eq!(storage.prune_events(2, 0).await.expect("pruned"), 2);
    a.publish(Publication::Event { event: fourth });
    // The type's subscribers hear that events were lost (they resubscribe, and learn `recovered: false`), then
    // the stream moves on; so do the subscribers of its resources' topics, which cannot know what they missed.
    assert!(matches!(next(&mut b).await, Delivery::Lost(lost) if &*lost.topic == "order"));
    assert_eq!([next(&mut b).await.seq(), next(&mut b).await.seq()], [3, 4]);
    let created = tokio::time::timeout(Duration::from_secs(5), one_deliveries.recv()).await.expect("in time");
    assert_eq!(created.map(|d| d.seq()), Some(1), "ORD-1's own creation came first");
    let lost = tokio::time::timeout(Duration::from_secs(5), one_deliveries.recv()).await.expect("in time");
    assert!(matches!(&lost, Some(Delivery::Lost(push)) if &*push.topic == "order:ORD-1"), "{lost:?}");
    // The stream is not stuck: a new event is released at once.
    let fifth = commit(&storage, 5).await;
    a.publish(Publication::Event { event: fifth });
    assert_eq!(next(&mut b).await.seq(), 5);
}

#[tokio::test]
async fn one_fill_at_a_time_per_type_however_many_events_come_early() {
    let dir = tempfile::tempdir().expect("temp dir");
    let watched = Arc::new(Watched::new(storage(&dir)));
    let storage: Arc<dyn Storage> = watched.clone();
    let bus = Bus::new();
    let (a, _a_inbound) = MemoryBroker::join(&bus, "a");
    let (mut b, inbound) = node_b(&storage, &bus).await;
    tokio::spawn(Arc::clone(&b.relay).run(inbound, vec!["order".to_owned()], Duration::from_secs(3600)));
    let first = commit(&storage, 1).await;
    a.publish(Publication::Event { event: first });
    assert_eq!(next(&mut b).await.seq(), 1);
    // Event 2's message is lost; the forty after it all arrive early, and each reveals the same gap.
    commit(&storage, 2).await;
    let mut later = Vec::new();
    for n in 3..=42 {
        later.push(commit(&storage, n).await);
    }
    watched.slow_reads(Duration::from_millis(20));
    for event in later {
        a.publish(Publication::Event { event });
    }
    for seq in 2..=42 {
        assert_eq!(next(&mut b).await.seq(), seq);
    }
    assert_eq!(watched.most_reads_at_once(), 1, "fills of one type ran side by side");
}

#[tokio::test]
async fn a_fill_that_fails_is_tried_again_until_the_gap_closes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let watched = Arc::new(Watched::new(storage(&dir)));
    let storage: Arc<dyn Storage> = watched.clone();
    let bus = Bus::new();
    let (a, _a_inbound) = MemoryBroker::join(&bus, "a");
    let (mut b, inbound) = node_b(&storage, &bus).await;
    // No sweep comes to the rescue: only the fill's own retries can close the gap.
    tokio::spawn(Arc::clone(&b.relay).run(inbound, vec!["order".to_owned()], Duration::from_secs(3600)));
    commit(&storage, 1).await;
    let second = commit(&storage, 2).await;
    watched.fail_reads(3);
    a.publish(Publication::Event { event: second });
    assert_eq!([next(&mut b).await.seq(), next(&mut b).await.seq()], [1, 2]);
}

/// A notification to everyone goes out a page of users at a time: each page one transaction and one broker
/// message of bounded size, so that neither the sending node nor Redis holds one copy per user at once.
#[tokio::test]
async fn a_notification_to_everyone_travels_in_bounded_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = storage(&dir);
    for n in 0..1_200 {
        storage.remember_users(&[format!("user-{n:04}")]).await.expect("a user");
    }
    let bus = Bus::new();
    let (_elsewhere, mut elsewhere) = MemoryBroker::join(&bus, "elsewhere");
    let (b, _inbound) = node_b(&storage, &bus).await;
    let notifier = Notifier::new(Arc::clone(&storage), Arc::clone(&b.relay));
    let draft =
        Draft { level: "info".to_owned(), title: "to all".to_owned(), body: String::new(), data: Default::default() };
    let (_id, recipients) = notifier.send(Recipients::Everyone, draft).await.expect("sent");
    assert_eq!(recipients, 1_200);
    let mut pages = Vec::new();
    while pages.iter().sum::<usize>() < 1_200 {
        let received = tokio::time::timeout(Duration::from_secs(5), elsewhere.recv()).await.expect("in time");
        if let Some(Received::Publication(Publication::Notifications { records })) = received {
            pages.push(records.len());
        }
    }
    assert!(pages.len() >= 3 && pages.iter().all(|&n| n <= 500), "pages of {pages:?}");
}
