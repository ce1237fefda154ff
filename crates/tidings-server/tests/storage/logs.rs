//! The storage contract for the logs: per-user notifications, and pruning of the event log.

use super::*;
use tidings_protocol::now_ms;

pub(crate) fn notification(title: &str) -> NewNotification {
    NewNotification {
        id: format!("NTF-{title}"),
        level: "info".to_owned(),
        title: title.to_owned(),
        body: String::new(),
        data: serde_json::Map::new(),
    }
}

pub(crate) async fn notifications_have_per_user_seqs_and_pending_ones_go_once(storage: Arc<dyn Storage>) {
    storage.remember_users(&["ann".into(), "ben".into(), "ann".into()]).await.expect("remembering twice is fine");
    storage.remember_users(&[]).await.expect("remembering no one is fine");
    for title in ["one", "two"] {
        let copies =
            storage.notify(Recipients::Users(vec!["ann".to_owned()]), notification(title)).await.expect("notify");
        assert_eq!(copies.len(), 1);
    }
    let everyone = storage.notify(Recipients::Everyone, notification("all")).await.expect("notify everyone");
    let seqs: Vec<(String, u64)> = everyone.iter().map(|n| (n.user_id.clone(), n.seq)).collect();
    assert_eq!(seqs, [("ann".to_owned(), 3), ("ben".to_owned(), 1)], "every user's own next seq");
    assert_eq!(storage.notification_head("ann").await.expect("head").seq, 3);
    assert_eq!(storage.notification_head("nobody").await.expect("head").seq, 0);

    let pending = storage.take_pending("ann", 2).await.expect("pending");
    let titles: Vec<&str> = pending.records.iter().map(|n| n.title.as_str()).collect();
    assert_eq!((titles.as_slice(), pending.head), (["two", "all"].as_slice(), 3), "the newest, oldest first");
    let again = storage.take_pending("ann", 2).await.expect("pending");
    assert_eq!(again.records.len(), 2, "pending until marked delivered");
    storage.mark_delivered("ann", vec![2, 3]).await.expect("mark");
    storage.mark_delivered("ann", vec![2, 3]).await.expect("marking twice is fine");
    assert!(storage.take_pending("ann", 2).await.expect("pending").records.is_empty(), "the older one was marked too");
    let history = storage.notifications_after("ann", 0, 10).await.expect("history");
    assert_eq!(history.iter().map(|n| n.seq).collect::<Vec<_>>(), [1, 2, 3], "delivered ones stay readable");
    assert_eq!(storage.notifications_after("ann", 2, 10).await.expect("after").len(), 1);
}

/// The position of the oldest event kept of a type (its `seq`), or of one resource of it (its version).
pub(crate) async fn oldest(storage: &Arc<dyn Storage>, resource_type: &str, id: Option<&str>) -> Option<u64> {
    let kept = storage.events_after(resource_type, id, 0, 1).await.expect("events");
    kept.first().map(|event| if id.is_some() { event.version } else { event.seq })
}

pub(crate) async fn pruning_keeps_the_newest_events_and_the_heads(storage: Arc<dyn Storage>) {
    for n in 0..10 {
        create(&storage, "order", &format!("O-{n}"), json!({ "n": n })).await;
    }
    for n in 0..2 {
        create(&storage, "invoice", &format!("I-{n}"), json!({ "n": n })).await;
    }
    assert_eq!(storage.prune_events(3, 0).await.expect("prune by count"), 7);
    assert_eq!(oldest(&storage, "order", None).await, Some(8));
    assert_eq!(oldest(&storage, "invoice", None).await, Some(1));
    assert_eq!(oldest(&storage, "order", Some("O-9")).await, Some(1));
    let far_future = tidings_protocol::now_ms() + 3_600_000;
    assert_eq!(storage.prune_events(1_000, far_future).await.expect("prune by age"), 5);
    assert_eq!(oldest(&storage, "order", None).await, None);
    assert_eq!(storage.head("order").await.expect("head"), 10, "the head survives pruning");
    let (_, event) = create(&storage, "order", "O-10", json!({})).await;
    assert_eq!(event.seq, 11, "seq never repeats");
}

