//! Notifications in the hub: each user's stream, released to their connections strictly in `seq` order.
//!
//! Notifications stored on two nodes at once may reach a third in either order, and two sends on one node may
//! finish in either order; a subscriber must still receive them in increasing `seq`. So the hub keeps, for every
//! user with a connection here, where their stream stands and what arrived early, as it does for each type's
//! events. A stream starts at the head the user's first connection read at sign-in, and ends when their last
//! connection leaves, so the hub holds nothing for users who are away. What stays missing is read from storage by
//! the relay (`Relay::fill`), never here: the hub does no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidings_protocol::Topic;

use super::{Delivery, Hub, Inner, LostPush, Mailbox, NotificationPush};
use crate::push::encode_notification;
use crate::storage::NotificationRecord;

/// Where one user's notification stream stands on this node.
#[derive(Debug, Default)]
pub(super) struct UserStream {
    /// The next `seq` to release; `None` until the stream starts.
    next: Option<u64>,
    /// Notifications that arrived before their turn.
    early: BTreeMap<u64, NotificationRecord>,
}

impl Hub {
    /// Adds an authenticated connection of `user`, which then receives the user's notifications once the stream
    /// starts ([`Hub::start_user`]); until then they wait, in order.
    pub fn join_user(&self, user: &str, mailbox: &Mailbox) {
        let mut inner = self.inner();
        inner.index.join_user(user, mailbox);
        inner.users.entry(user.to_owned()).or_default();
    }

    /// Starts a user's stream after `head` (what the connection read at sign-in covers), unless it runs already;
    /// with no head, at the first notification that comes. Returns whether it waits for missing ones.
    pub fn start_user(&self, user: &str, head: Option<u64>) -> bool {
        let mut inner = self.inner();
        let Inner { users, index, .. } = &mut *inner;
        let Some(stream) = users.get_mut(user) else { return false };
        if stream.next.is_none() {
            stream.next = head.map(|head| head + 1).or_else(|| stream.early.keys().next().copied());
        }
        release(user, stream, index);
        !stream.early.is_empty()
    }

    /// Removes a connection from its user's notifications; the user's stream ends with their last connection.
    pub fn leave_user(&self, user: &str, connection: u64) {
        let mut inner = self.inner();
        inner.index.leave_user(user, connection);
        if inner.index.user_mailboxes(user).next().is_none() {
            inner.users.remove(user);
        }
    }

    /// Takes stored notifications and releases each user's in `seq` order to every connection of theirs, encoded
    /// once per form. Returns the users whose stream waits for missing ones (to be read from storage).
    pub fn notify(&self, records: &[NotificationRecord]) -> Vec<String> {
        let mut inner = self.inner();
        let Inner { users, index, .. } = &mut *inner;
        let mut touched: Vec<&str> = Vec::new();
        for record in records {
            // A user with no connection here has no stream: nothing to deliver, nothing to hold.
            let Some(stream) = users.get_mut(&record.user_id) else { continue };
            if stream.next.is_some_and(|next| record.seq < next) {
                continue;
            }
            stream.early.insert(record.seq, record.clone());
            if !touched.contains(&record.user_id.as_str()) {
                touched.push(&record.user_id);
            }
        }
        let mut waiting = Vec::new();
        for user in touched {
            let Some(stream) = users.get_mut(user) else { continue };
            release(user, stream, index);
            if !stream.early.is_empty() {
                waiting.push(user.to_owned());
            }
        }
        waiting
    }

    /// Where a user's stream waits, if it does: the last `seq` released, while later ones wait for missing ones.
    pub fn user_gap(&self, user: &str) -> Option<u64> {
        let inner = self.inner();
        let stream = inner.users.get(user)?;
        if stream.early.is_empty() {
            return None;
        }
        stream.next.map(|next| next.saturating_sub(1))
    }

    /// Passes over a user's notifications that storage no longer has (its first kept `seq` after the gap is
    /// `first_kept`): the user's connections are told that their `notifications` subscription lost some, then
    /// what waits is released. Returns how many were passed over.
    pub fn pass_lost_notifications(&self, user: &str, first_kept: u64) -> u64 {
        let mut inner = self.inner();
        let Inner { users, index, .. } = &mut *inner;
        let Some(stream) = users.get_mut(user) else { return 0 };
        let Some(next) = stream.next else { return 0 };
        let waiting_below = stream.early.range(next..first_kept).count() as u64;
        let lost = first_kept.saturating_sub(next).saturating_sub(waiting_below);
        if lost == 0 {
            return 0;
        }
        let topic: Arc<str> = Arc::from(Topic::NOTIFICATIONS);
        let mut slow = Vec::new();
        for mailbox in index.user_mailboxes(user) {
            if !mailbox.offer(Delivery::Lost(LostPush { topic: Arc::clone(&topic) })) && mailbox.is_slow() {
                slow.push(mailbox.connection);
            }
        }
        for connection in slow {
            index.drop_connection(connection);
        }
        // What waits below the first kept one goes out in order; the missing ones are passed over.
        let mut below: Vec<u64> = stream.early.range(next..first_kept).map(|(seq, _)| *seq).collect();
        below.push(first_kept);
        for seq in below {
            stream.next = Some(seq);
            release(user, stream, index);
        }
        lost
    }
}

/// Releases what is next in a user's stream, in order, to every connection of the user.
fn release(user: &str, stream: &mut UserStream, index: &mut super::index::Index) {
    let Some(mut next) = stream.next else { return };
    // Whatever waits below where the stream starts was read at sign-in, or delivered before: not again.
    stream.early.retain(|seq, _| *seq >= next);
    let mut slow = Vec::new();
    while let Some(record) = stream.early.remove(&next) {
        next += 1;
        let (Some(plain), Some(subscribed)) =
            (encode_notification(&record, None), encode_notification(&record, Some(Topic::NOTIFICATIONS)))
        else {
            continue;
        };
        let push = Arc::new(NotificationPush { seq: record.seq, plain, subscribed });
        for mailbox in index.user_mailboxes(user) {
            if !mailbox.offer(Delivery::Notification(Arc::clone(&push))) && mailbox.is_slow() {
                slow.push(mailbox.connection);
            }
        }
    }
    stream.next = Some(next);
    for connection in slow {
        index.drop_connection(connection);
    }
}
