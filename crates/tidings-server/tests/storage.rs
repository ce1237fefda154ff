//! The storage contract of storage/mod.rs, one suite run against each backend: every test runs as `NAME::sqlite`
//! (a temp dir) and `NAME::postgres` (a fresh database on TIDINGS_TEST_POSTGRES_URL).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestDatabase, PATIENCE};
use serde_json::{json, Value};
use tidings_protocol::{ErrorCode, ErrorPayload};
use tidings_server::resources::data::fingerprint;
use tidings_server::storage::{
    CreateOutcome, EventKind, EventRecord, IdempotencyKey, ListQuery, Listed, NewNotification, NewRecord, OrderKey,
    Postgres, Recipients, Record, Sqlite, Storage, StorageError, UpdateOutcome,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Where a test's storage lives; it can be opened more than once, to see what survives.
enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Place {
    async fn open(&self) -> Arc<dyn Storage> {
        self.open_with_window(DAY).await
    }

    async fn open_with_window(&self, window: Duration) -> Arc<dyn Storage> {
        match self {
            Place::Sqlite(dir) => Arc::new(Sqlite::open(&dir.path().join("tidings.db"), window).expect("sqlite opens")),
            Place::Postgres(database) => Arc::new(Postgres::open(&database.url, window).await.expect("postgres opens")),
        }
    }
}

/// Declares each test as `NAME::sqlite` and `NAME::postgres`; `storage:` bodies take an open storage, `place:`
/// bodies the place, to open it themselves.
macro_rules! storage_tests {
    (storage: [$($name:ident),+ $(,)?], place: [$($placed:ident),+ $(,)?] $(,)?) => {
        $(storage_tests!(@one $name, |place: crate::Place| async move { super::$name(place.open().await).await });)+
        $(storage_tests!(@one $placed, |place: crate::Place| async move { super::$placed(&place).await });)+
    };
    (@one $name:ident, $run:expr) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let place = crate::Place::Sqlite(tempfile::tempdir().expect("temp dir"));
                ($run)(place).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(database) = crate::TestDatabase::create(stringify!($name)).await {
                    ($run)(crate::Place::Postgres(database)).await;
                }
            }
        }
    };
}

storage_tests!(
    storage: [
        creates_reads_updates_and_deletes_with_an_event_each,
        events_come_in_order_with_consecutive_seqs_per_type,
        a_retried_create_replays_its_receipt_and_a_reused_key_is_refused,
        concurrent_retries_of_one_create_write_it_once,
        a_refused_check_writes_nothing,
        checks_see_the_row_as_it_is_written,
        concurrent_creates_get_distinct_consecutive_seqs,
        lists_page_through_ties_without_repeating_or_skipping,
        lists_filter_by_strings_numbers_booleans_and_null,
        notifications_have_per_user_seqs_and_pending_ones_go_once,
        pruning_keeps_the_newest_events_and_the_heads,
        a_taken_id_is_refused_as_taken_and_writes_nothing,
        a_check_that_panics_fails_its_write_and_harms_nothing_else,
    ],
    place: [receipts_expire_after_the_window, everything_survives_a_reopen],
);

fn new_record(resource_type: &str, id: &str, owner: &str, data: Value) -> NewRecord {
    NewRecord {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        owner_id: owner.to_owned(),
        data: data.as_object().cloned().expect("an object"),
    }
}

fn key(user: &str, request_id: &str, resource_type: &str, data: &Value) -> IdempotencyKey {
    IdempotencyKey {
        user_id: user.to_owned(),
        request_id: request_id.to_owned(),
        fingerprint: fingerprint(resource_type, data.as_object().expect("an object")),
    }
}

async fn create(storage: &Arc<dyn Storage>, resource_type: &str, id: &str, data: Value) -> (Record, EventRecord) {
    match storage.create(new_record(resource_type, id, "alice", data), None).await.expect("created") {
        CreateOutcome::Created(record, event) => (record, event),
        other => panic!("expected a new resource, got {other:?}"),
    }
}

