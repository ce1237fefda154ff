//! `subscribe` and `unsubscribe`: resume with `since`, then live events, with no gap and no duplicate.
//!
//! The hand-over from replay to live works like this: the session joins the hub first, so every event committed
//! from then on reaches its mailbox; then it replays from storage everything after `since`, up to the end of the
//! log as it is at that moment. Events committed in between arrive both ways; the session remembers the last
//! `seq` it sent per subscription and drops anything at or below it. Because the hub releases each topic in
//! `seq` order, a live event above that mark is always the next one.

use std::collections::HashMap;
use std::sync::Arc;

use tidings_protocol::{
    ErrorCode, ErrorPayload, Limit, Read, RequestId, ResourceType, Seq, ServerMessage, Subscribe, Subscribed,
    SubscriptionId, Topic, TopicKind, Unsubscribe, Unsubscribed,
};

use super::{Flow, Session};
use crate::connection::Outbound;
use crate::errors::prefix_pointers;
use crate::hub::{Delivery, EventPush, Follow, Scope};
use crate::resources::EventTopic;

/// Events (or notifications) read from storage per step of a replay.
pub(super) const REPLAY_BATCH: usize = 500;

/// One live subscription of a connection.
#[derive(Debug)]
pub(super) struct Subscription {
    /// What it follows in the hub: its topic, its id and any query.
    pub(super) follow: Follow,
    /// For a type topic: what it reaches.
    pub(super) scope: Option<Scope>,
    /// For a one-resource topic: the resource's owner.
    pub(super) owner: Option<String>,
    /// The data fields a field rule hides from the user.
    pub(super) hidden: Option<Arc<[String]>>,
    /// The highest `seq` sent; anything at or below it is a duplicate.
    pub(super) last_seq: u64,
}

impl Subscription {
    /// The `notifications` subscription, having sent everything up to `last_seq`.
    pub(super) fn of_notifications(topic: Topic, last_seq: u64) -> Subscription {
        Subscription { follow: Follow::topic(topic), scope: None, owner: None, hidden: None, last_seq }
    }

    /// Its topic.
    pub(super) fn topic(&self) -> &Topic {
        &self.follow.topic
    }
}

/// A connection's subscriptions, by their id (the topic, or for a query, the type and the query's digest). Hashed
/// with foldhash, not the standard SipHash: every push is looked up here, and SipHash was 2-3% of a filtered
/// fan-out. (A connection has at most `max_subscriptions` of them, so no client can make the map degenerate.)
pub(super) type Subscriptions = HashMap<String, Subscription, foldhash::fast::RandomState>;