/// Delivered notifications past their retention are dropped from each user's oldest on, never an undelivered one
/// nor any after it; the head keeps counting, and says how far they were pruned.
pub(crate) async fn delivered_notifications_are_pruned_from_the_oldest(storage: Arc<dyn Storage>) {
    for title in ["one", "two", "three", "four"] {
        storage.notify(Recipients::Users(vec!["ann".to_owned()]), notification(title)).await.expect("notify");
    }
    storage.mark_delivered("ann", vec![1, 2, 4]).await.expect("mark");
    let later = tidings_protocol::now_ms() + 3_600_000;
    assert_eq!(storage.prune_notifications(later).await.expect("prune"), 2, "3 is undelivered: it and 4 stay");
    let kept: Vec<u64> = storage.notifications_after("ann", 0, 10).await.expect("kept").iter().map(|n| n.seq).collect();
    assert_eq!(kept, [3, 4]);
    let head = storage.notification_head("ann").await.expect("head");
    assert_eq!((head.seq, head.pruned), (4, 2));
    assert_eq!(storage.prune_notifications(0).await.expect("prune"), 0, "nothing is old enough");
    storage.mark_delivered("ann", vec![3]).await.expect("mark");
    assert_eq!(storage.prune_notifications(later).await.expect("prune"), 2);
    assert_eq!(storage.notification_head("ann").await.expect("head"), NotificationHead { seq: 4, pruned: 4 });
    let next = storage.notify(Recipients::Users(vec!["ann".to_owned()]), notification("five")).await.expect("notify");
    assert_eq!(next[0].seq, 5, "seq never repeats");
}

pub(crate) async fn users_who_stopped_signing_in_are_forgotten_until_they_return(storage: Arc<dyn Storage>) {
    storage.remember_users(&["ann".into(), "ben".into()]).await.expect("remember");
    storage.notify(Recipients::Users(vec!["ann".to_owned()]), notification("mine")).await.expect("notify");
    let everyone = |storage: Arc<dyn Storage>| async move { storage.users_after("", 100).await.expect("users") };
    // Both signed in just now: a cut in the past forgets no one.
    assert_eq!(storage.forget_users(now_ms() - 60_000).await.expect("forget"), 0);
    assert_eq!(everyone(Arc::clone(&storage)).await, ["ann", "ben"]);
    // A cut after their last sign-in forgets both: a notification to everyone reaches no one.
    assert_eq!(storage.forget_users(now_ms() + 1).await.expect("forget"), 2);
    assert!(everyone(Arc::clone(&storage)).await.is_empty());
    assert!(storage.notify(Recipients::Everyone, notification("all")).await.expect("notify").is_empty());
    // Ann's own notification and her place in the sequence stay; signing in again brings her back.
    storage.remember_users(&["ann".into()]).await.expect("remember again");
    assert_eq!(everyone(Arc::clone(&storage)).await, ["ann"]);
    let copies = storage.notify(Recipients::Everyone, notification("welcome back")).await.expect("notify");
    assert_eq!(copies.iter().map(|n| (n.user_id.as_str(), n.seq)).collect::<Vec<_>>(), [("ann", 2)]);
}

/// An update's and a deletion's event keep the resource as it was before the change, live and in the log, so
/// that a query subscription knows what its query matched then; a creation's has nothing before it.
pub(crate) async fn events_keep_the_resource_as_it_was_before(storage: Arc<dyn Storage>) {
    let (created, born) = create(&storage, "order", "O-1", json!({ "status": "pending", "n": 1 })).await;
    assert_eq!(born.previous, None);
    let changed = match storage.update("order", "O-1", "olga", set("status", json!("shipped"))).await {
        Ok(UpdateOutcome::Changed(_, event)) => event,
        other => panic!("expected a change, got {other:?}"),
    };
    let before = changed.previous.clone().expect("an update keeps the resource before it");
    assert_eq!(Value::Object(before.data.clone()), json!({ "status": "pending", "n": 1 }));
    assert_eq!((before.created_at, before.updated_at), (created.created_at, created.updated_at));
    let gone = storage.delete("order", "O-1", "olga", Box::new(|_| Ok(()))).await.expect("deleted");
    let last = gone.previous.clone().expect("a deletion keeps the resource before it");
    assert_eq!(Value::Object(last.data), json!({ "status": "shipped", "n": 1 }));
    let logged = storage.events_after("order", None, 0, 10).await.expect("events");
    assert_eq!(logged, [born, changed, gone], "the log holds what was published");
}
