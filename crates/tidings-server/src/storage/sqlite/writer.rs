//! The SQLite writer thread: group commit, one savepoint per write, answers only after the commit.

use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use tidings_protocol::now_ms;
use tokio::sync::{mpsc, oneshot};

use super::maintenance::{MAINTENANCE_CHUNK, SWEEP_RECEIPTS};
use super::{execute, sql_error, Sqlite};
use crate::storage::StorageError;

/// The most writes one transaction carries.
pub(super) const MAX_BATCH: usize = 256;

type Reply<T> = oneshot::Sender<Result<T, StorageError>>;

/// One write for the writer thread: it runs in the batch's transaction (or learns that there is none).
pub(super) type Write = Box<dyn for<'t> FnOnce(Result<&Transaction<'t>, StorageError>, u64) -> Answer + Send>;

impl Sqlite {
    /// Runs `run` on the writer thread, in its own savepoint of the next batch's transaction, and answers after
    /// the commit. `run` gets the connection and the batch's time.
    pub(super) async fn write<T, F>(&self, run: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, u64) -> Result<T, StorageError> + Send + 'static,
    {
        let (reply, answer_rx): (Reply<T>, _) = oneshot::channel();
        let write: Write = Box::new(move |tx, now| match tx {
            Ok(tx) => answer(reply, in_savepoint(tx, |c| run(c, now))),
            Err(error) => answer(reply, Err(error)),
        });
        self.writes.send(write).await.map_err(|_| StorageError::Unavailable("the writer has stopped".to_owned()))?;
        answer_rx.await.map_err(|_| StorageError::Internal("the writer dropped a write".to_owned()))?
    }
}

/// The writer thread: group commit (see the module docs).
pub(super) fn write_loop(mut connection: Connection, mut queue: mpsc::Receiver<Write>, window_ms: u64) {
    let mut last_sweep = 0;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let now = now_ms();
        let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let error = sql_error(&e);
                batch.into_iter().for_each(|write| write(Err(error.clone()), now)(None));
                continue;
            }
        };
        let answers: Vec<Answer> = batch.into_iter().map(|write| write(Ok(&tx), now)).collect();
        if now.saturating_sub(last_sweep) > 60_000 {
            // Receipts outside the window can never be replayed again. A chunk per batch, found by index, costs the
            // batch little; while a chunk comes back full, the next batch sweeps on.
            let swept = execute(&tx, SWEEP_RECEIPTS, params![now.saturating_sub(window_ms), MAINTENANCE_CHUNK]);
            if swept.is_ok_and(|n| (n as u64) < MAINTENANCE_CHUNK) {
                last_sweep = now;
            }
        }
        let committed = tx.commit().map_err(|e| sql_error(&e));
        for answer in answers {
            answer(committed.as_ref().err());
        }
    }
}

/// Sends one write's result once the transaction's fate is known.
type Answer = Box<dyn FnOnce(Option<&StorageError>) + Send>;

fn answer<T: Send + 'static>(reply: Reply<T>, result: Result<T, StorageError>) -> Answer {
    Box::new(move |commit_error| {
        let _ = reply.send(match commit_error {
            Some(error) if result.is_ok() => Err(error.clone()),
            _ => result,
        });
    })
}

/// Runs one write in a savepoint, so that a refused write leaves the rest of the batch alone.
fn in_savepoint<T>(
    tx: &Transaction<'_>,
    run: impl FnOnce(&Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    // An I/O error or a full disk can make SQLite roll the whole transaction back; later writes of the batch
    // would then each commit on their own while the batch is reported as failed. They must not run.
    if tx.is_autocommit() {
        return Err(StorageError::Unavailable("the batch's transaction was rolled back".to_owned()));
    }
    execute(tx, "SAVEPOINT write", []).map_err(|e| sql_error(&e))?;
    let result = run(tx);
    if result.is_err() {
        execute(tx, "ROLLBACK TO write", []).map_err(|e| sql_error(&e))?;
    }
    execute(tx, "RELEASE write", []).map_err(|e| sql_error(&e))?;
    result
}
