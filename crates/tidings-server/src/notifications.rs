//! Notifications: sending them (the HTTP server API, `tidings notify`, the built-in owner rule) to storage and the
//! relay, and the reads and marks a session makes on a user's notifications. Sessions reach notification storage
//! only through the [`Notifier`]; how a session delivers them is `session/notifications.rs`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tidings_protocol::{ErrorPayload, FieldError};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::detached::detached;
use crate::errors::{invalid_params, unavailable};
use crate::relay::Relay;
use crate::storage::{
    NewNotification, NotificationHead, NotificationRecord, Pending, Recipients, Record, Storage, StorageError,
};

/// Users served per transaction (and per broker message) by a notification to everyone.
const BROADCAST_PAGE: usize = 500;

/// How often the users who signed in are written down, at the latest. A notification to everyone sent on this
/// node writes them first; one sent on another node may miss a user who first signed in this long before it.
pub const REMEMBER_EVERY: Duration = Duration::from_secs(1);

/// How many signed-in users make the roster write before [`REMEMBER_EVERY`] is up.
const ROSTER_BATCH: usize = 2_000;

/// The most users the roster keeps while storage fails to take them: past it, a user is remembered at their next
/// sign-in instead, so that an outage of the storage cannot grow the server's memory without bound.
const ROSTER_CAP: usize = 100_000;

/// A notification as a sender writes it, before it is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    /// `info`, `success`, `warning` or `error`.
    pub level: String,
    /// 1 to 200 characters.
    pub title: String,
    /// At most 4000 characters.
    pub body: String,
    /// Anything to attach.
    pub data: Map<String, Value>,
}

/// Stores notifications and hands them to the relay. Sends run side by side: the hub releases each user's
/// notifications in `seq` order whichever send finishes first, on this node and on the others.
#[derive(Debug)]
pub struct Notifier {
    storage: Arc<dyn Storage>,
    relay: Arc<Relay>,
    roster: Roster,
}

/// The users who signed in and are not written down yet. Signing in only adds a name here; [`Notifier::keep_roster`]
/// writes them in one storage write a second, so a storm of sign-ins costs a commit a second, not one each.
#[derive(Debug, Default)]
struct Roster {
    waiting: Mutex<HashSet<String>>,
    /// Held while a batch is written, so that a notification to everyone waits for one already under way.
    writing: tokio::sync::Mutex<()>,
    full: tokio::sync::Notify,
}

impl Notifier {
    /// A notifier over `storage`, pushing through `relay`.
    pub fn new(storage: Arc<dyn Storage>, relay: Arc<Relay>) -> Arc<Notifier> {
        Arc::new(Notifier { storage, relay, roster: Roster::default() })
    }

    /// Checks and sends a notification; returns its id and how many users it was stored for. It runs
    /// [`detached`], so that a caller that goes away cannot stop it between storing and pushing.
    pub async fn send(self: &Arc<Self>, to: Recipients, draft: Draft) -> Result<(String, usize), ErrorPayload> {
        let this = Arc::clone(self);
        detached(async move { this.send_now(to, draft).await }).await
    }

    /// The built-in rule: a resource's owner hears when someone else changes a watched field (the type's
    /// `notify_owner_on`), such as an order's status; `old` holds the watched fields that changed, with their
    /// values before. It is sent before the change is answered, so whoever made the change knows the owner was told;
    /// a failure to send is logged and does not undo the change.
    pub async fn notify_owner(self: &Arc<Self>, record: &Record, old: Vec<(String, Value)>) {
        for (field, before) in old {
            let after = record.data.get(&field).cloned().unwrap_or(Value::Null);
            let show = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let draft = Draft {
                level: "info".to_owned(),
                title: format!("{} {}: {field} is now {}", record.resource_type, record.id, show(&after)),
                body: format!("Its {field} changed from {} to {}.", show(&before), show(&after)),
                data: Map::from_iter([
                    ("resourceType".to_owned(), json!(record.resource_type)),
                    ("id".to_owned(), json!(record.id)),
                    ("field".to_owned(), json!(field)),
                    ("from".to_owned(), before),
                    ("to".to_owned(), after),
                ]),
            };
            if let Err(error) = self.send(Recipients::Users(vec![record.owner_id.clone()]), draft).await {
                tracing::warn!("the owner of {} {} was not notified: {error}", record.resource_type, record.id);
            }
        }
    }

    async fn send_now(self: &Arc<Self>, to: Recipients, message: Draft) -> Result<(String, usize), ErrorPayload> {
        let errors = check(&to, &message);
        if !errors.is_empty() {
            return Err(invalid_params("invalid notification".to_owned(), errors));
        }
        let id = format!("NTF-{:012x}", rand::random::<u64>() >> 16);
        let new = NewNotification {
            id: id.clone(),
            level: message.level,
            title: message.title,
            body: message.body,
            data: message.data,
        };
        let Recipients::Everyone = to else {
            let records = self.storage.notify(to, new).await.map_err(not_stored)?;
            let count = records.len();
            self.relay.notifications(records);
            return Ok((id, count));
        };
        // To everyone: a page of users at a time, each page one transaction and one broker message, so that the
        // memory a broadcast takes does not grow with the number of users. A failure part way stops it; the users
        // already served keep their copy, and the error says how many.
        self.write_roster().await.map_err(not_stored)?;
        let mut count = 0;
        let mut after = String::new();
        loop {
            let users = self.storage.users_after(&after, BROADCAST_PAGE).await.map_err(not_stored)?;
            let Some(last) = users.last().cloned() else { break };
            let records = match self.storage.notify(Recipients::Users(users), new.clone()).await {
                Ok(records) => records,
                Err(error) => return Err(not_stored(error).with_detail("recipients", count)),
            };
            count += records.len();
            self.relay.notifications(records);
            after = last;
        }
        Ok((id, count))
    }

