//! A storage that measures another: the latency of every operation and the errors it returns, as metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::batch::{BatchFailure, BatchOutcome, Change};
use super::hooks::{HookControl, HookState, Hooks};
use super::notifications::{NewNotification, NotificationHead, NotificationRecord, Notifications, Pending, Recipients};
use super::{
    Committing, CreateOutcome, DeleteCheck, EventRecord, IdempotencyKey, ListQuery, Listed, NewRecord, Record, Storage,
    StorageError, UpdateCheck, UpdateOutcome,
};
use crate::metrics::{STORAGE_ERRORS, STORAGE_SECONDS};

/// Wraps a storage; every call is timed under its operation's name, and failures are counted by kind.
#[derive(Debug)]
pub struct Measured(pub Arc<dyn Storage>);

async fn measure<T>(op: &'static str, call: impl Future<Output = Result<T, StorageError>>) -> Result<T, StorageError> {
    let started = Instant::now();
    let span = tracing::debug_span!("storage", otel.name = %format_args!("storage {op}"), db.operation = op);
    let result = tracing::Instrument::instrument(call, span).await;
    record(op, started, &result);
    result
}

/// Records an operation that began at `started` and ended with `result`.
fn record<T>(op: &'static str, started: Instant, result: &Result<T, StorageError>) {
    metrics::histogram!(STORAGE_SECONDS, "op" => op).record(started.elapsed().as_secs_f64());
    if let Some(kind) = result.as_ref().err().and_then(failure_kind) {
        metrics::counter!(STORAGE_ERRORS, "op" => op, "kind" => kind).increment(1);
    }
}

/// The kind of failure an error counts as; `None` for refusals and misses, which are answers, not failures of the
/// storage.
fn failure_kind(error: &StorageError) -> Option<&'static str> {
    match error {
        StorageError::Unavailable(_) => Some("unavailable"),
        StorageError::Unknown(_) => Some("unknown"),
        StorageError::Internal(_) => Some("internal"),
        _ => None,
    }
}

