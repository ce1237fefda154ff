//! PostgreSQL on a database whose defaults are not ours: Tidings pins what its correctness depends on (READ
//! COMMITTED, recipients locked in one order), so concurrent writes succeed whatever the database's settings.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestDatabase;
use serde_json::json;
use tidings_server::storage::{NewNotification, NewRecord, Postgres, Recipients, Storage};

/// A Tidings storage on a fresh database whose default isolation is REPEATABLE READ, as some operators set it.
async fn on_repeatable_read(test: &str) -> Option<(TestDatabase, Arc<dyn Storage>)> {
    let database = TestDatabase::create(test).await?;
    database
        .admin(&format!("ALTER DATABASE {} SET default_transaction_isolation = 'repeatable read'", database.name))
        .await;
    let storage = Postgres::open(&database.url, Duration::from_secs(60)).await.expect("postgres opens");
    Some((database, Arc::new(storage)))
}

fn order(n: usize) -> NewRecord {
    let data = json!({ "n": n }).as_object().cloned().expect("an object");
    NewRecord { resource_type: "order".to_owned(), id: format!("O-{n}"), owner_id: "alice".to_owned(), data }
}

/// Every event of a type takes the next `seq` from one head row; under REPEATABLE READ, writers that meet there
/// fail with a serialization error. Tidings' transactions run READ COMMITTED, so they all commit.
#[tokio::test]
async fn concurrent_writes_of_one_type_commit_under_a_repeatable_read_default() {
    let Some((_database, storage)) = on_repeatable_read("concurrent_writes_repeatable_read").await else { return };
    let writes: Vec<_> = (0..24)
        .map(|n| {
            let storage = Arc::clone(&storage);
            tokio::spawn(async move { storage.create(order(n), None).await })
        })
        .collect();
    for write in writes {
        write.await.expect("the task ran").expect("every concurrent create commits");
    }
    assert_eq!(storage.head("order").await.expect("head"), 24);
}

/// Notifying `[a, b]` and `[b, a]` at once locks the two users' head rows in opposite orders unless recipients are
/// locked in one order; PostgreSQL then aborts one as a deadlock. A user named twice gets one copy.
#[tokio::test]
async fn crossing_recipient_lists_never_deadlock_and_each_user_gets_one_copy() {
    let Some((_database, storage)) = on_repeatable_read("crossing_recipients").await else { return };
    let note = |n: usize| NewNotification {
        id: format!("NTF-{n}"),
        level: "info".to_owned(),
        title: "hello".to_owned(),
        body: String::new(),
        data: serde_json::Map::new(),
    };
    let sends: Vec<_> = (0..40)
        .map(|n| {
            let storage = Arc::clone(&storage);
            let users: Vec<String> = if n % 2 == 0 { vec!["a", "b", "c"] } else { vec!["c", "b", "a", "b"] }
                .into_iter()
                .map(str::to_owned)
                .collect();
            tokio::spawn(async move { storage.notify(Recipients::Users(users), note(n)).await })
        })
        .collect();
    for send in sends {
        let copies = send.await.expect("the task ran").expect("no deadlock, no serialization failure");
        assert_eq!(copies.len(), 3, "one copy per user: {copies:?}");
    }
    for user in ["a", "b", "c"] {
        assert_eq!(storage.notification_head(user).await.expect("head"), 40, "{user}");
    }
}