    /// Notes that a user signed in, so that notifications to everyone reach them: in memory, written down within
    /// [`REMEMBER_EVERY`] (or before a notification to everyone from this node).
    pub fn remember_user(&self, user_id: &str) {
        let mut waiting = self.roster.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.len() < ROSTER_CAP && !waiting.contains(user_id) {
            waiting.insert(user_id.to_owned());
            if waiting.len() == ROSTER_BATCH {
                self.roster.full.notify_one();
            }
        }
    }

    /// Writes down the users who signed in since the last write. On a failure they are kept for the next one.
    pub async fn write_roster(&self) -> Result<(), StorageError> {
        let _writing = self.roster.writing.lock().await;
        let users: Vec<String> = {
            let mut waiting = self.roster.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *waiting).into_iter().collect()
        };
        if users.is_empty() {
            return Ok(());
        }
        let written = self.storage.remember_users(&users).await;
        if written.is_err() {
            let mut waiting = self.roster.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let room = ROSTER_CAP.saturating_sub(waiting.len());
            waiting.extend(users.into_iter().take(room));
        }
        written
    }

    /// Writes the roster every [`REMEMBER_EVERY`], or sooner when it fills, until `stop`, and once more then.
    pub async fn keep_roster(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let stopping = tokio::select! {
                () = tokio::time::sleep(REMEMBER_EVERY) => false,
                () = self.roster.full.notified() => false,
                () = stop.cancelled() => true,
            };
            if let Err(error) = self.write_roster().await {
                warn!("could not record the users who signed in: {error}");
            }
            if stopping {
                return;
            }
        }
    }

    /// A user's undelivered notifications, at most the newest `limit` (older ones are marked delivered), and the
    /// user's head.
    pub async fn take_pending(&self, user_id: &str, limit: usize) -> Result<Pending, StorageError> {
        self.storage.take_pending(user_id, limit).await
    }

    /// A user's notifications after `after`, oldest first, at most `limit`.
    pub async fn after(
        &self,
        user_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StorageError> {
        self.storage.notifications_after(user_id, after, limit).await
    }

    /// Where a user's notifications stand: the latest `seq`, and up to which they were pruned.
    pub async fn head(&self, user_id: &str) -> Result<NotificationHead, StorageError> {
        self.storage.notification_head(user_id).await
    }

    /// Marks notifications that were written to one of the user's connections as delivered.
    pub async fn mark_delivered(&self, user_id: &str, seqs: Vec<u64>) -> Result<(), StorageError> {
        self.storage.mark_delivered(user_id, seqs).await
    }
}

fn check(to: &Recipients, message: &Draft) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !["info", "success", "warning", "error"].contains(&message.level.as_str()) {
        errors.push(FieldError::new("/level", "must be info, success, warning or error"));
    }
    if !(1..=200).contains(&message.title.chars().count()) {
        errors.push(FieldError::new("/title", "must be 1 to 200 characters"));
    }
    if message.body.chars().count() > 4000 {
        errors.push(FieldError::new("/body", "must be at most 4000 characters"));
    }
    if let Recipients::Users(users) = to {
        if users.is_empty() || users.len() > 1000 {
            errors.push(FieldError::new("/to", "must name 1 to 1000 users, or be \"*\" for everyone"));
        }
        for (n, user) in users.iter().enumerate() {
            if !(1..=256).contains(&user.chars().count()) {
                errors.push(FieldError::new(format!("/to/{n}"), "must be 1 to 256 characters"));
            } else if user.chars().any(char::is_control) {
                // No token can name such a user (docs/security.md), and PostgreSQL cannot store a NUL.
                errors.push(FieldError::new(format!("/to/{n}"), "must not contain control characters"));
            }
        }
    }
    errors
}

fn not_stored(error: StorageError) -> ErrorPayload {
    warn!("notification storage failed: {error}");
    unavailable("notifications cannot be stored now; retry later")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_with_control_characters_are_refused_at_their_place() {
        let draft = Draft { level: "info".into(), title: "t".into(), body: String::new(), data: Map::new() };
        let to = Recipients::Users(vec!["alice".into(), "bo\u{0}b".into(), "eve\nINFO forged".into()]);
        let pointers: Vec<String> = check(&to, &draft).into_iter().map(|e| e.pointer.to_string()).collect();
        assert_eq!(pointers, ["/to/1", "/to/2"]);
    }
}
