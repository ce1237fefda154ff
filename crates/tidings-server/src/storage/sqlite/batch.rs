//! An atomic batch on SQLite: every change in one savepoint of the writer's transaction, so a failure rolls back
//! the batch's changes and nothing else of the group commit.

use rusqlite::{params, Connection};

use super::{create, delete, execute, receipt_of, sql_error, update};
use crate::storage::batch::{outcomes_of, receipt_text, refuse_repeats, BatchFailure, BatchOutcome, Change, Outcome};
use crate::storage::{CreateOutcome, IdempotencyKey, StorageError, UpdateOutcome};

/// Applies `changes` by `actor` in the writer's transaction (see `storage/batch.rs` for the contract).
pub(super) fn batch(
    c: &Connection,
    actor: &str,
    changes: Vec<Change>,
    key: Option<IdempotencyKey>,
    now: u64,
    window_ms: u64,
) -> Result<BatchOutcome, BatchFailure> {
    refuse_repeats(&changes)?;
    if let Some(key) = &key {
        if let Some((fingerprint, receipt, created_at)) = receipt_of(c, key)? {
            if created_at.saturating_add(window_ms) >= now {
                if fingerprint != key.fingerprint {
                    return Err(StorageError::KeyReused.into());
                }
                return Ok(BatchOutcome::Replayed(outcomes_of(&receipt)?));
            }
            execute(
                c,
                "DELETE FROM idempotency WHERE user_id = ? AND request_id = ?",
                params![key.user_id, key.request_id],
            )
            .map_err(|e| sql_error(&e))?;
        }
    }
    let (mut outcomes, mut events) = (Vec::with_capacity(changes.len()), Vec::with_capacity(changes.len()));
    for (index, change) in changes.into_iter().enumerate() {
        let at = BatchFailure::at(index);
        match change {
            Change::Create(new) => match create(c, new, None, now, window_ms).map_err(&at)? {
                CreateOutcome::Created(record, event) => {
                    outcomes.push(Outcome::Created(record));
                    events.push(event);
                }
                CreateOutcome::Replayed(_) => {
                    return Err(at(StorageError::Internal("a keyless create replayed".into())))
                }
            },
            Change::Update { resource_type, id, check } => {
                match update(c, &resource_type, &id, actor, check, now).map_err(&at)? {
                    UpdateOutcome::Changed(record, event) => {
                        outcomes.push(Outcome::Updated(record));
                        events.push(event);
                    }
                    UpdateOutcome::Unchanged(record) => outcomes.push(Outcome::Updated(record)),
                }
            }
            Change::Delete { resource_type, id, check } => {
                let event = delete(c, &resource_type, &id, actor, check, now).map_err(&at)?;
                outcomes.push(Outcome::deleted(&event));
                events.push(event);
            }
        }
    }
    if let Some(key) = key {
        execute(
            c,
            "INSERT INTO idempotency (user_id, request_id, fingerprint, record, created_at) VALUES (?, ?, ?, ?, ?)",
            params![key.user_id, key.request_id, key.fingerprint, receipt_text(&outcomes)?, now],
        )
        .map_err(|e| sql_error(&e))?;
    }
    Ok(BatchOutcome::Applied { outcomes, events })
}
