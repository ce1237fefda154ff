//! `subscribe` and `unsubscribe`: resume with `since`, then live events, with no gap and no duplicate.
//!
//! The hand-over from replay to live works like this: the session joins the hub first, so every event committed
//! from then on reaches its mailbox; then it replays from storage everything after `since`, up to the end of the
//! log as it is at that moment. Events committed in between arrive both ways; the session remembers the last
//! `seq` it sent per subscription and drops anything at or below it. Because the hub releases each topic in
//! `seq` order, a live event above that mark is always the next one.

use std::collections::HashMap;

use tidings_protocol::{
    ErrorCode, ErrorPayload, RequestId, Seq, ServerMessage, Subscribe, Subscribed, SubscriptionId, Topic, TopicKind,
    Unsubscribe, Unsubscribed,
};

use super::{Flow, Session};
use crate::connection::Outbound;
use crate::hub::{encode_notification, Delivery, Scope};
use crate::resources::prefix_pointers;

/// Events read from storage per step of a replay.
const REPLAY_BATCH: usize = 500;

/// One live subscription of a connection.
#[derive(Debug)]
pub(super) struct Subscription {
    topic: Topic,
    /// For a type topic: what it reaches.
    scope: Option<Scope>,
    /// For a one-resource topic: the resource's owner.
    owner: Option<String>,
    /// The highest `seq` sent; anything at or below it is a duplicate.
    last_seq: u64,
}

/// A connection's subscriptions, by their id (which is their topic).
pub(super) type Subscriptions = HashMap<String, Subscription>;

impl<O: Outbound> Session<O> {
    /// Starts a subscription: checks, joins the hub, replies, replays after `since`.
    pub(super) async fn subscribe(&mut self, request_id: Option<RequestId>, subscribe: Subscribe) -> Flow {
        let Some(user) = &self.user else { return Flow::Continue };
        let topic = subscribe.topic;
        if self.subscriptions.contains_key(topic.as_str()) {
            let error =
                ErrorPayload::new(ErrorCode::Conflict, format!("this connection already subscribes to {topic}"))
                    .with_detail("subscriptionId", topic.as_str());
            return self.send(request_id, ServerMessage::Error(error)).await;
        }
        let max = self.shared.config.limits.max_subscriptions;
        if self.subscriptions.len() >= max as usize {
            let error =
                ErrorPayload::new(ErrorCode::LimitExceeded, format!("a connection may hold {max} subscriptions"))
                    .with_detail("limit", "maxSubscriptions")
                    .with_detail("max", max);
            return self.send(request_id, ServerMessage::Error(error)).await;
        }
        if topic.kind() == TopicKind::Notifications {
            return self.subscribe_notifications(request_id, topic, subscribe.since.map(Seq::get)).await;
        }
        let opened = match self.shared.resources.open_subscription(&user.identity, &topic).await {
            Ok(opened) => opened,
            Err(error) => return self.send(request_id, ServerMessage::Error(prefix_pointers(error, "/payload"))).await,
        };
        self.shared.hub.subscribe(&topic, &self.mailbox, opened.scope.clone().unwrap_or(Scope::All));
        let since = subscribe.since.map(Seq::get);
        // A `since` beyond the log's end means the client knew another log; one before the oldest event kept
        // means events are gone. Either way the client must re-read.
        let recovered = since.map(|since| opened.recoverable(since));
        let reply = Subscribed {
            subscription_id: subscription_id(&topic),
            topic: topic.clone(),
            seq: Seq::saturating(opened.head),
            recovered,
        };
        let mut subscription =
            Subscription { topic: topic.clone(), scope: opened.scope, owner: opened.owner, last_seq: opened.head };
        if self.send(request_id, ServerMessage::Subscribe(reply)).await == Flow::Stop {
            return Flow::Stop;
        }
        if let Some(since) = since.filter(|_| recovered == Some(true)) {
            let mut after = since;
            loop {
                let page = self.shared.resources.replay(&topic, subscription.scope.as_ref(), after, REPLAY_BATCH).await;
                let (events, last) = match page {
                    Ok(page) => page,
                    Err(error) => {
                        // The reply is out; the client learns of the failure and may subscribe again.
                        self.shared.hub.unsubscribe(&topic, self.mailbox.connection);
                        return self.end_subscription(&topic, error).await;
                    }
                };
                for (seq, text) in events {
                    if self.out.text(&text).await.is_err() {
                        return Flow::Stop;
                    }
                    subscription.last_seq = subscription.last_seq.max(seq);
                }
                match last {
                    Some(last) => after = last,
                    None => break,
                }
                if self.out.flush().await.is_err() {
                    return Flow::Stop;
                }
            }
            subscription.last_seq = subscription.last_seq.max(after);
        }
        self.subscriptions.insert(topic.as_str().to_owned(), subscription);
        Flow::Continue
    }

