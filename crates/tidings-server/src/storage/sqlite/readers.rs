//! SQLite's read connections: a few, each used by one read at a time, on the calling task for reads of
//! microseconds and on a bounded share of the blocking pool for the rest.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::Sqlite;
use crate::storage::StorageError;

/// Read connections.
const READERS: usize = 4;

#[derive(Debug)]
pub(super) struct Readers {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    /// Reads on the blocking pool at once: no more than the machine has cores (and readers), so that a storm of
    /// sign-ins or lists waits here, on the runtime, instead of starting a thread for each (tokio would start up to
    /// 512).
    blocking: Arc<tokio::sync::Semaphore>,
}

impl Sqlite {
    /// Runs a read on the blocking pool, once one of its few places is free, on a reader that is free if there
    /// is one (otherwise it waits there, off the runtime, for the next in turn).
    pub(super) async fn read<T, F>(&self, query: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let permit = Arc::clone(&readers.blocking)
            .acquire_owned()
            .await
            .map_err(|_| StorageError::Internal("the readers are closed".to_owned()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match readers.free() {
                Some(connection) => query(&connection),
                None => query(&readers.next_in_turn()),
            }
        })
        .await
        .map_err(|e| StorageError::Internal(format!("read task failed: {e}")))?
    }

    /// A reader that is free right now, for a read by primary key on the calling task: it takes microseconds, and
    /// WAL readers never wait for the writer, so handing it to the blocking pool (a thread wake-up each way) would
    /// cost more than the read. `None` when every reader is busy (with lists or replays on the blocking pool):
    /// the caller then reads through [`Sqlite::read`], because waiting for a reader here would block the runtime
    /// and every session on it.
    pub(super) fn free_reader(&self) -> Option<MutexGuard<'_, Connection>> {
        self.readers.free()
    }
}

impl Readers {
    /// Opens the read connections of the database at `path`, which the writer has created and migrated.
    pub(super) fn open(path: &Path) -> anyhow::Result<Readers> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let mut connections = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(path, flags)?;
            reader.busy_timeout(Duration::from_secs(5))?;
            connections.push(Mutex::new(reader));
        }
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let blocking = Arc::new(tokio::sync::Semaphore::new(cores.clamp(2, READERS)));
        Ok(Readers { connections, next: AtomicUsize::new(0), blocking })
    }

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
            db.readers.connections.iter().map(|c| c.lock().expect("a reader")).collect();
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
}
