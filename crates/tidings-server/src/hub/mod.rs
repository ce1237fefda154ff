//! The hub: who subscribes to what, and the fan-out of each event, in `seq` order, serialized once.
//!
//! The hub does no I/O. Writers publish events after their commit, possibly out of order when several commit at
//! once; the hub releases each type's events strictly in `seq` order, holding early ones until the missing ones
//! arrive (a gap that stays open is filled from storage by the task that [`Hub::publish`] asks for). Each event is
//! encoded once per subscription id (a topic, or a distinct query on a type, evaluated once; the queries that tell
//! it the same way share one encoding, with each query's id put in), and the same bytes go to every mailbox that
//! may see it. Subscribers are found through
//! an index by topic and owner, never by scanning connections. A mailbox is bounded: when it is full, its
//! connection is flagged as a slow consumer and dropped from the fan-out, and never delays anyone else.

mod index;
mod mailbox;
mod notifications;
mod wakes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use crate::push::{encode_event, encode_seen, Told};
use crate::query::{judge, Change, Looked};
use crate::storage::{EventKind, EventRecord};
pub use index::{Follow, Scope};
use index::{Index, Watcher};
pub use mailbox::{Deliveries, Mailbox};
use wakes::Wakes;

/// What a mailbox carries to its session: one encoded push.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// An event of a topic the connection subscribes to.
    Event(Arc<EventPush>),
    /// A notification for the connection's user.
    Notification(Arc<NotificationPush>),
    /// Events of a topic the connection subscribes to were lost on this node: the subscription must end.
    Lost(LostPush),
    /// What a subscription follows is gone (the resource whose presence it follows was deleted): it ends, saying
    /// why.
    Ended(Box<EndedPush>),
}

/// The end of a subscription whose topic is gone.
#[derive(Clone, Debug)]
pub struct EndedPush {
    /// The subscription (its id) that ends.
    pub topic: Arc<str>,
    /// Why, as the `unsubscribe` push says it.
    pub reason: tidings_protocol::ErrorPayload,
}

impl Delivery {
    /// Its position: in its topic for an event, among the user's notifications for a notification; 0 for a loss,
    /// which has none.
    pub fn seq(&self) -> u64 {
        match self {
            Delivery::Event(event) => event.seq,
            Delivery::Notification(notification) => notification.seq,
            Delivery::Lost(_) | Delivery::Ended(_) => 0,
        }
    }
}

/// Word that a topic's subscribers missed events this node can no longer get: they were pruned from the log
/// before this node received them. The session ends the subscription, so that its client subscribes again and
/// learns from `recovered` whether to re-read.
#[derive(Clone, Debug)]
pub struct LostPush {
    /// The subscription (its id) that missed events.
    pub topic: Arc<str>,
}

/// An event on its way to its subscribers: one for all the subscribers of a topic (or of a query), shared.
#[derive(Clone, Debug)]
pub struct EventPush {
    /// The subscription (its id) the push belongs to.
    pub topic: Arc<str>,
    /// Its position in the topic, to drop what a replay already sent; 0 for a push in no log (an ephemeral
    /// type's event, a presence change), which is sent as it comes.
    pub seq: u64,
    /// The whole message, encoded once for every subscriber of the topic.
    pub text: PushText,
    /// The last push of a one-resource topic: its resource was deleted.
    pub ends: bool,
}

/// A push's bytes: one text for every subscriber, or a query's copy of an event that many queries tell alike, made
/// of the text they share and the query's id (`push::Told`), which the session writes one after the other.
#[derive(Clone, Debug)]
pub enum PushText {
    /// The whole message.
    Whole(Arc<str>),
    /// The shared push, and the query's id quoted as JSON ([`Told::quote`]).
    Told(Arc<Told>, Arc<str>),
}

impl PushText {
    /// The message in three parts, to be written one after the other (the last two empty for a whole one).
    pub fn parts(&self) -> [&str; 3] {
        match self {
            PushText::Whole(text) => [text, "", ""],
            PushText::Told(told, quoted) => told.parts(quoted),
        }
    }

    /// The message whole.
    pub fn whole(&self) -> String {
        self.parts().concat()
    }
}

