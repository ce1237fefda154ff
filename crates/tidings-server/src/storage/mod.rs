//! Durable storage of resources, their event log and create receipts, behind one trait with two backends.
//!
//! The contract every backend keeps (tests/storage/ runs one suite against each):
//! - A write and its event commit in one transaction: no change without its event, no event without its change.
//! - A write is reported only after it is durable (committed to disk, or to PostgreSQL).
//! - Every event of a type gets the next `seq` of that type, strictly increasing, without gaps.
//! - A create with an idempotency key that was seen within the window writes nothing and returns the record as
//!   it was first created; the same key with different content is refused.
//! - A create whose id is taken writes nothing and is refused as `IdTaken`.
//! - Creates queued one after another (`queue_create`) are stored in that order.
//! - `update` and `delete` run their check on the current record inside the transaction, so concurrent
//!   changes cannot slip between the check and the write. A check that panics fails its own write as
//!   `Internal` and harms nothing else: the storage goes on serving.
//! - An unreachable database is `StorageError::Unavailable`, and the backend recovers by itself when it returns.
//!   `Unavailable` from a write means nothing was written. A write whose COMMIT may have taken effect (its answer
//!   was lost) is found out: it is reported done when it was, and `Unknown` only when that cannot be learned.

pub mod batch;
pub mod hooks;
mod measured;
pub mod notifications;
mod postgres;
mod sqlite;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tidings_protocol::ErrorPayload;
use tracing::info;

use crate::config::Config;

pub use batch::{BatchFailure, BatchOutcome, Change, Outcome};
pub use hooks::{HookControl, HookState, Hooks};
pub use measured::Measured;
pub use notifications::{NewNotification, NotificationHead, NotificationRecord, Notifications, Pending, Recipients};
pub use postgres::Postgres;
pub use sqlite::Sqlite;

/// A resource as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Its type.
    pub resource_type: String,
    /// Its id.
    pub id: String,
    /// Its owner.
    pub owner_id: String,
    /// 1 after create, one more per change.
    pub version: u64,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms.
    pub updated_at: u64,
    /// Its fields.
    pub data: Map<String, Value>,
}

/// What happened to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// It was created.
    Created,
    /// It was changed.
    Updated,
    /// It was deleted.
    Deleted,
}

impl EventKind {
    /// The suffix of `eventType` and the stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Deleted => "deleted",
        }
    }

    /// The kind with this stored name.
    pub fn parse(name: &str) -> Option<EventKind> {
        [EventKind::Created, EventKind::Updated, EventKind::Deleted].into_iter().find(|k| k.as_str() == name)
    }
}

/// One entry of the event log (also what the broker carries between nodes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The type whose topic it belongs to.
    pub resource_type: String,
    /// Its position in the type's topic.
    pub seq: u64,
    /// The resource.
    pub id: String,
    /// The resource's version after the change.
    pub version: u64,
    /// What happened.
    pub kind: EventKind,
    /// The resource's owner.
    pub owner_id: String,
    /// The user who made the change.
    pub actor: String,
    /// The resource's data after the change (for a deletion, before it).
    pub data: Map<String, Value>,
    /// When it was committed, Unix ms.
    pub occurred_at: u64,
    /// For an update or a deletion, the resource as it was before: what a query matched then, so that a query
    /// subscription learns that a resource entered or left it without a storage read. `None` for a creation, and
    /// for events logged before Tidings kept it (a query subscription then treats the past as unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Box<Previous>>,
}

/// A resource as it was before a change, as far as a query reads it (its id, owner and version are the event's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Previous {
    /// `createdAt`, Unix ms (which no change moves).
    pub created_at: u64,
    /// `updatedAt` before the change, Unix ms.
    pub updated_at: u64,
    /// `data` before the change.
    pub data: Map<String, Value>,
}

impl Previous {
    /// What a query reads of `record`, the resource before a change.
    pub fn of(record: &Record) -> Previous {
        Previous { created_at: record.created_at, updated_at: record.updated_at, data: record.data.clone() }
    }
}