impl<O: Outbound> Session<O> {
    /// Starts a subscription: checks, joins the hub, replies (with a snapshot when asked), replays after `since`.
    pub(super) async fn subscribe(&mut self, request_id: Option<RequestId>, subscribe: Subscribe) -> Flow {
        let Some(user) = &self.user else { return Flow::Continue };
        let identity = user.identity.clone();
        let Subscribe { topic, since, query, snapshot } = subscribe;
        let follow = match self.shared.resources.follow(&identity, &topic, query.as_ref()) {
            Ok(follow) => follow,
            Err(error) => return self.send(request_id, ServerMessage::Error(prefix_pointers(error, "/payload"))).await,
        };
        let key = follow.id.to_string();
        if self.subscriptions.contains_key(&key) {
            let what = if follow.condition.is_some() { format!("this query of {topic}") } else { topic.to_string() };
            let error = ErrorPayload::new(ErrorCode::Conflict, format!("this connection already subscribes to {what}"))
                .with_detail("subscriptionId", key.as_str());
            return self.send(request_id, ServerMessage::Error(error)).await;
        }
        let max = self.shared.config.limits.max_subscriptions;
        if self.subscriptions.len() >= max as usize {
            let message = format!("a connection may hold {max} subscriptions");
            let error = crate::errors::limit_exceeded("maxSubscriptions", max, message);
            return self.send(request_id, ServerMessage::Error(error)).await;
        }
        let since = since.map(Seq::get);
        if let TopicKind::Presence(of) = topic.kind() {
            let of = of.to_owned();
            return self.subscribe_presence(request_id, topic, &of, since).await;
        }
        let Some(followed) = EventTopic::of(&topic) else {
            return self.subscribe_notifications(request_id, topic, since).await;
        };
        // Join the hub before reading where the topic stands: an event committed in between then reaches the
        // mailbox (and is dropped there if the head or the replay covers it) instead of falling between the two.
        let scope = match followed {
            EventTopic::Type(name) => match self.shared.resources.scope_for(&identity, name) {
                Ok(scope) => Some(scope),
                Err(error) => {
                    return self.send(request_id, ServerMessage::Error(prefix_pointers(error, "/payload"))).await
                }
            },
            // A resource the user may not read does not exist for them: opening it below answers NOT_FOUND.
            EventTopic::Resource(name, _) => self.shared.resources.scope_for(&identity, name).ok(),
        };
        let hidden = match followed {
            EventTopic::Type(name) | EventTopic::Resource(name, _) => self.shared.resources.hidden_for(&identity, name),
        };
        self.shared.hub.subscribe(&follow, &self.mailbox, scope.clone().unwrap_or(Scope::All), hidden.clone());
        let opened = match self.shared.resources.open_subscription(&identity, followed).await {
            Ok(opened) => opened,
            Err(error) => {
                self.shared.hub.unsubscribe(&follow, self.mailbox.connection);
                return self.send(request_id, ServerMessage::Error(prefix_pointers(error, "/payload"))).await;
            }
        };
        // A `since` beyond the log's end means the client knew another log: it must re-read.
        let mut recovered = since.map(|since| since <= opened.head);
        // Whether the events after `since` are all still kept shows in the first page of the replay: the first
        // event read must be the one right after `since` (a topic's seqs have no gaps). It is read before the
        // reply, so the reply can say so.
        let mut first_page = None;
        if let (Some(since), Some(true)) = (since, recovered) {
            if since < opened.head {
                match self
                    .shared
                    .resources
                    .replay(&follow, (scope.as_ref(), hidden.as_deref()), since, REPLAY_BATCH)
                    .await
                {
                    Ok(page) if page.first != Some(since + 1) => recovered = Some(false),
                    Ok(page) => first_page = Some(page),
                    Err(error) => {
                        self.shared.hub.unsubscribe(&follow, self.mailbox.connection);
                        return self.send(request_id, ServerMessage::Error(prefix_pointers(error, "/payload"))).await;
                    }
                }
            }
        }
        // A snapshot replaces what a client would otherwise re-read: asked for, and no replay brings it up to
        // date. It is exact as of its own `seq`, which live events then follow.
        let (mut head, mut items, mut next_cursor) = (opened.head, None, None);
        // (The decoder refused a snapshot of any other topic than a type's.)
        let snapshot_of = match followed {
            EventTopic::Type(name) if snapshot == Some(true) && recovered != Some(true) => ResourceType::new(name).ok(),
            _ => None,
        };
        if let Some(resource_type) = snapshot_of {
            let read = Read {
                resource_type,
                id: None,
                filter: None,
                query,
                order_by: None,
                limit: Some(Limit::LARGEST),
                cursor: None,
                fields: None,
                count: None,
            };
            match self.shared.resources.snapshot(&identity, &read).await {
                Ok((page, cursor, at)) => (head, items, next_cursor) = (at, Some(page), cursor),
                Err(error) => {
                    self.shared.hub.unsubscribe(&follow, self.mailbox.connection);
                    return self.send(request_id, ServerMessage::Error(prefix_pointers(error, "/payload"))).await;
                }
            }
        }
        // Recorded before anything is sent, so that however this ends, leaving the hub removes it.
        let subscription = Subscription { follow: follow.clone(), scope, owner: opened.owner, hidden, last_seq: head };
        self.subscriptions.insert(key.clone(), subscription);
        self.list_subscriptions();
        let reply = Subscribed {
            subscription_id: subscription_id(&follow),
            topic: topic.clone(),
            seq: Seq::saturating(head),
            recovered,
            items,
            next_cursor,
        };
        if self.send(request_id, ServerMessage::Subscribe(reply)).await == Flow::Stop {
            return Flow::Stop;
        }
        let Some(mut page) = first_page else { return Flow::Continue };
        // Set when a live delivery, dropped during the replay, said that the resource was deleted.
        let mut deleted = false;
        loop {
            for (seq, text) in std::mem::take(&mut page.events) {
                if self.out.text(&text).await.is_err() {
                    return Flow::Stop;
                }
                if let Some(subscription) = self.subscriptions.get_mut(&key) {
                    subscription.last_seq = subscription.last_seq.max(seq);
                }
            }
            let Some(last) = page.last else { break };
            if let Some(subscription) = self.subscriptions.get_mut(&key) {
                subscription.last_seq = subscription.last_seq.max(last);
            }
            if self.out.flush().await.is_err() {
                return Flow::Stop;
            }
            if self.deliver_beside_replay(&key, &mut deleted).await == Flow::Stop {
                return Flow::Stop;
            }
            let Some((scope, hidden)) = self.subscriptions.get(&key).map(|s| (s.scope.clone(), s.hidden.clone()))
            else {
                // Ended meanwhile (its events were lost on this node): nothing more to replay.
                return Flow::Continue;
            };
            let sight = (scope.as_ref(), hidden.as_deref());
            page = match self.shared.resources.replay(&follow, sight, last, REPLAY_BATCH).await {
                Ok(page) => page,
                // The reply is out: the subscription ends, saying why, and the client may subscribe again.
                Err(error) => return self.end_subscription(&key, error).await,
            };
            // Every page must follow the one before: a hole means the log was pruned past this point during the
            // replay. Skipping it would lose events silently; ending the subscription lets the client subscribe
            // again and learn `recovered: false`.
            if page.first.is_some_and(|first| first != last + 1) {
                let error = ErrorPayload::new(
                    ErrorCode::Unavailable,
                    format!("events of {topic} after seq {last} are no longer kept; subscribe again with since"),
                );
                return self.end_subscription(&key, error).await;
            }
        }
        if deleted {
            let error = ErrorPayload::new(ErrorCode::NotFound, format!("{topic} was deleted or hidden from you"));
            return self.end_subscription(&key, error).await;
        }
        Flow::Continue
    }

