//! The SQLite writer thread: group commit, one savepoint per write, answers only after the commit.

use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use tidings_protocol::now_ms;
use tokio::sync::{mpsc, oneshot};

use super::maintenance::{MAINTENANCE_CHUNK, SWEEP_RECEIPTS};
use super::{execute, sql_error, Sqlite};
use crate::storage::StorageError;

/// The most writes one transaction carries.
pub(super) const MAX_BATCH: usize = 256;

type Reply<T, E> = oneshot::Sender<Result<T, E>>;

/// One write for the writer thread: it runs in the batch's transaction (or learns that there is none).
pub(super) type Write = Box<dyn for<'t> FnOnce(Result<&Transaction<'t>, StorageError>, u64) -> Answer + Send>;

impl Sqlite {
    /// Runs `run` on the writer thread, in its own savepoint of the next batch's transaction, and answers after
    /// the commit. `run` gets the connection and the batch's time; its error may say more than a
    /// `StorageError` (a batch's says which change failed).
    pub(super) async fn write<T, E, F>(&self, run: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Connection, u64) -> Result<T, E> + Send + 'static,
    {
        self.queue(run).await.await
    }

    /// [`Sqlite::write`] in two steps: returns once `run` is in the writer's queue (writes queued one after another
    /// run in that order), and the future it returns answers after the commit.
    pub(super) async fn queue<T, E, F>(
        &self,
        run: F,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&Connection, u64) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer_rx): (Reply<T, E>, _) = oneshot::channel();
        let write: Write = Box::new(move |tx, now| match tx {
            Ok(tx) => answer(reply, in_savepoint(tx, |c| run(c, now))),
            Err(error) => answer(reply, Err(E::from(error))),
        });
        if self.writes.send(write).await.is_err() {
            return Box::pin(std::future::ready(Err(E::from(StorageError::Unavailable(
                "the writer has stopped".to_owned(),
            )))));
        }
        Box::pin(async move {
            answer_rx.await.map_err(|_| E::from(StorageError::Internal("the writer dropped a write".to_owned())))?
        })
    }
}

/// A committed batch's answers on their way to the runtime (see [`answer_loop`]).
pub(super) type Answers = mpsc::UnboundedSender<(Vec<Answer>, Option<StorageError>)>;

/// Sends the answers of each committed batch from a task of the runtime, all at once. Sent from the writer thread,
/// each answer would wake its waiting task through the runtime's shared queue, which a busy worker looks at only
/// now and then: the tasks of one batch then ran one at a time between the other tasks, and each publishing its
/// event woke every subscriber again (a thousand subscribers took a few events per write instead of the batch).
/// Woken from here, they run one after the other, and their events reach each subscriber together.
///
/// The runtime it runs in must outlive the storage's use, as every task of the server's does. Should it go first,
/// the batches it still holds are answered as it is dropped, and the writer thread answers the later ones itself.
pub(super) fn answer_loop(
    batches: mpsc::UnboundedReceiver<(Vec<Answer>, Option<StorageError>)>,
) -> impl std::future::Future<Output = ()> + Send {
    // Made before the future, so that even a task dropped before it first ran answers what waits.
    let mut batches = AnsweredOnDrop(batches);
    async move {
        while let Some((answers, error)) = batches.0.recv().await {
            answer_all(answers, error.as_ref());
        }
    }
}

/// The batches waiting for [`answer_loop`], answered even if its task is dropped: each waits on a committed write.
struct AnsweredOnDrop(mpsc::UnboundedReceiver<(Vec<Answer>, Option<StorageError>)>);

impl Drop for AnsweredOnDrop {
    fn drop(&mut self) {
        // Closed first, so that the writer answers what comes after from its own thread.
        self.0.close();
        while let Ok((answers, error)) = self.0.try_recv() {
            answer_all(answers, error.as_ref());
        }
    }
}

fn answer_all(answers: Vec<Answer>, error: Option<&StorageError>) {
    for answer in answers {
        answer(error);
    }
}

