//! An atomic batch on PostgreSQL: one transaction for every change of the batch and its events.
//!
//! Locks are taken in an order that cannot deadlock with other writers: first the rows the batch changes, in
//! (type, id) order, then its receipt's row (a single create with the same key takes it before its head too),
//! then the heads of the types it appends to, in type order. A single write takes its row, then its head; two
//! batches take rows, then heads, each in the same order. So no writer holds a head while it waits for a row,
//! and the heads stay held only from the first append to the commit, as for a single write.

use std::collections::BTreeMap;

use tidings_protocol::now_ms;

use super::{append, current, db_error, insert, keep_receipt, remove, rewrite, Postgres};
use crate::storage::batch::{outcomes_of, receipt_text, refuse_repeats, BatchFailure, BatchOutcome, Change, Outcome};
use crate::storage::{run_check, EventKind, IdempotencyKey, Previous, Record, StorageError};

/// The advisory lock class under which batches with an idempotency key take turns per key (with PostgreSQL's
/// `hashtext` of the key as the second integer, the same on every node; two keys that share a hash only wait): a retry that arrives while the first is in flight waits for it, then replays its receipt.
const BATCH_KEY_LOCK: i32 = 0x7462_6174;

/// A change whose row is written and whose event is still to be appended.
struct Pending {
    index: usize,
    record: Record,
    kind: EventKind,
    previous: Option<Previous>,
}

impl Postgres {
    /// Applies `changes` by `actor` in one transaction (see `storage/batch.rs` for the contract).
    pub(super) async fn apply_batch(
        &self,
        actor: &str,
        changes: Vec<Change>,
        key: Option<IdempotencyKey>,
    ) -> Result<BatchOutcome, BatchFailure> {
        refuse_repeats(&changes)?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        if let Some(key) = &key {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(BATCH_KEY_LOCK)
                .bind(format!("{}\n{}", key.user_id, key.request_id))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            if let Some(receipt) = self.receipt_in(&mut tx, key, now).await? {
                return Ok(BatchOutcome::Replayed(outcomes_of(&receipt)?));
            }
        }
        // The rows to change, locked in one order; a missing one fails its change when its turn comes.
        let mut locked: BTreeMap<(String, String), Result<Record, StorageError>> = changes
            .iter()
            .filter(|change| !matches!(change, Change::Create(_)))
            .map(|change| {
                let (resource_type, id) = change.target();
                ((resource_type.to_owned(), id.to_owned()), Err(StorageError::NotFound))
            })
            .collect();
        for ((resource_type, id), row) in &mut locked {
            *row = match current(&mut tx, resource_type, id).await {
                Err(StorageError::NotFound) => Err(StorageError::NotFound),
                other => Ok(other?),
            };
        }
        let mut outcomes = Vec::with_capacity(changes.len());
        let mut pending = Vec::with_capacity(changes.len());
        for (index, change) in changes.into_iter().enumerate() {
            let at = BatchFailure::at(index);
            let mut take = |resource_type: &str, id: &str| {
                locked
                    .remove(&(resource_type.to_owned(), id.to_owned()))
                    .unwrap_or(Err(StorageError::NotFound))
                    .map_err(&at)
            };
            match change {
                Change::Create(new) => {
                    let record = new.created_at(now);
                    insert(&mut tx, &record).await.map_err(&at)?;
                    outcomes.push(Outcome::Created(record.clone()));
                    pending.push(Pending { index, record, kind: EventKind::Created, previous: None });
                }
                Change::Update { resource_type, id, check } => {
                    let current = take(&resource_type, &id)?;
                    let Some(data) = run_check(check, &current).map_err(&at)? else {
                        outcomes.push(Outcome::Updated(current));
                        continue;
                    };
                    let previous = Previous::of(&current);
                    let record = Record {
                        version: current.version + 1,
                        updated_at: now.max(current.updated_at),
                        data,
                        ..current
                    };
                    rewrite(&mut tx, &record).await.map_err(&at)?;
                    outcomes.push(Outcome::Updated(record.clone()));
                    pending.push(Pending { index, record, kind: EventKind::Updated, previous: Some(previous) });
                }
                Change::Delete { resource_type, id, check } => {
                    let current = take(&resource_type, &id)?;
                    run_check(check, &current).map_err(&at)?;
                    remove(&mut tx, &resource_type, &id).await.map_err(&at)?;
                    let previous = Previous::of(&current);
                    let gone = Record { version: current.version + 1, ..current };
                    outcomes.push(Outcome::Deleted {
                        resource_type: gone.resource_type.clone(),
                        id: gone.id.clone(),
                        version: gone.version,
                        deleted_at: now,
                    });
                    pending.push(Pending { index, record: gone, kind: EventKind::Deleted, previous: Some(previous) });
                }
            }
        }
        if let Some(key) = &key {
            // The receipt before the heads, as a single create keeps it, so that a create and a batch with the same
            // key cannot each hold what the other waits for. The key's lock is held, so no other batch kept this
            // receipt since it was looked for: one that did is a create with the same key, which is something else.
            if !keep_receipt(&mut tx, key, receipt_text(&outcomes)?, now).await? {
                return Err(StorageError::KeyReused.into());
            }
        }
        // The heads last, in type order; each type's events in the order of its changes.
        pending.sort_by(|a, b| a.record.resource_type.cmp(&b.record.resource_type).then(a.index.cmp(&b.index)));
        let mut events = Vec::with_capacity(pending.len());
        for change in pending {
            // A creation's actor is its owner, as for a single create.
            let actor = if change.kind == EventKind::Created { change.record.owner_id.as_str() } else { actor };
            let event = append(&mut tx, &change.record, change.kind, actor, now, change.previous)
                .await
                .map_err(BatchFailure::at(change.index))?;
            events.push(event);
        }
        match events.last() {
            Some(last) => self.commit(tx, last).await?,
            None => tx.commit().await.map_err(db_error)?,
        }
        Ok(BatchOutcome::Applied { outcomes, events })
    }
}
