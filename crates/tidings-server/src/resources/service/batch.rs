//! `batch`: creates, updates and deletes of any types, checked each as its single message would be, then
//! committed together with their events, or not at all (docs/protocol.md, 7.8).
//!
//! Each operation is checked before storage as its own message is (rules, schema, server-set fields, its type's
//! before-commit hook, asked in the batch's order), and again by its check inside the one transaction. The first
//! operation that fails fails the batch: its error is the one the single message would get, with the operation's
//! `index` in `details` and its field pointers under `/operations/{index}`.

use serde_json::{Map, Value};
use tidings_protocol::{
    Batch, BatchResult, Deleted, ErrorCode, ErrorPayload, FieldError, Operation, OperationResult, Version,
    MAX_BATCH_OPERATIONS,
};

use super::{internal, key_reused, new_id, shown, storage_error, CheckedUpdate, Resources, Watched};
use crate::auth::Identity;
use crate::detached::detached;
use crate::errors::prefix_pointers;
use crate::resources::data::fingerprint;
use crate::storage::batch::{first_repeat, outcomes_of, BatchFailure, BatchOutcome, Change, Outcome};
use crate::storage::{IdempotencyKey, NewRecord, StorageError};

/// The name a batch's content is fingerprinted under: not a resource type's name, so no create shares it.
const FINGERPRINT_NAME: &str = "(batch)";

/// What follows the commit of one operation: for an update, the owner notification from what its check saw.
enum After {
    Create,
    Update(Watched),
    Delete,
}

impl Resources {
    /// `batch`: every operation, or none; a repeated requestId replays the first batch's reply.
    pub async fn batch(
        &self,
        who: &Identity,
        request_id: Option<&str>,
        batch: Batch,
    ) -> Result<BatchResult, ErrorPayload> {
        let (this, who, request_id) = (self.clone(), who.clone(), request_id.map(str::to_owned));
        detached(async move { this.batch_now(&who, request_id.as_deref(), batch).await }).await
    }

    async fn batch_now(
        &self,
        who: &Identity,
        request_id: Option<&str>,
        batch: Batch,
    ) -> Result<BatchResult, ErrorPayload> {
        refuse_shape(&batch)?;
        let key = request_id.map(|request_id| IdempotencyKey {
            user_id: who.user_id.clone(),
            request_id: request_id.to_owned(),
            fingerprint: fingerprint(FINGERPRINT_NAME, &content(&batch)),
        });
        // A retried batch that was committed is answered from its receipt, without asking any hook again.
        if let Some(receipt) = self.receipt(key.as_ref(), "batch").await? {
            let outcomes = outcomes_of(&receipt).map_err(|e| storage_error(e, "batch", None))?;
            return self.results(who, outcomes);
        }
        let targets: Vec<(String, Option<String>)> = batch.operations.iter().map(target).collect();
        let mut changes = Vec::with_capacity(batch.operations.len());
        let mut afters = Vec::with_capacity(batch.operations.len());
        for (index, operation) in batch.operations.into_iter().enumerate() {
            let (change, after) = self.checked(who, operation).await.map_err(|error| at(index, error))?;
            changes.push(change);
            afters.push(after);
        }
        // A taken id (80 random bits) fails the batch as INTERNAL, where a single create draws again: the checks
        // are spent, and a batch that fails changes nothing, so sending it again is safe.
        let (outcomes, events) = match self.storage.batch(&who.user_id, changes, key).await {
            Ok(BatchOutcome::Replayed(outcomes)) => return self.results(who, outcomes),
            Ok(BatchOutcome::Applied { outcomes, events }) => (outcomes, events),
            Err(BatchFailure { index: None, error: StorageError::KeyReused }) => return Err(key_reused()),
            Err(BatchFailure { index: None, error }) => return Err(storage_error(error, "batch", None)),
            Err(BatchFailure { index: Some(index), error }) => {
                let (resource_type, id) = targets.get(index).cloned().unwrap_or_default();
                return Err(at(index, storage_error(error, &resource_type, id.as_deref())));
            }
        };
        for event in events {
            self.publish(event);
        }
        for (outcome, after) in outcomes.iter().zip(&afters) {
            if let (Outcome::Updated(record), After::Update(watched)) = (outcome, after) {
                self.updated(record, who, watched).await;
            }
        }
        self.results(who, outcomes)
    }