/// A notification on its way to one of its recipient's connections, in both of its forms, so that the session
/// sends the one that fits (it alone knows whether it holds a `notifications` subscription).
#[derive(Clone, Debug)]
pub struct NotificationPush {
    /// Its position among the user's notifications.
    pub seq: u64,
    /// The plain push, for a connection without a `notifications` subscription.
    pub plain: Arc<str>,
    /// The same message as the `notifications` subscription delivers it (with `subscriptionId`).
    pub subscribed: Arc<str>,
}

/// The ordering state of one resource type's event stream.
#[derive(Debug, Default)]
struct Stream {
    /// The next `seq` to release; `None` until the stream's head is known.
    next: Option<u64>,
    /// Events that arrived before their turn.
    early: BTreeMap<u64, EventRecord>,
}

/// Subscriptions and fan-out.
#[derive(Debug, Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    /// The sessions to wake for their first push, woken a batch at a time (`wakes.rs`).
    wakes: Arc<Wakes>,
}

#[derive(Debug, Default)]
struct Inner {
    streams: HashMap<String, Stream>,
    /// The notification streams of the users with a connection here, by user.
    users: HashMap<String, notifications::UserStream>,
    index: Index,
    /// The types whose update events carry the data before the change (the type's `previous_data` setting).
    previous_data: HashSet<String>,
}

/// What [`Hub::publish`] asks of its caller: to fetch events from storage that have not arrived.
#[derive(Debug, PartialEq, Eq)]
pub struct Gap {
    /// The type whose stream waits.
    pub resource_type: String,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the update events of `resource_type` carry the data before the change, as its setting says.
    pub fn keep_previous_data(&self, resource_type: &str) {
        self.inner().previous_data.insert(resource_type.to_owned());
    }

    /// Tells the hub where a type's stream stands, so that it releases events from `head + 1` on.
    pub fn start_stream(&self, resource_type: &str, head: u64) {
        let mut state = self.inner();
        let stream = state.streams.entry(resource_type.to_owned()).or_default();
        if stream.next.is_none() {
            stream.next = Some(head + 1);
        }
    }

    /// Takes a committed event. Returns a gap when events before it are still missing: the caller should wait
    /// briefly and then publish them from storage (they are committed; their own publisher may be late or gone).
    pub fn publish(&self, event: EventRecord) -> Option<Gap> {
        let mut state = self.inner();
        let Inner { streams, index, previous_data, .. } = &mut *state;
        let previous_data = previous_data.contains(&event.resource_type);
        let stream = streams.entry(event.resource_type.clone()).or_default();
        let next = *stream.next.get_or_insert(event.seq);
        if event.seq < next {
            return None;
        }
        stream.early.insert(event.seq, event);
        let mut release = next;
        while let Some(event) = stream.early.remove(&release) {
            fan_out(index, &self.wakes, &event, previous_data);
            release += 1;
        }
        stream.next = Some(release);
        let resource_type = stream.early.values().next().map(|e| e.resource_type.clone())?;
        Some(Gap { resource_type })
    }

    /// Fans out an event of an ephemeral type (`seq` 0: in no log) at once, to the subscribers of its type who
    /// may see it; it is not ordered, held or kept.
    pub fn broadcast(&self, event: &EventRecord) {
        let mut state = self.inner();
        let Inner { index, .. } = &mut *state;
        fan_out(index, &self.wakes, event, false);
    }

