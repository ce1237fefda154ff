//! The storage contract of storage/mod.rs, one suite run against each backend: every test runs as `NAME::sqlite`
//! (a temp dir) and `NAME::postgres` (a fresh database on TIDINGS_TEST_POSTGRES_URL).

mod batches;
#[path = "../common/mod.rs"]
mod common;
mod hooks;
mod lists;
mod logs;
mod queries;
mod rules;
mod writes;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestDatabase, PATIENCE};
use serde_json::{json, Value};
use tidings_protocol::{ErrorCode, ErrorPayload};
use tidings_server::resources::data::fingerprint;
use tidings_server::storage::{
    CreateOutcome, EventKind, EventRecord, IdempotencyKey, ListQuery, Listed, NewNotification, NewRecord,
    NotificationHead, OrderKey, Postgres, Recipients, Record, Sort, Sqlite, Storage, StorageError, UpdateOutcome,
};

use batches::*;
use hooks::*;
use lists::*;
use logs::*;
use queries::*;
use rules::*;
use writes::*;

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
        delivered_notifications_are_pruned_from_the_oldest,
        users_who_stopped_signing_in_are_forgotten_until_they_return,
        queries_list_exactly_what_the_in_memory_evaluator_matches,
        events_keep_the_resource_as_it_was_before,
        a_list_at_the_head_is_one_moment,
        lists_order_by_several_keys_and_count_every_page,
        a_hook_cursor_moves_only_from_where_it_was_read,
        one_node_at_a_time_holds_a_hook,
        a_batch_commits_every_change_or_none,
        a_retried_batch_replays_its_receipt,
        batches_over_the_same_rows_in_opposite_orders_neither_deadlock_nor_interleave,
        rules_list_read_and_scope_the_same_resources,
    ],
    place: [receipts_expire_after_the_window, everything_survives_a_reopen, a_list_by_an_indexed_field_reads_its_index],
);

pub(crate) fn new_record(resource_type: &str, id: &str, owner: &str, data: Value) -> NewRecord {
    NewRecord {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        owner_id: owner.to_owned(),
        data: data.as_object().cloned().expect("an object"),
    }
}

pub(crate) fn key(user: &str, request_id: &str, resource_type: &str, data: &Value) -> IdempotencyKey {
    IdempotencyKey {
        user_id: user.to_owned(),
        request_id: request_id.to_owned(),
        fingerprint: fingerprint(resource_type, data.as_object().expect("an object")),
    }
}

pub(crate) async fn create(
    storage: &Arc<dyn Storage>,
    resource_type: &str,
    id: &str,
    data: Value,
) -> (Record, EventRecord) {
    match storage.create(new_record(resource_type, id, "alice", data), None).await.expect("created") {
        CreateOutcome::Created(record, event) => (record, event),
        other => panic!("expected a new resource, got {other:?}"),
    }
}

/// An update check that sets `field` to `value`.
pub(crate) fn set(field: &str, value: Value) -> tidings_server::storage::UpdateCheck {
    let field = field.to_owned();
    Box::new(move |current: &Record| {
        let mut data = current.data.clone();
        data.insert(field, value);
        Ok(Some(data))
    })
}

pub(crate) fn refusal() -> ErrorPayload {
    ErrorPayload::new(ErrorCode::Conflict, "refused by the test")
}

pub(crate) fn list_query(order: OrderKey, descending: bool, limit: usize) -> ListQuery {
    ListQuery {
        resource_type: "item".to_owned(),
        owner: None,
        filter: Vec::new(),
        order: vec![Sort { key: order, descending }],
        condition: None,
        after: None,
        limit,
    }
}