    /// One operation checked as its single message would be, as the change storage applies.
    async fn checked(&self, who: &Identity, operation: Operation) -> Result<(Change, After), ErrorPayload> {
        Ok(match operation {
            Operation::Create(create) => {
                let def = self.type_of(create.resource_type.as_str())?;
                if def.config.ephemeral {
                    let message =
                        format!("{} is ephemeral: its messages are not stored, so no batch holds one", def.name());
                    let error = FieldError::new("/resourceType", "is an ephemeral type");
                    return Err(ErrorPayload::with_field_errors(ErrorCode::InvalidParams, message, vec![error]));
                }
                let data = self.checked_create(def, who, create.data).await?;
                let new = NewRecord {
                    resource_type: def.name().to_owned(),
                    id: new_id(&def.config.id_prefix),
                    owner_id: who.user_id.clone(),
                    data,
                };
                (Change::Create(new), After::Create)
            }
            Operation::Update(update) => {
                let (resource_type, id) = (update.resource_type.as_str().to_owned(), update.id.as_str().to_owned());
                let CheckedUpdate { check, watched, .. } = self.checked_update(who, update).await?;
                (Change::Update { resource_type, id, check }, After::Update(watched))
            }
            Operation::Delete(delete) => {
                let check = self.checked_delete(who, &delete).await?;
                let (resource_type, id) = (delete.resource_type.as_str().to_owned(), delete.id.as_str().to_owned());
                (Change::Delete { resource_type, id, check }, After::Delete)
            }
        })
    }

    /// The reply: each outcome as `who` may see it.
    fn results(&self, who: &Identity, outcomes: Vec<Outcome>) -> Result<BatchResult, ErrorPayload> {
        let results = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::Created(record) => {
                    Ok(OperationResult::Create(shown(self.type_of(&record.resource_type)?, who, record)?))
                }
                Outcome::Updated(record) => {
                    Ok(OperationResult::Update(shown(self.type_of(&record.resource_type)?, who, record)?))
                }
                Outcome::Deleted { resource_type, id, version, deleted_at } => {
                    let bad = |what: &str| internal(&format!("a deleted resource has an invalid {what}"));
                    Ok(OperationResult::Delete(Deleted {
                        resource_type: tidings_protocol::ResourceType::new(resource_type).map_err(|_| bad("type"))?,
                        id: tidings_protocol::ResourceId::new(id).map_err(|_| bad("id"))?,
                        version: Version::new(version).map_err(|_| bad("version"))?,
                        deleted_at,
                    }))
                }
            })
            .collect::<Result<Vec<_>, ErrorPayload>>()?;
        Ok(BatchResult { results })
    }
}

/// Refuses what no storage is needed to refuse: too many operations, and a resource named twice.
fn refuse_shape(batch: &Batch) -> Result<(), ErrorPayload> {
    if batch.operations.len() > MAX_BATCH_OPERATIONS {
        let message =
            format!("a batch holds at most {MAX_BATCH_OPERATIONS} operations; this one has {}", batch.operations.len());
        return Err(crate::errors::limit_exceeded("maxBatchOperations", MAX_BATCH_OPERATIONS, message));
    }
    let targets: Vec<(String, Option<String>)> = batch.operations.iter().map(target).collect();
    let named = targets.iter().map(|(resource_type, id)| id.as_deref().map(|id| (resource_type.as_str(), id)));
    let Some(index) = first_repeat(named) else { return Ok(()) };
    let (resource_type, id) = &targets[index];
    let message = format!(
        "the batch changes {resource_type} {} more than once; change a resource once per batch",
        id.as_deref().unwrap_or_default()
    );
    let error = FieldError::new("/id", "names a resource that an earlier operation changes");
    Err(at(index, ErrorPayload::with_field_errors(ErrorCode::InvalidParams, message, vec![error])))
}

/// The type and, but for a create, the id an operation names.
fn target(operation: &Operation) -> (String, Option<String>) {
    match operation {
        Operation::Create(create) => (create.resource_type.as_str().to_owned(), None),
        Operation::Update(update) => (update.resource_type.as_str().to_owned(), Some(update.id.as_str().to_owned())),
        Operation::Delete(delete) => (delete.resource_type.as_str().to_owned(), Some(delete.id.as_str().to_owned())),
    }
}

/// What a batch asks for, for its idempotency fingerprint.
fn content(batch: &Batch) -> Map<String, Value> {
    let mut content = Map::new();
    content.insert("operations".to_owned(), serde_json::to_value(&batch.operations).unwrap_or(Value::Null));
    content
}

/// An operation's error as the batch's: its index in `details`, its pointers under `/operations/{index}`.
fn at(index: usize, error: ErrorPayload) -> ErrorPayload {
    let mut error = prefix_pointers(error, &format!("/operations/{index}"));
    error.message = format!("operation {index}: {}", error.message);
    error.with_detail("index", index)
}