/// Hands a batch's answers to the runtime's task when there is one, and answers them from here otherwise.
fn send_answers(answering: Option<&Answers>, answers: Vec<Answer>, error: Option<StorageError>) {
    let (answers, error) = match answering {
        Some(answering) => match answering.send((answers, error)) {
            Ok(()) => return,
            // The task is gone (its runtime is going away): answer from here.
            Err(mpsc::error::SendError(returned)) => returned,
        },
        None => (answers, error),
    };
    answer_all(answers, error.as_ref());
}

/// The writer thread: group commit (see the module docs). A batch's answers go through `answering` when there is
/// a runtime to take them, and from this thread otherwise.
pub(super) fn write_loop(
    mut connection: Connection,
    mut queue: mpsc::Receiver<Write>,
    window_ms: u64,
    answering: Option<Answers>,
) {
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
                let answers = batch.into_iter().map(|write| write(Err(error.clone()), now)).collect();
                send_answers(answering.as_ref(), answers, None);
                continue;
            }
        };
        ::metrics::histogram!(crate::metrics::STORAGE_BATCH_WRITES).record(batch.len() as f64);
        let answers: Vec<Answer> = batch.into_iter().map(|write| write(Ok(&tx), now)).collect();
        if now.saturating_sub(last_sweep) > 60_000 {
            // Receipts outside the window can never be replayed again. A chunk per batch, found by index, costs the
            // batch little; while a chunk comes back full, the next batch sweeps on.
            let swept = execute(&tx, SWEEP_RECEIPTS, params![now.saturating_sub(window_ms), MAINTENANCE_CHUNK]);
            if swept.is_ok_and(|n| (n as u64) < MAINTENANCE_CHUNK) {
                last_sweep = now;
            }
        }
        // A write that filled the disk may have made SQLite roll the whole batch back: then every write of it
        // failed for want of room, which is UNAVAILABLE, not the "no transaction" error a commit would give.
        let committed = if tx.is_autocommit() {
            Err(StorageError::Unavailable("the batch's transaction was rolled back".to_owned()))
        } else {
            tx.commit().map_err(|e| commit_error(&e))
        };
        send_answers(answering.as_ref(), answers, committed.err());
    }
}

/// What a failed COMMIT means for the batch's writes. An I/O error while committing may leave the commit record
/// on disk, so the writes may be stored after all: their outcome is unknown. Anything else rolled them back.
fn commit_error(error: &rusqlite::Error) -> StorageError {
    match error {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::SystemIoFailure => {
            StorageError::Unknown(error.to_string())
        }
        other => sql_error(other),
    }
}

/// Sends one write's result once the transaction's fate is known.
pub(super) type Answer = Box<dyn FnOnce(Option<&StorageError>) + Send>;

fn answer<T: Send + 'static, E: From<StorageError> + Send + 'static>(
    reply: Reply<T, E>,
    result: Result<T, E>,
) -> Answer {
    Box::new(move |commit_error| {
        let _ = reply.send(match commit_error {
            Some(error) if result.is_ok() => Err(E::from(error.clone())),
            _ => result,
        });
    })
}

