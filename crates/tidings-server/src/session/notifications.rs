//! A session's notifications, in one room: those that waited while the user was away (pushed at sign-in), the
//! `notifications` subscription (a replay after `since`, then live), live delivery either way, and marking what
//! was written as delivered once it is flushed.
//!
//! Each notification reaches a connection once, whichever way it comes: the [`Inbox`] remembers what this
//! connection was sent. Storage is reached through the notifier, never directly.

use std::collections::BTreeSet;

use tidings_protocol::{ErrorCode, ErrorPayload, RequestId, Seq, ServerMessage, Subscribed, Topic};

use super::subscriptions::{subscription_id, Subscription, REPLAY_BATCH};
use super::{Flow, Session};
use crate::connection::Outbound;
use crate::errors::unavailable;
use crate::hub::NotificationPush;
use crate::push::encode_notification;

/// Notifications pushed at sign-in at most.
const PENDING_AT_SIGN_IN: usize = 100;

/// What one connection did with its user's notifications.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    /// Notifications sent on this connection, so that none is sent twice (a bounded memory of the latest).
    seen: BTreeSet<u64>,
    /// Notifications written but not yet flushed, to mark delivered after the flush.
    unmarked: Vec<u64>,
}

impl Inbox {
    /// Remembers a notification sent to this connection; false if it already was.
    fn note(&mut self, seq: u64) -> bool {
        // Bounded: the memory of what was pushed only serves the overlap with a later replay.
        if self.seen.len() >= 1024 {
            self.seen.pop_first();
        }
        self.seen.insert(seq)
    }
}

impl<O: Outbound> Session<O> {
    /// After the first `auth_success`: joins the user's notifications and pushes those that waited while the user
    /// was away (the newest 100; older ones stay readable through a `notifications` subscription with `since`).
    pub(super) async fn welcome(&mut self) -> Flow {
        let Some(user) = self.user.as_ref().map(|u| u.identity.user_id.clone()) else { return Flow::Continue };
        // Joining first means nothing sent from now on is missed; what also waits in storage is dropped by seq.
        self.shared.hub.join_user(&user, &self.mailbox);
        let notifier = std::sync::Arc::clone(&self.shared.notifier);
        if let Err(error) = notifier.remember_user(&user).await {
            tracing::warn!("could not record user {user}: {error}");
        }
        let pending = match notifier.take_pending(&user, PENDING_AT_SIGN_IN).await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!("could not read the notifications waiting for {user}: {error}");
                return Flow::Continue;
            }
        };
        for record in &pending {
            let Some(text) = encode_notification(record, None) else { continue };
            self.inbox.note(record.seq);
            if self.out.text(&text).await.is_err() {
                return Flow::Stop;
            }
            self.inbox.unmarked.push(record.seq);
        }
        Flow::Continue
    }

    /// The user's notifications as a subscription: replay after `since` (less what this connection already
    /// received as plain pushes), then live, each with `subscriptionId`, and no more plain pushes.
    pub(super) async fn subscribe_notifications(
        &mut self,
        request_id: Option<RequestId>,
        topic: Topic,
        since: Option<u64>,
    ) -> Flow {
        let Some(user) = self.user.as_ref().map(|u| u.identity.user_id.clone()) else { return Flow::Continue };
        let notifier = std::sync::Arc::clone(&self.shared.notifier);
        let head = match notifier.head(&user).await {
            Ok(head) => head,
            Err(_) => {
                let error = unavailable("notifications cannot be read now; retry later");
                return self.send(request_id, ServerMessage::Error(error)).await;
            }
        };
        let recovered = since.map(|since| since <= head);
        let reply = Subscribed {
            subscription_id: subscription_id(&topic),
            topic: topic.clone(),
            seq: Seq::saturating(head),
            recovered,
        };
        if self.send(request_id, ServerMessage::Subscribe(reply)).await == Flow::Stop {
            return Flow::Stop;
        }
        let mut last_seq = head;
        if let Some(mut after) = since.filter(|_| recovered == Some(true)) {
            loop {
                let page = match notifier.after(&user, after, REPLAY_BATCH).await {
                    Ok(page) => page,
                    Err(_) => {
                        let error = ErrorPayload::new(
                            ErrorCode::Unavailable,
                            "notifications cannot be read now; subscribe again",
                        );
                        return self.end_subscription(&topic, error).await;
                    }
                };
                let Some(last) = page.last().map(|n| n.seq) else { break };
                for record in &page {
                    if !self.inbox.note(record.seq) {
                        continue;
                    }
                    let Some(text) = encode_notification(record, Some(topic.as_str())) else { continue };
                    if self.out.text(&text).await.is_err() {
                        return Flow::Stop;
                    }
                    self.inbox.unmarked.push(record.seq);
                }
                after = last;
                last_seq = last_seq.max(last);
            }
        }
        self.subscriptions.insert(topic.as_str().to_owned(), Subscription::of_notifications(topic, last_seq));
        self.list_subscriptions();
        Flow::Continue
    }

    /// Pushes a user's notification: through the `notifications` subscription if there is one, else plainly.
    pub(super) async fn deliver_notification(&mut self, push: NotificationPush) -> Flow {
        let text = match self.subscriptions.get_mut(Topic::NOTIFICATIONS) {
            Some(subscription) => {
                // At or below the replay's end, the replay sent it. Above it, notifications stored on two nodes at
                // once may come in either order, so a duplicate is caught by the inbox below, not by a high mark.
                if push.seq <= subscription.last_seq {
                    return Flow::Continue;
                }
                push.subscribed
            }
            None => push.plain,
        };
        // Whichever way it goes out, a connection gets each notification once.
        if !self.inbox.note(push.seq) {
            return Flow::Continue;
        }
        if self.out.text(&text).await.is_err() {
            return Flow::Stop;
        }
        self.inbox.unmarked.push(push.seq);
        Flow::Continue
    }

    /// Marks the notifications flushed to the socket as delivered, before the session handles anything else:
    /// a connection opened after this one's next reply cannot get them again as pending.
    pub(super) async fn mark_flushed(&mut self) {
        if self.inbox.unmarked.is_empty() {
            return;
        }
        let seqs = std::mem::take(&mut self.inbox.unmarked);
        let Some(user) = self.user.as_ref().map(|u| u.identity.user_id.clone()) else { return };
        if let Err(error) = self.shared.notifier.mark_delivered(&user, seqs).await {
            tracing::warn!("could not mark notifications delivered: {error}");
        }
    }
}
