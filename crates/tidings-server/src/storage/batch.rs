//! Atomic batches in storage: several changes, of any types, committed in one transaction with their events, or
//! none of them.
//!
//! What a backend keeps, beyond the contract of `storage/mod.rs`:
//! - All or nothing: the first change that fails (not found, refused by its check, a taken id) rolls back every
//!   change of the batch, and the failure names its index.
//! - Each change appends its event with its type's next `seq`; a type's events of one batch are consecutive,
//!   in the order of the changes, because the type's head is held from the first to the commit.
//! - A resource is changed at most once per batch (the service refuses a batch that names one twice; a backend
//!   that is given one anyway fails it rather than guess an order).
//! - A batch with an idempotency key is remembered like a create: within the window, the same key replays the
//!   outcomes the first one stored, writing nothing; the same key for something else is `KeyReused`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{DeleteCheck, EventRecord, NewRecord, Record, StorageError, UpdateCheck};

/// One change of a batch.
pub enum Change {
    /// A new resource; its owner is the batch's actor.
    Create(NewRecord),
    /// A change of a resource, as its check decides from the current record (as `Storage::update`).
    Update {
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
        /// Decides the new data.
        check: UpdateCheck,
    },
    /// A deletion, if its check allows (as `Storage::delete`).
    Delete {
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
        /// Decides whether it may go.
        check: DeleteCheck,
    },
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Create(new) => write!(f, "Create({}:{})", new.resource_type, new.id),
            Change::Update { resource_type, id, .. } => write!(f, "Update({resource_type}:{id})"),
            Change::Delete { resource_type, id, .. } => write!(f, "Delete({resource_type}:{id})"),
        }
    }
}

impl Change {
    /// The resource it changes.
    pub fn target(&self) -> (&str, &str) {
        match self {
            Change::Create(new) => (&new.resource_type, &new.id),
            Change::Update { resource_type, id, .. } | Change::Delete { resource_type, id, .. } => (resource_type, id),
        }
    }
}

/// What one change of a batch left: what its reply shows, and what a receipt keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The created resource.
    Created(Record),
    /// The resource after an update (or as it is, for an update that changed nothing).
    Updated(Record),
    /// A deleted resource.
    Deleted {
        /// Its type.
        resource_type: String,
        /// Its id.
        id: String,
        /// Its version after the deletion (one more than its last).
        version: u64,
        /// When, Unix ms.
        deleted_at: u64,
    },
}

impl Outcome {
    /// The outcome of a deletion whose event is `event`.
    pub fn deleted(event: &EventRecord) -> Outcome {
        Outcome::Deleted {
            resource_type: event.resource_type.clone(),
            id: event.id.clone(),
            version: event.version,
            deleted_at: event.occurred_at,
        }
    }
}

/// What a batch did.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchOutcome {
    /// Every change was committed: one outcome per change, in order, and the events to publish (each type's in
    /// `seq` order; none for an update that changed nothing).
    Applied {
        /// Per change, in the batch's order.
        outcomes: Vec<Outcome>,
        /// The committed events.
        events: Vec<EventRecord>,
    },
    /// A retry: the outcomes as the first batch with this key stored them; nothing was written.
    Replayed(Vec<Outcome>),
}

/// Why a batch changed nothing: the failure, and the index of the change that failed (none when it concerns the
/// batch as a whole: a reused key, an unreachable database, a failed commit).
#[derive(Clone, Debug)]
pub struct BatchFailure {
    /// The change that failed, counted from 0.
    pub index: Option<usize>,
    /// What went wrong.
    pub error: StorageError,
}

impl BatchFailure {
    /// A failure of change `index`.
    pub fn at(index: usize) -> impl Fn(StorageError) -> BatchFailure {
        move |error| BatchFailure { index: Some(index), error }
    }
}

impl From<StorageError> for BatchFailure {
    fn from(error: StorageError) -> Self {
        BatchFailure { index: None, error }
    }
}

/// The index of the first change that names a resource (its type and id, `None` when it names none yet) that an
/// earlier change of the batch names, if one does.
pub fn first_repeat<'a>(targets: impl IntoIterator<Item = Option<(&'a str, &'a str)>>) -> Option<usize> {
    let mut seen = BTreeSet::new();
    targets.into_iter().position(|target| target.is_some_and(|target| !seen.insert(target)))
}

/// Refuses a batch that names a resource twice (the service refuses it first, with a pointer).
pub(super) fn refuse_repeats(changes: &[Change]) -> Result<(), BatchFailure> {
    match first_repeat(changes.iter().map(|change| Some(change.target()))) {
        Some(index) => Err(BatchFailure {
            index: Some(index),
            error: StorageError::Internal("a batch changes one resource twice".to_owned()),
        }),
        None => Ok(()),
    }
}

/// The text a batch's receipt keeps: its outcomes.
pub(super) fn receipt_text(outcomes: &[Outcome]) -> Result<String, StorageError> {
    serde_json::to_string(outcomes).map_err(|e| StorageError::Internal(e.to_string()))
}

/// The outcomes a batch's receipt kept.
pub fn outcomes_of(receipt: &str) -> Result<Vec<Outcome>, StorageError> {
    serde_json::from_str(receipt).map_err(|e| StorageError::Internal(format!("a batch receipt is unreadable: {e}")))
}