/// Runs one write in a savepoint, so that a refused write leaves the rest of the batch alone.
fn in_savepoint<T, E: From<StorageError>>(
    tx: &Transaction<'_>,
    run: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    let rolled_back = || E::from(StorageError::Unavailable("the batch's transaction was rolled back".to_owned()));
    // An I/O error or a full disk can make SQLite roll the whole transaction back; later writes of the batch
    // would then each commit on their own while the batch is reported as failed. They must not run.
    if tx.is_autocommit() {
        return Err(rolled_back());
    }
    execute(tx, "SAVEPOINT write", []).map_err(|e| E::from(sql_error(&e)))?;
    // A write that panics is rolled back like one that fails: unwinding would end the writer thread, and with it
    // every later write of the server.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(tx))).unwrap_or_else(|panic| {
        Err(E::from(StorageError::Internal(format!("a write panicked: {}", crate::storage::panic_message(&*panic)))))
    });
    // After SQLITE_FULL or an I/O error SQLite may have rolled the whole transaction back, savepoint and all:
    // then there is nothing to roll back to, and the write's own error is the one to report.
    if tx.is_autocommit() {
        return result.and(Err(rolled_back()));
    }
    if result.is_err() {
        execute(tx, "ROLLBACK TO write", []).map_err(|e| E::from(sql_error(&e)))?;
    }
    execute(tx, "RELEASE write", []).map_err(|e| E::from(sql_error(&e)))?;
    result
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{json, Map, Value};

    use tokio::sync::{mpsc, oneshot};

    use super::{answer, answer_loop, Sqlite};
    use crate::storage::{NewRecord, Storage, StorageError};

    /// A committed batch whose answers wait for the runtime's task is answered even if that task is dropped (its
    /// runtime going away first); after that the writer thread answers for itself, since the channel is closed.
    #[tokio::test]
    async fn a_batch_waiting_for_a_dropped_answer_task_is_still_answered() {
        let (answering, batches) = mpsc::unbounded_channel();
        let task = answer_loop(batches);
        let (reply, answered) = oneshot::channel::<Result<u32, StorageError>>();
        assert!(answering.send((vec![answer(reply, Ok(7))], None)).is_ok());
        drop(task);
        assert!(matches!(answered.await, Ok(Ok(7))), "the committed write's caller hears of it");
        assert!(answering.send((Vec::new(), None)).is_err(), "the writer learns to answer for itself");
    }

    fn order(n: usize) -> NewRecord {
        let mut data = Map::new();
        data.insert("blob".to_owned(), Value::String("x".repeat(4000)));
        data.insert("n".to_owned(), json!(n));
        NewRecord { resource_type: "order".to_owned(), id: format!("O-{n}"), owner_id: "a".to_owned(), data }
    }

    /// An I/O error while committing may have left the commit record on disk: the outcome is unknown, which the
    /// service answers with UNAVAILABLE and `outcome: "unknown"`, never with "nothing was changed". Other commit
    /// failures (busy, full) rolled everything back. (An I/O error at COMMIT cannot be caused on this machine
    /// without a faulty device, so the classification is tested on the errors SQLite reports.)
    #[test]
    fn an_io_error_at_commit_leaves_the_outcome_unknown() {
        let failure = |code: std::ffi::c_int| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        for io in [rusqlite::ffi::SQLITE_IOERR, rusqlite::ffi::SQLITE_IOERR_WRITE, rusqlite::ffi::SQLITE_IOERR_FSYNC] {
            assert!(matches!(super::commit_error(&failure(io)), StorageError::Unknown(_)), "{io}");
        }
        for other in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_FULL, rusqlite::ffi::SQLITE_CONSTRAINT] {
            assert!(!matches!(super::commit_error(&failure(other)), StorageError::Unknown(_)), "{other}");
        }
    }

    /// A full disk is UNAVAILABLE ("retry later"), never INTERNAL: SQLite rolls the whole transaction back on
    /// SQLITE_FULL, and the savepoint's own rollback must not then replace the real error with its failure.
    #[tokio::test]
    async fn a_full_database_is_unavailable_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(60)).expect("open");
        db.write(|c, _| c.pragma_update(None, "max_page_count", 40).map_err(|e| super::sql_error(&e)))
            .await
            .expect("the cap is set");
        let mut refused = None;
        for n in 0..200 {
            if let Err(error) = db.create(order(n), None).await {
                refused = Some((n, error));
                break;
            }
        }
        let (n, error) = refused.expect("a database of 40 pages fills up");
        assert!(matches!(error, StorageError::Unavailable(_)), "a full disk is not a bug: {error:?}");
        // Many writes at once share batches; each is stored and readable, or refused as UNAVAILABLE.
        let db = std::sync::Arc::new(db);
        let tries: Vec<_> = (1000..1020)
            .map(|m| {
                let db = std::sync::Arc::clone(&db);
                tokio::spawn(async move { (m, db.create(order(m), None).await) })
            })
            .collect();
        for attempt in tries {
            let (m, result) = attempt.await.expect("the task ran");
            match result {
                Ok(_) => assert!(db.get("order", &format!("O-{m}")).await.expect("read").is_some(), "O-{m}"),
                Err(error) => assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}"),
            }
        }
        // Room again: the writer is still there, and the next write is stored.
        db.write(|c, _| c.pragma_update(None, "max_page_count", 100_000).map_err(|e| super::sql_error(&e)))
            .await
            .expect("the cap is lifted");
        db.create(order(n), None).await.expect("stored once there is room");
    }
}