/// An update check that sets `field` to `value`.
fn set(field: &str, value: Value) -> tidings_server::storage::UpdateCheck {
    let field = field.to_owned();
    Box::new(move |current: &Record| {
        let mut data = current.data.clone();
        data.insert(field, value);
        Ok(Some(data))
    })
}

fn refusal() -> ErrorPayload {
    ErrorPayload::new(ErrorCode::Conflict, "refused by the test")
}

fn list_query(order: OrderKey, descending: bool, limit: usize) -> ListQuery {
    ListQuery {
        resource_type: "item".to_owned(),
        owner: None,
        filter: Vec::new(),
        order,
        descending,
        after: None,
        limit,
    }
}

async fn creates_reads_updates_and_deletes_with_an_event_each(storage: Arc<dyn Storage>) {
    let (record, event) = create(&storage, "order", "ORD-1", json!({ "quantity": 2, "note": "first" })).await;
    assert_eq!((record.version, record.owner_id.as_str(), record.created_at), (1, "alice", record.updated_at));
    assert_eq!((event.seq, event.kind, event.version, event.actor.as_str()), (1, EventKind::Created, 1, "alice"));
    assert_eq!(event.data, record.data);
    assert_eq!(storage.get("order", "ORD-1").await.expect("get"), Some(record.clone()));
    assert_eq!(storage.get("order", "ORD-2").await.expect("get"), None);
    assert_eq!(storage.get("invoice", "ORD-1").await.expect("get"), None, "ids belong to their type");

    let changed = storage.update("order", "ORD-1", "bob", set("quantity", json!(5))).await.expect("updated");
    let UpdateOutcome::Changed(updated, event) = changed else { panic!("expected a change: {changed:?}") };
    assert_eq!(
        (updated.version, updated.data["quantity"].clone(), updated.created_at),
        (2, json!(5), record.created_at)
    );
    assert!(updated.updated_at >= record.updated_at);
    assert_eq!((event.seq, event.kind, event.version, event.actor.as_str()), (2, EventKind::Updated, 2, "bob"));
    assert_eq!(storage.get("order", "ORD-1").await.expect("get"), Some(updated.clone()));

    let same = storage.update("order", "ORD-1", "bob", Box::new(|_| Ok(None))).await.expect("no change");
    assert_eq!(same, UpdateOutcome::Unchanged(updated.clone()));
    assert_eq!(storage.head("order").await.expect("head"), 2, "no change, no event");

    let deleted = storage.delete("order", "ORD-1", "carol", Box::new(|_| Ok(()))).await.expect("deleted");
    assert_eq!((deleted.seq, deleted.kind, deleted.version), (3, EventKind::Deleted, 3));
    assert_eq!((deleted.data, deleted.owner_id.as_str()), (updated.data, "alice"), "the data before the deletion");
    assert_eq!(storage.get("order", "ORD-1").await.expect("get"), None);

    let missing = storage.update("order", "ORD-1", "bob", set("quantity", json!(1))).await;
    assert!(matches!(missing, Err(StorageError::NotFound)), "{missing:?}");
    let missing = storage.delete("order", "ORD-1", "bob", Box::new(|_| Ok(()))).await;
    assert!(matches!(missing, Err(StorageError::NotFound)), "{missing:?}");
    storage.ping().await.expect("ping");
}