    /// Ends a subscription at the client's request.
    pub(super) async fn unsubscribe(&mut self, request_id: Option<RequestId>, unsubscribe: Unsubscribe) -> Flow {
        let Some(subscription) = self.subscriptions.remove(unsubscribe.subscription_id.as_str()) else {
            let error = ErrorPayload::new(
                ErrorCode::NotFound,
                format!("this connection has no subscription '{}'", unsubscribe.subscription_id),
            )
            .with_detail("subscriptionId", unsubscribe.subscription_id.as_str());
            return self.send(request_id, ServerMessage::Error(error)).await;
        };
        self.shared.hub.unsubscribe(&subscription.topic, self.mailbox.connection);
        let reply = Unsubscribed {
            subscription_id: subscription_id(&subscription.topic),
            topic: Some(subscription.topic),
            reason: None,
        };
        self.send(request_id, ServerMessage::Unsubscribe(reply)).await
    }

    /// The user's notifications as a subscription: replay after `since` (less what this connection already
    /// received as plain pushes), then live, each with `subscriptionId`, and no more plain pushes.
    async fn subscribe_notifications(
        &mut self,
        request_id: Option<RequestId>,
        topic: Topic,
        since: Option<u64>,
    ) -> Flow {
        let Some(user) = self.user.as_ref().map(|u| u.identity.user_id.clone()) else { return Flow::Continue };
        let storage = std::sync::Arc::clone(self.shared.resources.storage());
        let head = match storage.notification_head(&user).await {
            Ok(head) => head,
            Err(_) => {
                let error = ErrorPayload::new(ErrorCode::Unavailable, "notifications cannot be read now; retry later")
                    .with_detail("retryAfterMs", 1000);
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
                let Ok(page) = storage.notifications_after(&user, after, REPLAY_BATCH).await else { break };
                let Some(last) = page.last().map(|n| n.seq) else { break };
                let mut delivered = Vec::new();
                for record in page.iter().filter(|n| !self.inbox_seen.contains(&n.seq)) {
                    let Some(text) = encode_notification(record, Some(topic.as_str())) else { continue };
                    if self.out.text(&text).await.is_err() {
                        return Flow::Stop;
                    }
                    delivered.push(record.seq);
                }
                self.mark_delivered(delivered).await;
                after = last;
                last_seq = last_seq.max(last);
            }
        }
        self.subscriptions
            .insert(topic.as_str().to_owned(), Subscription { topic, scope: None, owner: None, last_seq });
        Flow::Continue
    }

    /// Pushes a user's notification: through the `notifications` subscription if there is one, else plainly.
    async fn deliver_notification(&mut self, delivery: Delivery) -> Flow {
        let (text, seq) = match self.subscriptions.get_mut(Topic::NOTIFICATIONS) {
            Some(subscription) => {
                if delivery.seq <= subscription.last_seq {
                    return Flow::Continue;
                }
                subscription.last_seq = delivery.seq;
                (delivery.subscribed.unwrap_or(delivery.text), delivery.seq)
            }
            None => {
                if !self.note_inbox(delivery.seq) {
                    return Flow::Continue;
                }
                (delivery.text, delivery.seq)
            }
        };
        if self.out.text(&text).await.is_err() {
            return Flow::Stop;
        }
        self.mark_delivered(vec![seq]).await;
        Flow::Continue
    }

    /// Remembers a notification pushed plainly to this connection; false if it already was.
    pub(super) fn note_inbox(&mut self, seq: u64) -> bool {
        // Bounded: the memory of what was pushed plainly only serves the overlap with a later replay.
        if self.inbox_seen.len() >= 1024 {
            self.inbox_seen.pop_first();
        }
        self.inbox_seen.insert(seq)
    }