    /// Between two pages of the replay of subscription `key`: hands out what the hub brought meanwhile, so that a
    /// long replay on a busy connection never lets the mailbox overflow. The replayed subscription's own events
    /// are dropped: each was committed before it was published, so the next page reads it from the log, in order.
    async fn deliver_beside_replay(&mut self, key: &str, deleted: &mut bool) -> Flow {
        while let Some(delivery) = self.deliveries.try_recv() {
            if let Delivery::Event(event) = &delivery {
                if &*event.topic == key {
                    *deleted |= event.ends;
                    continue;
                }
            }
            if self.deliver(delivery).await == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Hands out every push waiting in the mailbox now.
    pub(super) async fn deliver_waiting(&mut self) -> Flow {
        while let Some(delivery) = self.deliveries.try_recv() {
            if self.deliver(delivery).await == Flow::Stop {
                return Flow::Stop;
            }
        }
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
        self.unfollow(&subscription.follow);
        self.list_subscriptions();
        let reply = Unsubscribed {
            subscription_id: subscription_id(&subscription.follow),
            topic: Some(subscription.follow.topic),
            reason: None,
        };
        self.send(request_id, ServerMessage::Unsubscribe(reply)).await
    }

    /// Sends what the hub delivered: a notification, or a live event.
    pub(super) async fn deliver(&mut self, delivery: Delivery) -> Flow {
        match delivery {
            Delivery::Event(event) => self.deliver_event(event).await,
            Delivery::Notification(notification) => self.deliver_notification(notification).await,
            Delivery::Lost(lost) => {
                let Some(topic) = self.subscriptions.get(&*lost.topic).map(|s| s.topic().clone()) else {
                    return Flow::Continue;
                };
                let error = ErrorPayload::new(
                    ErrorCode::Unavailable,
                    format!("this server lost events of {topic}; subscribe again with since to learn whether they can be recovered"),
                );
                self.end_subscription(&lost.topic, error).await
            }
            Delivery::Ended(ended) => self.end_subscription(&ended.topic, ended.reason).await,
        }
    }

    /// Sends a live event unless its subscription is gone or a replay already sent it.
    async fn deliver_event(&mut self, delivery: Arc<EventPush>) -> Flow {
        let Some(subscription) = self.subscriptions.get_mut(&*delivery.topic) else { return Flow::Continue };
        // A push in no log (seq 0) is sent as it comes: no replay can have sent it.
        if delivery.seq == 0 {
            return if self.out.text_in_parts(delivery.text.parts()).await.is_err() {
                Flow::Stop
            } else {
                Flow::Continue
            };
        }
        if delivery.seq <= subscription.last_seq {
            if delivery.ends {
                // The replay already sent the deletion; the subscription still has to end.
                let error = ErrorPayload::new(
                    ErrorCode::NotFound,
                    format!("{} was deleted or hidden from you", subscription.topic()),
                );
                return self.end_subscription(&delivery.topic, error).await;
            }
            return Flow::Continue;
        }
        subscription.last_seq = delivery.seq;
        if self.out.text_in_parts(delivery.text.parts()).await.is_err() {
            return Flow::Stop;
        }
        if delivery.ends {
            let error = ErrorPayload::new(
                ErrorCode::NotFound,
                format!("{} was deleted or hidden from you", subscription.topic()),
            );
            return self.end_subscription(&delivery.topic, error).await;
        }
        Flow::Continue
    }

    /// After a re-authentication: every subscription is checked under the new claims.
    pub(super) async fn recheck_subscriptions(&mut self) -> Flow {
        let Some(user) = &self.user else { return Flow::Continue };
        let identity = user.identity.clone();
        let keys: Vec<String> = self.subscriptions.keys().cloned().collect();
        for key in keys {
            let Some(subscription) = self.subscriptions.get(&key) else { continue };
            let topic = subscription.topic().clone();
            // The fields the new claims hide, for a topic of a type.
            let resources = &self.shared.resources;
            let hidden_now = |topic: &Topic| match topic.kind() {
                TopicKind::ResourceType(name) | TopicKind::Resource(name, _) => resources.hidden_for(&identity, name),
                TopicKind::Notifications | TopicKind::Presence(_) => None,
            };
            // Decided by the rules alone: a storage hiccup must not end a subscription as FORBIDDEN.
            let still = match (topic.kind(), &subscription.owner) {
                (TopicKind::Notifications, _) => Some(None),
                (TopicKind::Presence(of), _) => {
                    match super::presence::may_follow_presence(&self.shared, &identity, of).await {
                        Err(error) if super::presence::refuses(&error) => None,
                        _ => {
                            let sight = super::presence::sight_of(&self.shared, &identity, of);
                            let connection = self.mailbox.connection;
                            self.shared.presence.resight_follower(topic.as_str(), connection, sight);
                            Some(None)
                        }
                    }
                }
                (TopicKind::Resource(name, id), Some(owner)) => {
                    let resources = &self.shared.resources;
                    match resources.may_read(&identity, name, id, owner).await {
                        true => resources.scope_for(&identity, name).ok().map(Some),
                        false => None,
                    }
                }
                (TopicKind::ResourceType(name), _) => self.shared.resources.scope_for(&identity, name).ok().map(Some),
                _ => None,
            };
            match still {
                None => {
                    let error = ErrorPayload::new(
                        ErrorCode::Forbidden,
                        format!("the new token no longer grants reading {topic}"),
                    );
                    if self.end_subscription(&key, error).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Some(Some(scope))
                    if subscription.scope.as_ref() != Some(&scope) || subscription.hidden != hidden_now(&topic) =>
                {
                    let hidden = hidden_now(&topic);
                    self.shared.hub.rescope(&subscription.follow, &self.mailbox, scope.clone(), hidden.clone());
                    if let Some(subscription) = self.subscriptions.get_mut(&key) {
                        subscription.scope = Some(scope);
                        subscription.hidden = hidden;
                    }
                }
                Some(_) => {}
            }
        }
        Flow::Continue
    }

    /// Ends subscription `key` from the server's side, with an `unsubscribe` push saying why.
    pub(super) async fn end_subscription(&mut self, key: &str, reason: ErrorPayload) -> Flow {
        let Some(subscription) = self.subscriptions.remove(key) else { return Flow::Continue };
        self.list_subscriptions();
        self.unfollow(&subscription.follow);
        let push = Unsubscribed {
            subscription_id: subscription_id(&subscription.follow),
            topic: Some(subscription.follow.topic),
            reason: Some(reason),
        };
        self.send(None, ServerMessage::Unsubscribe(push)).await
    }

    /// Shows the session's subscriptions in the directory.
    pub(super) fn list_subscriptions(&self) {
        self.shared.directory.set_subscriptions(&self.id, self.subscriptions.keys().cloned().collect());
    }

    /// Leaves what a subscription follows: the hub, or a topic's presence.
    fn unfollow(&self, follow: &Follow) {
        match follow.topic.kind() {
            TopicKind::Presence(_) => self.shared.presence.unfollow(follow.topic.as_str(), self.mailbox.connection),
            _ => self.shared.hub.unsubscribe(follow, self.mailbox.connection),
        }
    }

    /// Leaves the hub, and presence, when the session ends.
    pub(super) fn leave_hub(&mut self) {
        let follows: Vec<Follow> = self.subscriptions.drain().map(|(_, s)| s.follow).collect();
        for follow in follows.iter().filter(|f| matches!(f.topic.kind(), TopicKind::Presence(_))) {
            self.shared.presence.unfollow(follow.topic.as_str(), self.mailbox.connection);
        }
        self.leave_presence();
        self.shared.hub.leave(&follows, self.mailbox.connection);
        if let Some(user) = &self.user {
            self.shared.hub.leave_user(&user.identity.user_id, self.mailbox.connection);
        }
    }
}

/// A subscription's id: its topic, or for a query, the type and the query's digest. Unique within a connection
/// (each is subscribed once), and the same for every subscriber, so that the hub encodes each event once for all.
pub(super) fn subscription_id(follow: &Follow) -> SubscriptionId {
    // A topic has at most 193 characters, a query's id at most a type name and 17 more, and a subscription id may
    // have 200, so this cannot fail.
    SubscriptionId::new(&*follow.id).expect("a subscription's id fits a subscription id")
}