async fn events_come_in_order_with_consecutive_seqs_per_type(storage: Arc<dyn Storage>) {
    assert_eq!(storage.head("order").await.expect("head"), 0, "no events yet");
    for n in 1..=4 {
        create(&storage, "order", &format!("ORD-{n}"), json!({ "n": n })).await;
        create(&storage, "invoice", &format!("INV-{n}"), json!({ "n": n })).await;
    }
    for n in 0..3 {
        storage.update("order", "ORD-2", "alice", set("n", json!(10 + n))).await.expect("updated");
    }
    storage.delete("order", "ORD-2", "alice", Box::new(|_| Ok(()))).await.expect("deleted");
    assert_eq!((storage.head("order").await.expect("head"), storage.head("invoice").await.expect("head")), (8, 4));

    let orders = storage.events_after("order", None, 0, 100).await.expect("events");
    let seqs: Vec<u64> = orders.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let kinds: Vec<(&str, EventKind)> = orders.iter().map(|e| (e.id.as_str(), e.kind)).collect();
    assert_eq!(
        kinds[4..],
        [
            ("ORD-2", EventKind::Updated),
            ("ORD-2", EventKind::Updated),
            ("ORD-2", EventKind::Updated),
            ("ORD-2", EventKind::Deleted)
        ]
    );
    assert!(orders.iter().all(|e| e.resource_type == "order"));

    let page = storage.events_after("order", None, 3, 2).await.expect("events");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5], "after 3, at most 2");
    let of_one = storage.events_after("order", Some("ORD-2"), 1, 100).await.expect("events");
    assert_eq!(of_one.iter().map(|e| e.version).collect::<Vec<_>>(), [2, 3, 4, 5], "one resource's, by version");
    assert_eq!(of_one[1].data["n"], json!(11));
    let invoices = storage.events_after("invoice", None, 0, 100).await.expect("events");
    assert_eq!(invoices.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4], "each type has its own seqs");
    assert!(storage.events_after("order", None, 8, 100).await.expect("events").is_empty());
}

async fn a_retried_create_replays_its_receipt_and_a_reused_key_is_refused(storage: Arc<dyn Storage>) {
    let data = json!({ "productId": "P1", "quantity": 2 });
    let first = storage
        .create(new_record("order", "ORD-1", "alice", data.clone()), Some(key("alice", "req-1", "order", &data)))
        .await
        .expect("created");
    let CreateOutcome::Created(record, _) = first else { panic!("a new resource: {first:?}") };
    // A retry carries a new id (the service makes one per attempt); the receipt answers with the first one.
    let retry = storage
        .create(new_record("order", "ORD-2", "alice", data.clone()), Some(key("alice", "req-1", "order", &data)))
        .await
        .expect("replayed");
    assert_eq!(retry, CreateOutcome::Replayed(record.clone()));
    assert_eq!(storage.get("order", "ORD-2").await.expect("get"), None, "a replay writes nothing");
    assert_eq!(storage.head("order").await.expect("head"), 1, "a replay has no event");

    let other = json!({ "productId": "P2", "quantity": 1 });
    let reused = storage
        .create(new_record("order", "ORD-3", "alice", other.clone()), Some(key("alice", "req-1", "order", &other)))
        .await;
    assert!(matches!(reused, Err(StorageError::KeyReused)), "{reused:?}");
    assert_eq!(storage.get("order", "ORD-3").await.expect("get"), None);

    let bobs = storage
        .create(new_record("order", "ORD-4", "bob", data.clone()), Some(key("bob", "req-1", "order", &data)))
        .await
        .expect("created");
    assert!(matches!(bobs, CreateOutcome::Created(ref r, _) if r.id == "ORD-4"), "keys are per user: {bobs:?}");
    assert_eq!(storage.head("order").await.expect("head"), 2);
}