    /// Records that this connection received these notifications, before the session handles anything else: a
    /// connection opened after this one's next reply cannot get them again as pending.
    pub(super) async fn mark_delivered(&mut self, seqs: Vec<u64>) {
        let Some(user) = self.user.as_ref().map(|u| u.identity.user_id.clone()) else { return };
        if seqs.is_empty() {
            return;
        }
        if let Err(error) = self.shared.resources.storage().mark_delivered(&user, seqs).await {
            tracing::warn!("could not mark notifications delivered: {error}");
        }
    }

    /// Sends a live event unless its subscription is gone or a replay already sent it.
    pub(super) async fn deliver(&mut self, delivery: Delivery) -> Flow {
        if delivery.subscribed.is_some() {
            return self.deliver_notification(delivery).await;
        }
        let Some(subscription) = self.subscriptions.get_mut(&*delivery.topic) else { return Flow::Continue };
        if delivery.seq <= subscription.last_seq {
            return Flow::Continue;
        }
        subscription.last_seq = delivery.seq;
        if self.out.text(&delivery.text).await.is_err() {
            return Flow::Stop;
        }
        if delivery.ends {
            let topic = subscription.topic.clone();
            let error = ErrorPayload::new(ErrorCode::NotFound, format!("{topic} was deleted"));
            return self.end_subscription(&topic, error).await;
        }
        Flow::Continue
    }

    /// After a re-authentication: every subscription is checked under the new claims.
    pub(super) async fn recheck_subscriptions(&mut self) -> Flow {
        let Some(user) = &self.user else { return Flow::Continue };
        let identity = user.identity.clone();
        let topics: Vec<Topic> = self.subscriptions.values().map(|s| s.topic.clone()).collect();
        for topic in topics {
            let Some(subscription) = self.subscriptions.get(topic.as_str()) else { continue };
            let still = match (topic.kind(), &subscription.owner) {
                (TopicKind::Notifications, _) => Some(None),
                (TopicKind::Resource(name, _), Some(owner)) => {
                    self.shared.resources.may_read(&identity, name, owner).then_some(None)
                }
                _ => match self.shared.resources.open_subscription(&identity, &topic).await {
                    Ok(opened) => Some(opened.scope),
                    Err(_) => None,
                },
            };
            match still {
                None => {
                    self.shared.hub.unsubscribe(&topic, self.mailbox.connection);
                    let error = ErrorPayload::new(
                        ErrorCode::Forbidden,
                        format!("the new token no longer grants reading {topic}"),
                    );
                    if self.end_subscription(&topic, error).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Some(Some(scope)) if subscription.scope.as_ref() != Some(&scope) => {
                    self.shared.hub.unsubscribe(&topic, self.mailbox.connection);
                    self.shared.hub.subscribe(&topic, &self.mailbox, scope.clone());
                    if let Some(subscription) = self.subscriptions.get_mut(topic.as_str()) {
                        subscription.scope = Some(scope);
                    }
                }
                Some(_) => {}
            }
        }
        Flow::Continue
    }

    /// Ends a subscription from the server's side, with an `unsubscribe` push saying why.
    async fn end_subscription(&mut self, topic: &Topic, reason: ErrorPayload) -> Flow {
        self.subscriptions.remove(topic.as_str());
        self.shared.hub.unsubscribe(topic, self.mailbox.connection);
        let push =
            Unsubscribed { subscription_id: subscription_id(topic), topic: Some(topic.clone()), reason: Some(reason) };
        self.send(None, ServerMessage::Unsubscribe(push)).await
    }

    /// Leaves the hub when the session ends.
    pub(super) fn leave_hub(&mut self) {
        let topics: Vec<Topic> = self.subscriptions.drain().map(|(_, s)| s.topic).collect();
        self.shared.hub.leave(&topics, self.mailbox.connection);
        if let Some(user) = &self.user {
            self.shared.hub.leave_user(&user.identity.user_id, self.mailbox.connection);
        }
    }
}

/// A subscription's id is its topic: unique within a connection (a topic is subscribed once), and the same for
/// every subscriber, so that the hub encodes each event once for all of them.
fn subscription_id(topic: &Topic) -> SubscriptionId {
    // A topic has at most 193 characters and a subscription id may have 200, so this cannot fail.
    SubscriptionId::new(topic.as_str()).expect("a topic fits a subscription id")
}