impl EventRecord {
    /// The event of a change that left `record` as it is, at position `seq` of its type's topic; `previous` is
    /// the resource before the change (none for a creation).
    pub fn of(
        record: &Record,
        kind: EventKind,
        actor: &str,
        seq: u64,
        occurred_at: u64,
        previous: Option<Previous>,
    ) -> EventRecord {
        EventRecord {
            resource_type: record.resource_type.clone(),
            seq,
            id: record.id.clone(),
            version: record.version,
            kind,
            owner_id: record.owner_id.clone(),
            actor: actor.to_owned(),
            data: record.data.clone(),
            occurred_at,
            previous: previous.map(Box::new),
        }
    }
}

/// A resource to create.
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// Its type.
    pub resource_type: String,
    /// Its id, chosen by the caller.
    pub id: String,
    /// Its owner, who is also the actor.
    pub owner_id: String,
    /// Its fields, already validated.
    pub data: Map<String, Value>,
}

impl NewRecord {
    /// The resource it becomes when created at `now`: version 1, created and updated then.
    pub fn created_at(self, now: u64) -> Record {
        Record {
            resource_type: self.resource_type,
            id: self.id,
            owner_id: self.owner_id,
            version: 1,
            created_at: now,
            updated_at: now,
            data: self.data,
        }
    }
}

/// The key that makes a create safe to retry: the same user and requestId within the window.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    /// The user who sent the create.
    pub user_id: String,
    /// The create's requestId.
    pub request_id: String,
    /// A digest of what was asked (type and data), to refuse a reused requestId for something else.
    pub fingerprint: String,
}

/// What a create did.
#[derive(Clone, Debug, PartialEq)]
pub enum CreateOutcome {
    /// A new resource and its event.
    Created(Record, EventRecord),
    /// A retry: the resource as the first create made it; nothing was written.
    Replayed(Record),
}

/// What an update did.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateOutcome {
    /// The resource changed; this is its new state and the event.
    Changed(Record, EventRecord),
    /// The check asked for no change; this is the resource as it is.
    Unchanged(Record),
}

/// Runs a write's check on the current record. A check is the service's code run inside storage's transaction:
/// if it panics (a bug), that write fails as INTERNAL and nothing else is harmed, where unwinding would take down
/// the SQLite writer thread, or the caller's task, with it.
pub(crate) fn run_check<T>(
    check: impl FnOnce(&Record) -> Result<T, ErrorPayload>,
    current: &Record,
) -> Result<T, StorageError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(current))) {
        Ok(decided) => decided.map_err(StorageError::Rejected),
        Err(panic) => Err(StorageError::Internal(format!("a write's check panicked: {}", panic_message(&*panic)))),
    }
}

/// What a caught panic said, when it said it as text.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("")
}

/// Decides an update from the current record: the new data, `None` for no change, or why not.
pub type UpdateCheck = Box<dyn FnOnce(&Record) -> Result<Option<Map<String, Value>>, ErrorPayload> + Send>;

/// Decides whether a delete may go ahead, from the current record.
pub type DeleteCheck = Box<dyn FnOnce(&Record) -> Result<(), ErrorPayload> + Send>;

/// How a list is ordered.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderKey {
    /// `createdAt`.
    CreatedAt,
    /// `updatedAt`.
    UpdatedAt,
    /// `id`.
    Id,
    /// A top-level data field, with the JSON type its schema gives (`string`, `number`, `integer`, `boolean`).
    Field(String, String),
}

/// One key of a list's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sort {
    /// What is compared.
    pub key: OrderKey,
    /// Descending instead of ascending.
    pub descending: bool,
}

impl Sort {
    /// `key`, ascending.
    pub fn ascending(key: OrderKey) -> Sort {
        Sort { key, descending: false }
    }
}