async fn concurrent_retries_of_one_create_write_it_once(storage: Arc<dyn Storage>) {
    let data = json!({ "productId": "P1", "quantity": 2 });
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let (storage, data) = (Arc::clone(&storage), data.clone());
            tokio::spawn(async move {
                let key = key("alice", "req-1", "order", &data);
                storage.create(new_record("order", &format!("ORD-{n}"), "alice", data), Some(key)).await
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut replayed = Vec::new();
    for task in tasks {
        match task.await.expect("no panic").expect("created or replayed") {
            CreateOutcome::Created(record, _) => created.push(record),
            CreateOutcome::Replayed(record) => replayed.push(record),
        }
    }
    assert_eq!(created.len(), 1, "one create wins: {created:?}");
    assert!(replayed.iter().all(|r| *r == created[0]), "the others replay it");
    assert_eq!(storage.head("order").await.expect("head"), 1, "one event");
    let all = storage.list(ListQuery { resource_type: "order".to_owned(), ..list_query(OrderKey::Id, false, 100) });
    assert_eq!(all.await.expect("a page").len(), 1, "one resource");
}

async fn a_refused_check_writes_nothing(storage: Arc<dyn Storage>) {
    let (record, _) = create(&storage, "order", "ORD-1", json!({ "quantity": 2 })).await;
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen_by_check = Arc::clone(&seen);
    let refused = storage
        .update(
            "order",
            "ORD-1",
            "bob",
            Box::new(move |current| {
                *seen_by_check.lock().expect("lock") = Some(current.clone());
                Err(refusal())
            }),
        )
        .await;
    assert!(matches!(refused, Err(StorageError::Rejected(ref e)) if e.code == ErrorCode::Conflict), "{refused:?}");
    assert_eq!(seen.lock().expect("lock").as_ref(), Some(&record), "the check saw the stored record");
    let refused = storage.delete("order", "ORD-1", "bob", Box::new(|_| Err(refusal()))).await;
    assert!(matches!(refused, Err(StorageError::Rejected(_))), "{refused:?}");

    assert_eq!(storage.get("order", "ORD-1").await.expect("get"), Some(record), "nothing changed");
    assert_eq!(storage.head("order").await.expect("head"), 1, "no event");
    assert_eq!(storage.events_after("order", None, 0, 100).await.expect("events").len(), 1);
    // The refused changes left nothing behind that would disturb the next one.
    storage.update("order", "ORD-1", "bob", set("quantity", json!(3))).await.expect("updated");
    assert_eq!(storage.head("order").await.expect("head"), 2);
}

async fn checks_see_the_row_as_it_is_written(storage: Arc<dyn Storage>) {
    create(&storage, "counter", "C-1", json!({ "count": 0 })).await;
    // Each update reads the count and writes one more: a check that saw a stale row would lose an increment.
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let storage = Arc::clone(&storage);
            tokio::spawn(async move {
                let increment = Box::new(|current: &Record| {
                    let mut data = current.data.clone();
                    let count = current.data["count"].as_u64().expect("a count");
                    data.insert("count".to_owned(), json!(count + 1));
                    Ok(Some(data))
                });
                storage.update("counter", "C-1", "alice", increment).await.expect("updated")
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for task in tasks {
        let UpdateOutcome::Changed(record, _) = task.await.expect("no panic") else { panic!("a change") };
        versions.insert(record.version);
    }
    assert_eq!(versions, (2..=25).collect(), "every update got its own version");
    let record = storage.get("counter", "C-1").await.expect("get").expect("there");
    assert_eq!((record.version, record.data["count"].clone()), (25, json!(24)));
}

async fn concurrent_creates_get_distinct_consecutive_seqs(storage: Arc<dyn Storage>) {
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let storage = Arc::clone(&storage);
            tokio::spawn(async move {
                let new = new_record("order", &format!("ORD-{n:02}"), &format!("user-{}", n % 4), json!({ "n": n }));
                match storage.create(new, None).await.expect("created") {
                    CreateOutcome::Created(_, event) => event.seq,
                    other => panic!("a new resource: {other:?}"),
                }
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.expect("no panic"));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<_>>(), "distinct, consecutive, no gaps");
    assert_eq!(storage.head("order").await.expect("head"), 64);
    let events = storage.events_after("order", None, 0, 1000).await.expect("events");
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=64).collect::<Vec<_>>());
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 64, "one event per create");
}

/// Reads a whole list in pages of `limit`, each starting after the previous page's last key and id.
async fn all_pages(storage: &Arc<dyn Storage>, query: ListQuery) -> Vec<Listed> {
    let mut items: Vec<Listed> = Vec::new();
    let mut query = query;
    for _ in 0..100 {
        let page = storage.list(query.clone()).await.expect("a page");
        assert!(page.len() <= query.limit);
        let Some(last) = page.last() else { return items };
        query.after = Some((last.key.clone(), last.record.id.clone()));
        items.extend(page);
    }
    panic!("paging does not end");
}

async fn lists_page_through_ties_without_repeating_or_skipping(storage: Arc<dyn Storage>) {
    let ranks = [3, 1, 3, 2, 1, 3, 2, 3, 1];
    for (n, rank) in ranks.iter().enumerate() {
        let data = json!({ "rank": rank, "name": format!("n{}", rank * 10) });
        create(&storage, "item", &format!("ITM-{n}"), data).await;
    }
    create(&storage, "item", "ITM-9", json!({})).await;
    create(&storage, "other", "OTH-1", json!({ "rank": 0 })).await;

    let rank_order = OrderKey::Field("rank".to_owned(), "integer".to_owned());
    for descending in [false, true] {
        for limit in [1, 2, 4, 100] {
            let items = all_pages(&storage, list_query(rank_order.clone(), descending, limit)).await;
            let mut got: Vec<(i64, String)> = items
                .iter()
                .map(|l| (l.record.data.get("rank").and_then(Value::as_i64).unwrap_or(-1), l.record.id.clone()))
                .collect();
            assert_eq!(got.len(), 10, "every item once, limit {limit}: {got:?}");
            if descending {
                got.reverse();
            }
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(got, sorted, "by rank then id, the absent rank first, descending {descending}");
            assert_eq!(got[0], (-1, "ITM-9".to_owned()));
        }
    }
    let by_name =
        all_pages(&storage, list_query(OrderKey::Field("name".to_owned(), "string".to_owned()), false, 3)).await;
    let names: Vec<&str> =
        by_name.iter().map(|l| l.record.data.get("name").and_then(Value::as_str).unwrap_or("")).collect();
    assert_eq!(names, ["", "n10", "n10", "n10", "n20", "n20", "n30", "n30", "n30", "n30"]);

    // Creates in one millisecond tie on createdAt, and the id breaks the tie.
    for order in [OrderKey::CreatedAt, OrderKey::UpdatedAt, OrderKey::Id] {
        let items = all_pages(&storage, list_query(order.clone(), false, 3)).await;
        let ids: Vec<&str> = items.iter().map(|l| l.record.id.as_str()).collect();
        assert_eq!(ids.len(), 10, "{order:?}: {ids:?}");
        let keys: Vec<(Value, &str)> = items.iter().map(|l| (l.key.clone(), l.record.id.as_str())).collect();
        if order == OrderKey::Id {
            assert_eq!(ids, (0..10).map(|n| format!("ITM-{n}")).collect::<Vec<_>>());
        } else {
            assert!(keys.windows(2).all(|w| (w[0].0.as_u64(), w[0].1) < (w[1].0.as_u64(), w[1].1)), "{keys:?}");
        }
    }
}

async fn lists_filter_by_strings_numbers_booleans_and_null(storage: Arc<dyn Storage>) {
    let items = [
        ("ITM-1", json!({ "n": 3, "s": "a", "b": true, "z": null })),
        ("ITM-2", json!({ "n": "3", "s": "b", "b": false })),
        ("ITM-3", json!({ "n": 3.0, "s": "a", "b": "true", "z": 0 })),
        ("ITM-4", json!({ "n": 4, "s": "A", "z": "" })),
    ];
    for (id, data) in items {
        create(&storage, "item", id, data).await;
    }
    let filtered = |filter: Vec<(&'static str, Value)>| {
        let storage = Arc::clone(&storage);
        async move {
            let mut query = list_query(OrderKey::Id, false, 100);
            query.filter = filter.into_iter().map(|(f, v)| (f.to_owned(), v)).collect();
            let page = storage.list(query).await.expect("a page");
            page.into_iter().map(|l| l.record.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(filtered(vec![("n", json!(3))]).await, ["ITM-1", "ITM-3"], "3 and 3.0, never \"3\"");
    assert_eq!(filtered(vec![("n", json!("3"))]).await, ["ITM-2"]);
    assert_eq!(filtered(vec![("s", json!("a"))]).await, ["ITM-1", "ITM-3"], "strings match exactly");
    assert_eq!(filtered(vec![("b", json!(true))]).await, ["ITM-1"], "a boolean is not the string \"true\"");
    assert_eq!(filtered(vec![("b", json!(false))]).await, ["ITM-2"]);
    assert_eq!(filtered(vec![("b", Value::Null)]).await, ["ITM-4"], "null matches an absent field");
    assert_eq!(filtered(vec![("z", Value::Null)]).await, ["ITM-1", "ITM-2"], "and a null one, not 0 or \"\"");
    assert_eq!(filtered(vec![("n", json!(3)), ("s", json!("a")), ("b", json!(true))]).await, ["ITM-1"]);
    assert!(filtered(vec![("missing", json!(1))]).await.is_empty());

    let mut query = list_query(OrderKey::Id, false, 100);
    query.owner = Some("bob".to_owned());
    assert!(storage.list(query).await.expect("a page").is_empty(), "only bob's");
    storage.create(new_record("item", "ITM-5", "bob", json!({ "n": 3 })), None).await.expect("created");
    let mut query = list_query(OrderKey::Id, false, 100);
    query.owner = Some("bob".to_owned());
    query.filter = vec![("n".to_owned(), json!(3))];
    let page = storage.list(query).await.expect("a page");
    assert_eq!(page.iter().map(|l| l.record.id.as_str()).collect::<Vec<_>>(), ["ITM-5"]);
}

async fn receipts_expire_after_the_window(place: &Place) {
    let storage = place.open_with_window(Duration::from_millis(300)).await;
    let data = json!({ "quantity": 1 });
    let attempt = |id: String| {
        let storage = Arc::clone(&storage);
        let data = data.clone();
        async move {
            let key = key("alice", "req-1", "order", &data);
            storage.create(new_record("order", &id, "alice", data), Some(key)).await.expect("a create")
        }
    };
    assert!(matches!(attempt("ORD-0".to_owned()).await, CreateOutcome::Created(..)));
    // Within the window every retry replays; once it has passed, the same requestId creates anew.
    let started = Instant::now();
    for n in 1.. {
        match attempt(format!("ORD-{n}")).await {
            CreateOutcome::Replayed(record) => assert_eq!(record.id, "ORD-0"),
            CreateOutcome::Created(record, event) => {
                assert_eq!((record.id.clone(), event.seq), (format!("ORD-{n}"), 2));
                let again = attempt("ORD-X".to_owned()).await;
                assert_eq!(again, CreateOutcome::Replayed(record), "the new create left a new receipt");
                break;
            }
        }
        assert!(started.elapsed() < PATIENCE, "the receipt never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn everything_survives_a_reopen(place: &Place) {
    let data = json!({ "quantity": 1, "note": "kept" });
    let storage = place.open().await;
    let CreateOutcome::Created(record, _) = storage
        .create(new_record("order", "ORD-1", "alice", data.clone()), Some(key("alice", "req-1", "order", &data)))
        .await
        .expect("created")
    else {
        panic!("a new resource")
    };
    storage.update("order", "ORD-1", "alice", set("quantity", json!(2))).await.expect("updated");
    drop(storage);

    // Opening again runs the migrations again, which must find nothing to do.
    let storage = place.open().await;
    let stored = storage.get("order", "ORD-1").await.expect("get").expect("kept");
    assert_eq!(
        (stored.version, stored.data["quantity"].clone(), stored.data["note"].clone()),
        (2, json!(2), json!("kept"))
    );
    assert_eq!(storage.head("order").await.expect("head"), 2);
    let retry = storage
        .create(new_record("order", "ORD-2", "alice", data.clone()), Some(key("alice", "req-1", "order", &data)))
        .await
        .expect("replayed");
    assert_eq!(retry, CreateOutcome::Replayed(record));
    let (_, event) = create(&storage, "order", "ORD-3", json!({})).await;
    assert_eq!(event.seq, 3, "seqs go on where they stopped");
}

fn notification(title: &str) -> NewNotification {
    NewNotification {
        id: format!("NTF-{title}"),
        level: "info".to_owned(),
        title: title.to_owned(),
        body: String::new(),
        data: serde_json::Map::new(),
    }
}

async fn notifications_have_per_user_seqs_and_pending_ones_go_once(storage: Arc<dyn Storage>) {
    storage.remember_user("ann").await.expect("remember");
    storage.remember_user("ben").await.expect("remember");
    storage.remember_user("ann").await.expect("remembering twice is fine");
    for title in ["one", "two"] {
        let copies =
            storage.notify(Recipients::Users(vec!["ann".to_owned()]), notification(title)).await.expect("notify");
        assert_eq!(copies.len(), 1);
    }
    let everyone = storage.notify(Recipients::Everyone, notification("all")).await.expect("notify everyone");
    let seqs: Vec<(String, u64)> = everyone.iter().map(|n| (n.user_id.clone(), n.seq)).collect();
    assert_eq!(seqs, [("ann".to_owned(), 3), ("ben".to_owned(), 1)], "every user's own next seq");
    assert_eq!(storage.notification_head("ann").await.expect("head"), 3);
    assert_eq!(storage.notification_head("nobody").await.expect("head"), 0);

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
async fn oldest(storage: &Arc<dyn Storage>, resource_type: &str, id: Option<&str>) -> Option<u64> {
    let kept = storage.events_after(resource_type, id, 0, 1).await.expect("events");
    kept.first().map(|event| if id.is_some() { event.version } else { event.seq })
}

async fn pruning_keeps_the_newest_events_and_the_heads(storage: Arc<dyn Storage>) {
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

/// Ids are random, so two creates may draw the same one: storage must say so (the service then draws again), not
/// fail as if the database were broken, and must write nothing.
async fn a_taken_id_is_refused_as_taken_and_writes_nothing(storage: Arc<dyn Storage>) {
    create(&storage, "order", "O-1", json!({ "n": 1 })).await;
    let again = storage.create(new_record("order", "O-1", "bob", json!({ "n": 2 })), None).await;
    assert!(matches!(again, Err(StorageError::IdTaken)), "{again:?}");
    assert_eq!(storage.head("order").await.expect("head"), 1, "the refused create has no event");
    let kept = storage.get("order", "O-1").await.expect("read").expect("the first is there");
    assert_eq!(kept.owner_id, "alice");
}

/// A check is the service's code run inside the transaction; if a bug makes it panic, that write fails and the
/// storage goes on: the next write is stored, and the storage still says it is ready.
async fn a_check_that_panics_fails_its_write_and_harms_nothing_else(storage: Arc<dyn Storage>) {
    create(&storage, "order", "O-1", json!({ "n": 1 })).await;
    let panics: tidings_server::storage::UpdateCheck = Box::new(|_| panic!("a bug in a check"));
    let failed = storage.update("order", "O-1", "alice", panics).await;
    assert!(matches!(failed, Err(StorageError::Internal(_))), "{failed:?}");
    let UpdateOutcome::Changed(record, _) =
        storage.update("order", "O-1", "alice", set("n", json!(2))).await.expect("the next write")
    else {
        panic!("expected a change")
    };
    assert_eq!(record.version, 2, "the failed write changed nothing");
    storage.ping().await.expect("still ready");
}