    /// Passes over the events of a type that the log proves gone: its first kept `seq` is `first_kept`, so every
    /// missing event before it was pruned before this node received it. The type's subscribers, and those of its
    /// resources' topics (who cannot know whether they missed anything), are told first; then the stream releases
    /// what waits from `first_kept` on. Returns how many events were passed over (0 when none was missing).
    pub fn pass_lost(&self, resource_type: &str, first_kept: u64) -> u64 {
        let mut inner = self.inner();
        let Inner { streams, index, previous_data, .. } = &mut *inner;
        let previous_data = previous_data.contains(resource_type);
        let Some(stream) = streams.get_mut(resource_type) else { return 0 };
        let Some(mut next) = stream.next else { return 0 };
        if next >= first_kept {
            return 0;
        }
        let mut lost = 0;
        // What is missing below `first_kept` is lost; what waits there (it came through the broker) is released.
        let mut ready = Vec::new();
        while next < first_kept {
            let target = stream.early.range(next..first_kept).next().map_or(first_kept, |(seq, _)| *seq);
            lost += target - next;
            next = target;
            if let Some(event) = stream.early.remove(&next) {
                ready.push(event);
                next += 1;
            }
        }
        while let Some(event) = stream.early.remove(&next) {
            ready.push(event);
            next += 1;
        }
        stream.next = Some(next);
        let mut slow = Vec::new();
        // Nothing missing (every one below came early) means nobody missed anything: no word to send.
        let told = if lost > 0 { index.topics_of_type(resource_type) } else { Vec::new() };
        for (topic, mailbox) in told {
            let delivery = Delivery::Lost(LostPush { topic });
            if !mailbox.offer(delivery) && mailbox.is_slow() {
                slow.push(mailbox.connection);
            }
        }
        for connection in slow {
            index.drop_connection(connection);
        }
        for event in &ready {
            fan_out(index, &self.wakes, event, previous_data);
        }
        lost
    }

    /// Where a type's stream waits, if it does: the last `seq` released, while later events wait for missing ones.
    pub fn gap(&self, resource_type: &str) -> Option<u64> {
        let inner = self.inner();
        let stream = inner.streams.get(resource_type)?;
        if stream.early.is_empty() {
            return None;
        }
        stream.next.map(|next| next.saturating_sub(1))
    }

    /// Adds a subscription of `mailbox`, reaching what `scope` allows, without the fields in `hidden`.
    pub fn subscribe(&self, follow: &Follow, mailbox: &Mailbox, scope: Scope, hidden: Option<Arc<[String]>>) {
        self.inner().index.add(follow, mailbox, scope, hidden);
    }

    /// Changes the scope and hidden fields of a connection's subscription under one lock, so no event falls
    /// between.
    pub fn rescope(&self, follow: &Follow, mailbox: &Mailbox, scope: Scope, hidden: Option<Arc<[String]>>) {
        let mut state = self.inner();
        state.index.remove(follow, mailbox.connection);
        state.index.add(follow, mailbox, scope, hidden);
    }

    /// The last `seq` of a type's stream the hub has released, once the stream has started.
    pub fn released(&self, resource_type: &str) -> Option<u64> {
        self.inner().streams.get(resource_type).and_then(|s| s.next).map(|next| next.saturating_sub(1))
    }

    /// Removes a connection's subscription.
    pub fn unsubscribe(&self, follow: &Follow, connection: u64) {
        self.inner().index.remove(follow, connection);
    }

    /// Removes every subscription of a connection.
    pub fn leave(&self, follows: &[Follow], connection: u64) {
        let mut state = self.inner();
        for follow in follows {
            state.index.remove(follow, connection);
        }
    }

    /// How many subscriptions the hub holds.
    pub fn subscriptions(&self) -> usize {
        self.inner().index.len()
    }
}