/// A page of a list, as the service asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    /// The type listed.
    pub resource_type: String,
    /// Only this owner's resources, when the user may see only their own.
    pub owner: Option<String>,
    /// Top-level data fields and the JSON scalar each must equal (`null`: absent or null).
    pub filter: Vec<(String, Value)>,
    /// The order: one key or more, each ascending or descending; ties go by id, in the last key's direction.
    pub order: Vec<Sort>,
    /// Only resources that match this, as well as the filter.
    pub condition: Option<crate::query::Condition>,
    /// Start after this position: the order keys' values and the id of the previous page's last item.
    pub after: Option<(Vec<Value>, String)>,
    /// How many to return at most.
    pub limit: usize,
}

/// One item of a list page: the record and the values its order keys had, as the backend compares them.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// The resource.
    pub record: Record,
    /// The value of each order key, in order (absent fields replaced as the backend sorts them).
    pub key: Vec<Value>,
}

/// Why storage could not do what it was asked.
#[derive(Clone, Debug)]
pub enum StorageError {
    /// The resource does not exist.
    NotFound,
    /// A check refused the change; the payload says why.
    Rejected(ErrorPayload),
    /// The idempotency key was used before for a different create.
    KeyReused,
    /// A create's id is already taken (ids are random: the caller draws another).
    IdTaken,
    /// The database cannot be reached or cannot write (disk full); retrying later may work.
    Unavailable(String),
    /// A write's COMMIT was sent but its answer was lost, and whether it took effect could not be found out: the
    /// change may or may not be stored.
    Unknown(String),
    /// Anything else: a bug or corrupt data.
    Internal(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::NotFound => f.write_str("not found"),
            StorageError::Rejected(e) => write!(f, "rejected: {e}"),
            StorageError::KeyReused => f.write_str("idempotency key reused for a different create"),
            StorageError::IdTaken => f.write_str("the id is taken"),
            StorageError::Unavailable(e) => write!(f, "storage unavailable: {e}"),
            StorageError::Unknown(e) => write!(f, "the outcome of a commit is unknown: {e}"),
            StorageError::Internal(e) => write!(f, "storage failed: {e}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// A write on its way to storage: awaited, it answers once the write is durable or has failed.
pub type Committing<T> = Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send>>;

/// A place to keep resources and their events (see the module docs for the contract).
#[async_trait]
pub trait Storage: Notifications + Hooks + Send + Sync + fmt::Debug + 'static {
    /// One resource.
    async fn get(&self, resource_type: &str, id: &str) -> Result<Option<Record>, StorageError>;
    /// A page of resources, each with the value of its order key (for the next page's cursor).
    async fn list(&self, query: ListQuery) -> Result<Vec<Listed>, StorageError>;
    /// A page of resources and the `seq` of the type's latest event, read at one moment: the page shows the
    /// resources exactly as that event left them (a query subscription's snapshot, followed by the events after
    /// that `seq`).
    async fn list_at_head(&self, query: ListQuery) -> Result<(Vec<Listed>, u64), StorageError>;
    /// How many resources a whole list has, every page (its order, `after` and `limit` are not looked at).
    async fn count(&self, query: ListQuery) -> Result<u64, StorageError>;
    /// Creates a resource and its `created` event, or replays an earlier create with the same key.
    async fn create(&self, new: NewRecord, key: Option<IdempotencyKey>) -> Result<CreateOutcome, StorageError> {
        self.queue_create(new, key).await.await
    }
    /// `create` in two steps: returns once the create is queued, and what it returns answers after the commit.
    /// Creates queued one after another are stored in that order, so a caller with several in a row (a
    /// connection's pipelined creates) can queue them all and have them share a commit. A backend that does not
    /// queue writes does the whole create here and returns its outcome ready.
    async fn queue_create(&self, new: NewRecord, key: Option<IdempotencyKey>) -> Committing<CreateOutcome>;
    /// Whether `queue_create` only queues: it returns as soon as the write is queued, a call dropped before it
    /// returns has written nothing, and a queued write commits whether or not what it returned is awaited. A
    /// backend whose `queue_create` commits within the call says false (the default), and its callers make the call
    /// where going away cannot stop them between the commit and the event's publication.
    fn queues_creates(&self) -> bool {
        false
    }
    /// Applies several changes, of any types, in one transaction with their events, or none of them
    /// (`storage/batch.rs`); changes by `actor`, who owns what it creates.
    async fn batch(
        &self,
        actor: &str,
        changes: Vec<Change>,
        key: Option<IdempotencyKey>,
    ) -> Result<BatchOutcome, BatchFailure>;
    /// Changes a resource as `check` decides, with its `updated` event.
    async fn update(
        &self,
        resource_type: &str,
        id: &str,
        actor: &str,
        check: UpdateCheck,
    ) -> Result<UpdateOutcome, StorageError>;
    /// Deletes a resource if `check` allows, with its `deleted` event.
    async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        actor: &str,
        check: DeleteCheck,
    ) -> Result<EventRecord, StorageError>;
    /// Events of a type (or of one resource of it) after `after`, oldest first, at most `limit`, and no more
    /// after the one whose `data` passes [`EVENTS_PAGE_BYTES`] in total: a replay page is read whole, and 500
    /// large events would be tens of MiB per subscriber.
    async fn events_after(
        &self,
        resource_type: &str,
        id: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError>;
    /// The `seq` of the type's latest event (0 when it has none).
    async fn head(&self, resource_type: &str) -> Result<u64, StorageError>;
    /// Drops the oldest events of each type: those beyond the newest `keep`, and every event up to the last one
    /// that occurred before `before` (Unix ms), so what is kept is always an unbroken range of `seq`s ending at
    /// the head. Returns how many were dropped. Heads are kept, so `seq` never repeats.
    async fn prune_events(&self, keep: u64, before: u64) -> Result<u64, StorageError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StorageError>;
    /// What the create or batch with `key` stored as its receipt (JSON: the created `Record`, or a batch's
    /// outcomes), while it is within the window (`KeyReused` when the content differs); `None` when there is none.
    /// A read: `create` or `batch` with the key remains what decides.
    async fn receipt(&self, key: &IdempotencyKey) -> Result<Option<String>, StorageError>;
    /// Creates, if it is missing, an index on each data field `path` (`status`, `customer.city`) of the type's
    /// resources, of the expression that the backend's query SQL compares, so that lists by query on the field
    /// can use it. Idempotent, and safe while other nodes do the same.
    async fn ensure_indexes(&self, resource_type: &str, paths: &[String]) -> Result<(), StorageError>;
}

/// The name of the index on data field `path` of `resource_type`: readable, and within PostgreSQL's 63 bytes.
fn index_name(resource_type: &str, path: &str) -> String {
    let name = format!("data_{resource_type}__{}", path.replace('.', "__"));
    if name.len() <= 63 {
        return name;
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{}_{hex}", &name[..46])
}

/// How much `data` (as JSON text) one [`Storage::events_after`] returns at most, beyond the event that passes it.
pub const EVENTS_PAGE_BYTES: usize = 1024 * 1024;

/// Opens the configured storage: PostgreSQL for a `postgres://` URL, otherwise SQLite in the data dir; every call
/// to it is measured for `/metrics`.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    let window = Duration::from_millis(config.storage.idempotency_window_ms);
    match &config.storage.url {
        Some(url) => {
            let postgres = Postgres::open(url, window).await?;
            info!("storing resources in PostgreSQL at {}", without_password(url));
            Ok(Arc::new(Measured(Arc::new(postgres))))
        }
        None => {
            let path = config.data_dir.join("tidings.db");
            let sqlite = Sqlite::open(&path, window)?;
            info!("storing resources in {}", path.display());
            Ok(Arc::new(Measured(Arc::new(sqlite))))
        }
    }
}

/// The URL with its password replaced by `***`, fit for a log line.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{authority}/{path}"),
        None => format!("{scheme}://{authority}"),
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn logged_urls_hide_the_password() {
        assert_eq!(without_password("postgres://u:secret@h:5432/db?x=1"), "postgres://u:***@h:5432/db?x=1");
        assert_eq!(without_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(without_password("postgresql://h"), "postgresql://h");
    }
}