#[async_trait]
impl Storage for Measured {
    async fn get(&self, resource_type: &str, id: &str) -> Result<Option<Record>, StorageError> {
        measure("get", self.0.get(resource_type, id)).await
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<Listed>, StorageError> {
        measure("list", self.0.list(query)).await
    }

    async fn list_at_head(&self, query: ListQuery) -> Result<(Vec<Listed>, u64), StorageError> {
        measure("list", self.0.list_at_head(query)).await
    }

    async fn count(&self, query: ListQuery) -> Result<u64, StorageError> {
        measure("count", self.0.count(query)).await
    }

    fn queues_creates(&self) -> bool {
        self.0.queues_creates()
    }

    async fn queue_create(&self, new: NewRecord, key: Option<IdempotencyKey>) -> Committing<CreateOutcome> {
        // Timed from the queueing to the answer, like the other writes; the span covers the queueing.
        let started = Instant::now();
        let span = tracing::debug_span!("storage", otel.name = "storage create", db.operation = "create");
        let committing = tracing::Instrument::instrument(self.0.queue_create(new, key), span).await;
        Box::pin(async move {
            let result = committing.await;
            record("create", started, &result);
            result
        })
    }

    async fn batch(
        &self,
        actor: &str,
        changes: Vec<Change>,
        key: Option<IdempotencyKey>,
    ) -> Result<BatchOutcome, BatchFailure> {
        let started = Instant::now();
        let span = tracing::debug_span!("storage", otel.name = "storage batch", db.operation = "batch");
        let result = tracing::Instrument::instrument(self.0.batch(actor, changes, key), span).await;
        metrics::histogram!(STORAGE_SECONDS, "op" => "batch").record(started.elapsed().as_secs_f64());
        if let Err(failure) = &result {
            if let Some(kind) = failure_kind(&failure.error) {
                metrics::counter!(STORAGE_ERRORS, "op" => "batch", "kind" => kind).increment(1);
            }
        }
        result
    }

    async fn update(
        &self,
        resource_type: &str,
        id: &str,
        actor: &str,
        check: UpdateCheck,
    ) -> Result<UpdateOutcome, StorageError> {
        measure("update", self.0.update(resource_type, id, actor, check)).await
    }

    async fn delete(
        &self,
        resource_type: &str,
        id: &str,
        actor: &str,
        check: DeleteCheck,
    ) -> Result<EventRecord, StorageError> {
        measure("delete", self.0.delete(resource_type, id, actor, check)).await
    }

    async fn events_after(
        &self,
        resource_type: &str,
        id: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError> {
        measure("events_after", self.0.events_after(resource_type, id, after, limit)).await
    }

    async fn head(&self, resource_type: &str) -> Result<u64, StorageError> {
        measure("head", self.0.head(resource_type)).await
    }

    async fn prune_events(&self, keep: u64, before: u64) -> Result<u64, StorageError> {
        measure("prune_events", self.0.prune_events(keep, before)).await
    }

    async fn receipt(&self, key: &IdempotencyKey) -> Result<Option<String>, StorageError> {
        measure("receipt", self.0.receipt(key)).await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        measure("ping", self.0.ping()).await
    }

    async fn ensure_indexes(&self, resource_type: &str, paths: &[String]) -> Result<(), StorageError> {
        measure("ensure_indexes", self.0.ensure_indexes(resource_type, paths)).await
    }
}

#[async_trait]
impl Notifications for Measured {
    async fn users_after(&self, after: &str, limit: usize) -> Result<Vec<String>, StorageError> {
        measure("users_after", self.0.users_after(after, limit)).await
    }

    async fn remember_users(&self, users: &[String]) -> Result<(), StorageError> {
        measure("remember_users", self.0.remember_users(users)).await
    }

    async fn notify(&self, to: Recipients, new: NewNotification) -> Result<Vec<NotificationRecord>, StorageError> {
        measure("notify", self.0.notify(to, new)).await
    }

    async fn notifications_after(
        &self,
        user_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StorageError> {
        measure("notifications_after", self.0.notifications_after(user_id, after, limit)).await
    }

    async fn take_pending(&self, user_id: &str, limit: usize) -> Result<Pending, StorageError> {
        measure("take_pending", self.0.take_pending(user_id, limit)).await
    }

    async fn mark_delivered(&self, user_id: &str, seqs: Vec<u64>) -> Result<(), StorageError> {
        measure("mark_delivered", self.0.mark_delivered(user_id, seqs)).await
    }

    async fn notification_head(&self, user_id: &str) -> Result<NotificationHead, StorageError> {
        measure("notification_head", self.0.notification_head(user_id)).await
    }

    async fn forget_users(&self, before: u64) -> Result<u64, StorageError> {
        measure("forget_users", self.0.forget_users(before)).await
    }

    async fn prune_notifications(&self, before: u64) -> Result<u64, StorageError> {
        measure("prune_notifications", self.0.prune_notifications(before)).await
    }
}

#[async_trait]
impl Hooks for Measured {
    async fn hook_state(&self, name: &str) -> Result<Option<HookState>, StorageError> {
        measure("hook_state", self.0.hook_state(name)).await
    }

    async fn advance_hook(
        &self,
        name: &str,
        from: u64,
        to: u64,
        failures: u32,
        last_error: Option<&str>,
    ) -> Result<bool, StorageError> {
        measure("advance_hook", self.0.advance_hook(name, from, to, failures, last_error)).await
    }

    async fn control_hook(&self, name: &str, control: HookControl) -> Result<(), StorageError> {
        measure("control_hook", self.0.control_hook(name, control)).await
    }

    async fn lease_hook(&self, name: &str, node: &str, until_ms: u64) -> Result<bool, StorageError> {
        measure("lease_hook", self.0.lease_hook(name, node, until_ms)).await
    }
}
