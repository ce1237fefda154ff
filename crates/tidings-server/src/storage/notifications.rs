//! Per-user notifications in storage: kept with a per-user `seq`, marked delivered once a connection got them.
//!
//! The contract every backend keeps (tests/storage/ runs it against each):
//! - `notify` stores one copy per recipient (a user named twice gets one), each with that user's next `seq`, in
//!   one transaction; `Everyone` means every user who has ever authenticated (`remember_users`).
//! - `take_pending` returns a user's undelivered notifications, oldest first, at most the newest `limit`, and
//!   marks the older undelivered ones delivered (they stay readable through `notifications_after`); with them, the
//!   user's head, read first: every notification at or below it that was undelivered is among them (or older).
//! - `mark_delivered` is idempotent; `notifications_after` returns delivered and undelivered alike, by `seq`.
//! - `prune_notifications` drops a prefix of each user's delivered, old notifications; the head keeps counting,
//!   and `notification_head` says up to where they were pruned.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::StorageError;

/// Who a notification is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipients {
    /// These users.
    Users(Vec<String>),
    /// Every user the server has seen authenticate.
    Everyone,
}

/// A notification to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    /// Unique per notification; every recipient's copy shares it.
    pub id: String,
    /// `info`, `success`, `warning` or `error`.
    pub level: String,
    /// A short headline.
    pub title: String,
    /// The text.
    pub body: String,
    /// Anything attached.
    pub data: Map<String, Value>,
}

impl NewNotification {
    /// The copy stored for `user_id` at that user's `seq`.
    pub fn copy_for(&self, user_id: String, seq: u64, created_at: u64) -> NotificationRecord {
        NotificationRecord {
            user_id,
            seq,
            id: self.id.clone(),
            level: self.level.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            data: self.data.clone(),
            created_at,
        }
    }
}

/// One user's copy of a notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// The recipient.
    pub user_id: String,
    /// Its position among the user's notifications.
    pub seq: u64,
    /// The notification's id.
    pub id: String,
    /// Its level.
    pub level: String,
    /// Its headline.
    pub title: String,
    /// Its text.
    pub body: String,
    /// What was attached.
    pub data: Map<String, Value>,
    /// When it was stored, Unix ms.
    pub created_at: u64,
}

/// What waited for a user at sign-in, and where their notifications stood.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// The undelivered notifications, oldest first (at most the newest `limit`).
    pub records: Vec<NotificationRecord>,
    /// The `seq` of the user's latest notification when they were read (0 when none): later ones come live.
    pub head: u64,
}

/// Where a user's notifications stand in storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotificationHead {
    /// The `seq` of the user's latest notification (0 when none).
    pub seq: u64,
    /// Every notification up to this `seq` was pruned (0 when none was): a replay from before it is incomplete.
    pub pruned: u64,
}

pub use crate::config::LAST_SEEN_STEP_MS;

/// A place to keep notifications (see the module docs for the contract).
#[async_trait]
pub trait Notifications: Send + Sync + 'static {
    /// Notes that these users signed in now, so that notifications to everyone reach them, in one write: a new
    /// user is added, and a known one's last sign-in is moved forward when it is more than [`LAST_SEEN_STEP_MS`]
    /// old, so a row changes at most once a day per user. A user may be named twice; none is fine.
    async fn remember_users(&self, users: &[String]) -> Result<(), StorageError>;
    /// Forgets the users whose last sign-in was before `before` (Unix ms): they get no notification sent to
    /// everyone until they sign in again. Their own notifications, and their heads, are kept. Returns how many.
    async fn forget_users(&self, before: u64) -> Result<u64, StorageError>;
    /// The users who authenticated (and were not forgotten since), by id, after `after` (`""` for the first), at most `limit`: the pages in
    /// which a notification to everyone is sent.
    async fn users_after(&self, after: &str, limit: usize) -> Result<Vec<String>, StorageError>;
    /// Stores a notification for its recipients and returns each copy.
    async fn notify(&self, to: Recipients, new: NewNotification) -> Result<Vec<NotificationRecord>, StorageError>;
    /// A user's notifications after `after`, oldest first, at most `limit`.
    async fn notifications_after(
        &self,
        user_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StorageError>;
    /// A user's undelivered notifications (at most the newest `limit`, oldest first), and the user's head; older
    /// undelivered ones are marked delivered.
    async fn take_pending(&self, user_id: &str, limit: usize) -> Result<Pending, StorageError>;
    /// Marks a user's notifications delivered.
    async fn mark_delivered(&self, user_id: &str, seqs: Vec<u64>) -> Result<(), StorageError>;
    /// Where a user's notifications stand: the latest `seq` (0 when none), and up to which they were pruned.
    async fn notification_head(&self, user_id: &str) -> Result<NotificationHead, StorageError>;
    /// Drops, for each user, the oldest notifications that were delivered and created before `before` (Unix ms):
    /// the longest run of them from the user's first kept one, so what is kept is an unbroken range of `seq`s up
    /// to the head, and an undelivered one is never dropped. Returns how many were dropped.
    async fn prune_notifications(&self, before: u64) -> Result<u64, StorageError>;
}
