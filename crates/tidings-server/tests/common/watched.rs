//! A storage that watches another: how many event-log reads run at once, and faults on demand (slow or failing
//! reads), for the tests of what the relay does when the log is slow or fails.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tidings_server::storage::{
    BatchFailure, BatchOutcome, Change, Committing, CreateOutcome, DeleteCheck, EventRecord, HookControl, HookState,
    Hooks, IdempotencyKey, ListQuery, Listed, NewNotification, NewRecord, NotificationHead, NotificationRecord,
    Notifications, Pending, Recipients, Record, Storage, StorageError, UpdateCheck, UpdateOutcome,
};

/// `inner`, with its event-log reads counted and, on demand, slowed or failed.
#[derive(Debug)]
pub struct Watched {
    inner: Arc<dyn Storage>,
    reading: AtomicUsize,
    most_at_once: AtomicUsize,
    delay_ms: AtomicU64,
    failures_left: AtomicUsize,
}

impl Watched {
    pub fn new(inner: Arc<dyn Storage>) -> Watched {
        Watched {
            inner,
            reading: AtomicUsize::new(0),
            most_at_once: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(0),
            failures_left: AtomicUsize::new(0),
        }
    }

    /// From now on, each event-log read takes `delay` longer.
    pub fn slow_reads(&self, delay: Duration) {
        self.delay_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// The next `count` event-log reads fail as UNAVAILABLE.
    pub fn fail_reads(&self, count: usize) {
        self.failures_left.store(count, Ordering::SeqCst);
    }

    /// The most event-log reads that ran at the same time.
    pub fn most_reads_at_once(&self) -> usize {
        self.most_at_once.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Storage for Watched {
    async fn get(&self, resource_type: &str, id: &str) -> Result<Option<Record>, StorageError> {
        self.inner.get(resource_type, id).await
    }
    async fn list(&self, query: ListQuery) -> Result<Vec<Listed>, StorageError> {
        self.inner.list(query).await
    }
    async fn list_at_head(&self, query: ListQuery) -> Result<(Vec<Listed>, u64), StorageError> {
        self.inner.list_at_head(query).await
    }
    async fn count(&self, query: ListQuery) -> Result<u64, StorageError> {
        self.inner.count(query).await
    }
    async fn batch(
        &self,
        actor: &str,
        changes: Vec<Change>,
        key: Option<IdempotencyKey>,
    ) -> Result<BatchOutcome, BatchFailure> {
        self.inner.batch(actor, changes, key).await
    }
    fn queues_creates(&self) -> bool {
        self.inner.queues_creates()
    }
    async fn queue_create(&self, new: NewRecord, key: Option<IdempotencyKey>) -> Committing<CreateOutcome> {
        self.inner.queue_create(new, key).await
    }
    async fn update(&self, ty: &str, id: &str, actor: &str, check: UpdateCheck) -> Result<UpdateOutcome, StorageError> {
        self.inner.update(ty, id, actor, check).await
    }
    async fn delete(&self, ty: &str, id: &str, actor: &str, check: DeleteCheck) -> Result<EventRecord, StorageError> {
        self.inner.delete(ty, id, actor, check).await
    }
    async fn events_after(
        &self,
        resource_type: &str,
        id: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        let now = self.reading.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let failing = self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        let result = if failing {
            Err(StorageError::Unavailable("a read failed, as the test asked".to_owned()))
        } else {
            self.inner.events_after(resource_type, id, after, limit).await
        };
        self.reading.fetch_sub(1, Ordering::SeqCst);
        result
    }
    async fn head(&self, resource_type: &str) -> Result<u64, StorageError> {
        self.inner.head(resource_type).await
    }
    async fn prune_events(&self, keep: u64, before: u64) -> Result<u64, StorageError> {
        self.inner.prune_events(keep, before).await
    }
    async fn receipt(&self, key: &IdempotencyKey) -> Result<Option<String>, StorageError> {
        self.inner.receipt(key).await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        self.inner.ping().await
    }
    async fn ensure_indexes(&self, resource_type: &str, paths: &[String]) -> Result<(), StorageError> {
        self.inner.ensure_indexes(resource_type, paths).await
    }
}

#[async_trait]
impl Notifications for Watched {
    async fn users_after(&self, after: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        self.inner.users_after(after, limit).await
    }
    async fn remember_users(&self, users: &[String]) -> Result<(), StorageError> {
        self.inner.remember_users(users).await
    }
    async fn notify(&self, to: Recipients, new: NewNotification) -> Result<Vec<NotificationRecord>, StorageError> {
        self.inner.notify(to, new).await
    }
    async fn notifications_after(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StorageError> {
        self.inner.notifications_after(user, after, limit).await
    }
    async fn take_pending(&self, user_id: &str, limit: usize) -> Result<Pending, StorageError> {
        self.inner.take_pending(user_id, limit).await
    }
    async fn mark_delivered(&self, user_id: &str, seqs: Vec<u64>) -> Result<(), StorageError> {
        self.inner.mark_delivered(user_id, seqs).await
    }
    async fn notification_head(&self, user_id: &str) -> Result<NotificationHead, StorageError> {
        self.inner.notification_head(user_id).await
    }
    async fn prune_notifications(&self, before: u64) -> Result<u64, StorageError> {
        self.inner.prune_notifications(before).await
    }
    async fn forget_users(&self, before: u64) -> Result<u64, StorageError> {
        self.inner.forget_users(before).await
    }
}

#[async_trait]
impl Hooks for Watched {
    async fn hook_state(&self, name: &str) -> Result<Option<HookState>, StorageError> {
        self.inner.hook_state(name).await
    }
    async fn advance_hook(
        &self,
        name: &str,
        from: u64,
        to: u64,
        failures: u32,
        last_error: Option<&str>,
    ) -> Result<bool, StorageError> {
        self.inner.advance_hook(name, from, to, failures, last_error).await
    }
    async fn control_hook(&self, name: &str, control: HookControl) -> Result<(), StorageError> {
        self.inner.control_hook(name, control).await
    }
    async fn lease_hook(&self, name: &str, node: &str, until_ms: u64) -> Result<bool, StorageError> {
        self.inner.lease_hook(name, node, until_ms).await
    }
}
