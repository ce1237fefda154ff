//! A session's notifications, in one room: those that waited while the user was away (pushed at sign-in), the
//! `notifications` subscription (a replay after `since`, then live), live delivery either way, and marking what
//! was written as delivered once it is flushed.
//!
//! Each notification reaches a connection once, whichever way it comes, and what the connection remembers of
//! that is bounded without forgetting anything: the hub releases a user's notifications in `seq` order, so what
//! came live is one range, and what was pushed at sign-in is at most [`PENDING_AT_SIGN_IN`] more. Storage is
//! reached through the notifier, never directly.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidings_protocol::{ErrorCode, ErrorPayload, RequestId, Seq, ServerMessage, Subscribed, Topic};

use super::subscriptions::{subscription_id, Subscription};
use super::{Flow, Session};
use crate::connection::Outbound;
use crate::errors::unavailable;
use crate::hub::{Follow, NotificationPush};
use crate::push::encode_notification;

/// Notifications pushed at sign-in at most.
const PENDING_AT_SIGN_IN: usize = 100;

/// Notifications read per page of a `since` replay. A notification is at most about 17 KB (a 200-character title
/// and a 4000-character body, in UTF-8), so a page, held while the client reads it, stays near 1 MiB.
const NOTIFICATION_BATCH: usize = 64;

/// What one connection did with its user's notifications.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    /// Where the user's stream started for this connection: the head read at sign-in. Live ones come after it.
    start: u64,
    /// Those pushed at sign-in (at most [`PENDING_AT_SIGN_IN`], all at or below `start`).
    pending: BTreeSet<u64>,
    /// The range of those that came live, first and last: the hub releases them in order, each once.
    live: Option<(u64, u64)>,
    /// Notifications written but not yet flushed, to mark delivered after the flush.
    unmarked: Vec<u64>,
}

impl Inbox {
    /// Whether this connection was sent notification `seq` already.
    fn seen(&self, seq: u64) -> bool {
        self.pending.contains(&seq) || self.live.is_some_and(|(first, last)| (first..=last).contains(&seq))
    }

    /// Remembers a notification that came live. They come in increasing `seq`, so the range only grows; one not
    /// sent between two that were came some other way (at sign-in, or in a replay), so the range may cover it.
    fn note_live(&mut self, seq: u64) {
        self.live = Some(match self.live {
            Some((first, last)) => (first, last.max(seq)),
            None => (seq, seq),
        });
    }

    /// Remembers that a replay after `since` sent everything up to `last` that this connection had not seen. A
    /// replay reads to storage's end, which is past every notification that came live, so the two ranges meet
    /// and stay one.
    fn note_replayed(&mut self, since: u64, last: u64) {
        let (first, end) = self.live.map_or((since + 1, last), |(first, end)| (first.min(since + 1), end.max(last)));
        self.live = Some((first, end));
    }

    /// How far the live stream has come on this connection: where a subscription without `since` starts.
    fn position(&self) -> u64 {
        self.live.map_or(self.start, |(_, last)| last.max(self.start))
    }
}

impl<O: Outbound> Session<O> {
    /// After the first `auth_success`: joins the user's notifications and pushes those that waited while the user
    /// was away (the newest 100; older ones stay readable through a `notifications` subscription with `since`).
    pub(super) async fn welcome(&mut self) -> Flow {
        let Some(user) = self.user.as_ref().map(|u| u.identity.user_id.clone()) else { return Flow::Continue };
        // Joining first means nothing stored from now on is missed: it waits in the hub until the stream starts
        // after the head read below, and what also waits in storage at or below it is pushed here.
        self.shared.hub.join_user(&user, &self.mailbox);
        let notifier = std::sync::Arc::clone(&self.shared.notifier);
        notifier.remember_user(&user);
        let pending = match notifier.take_pending(&user, PENDING_AT_SIGN_IN).await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!("could not read the notifications waiting for {user}: {error}");
                self.shared.relay.start_user(&user, None);
                return Flow::Continue;
            }
        };
        self.inbox.start = pending.head;
        self.shared.relay.start_user(&user, Some(pending.head));
        for record in &pending.records {
            let Some(text) = encode_notification(record, None) else { continue };
            self.inbox.pending.insert(record.seq);
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
        let Some(since) = since else {
            // No replay: the subscription starts where this connection's live stream stands, so that one still on
            // its way (stored, not yet here) comes through it rather than being taken for a replayed one.
            let position = self.inbox.position();
            let reply = Subscribed {
                subscription_id: subscription_id(&Follow::topic(topic.clone())),
                topic: topic.clone(),
                seq: Seq::saturating(position),
                recovered: None,
                items: None,
                next_cursor: None,
            };
            self.subscriptions.insert(topic.as_str().to_owned(), Subscription::of_notifications(topic, position));
            self.list_subscriptions();
            return self.send(request_id, ServerMessage::Subscribe(reply)).await;
        };
        let notifier = std::sync::Arc::clone(&self.shared.notifier);
        let head = match notifier.head(&user).await {
            Ok(head) => head,
            Err(_) => {
                let error = unavailable("notifications cannot be read now; retry later");
                return self.send(request_id, ServerMessage::Error(error)).await;
            }
        };
        // Recovered when every notification after `since` is still kept: `since` is not before what was pruned,
        // and not past the head (a log the client cannot have known).
        let (head, pruned) = (head.seq, head.pruned);
        let recovered = pruned <= since && since <= head;
        let reply = Subscribed {
            subscription_id: subscription_id(&Follow::topic(topic.clone())),
            topic: topic.clone(),
            seq: Seq::saturating(head),
            recovered: Some(recovered),
            items: None,
            next_cursor: None,
        };
        if self.send(request_id, ServerMessage::Subscribe(reply)).await == Flow::Stop {
            return Flow::Stop;
        }
        let mut last_seq = head;
        if recovered {
            let mut after = since;
            loop {
                let page = match notifier.after(&user, after, NOTIFICATION_BATCH).await {
                    Ok(page) => page,
                    Err(_) => {
                        let error = ErrorPayload::new(
                            ErrorCode::Unavailable,
                            "notifications cannot be read now; subscribe again",
                        );
                        return self.end_subscription(topic.as_str(), error).await;
                    }
                };
                let Some(last) = page.last().map(|n| n.seq) else { break };
                for record in &page {
                    if self.inbox.seen(record.seq) {
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
            if last_seq > since {
                self.inbox.note_replayed(since, last_seq);
            }
        }
        self.subscriptions.insert(topic.as_str().to_owned(), Subscription::of_notifications(topic, last_seq));
        self.list_subscriptions();
        Flow::Continue
    }

    /// Pushes a user's notification: through the `notifications` subscription if there is one, else plainly. The
    /// hub releases them in `seq` order, so a subscription's high mark tells what its replay already sent.
    pub(super) async fn deliver_notification(&mut self, push: Arc<NotificationPush>) -> Flow {
        if self.inbox.seen(push.seq) {
            return Flow::Continue;
        }
        let text = match self.subscriptions.get_mut(Topic::NOTIFICATIONS) {
            Some(subscription) if push.seq <= subscription.last_seq => {
                // The replay sent it; it still counts as come, so that the range stays one.
                self.inbox.note_live(push.seq);
                return Flow::Continue;
            }
            Some(subscription) => {
                subscription.last_seq = push.seq;
                &push.subscribed
            }
            None => &push.plain,
        };
        if self.out.text(text).await.is_err() {
            return Flow::Stop;
        }
        self.inbox.note_live(push.seq);
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