/// Encodes an event once per subscription id (and audience; for queries, once per way the event is told to them,
/// `push::Told`) and offers it to every mailbox that may see it. A query or a rule is evaluated only when someone
/// who may see the event follows it.
fn fan_out(index: &mut Index, wakes: &Arc<Wakes>, event: &EventRecord, previous_data: bool) {
    ::metrics::counter!(crate::metrics::EVENTS_PUBLISHED).increment(1);
    let mut slow = Vec::new();
    // Counted once per event, not per offer_all: a thousand queries' subscribers made a thousand registry lookups.
    let mut delivered = 0;
    // The queries' pushes, encoded once for each way the event is told to them.
    let mut told: Vec<(Change, Option<Arc<Told>>)> = Vec::new();
    let mut looked = Looked::new(event);
    for (id, group) in index.type_groups(&event.resource_type) {
        if group.required.as_ref().is_some_and(|required| !looked.may_concern(required)) {
            continue;
        }
        let mut subscribers = group.subscribers(&event.owner_id).peekable();
        if subscribers.peek().is_some() {
            let text = match &group.condition {
                None => encode_event(event, id, event.seq, previous_data).map(PushText::Whole),
                Some(condition) => condition.change(event).and_then(|change| {
                    let at = told.iter().position(|(told, _)| *told == change).unwrap_or_else(|| {
                        told.push((change, Told::new(event, change, previous_data).map(Arc::new)));
                        told.len() - 1
                    });
                    let shared = told[at].1.as_ref()?;
                    Some(PushText::Told(Arc::clone(shared), Arc::clone(group.quoted.as_ref()?)))
                }),
            };
            if let Some(text) = text {
                delivered += offer_all(subscribers, (id, event.seq, false), text, wakes, &mut slow);
            }
        }
        for audience in group.audiences() {
            let Some(change) = judge(event, group.condition.as_deref(), audience.condition.as_deref()) else {
                continue;
            };
            let plain = group.condition.is_none();
            let shown = (audience.hidden.as_deref().unwrap_or_default(), previous_data);
            if let Some(text) = encode_seen(event, (&event.resource_type, id, event.seq), change, plain, shown) {
                let text = PushText::Whole(text);
                delivered += offer_all(audience.mailboxes.iter(), (id, event.seq, false), text, wakes, &mut slow);
            }
        }
    }
    let watchers = index.resource_subscribers(&event.resource_type, &event.id);
    if !watchers.is_empty() {
        let topic: Arc<str> = Arc::from(format!("{}:{}", event.resource_type, event.id));
        let (plain, ruled): (Vec<&Watcher>, Vec<&Watcher>) =
            watchers.iter().partition(|w| w.visible.is_none() && w.hidden.is_none());
        if !plain.is_empty() {
            if let Some(text) = encode_event(event, &topic, event.version, previous_data) {
                let ends = event.kind == EventKind::Deleted;
                let (mailboxes, text) = (plain.iter().map(|w| &w.mailbox), PushText::Whole(text));
                delivered += offer_all(mailboxes, (&topic, event.version, ends), text, wakes, &mut slow);
            }
        }
        for watcher in ruled {
            let Some(change) = judge(event, None, watcher.visible.as_deref()) else { continue };
            let ends = matches!(change, Change::Left(_));
            let shown = (watcher.hidden.as_deref().unwrap_or_default(), previous_data);
            if let Some(text) = encode_seen(event, (&topic, &topic, event.version), change, true, shown) {
                let (mailbox, text) = (std::iter::once(&watcher.mailbox), PushText::Whole(text));
                delivered += offer_all(mailbox, (&topic, event.version, ends), text, wakes, &mut slow);
            }
        }
    }
    if delivered > 0 {
        ::metrics::counter!(crate::metrics::EVENTS_DELIVERED).increment(delivered);
    }
    // A slow connection leaves the fan-out at once; its session closes it with 4001.
    for connection in slow {
        index.drop_connection(connection);
    }
}

/// Offers one push to every mailbox; returns how many took it.
fn offer_all<'a>(
    mailboxes: impl Iterator<Item = &'a Mailbox>,
    (topic, seq, ends): (&Arc<str>, u64, bool),
    text: PushText,
    wakes: &Arc<Wakes>,
    slow: &mut Vec<u64>,
) -> u64 {
    let mut delivered = 0;
    // One push for all: an offer costs one reference count, not a copy of the push's own.
    let push = Arc::new(EventPush { topic: Arc::clone(topic), seq, text, ends });
    for mailbox in mailboxes {
        if mailbox.offer_in_turn(Delivery::Event(Arc::clone(&push)), wakes) {
            delivered += 1;
        } else if mailbox.is_slow() {
            slow.push(mailbox.connection);
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use super::Delivery;

    #[test]
    fn a_push_is_a_pointer_and_a_tag() {
        // Every offer writes one into a mailbox's slot, a thousand of them per event of a busy topic, and a mailbox
        // keeps its slots between bursts: the pushes are shared behind pointers, so a rare kind of push that grows
        // (an inline ErrorPayload did, to 128 bytes) costs neither the fan-out nor a mailbox's memory.
        assert!(std::mem::size_of::<Delivery>() <= 24, "{} bytes", std::mem::size_of::<Delivery>());
    }
}
