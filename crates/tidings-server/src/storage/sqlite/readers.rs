//! SQLite's read connections: a few, each used by one read at a time, on the calling task for reads of
//! microseconds and on reader threads of their own for the rest.
//!
//! The reader threads are a fixed few (no more than the cores, and the connections), like the writer's one thread:
//! a storm of sign-ins or lists queues its reads for them instead of starting a thread each on tokio's blocking
//! pool, which starts one whenever none is idle at the moment of a read (it held twice as many as reads ran).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::Sqlite;
use crate::storage::StorageError;

/// Read connections.
const READERS: usize = 4;

/// A read for a reader thread.
type Job = Box<dyn FnOnce(&Pool) + Send>;

/// The read connections, and where reads for the reader threads wait. Dropping it ends the threads.
#[derive(Debug)]
pub(super) struct Readers {
    pool: Arc<Pool>,
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// The read connections themselves, shared by the calling tasks and the reader threads.
#[derive(Debug)]
struct Pool {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Sqlite {
    /// Runs a read on a reader thread, on a connection that is free if there is one (otherwise it waits there, off
    /// the runtime, for the next in turn).
    pub(super) async fn read<T, F>(&self, query: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |pool: &Pool| {
            let result = match pool.free() {
                Some(connection) => query(&connection),
                None => query(&pool.next_in_turn()),
            };
            let _ = answer.send(result);
        });
        let sent = self.readers.jobs.lock().unwrap_or_else(PoisonError::into_inner).send(job);
        sent.map_err(|_| StorageError::Internal("the reader threads have stopped".to_owned()))?;
        answered.await.map_err(|_| StorageError::Internal("a read failed on its reader thread".to_owned()))?
    }

    /// A reader that is free right now, for a read by primary key on the calling task: it takes microseconds, and
    /// WAL readers never wait for the writer, so handing it to a reader thread (a thread wake-up each way) would
    /// cost more than the read. `None` when every reader is busy (with lists or replays on the reader threads):
    /// the caller then reads through [`Sqlite::read`], because waiting for a reader here would block the runtime
    /// and every session on it.
    pub(super) fn free_reader(&self) -> Option<MutexGuard<'_, Connection>> {
        self.readers.pool.free()
    }
}

impl Readers {
    /// Opens the read connections of the database at `path`, which the writer has created and migrated, and
    /// starts the reader threads.
    pub(super) fn open(path: &Path) -> anyhow::Result<Readers> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let mut connections = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(path, flags)?;
            reader.busy_timeout(Duration::from_secs(5))?;
            connections.push(Mutex::new(reader));
        }
        let pool = Arc::new(Pool { connections, next: AtomicUsize::new(0) });
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        for _ in 0..cores.clamp(2, READERS) {
            let (pool, queue) = (Arc::clone(&pool), Arc::clone(&queue));
            std::thread::Builder::new().name("tidings-sqlite-reader".to_owned()).spawn(move || loop {
                // One thread waits on the queue at a time; the others wait for their turn at it.
                let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                let Ok(job) = job else { return };
                // A read that panics fails alone (its caller hears so), and the thread goes on.
                let _ = catch_unwind(AssertUnwindSafe(|| job(&pool)));
            })?;
        }
        Ok(Readers { pool, jobs: Mutex::new(jobs) })
    }
}

impl Pool {
    /// A reader no one holds, trying each from the next in turn.
    fn free(&self) -> Option<MutexGuard<'_, Connection>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.connections.len()).find_map(|k| {
            match self.connections[(start + k) % self.connections.len()].try_lock() {
                Ok(connection) => Some(connection),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        })
    }

    /// The next reader in turn, waiting for it: only on the blocking pool.
    fn next_in_turn(&self) -> MutexGuard<'_, Connection> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[n].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::storage::Storage;

    /// While every reader is held (long lists or replays on the blocking pool), a read by id must not block the
    /// runtime's thread waiting for one: on a small machine that stalls every session. It waits off the runtime.
    #[test]
    fn a_read_by_id_never_blocks_the_runtime_while_every_reader_is_busy() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Arc::new(Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(60)).expect("open"));
        let held: Vec<MutexGuard<'_, Connection>> =
            db.readers.pool.connections.iter().map(|c| c.lock().expect("a reader")).collect();
        let (alive, heard) = std::sync::mpsc::channel();
        let reader = Arc::clone(&db);
        let runtime = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let read = tokio::spawn(async move { reader.get("order", "O-1").await });
                // Another task of the same runtime gets its turn while the read waits for a reader: it cannot, if
                // the read holds the runtime's one thread.
                tokio::spawn(async move { alive.send(()).expect("the test listens") }).await.expect("a task");
                read.await.expect("the read task")
            })
        });
        let answered = heard.recv_timeout(Duration::from_secs(10));
        drop(held);
        assert!(answered.is_ok(), "the runtime was blocked by a read waiting for a reader");
        let read = runtime.join().expect("the runtime thread");
        assert!(matches!(read, Ok(None)), "{read:?}");
    }

    /// A storm of slow reads (lists, replays) runs on the few reader threads, however many wait: none starts a
    /// thread of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_storm_of_reads_runs_on_a_fixed_few_threads() {
        let dir = tempfile::tempdir().expect("dir");
        let db = Arc::new(Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(60)).expect("open"));
        let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let reads = (0..64).map(|_| {
            let (db, threads) = (Arc::clone(&db), Arc::clone(&threads));
            tokio::spawn(async move {
                db.read(move |_| {
                    threads.lock().expect("threads").insert(std::thread::current().id());
                    std::thread::sleep(Duration::from_millis(5));
                    Ok(())
                })
                .await
            })
        });
        for read in reads.collect::<Vec<_>>() {
            read.await.expect("a read task").expect("a read");
        }
        let used = threads.lock().expect("threads").len();
        assert!((1..=READERS).contains(&used), "64 reads ran on {used} threads");
    }
}
