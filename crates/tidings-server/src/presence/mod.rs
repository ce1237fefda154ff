//! Presence: who is at a topic now, one member per connection and topic, kept in memory on every node and never
//! stored (docs/protocol.md, 8.7).
//!
//! A member is a resource of the built-in type `presence` that lives as long as its connection: `create` joins,
//! `update` changes its state, `delete` leaves, and so does the end of the connection. Its followers subscribe to
//! `presence:TOPIC`; the reply carries the members present then, and each change after it is one `event` without
//! `seq` (`presence_created`, `presence_updated`, `presence_deleted`), encoded once and offered to every follower's
//! mailbox, as the hub offers events.
//!
//! **Presence does no I/O and touches no database.** It holds members and followers behind one lock; each change of
//! this node's members is numbered and handed to the broker under that lock (one message each; the broker only
//! queues), so the other nodes receive them in order, and `cluster.rs` keeps the members of the other nodes as
//! they report them, finds what it lost, and drops those of a node that falls silent.

mod cluster;
mod sight;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use cluster::{Beat, ANSWER_PART, BEAT_MS, SILENT_NODE_MS};

use crate::broker::{Broker, Publication};
use crate::hub::{Delivery, EndedPush, EventPush, Mailbox, PushText};
use crate::push::encode_event;
use crate::query::Condition;
use crate::storage::{EventKind, EventRecord, Record};

/// The built-in type of presence members.
pub const PRESENCE: &str = tidings_protocol::Topic::PRESENCE;

/// One connection present at one topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Its id, `PRS-...`, drawn when it joined.
    pub id: String,
    /// The topic it is present at (`order:ORD-1`); its followers subscribe to `presence:` and this.
    pub topic: String,
    /// Its user.
    pub user: String,
    /// The node its connection is on.
    pub node: String,
    /// Its connection there.
    pub connection: u64,
    /// 1 when it joined, one more per update.
    pub version: u64,
    /// When it joined, Unix ms.
    pub joined_at: u64,
    /// When its state last changed, Unix ms.
    pub updated_at: u64,
    /// What it tells the others (`{name, status}`), bounded in size.
    pub state: Map<String, Value>,
}

impl Member {
    /// The member as the resource a client sees: `data` holds its `topic` and its `state`.
    pub fn record(&self) -> Record {
        let mut data = Map::new();
        data.insert("topic".to_owned(), Value::String(self.topic.clone()));
        data.insert("state".to_owned(), Value::Object(self.state.clone()));
        Record {
            resource_type: PRESENCE.to_owned(),
            id: self.id.clone(),
            owner_id: self.user.clone(),
            version: self.version,
            created_at: self.joined_at,
            updated_at: self.updated_at,
            data,
        }
    }

    /// The topic its followers subscribe to.
    fn followed_as(&self) -> String {
        format!("{PRESENCE}:{}", self.topic)
    }
}

/// Why a join was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The topic has as many members as it may.
    TopicFull,
    /// The connection is present at as many topics as it may.
    TooManyJoins,
    /// The connection is present at this topic already, as the member with this id.
    AlreadyJoined(String),
}

/// The members and followers of every topic with either, on this node.
#[derive(Debug)]
pub struct Presence {
    /// This node's name, which its members carry.
    node: String,
    /// Drawn at start: a node that restarts under the same name is a new one to the others, whose members and
    /// numbering begin anew.
    epoch: u64,
    /// Where this node's changes, beats and answers go.
    broker: Arc<dyn Broker>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// By presence topic (`presence:order:ORD-1`).
    rooms: HashMap<String, Room>,
    /// The topic of every member, local or remote, by id.
    topics: HashMap<String, String>,
    /// This node's members, by connection.
    local: HashMap<u64, Vec<String>>,
    /// How many changes of its own members this node has made: its beat says so, and a node that has received
    /// fewer from it lost some.
    changes: u64,
    /// The other nodes: when each was last heard, and how many of its changes were received.
    peers: HashMap<String, cluster::Peer>,
    /// What the read rule lets this node's members see of the resource they are present at, by member id, where
    /// that depends on its data (sight.rs).
    sights: HashMap<String, Arc<Condition>>,
}

#[derive(Debug, Default)]
struct Room {
    members: BTreeMap<String, Member>,
    followers: Vec<Follower>,
    /// At a resource: the version of its last update judged against the followers' and members' sights
    /// (sight.rs), so that one that comes late or twice is not judged again.
    judged: u64,
}

/// A connection that follows a topic's presence.
#[derive(Debug)]
struct Follower {
    mailbox: Mailbox,
    /// At a resource whose read rule depends on its data: what the rule lets the follower see (sight.rs).
    sight: Option<Arc<Condition>>,
}

impl Presence {
    /// An empty registry for node `node`, telling the other nodes through `broker`.
    pub fn new(node: &str, broker: Arc<dyn Broker>) -> Arc<Presence> {
        Arc::new(Presence { node: node.to_owned(), epoch: rand::random(), broker, inner: Mutex::default() })
    }

    /// Applies a change of one of this node's members and, when it changed something, numbers it and hands it to
    /// the broker, under the lock: the other nodes receive this node's changes in their numbers' order.
    fn apply_own(&self, inner: &mut Inner, kind: EventKind, member: Member) {
        if !inner.apply(&self.node, kind, member.clone()) {
            return;
        }
        inner.changes += 1;
        if self.broker.has_peers() {
            self.broker.publish(Publication::Presence { change: kind, member, epoch: self.epoch, seq: inner.changes });
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `mailbox` as a follower of `topic` (`presence:...`) and returns the members present now: every change
    /// after them reaches the mailbox, none before. `sight`: what the read rule of the resource at the topic lets
    /// the follower see, where it depends on the resource's data; the follow ends when a change hides it.
    pub fn follow(&self, topic: &str, mailbox: Mailbox, sight: Option<Arc<Condition>>) -> Vec<Record> {
        let mut inner = self.inner();
        let room = inner.rooms.entry(topic.to_owned()).or_default();
        room.followers.retain(|f| f.mailbox.connection != mailbox.connection);
        room.followers.push(Follower { mailbox, sight });
        room.members.values().map(Member::record).collect()
    }

    /// Removes `connection`'s follow of `topic`.
    pub fn unfollow(&self, topic: &str, connection: u64) {
        let mut inner = self.inner();
        if let Some(room) = inner.rooms.get_mut(topic) {
            room.followers.retain(|f| f.mailbox.connection != connection);
        }
        inner.forget_if_empty(topic);
    }

    /// Joins `member` to its topic, unless the topic is full or its connection is present at `max_joins` topics;
    /// tells the followers. `sight`, as for [`Presence::follow`]: the member leaves when a change hides the
    /// resource from its user.
    pub fn join(
        &self,
        member: Member,
        (max_members, max_joins): (usize, usize),
        sight: Option<Arc<Condition>>,
    ) -> Result<Record, Refusal> {
        let mut inner = self.inner();
        let joined = inner.local.get(&member.connection).cloned().unwrap_or_default();
        let here = member.followed_as();
        if let Some(id) = joined.iter().find(|id| inner.topics.get(*id) == Some(&here)) {
            return Err(Refusal::AlreadyJoined(id.clone()));
        }
        if joined.len() >= max_joins {
            return Err(Refusal::TooManyJoins);
        }
        if inner.rooms.get(&member.followed_as()).is_some_and(|room| room.members.len() >= max_members) {
            return Err(Refusal::TopicFull);
        }
        let record = member.record();
        if let Some(sight) = sight {
            inner.sights.insert(member.id.clone(), sight);
        }
        self.apply_own(&mut inner, EventKind::Created, member);
        Ok(record)
    }

    /// The member `id` of this node's `connection`, if it is there.
    pub fn own(&self, id: &str, connection: u64) -> Option<Member> {
        let inner = self.inner();
        let topic = inner.topics.get(id)?;
        let member = inner.rooms.get(topic)?.members.get(id)?;
        (member.node == self.node && member.connection == connection).then(|| member.clone())
    }

    /// Applies a change of one of this node's members (an update or a leave) and tells the followers, here and on
    /// the other nodes; a change that changes nothing (a leave of one already gone) tells nobody.
    pub fn change(&self, kind: EventKind, member: Member) {
        let mut inner = self.inner();
        self.apply_own(&mut inner, kind, member);
    }

    /// Every member of this node's `connection` leaves (its connection ended); returns them, for the other nodes.
    pub fn leave_connection(&self, connection: u64) -> Vec<Member> {
        let mut inner = self.inner();
        let ids = inner.local.remove(&connection).unwrap_or_default();
        let gone: Vec<Member> = ids
            .iter()
            .filter_map(|id| {
                let topic = inner.topics.get(id)?;
                inner.rooms.get(topic)?.members.get(id).cloned()
            })
            .collect();
        for member in &gone {
            self.apply_own(&mut inner, EventKind::Deleted, member.clone());
        }
        gone
    }

    /// Resource `id` of `resource_type` was deleted: its presence ends here. This node's members there leave, and
    /// its followers' subscriptions end, NOT_FOUND, as a subscription to the resource's own topic does.
    pub fn resource_gone(&self, resource_type: &str, id: &str) {
        let topic = format!("{PRESENCE}:{resource_type}:{id}");
        let mut inner = self.inner();
        let Some(room) = inner.rooms.get(&topic) else { return };
        let own: Vec<Member> = room.members.values().filter(|m| m.node == self.node).cloned().collect();
        for member in own {
            self.apply_own(&mut inner, EventKind::Deleted, member);
        }
        if let Some(room) = inner.rooms.get_mut(&topic) {
            let reason = tidings_protocol::ErrorPayload::new(
                tidings_protocol::ErrorCode::NotFound,
                format!("{resource_type} {id} was deleted, and its presence with it"),
            );
            let ended: Arc<str> = Arc::from(topic.as_str());
            for follower in std::mem::take(&mut room.followers) {
                follower
                    .mailbox
                    .offer(Delivery::Ended(Box::new(EndedPush { topic: Arc::clone(&ended), reason: reason.clone() })));
            }
        }
        inner.forget_if_empty(&topic);
    }

    /// The members of this node's `connection`.
    pub fn members_of_connection(&self, connection: u64) -> Vec<Member> {
        let inner = self.inner();
        let ids = inner.local.get(&connection).cloned().unwrap_or_default();
        ids.iter().filter_map(|id| inner.rooms.get(inner.topics.get(id)?)?.members.get(id).cloned()).collect()
    }

    /// Every member on `node`.
    pub fn members_of(&self, node: &str) -> Vec<Member> {
        let inner = self.inner();
        inner.rooms.values().flat_map(|room| room.members.values()).filter(|m| m.node == node).cloned().collect()
    }

    /// This node's members and how many changes of them it has made, of one moment.
    fn own_members(&self, inner: &Inner) -> (u64, Vec<Member>) {
        let members = inner.rooms.values().flat_map(|room| room.members.values()).filter(|m| m.node == self.node);
        (inner.changes, members.cloned().collect())
    }

    /// How many members this node knows of, over every topic.
    pub fn len(&self) -> usize {
        self.inner().topics.len()
    }

    /// Whether this node knows of no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Applies a change on node `here` and tells the followers here; whether it changed anything.
    fn apply(&mut self, here: &str, kind: EventKind, member: Member) -> bool {
        let topic = member.followed_as();
        let room = self.rooms.entry(topic.clone()).or_default();
        let changed = match kind {
            EventKind::Deleted => room.members.remove(&member.id).is_some(),
            _ => room.members.get(&member.id) != Some(&member),
        };
        if !changed {
            self.forget_if_empty(&topic);
            return false;
        }
        let local = member.node == here;
        if kind == EventKind::Deleted {
            self.topics.remove(&member.id);
            self.sights.remove(&member.id);
            if let Some(ids) = self.local.get_mut(&member.connection).filter(|_| local) {
                ids.retain(|id| id != &member.id);
                if ids.is_empty() {
                    self.local.remove(&member.connection);
                }
            }
        } else {
            if kind == EventKind::Created && local {
                self.local.entry(member.connection).or_default().push(member.id.clone());
            }
            self.topics.insert(member.id.clone(), topic.clone());
            room.members.insert(member.id.clone(), member.clone());
        }
        let record = member.record();
        let event = EventRecord::of(&record, kind, &member.user, 0, member.updated_at, None);
        if let Some(text) = encode_event(&event, &topic, 0, false) {
            let topic: Arc<str> = Arc::from(topic.as_str());
            if let Some(room) = self.rooms.get_mut(topic.as_ref()) {
                let text = PushText::Whole(text);
                let push = Arc::new(EventPush { topic: Arc::clone(&topic), seq: 0, text, ends: false });
                // A follower too slow to take the push leaves the followers; its session closes it (4001).
                room.followers.retain(|follower| follower.mailbox.offer(Delivery::Event(Arc::clone(&push))));
            }
        }
        self.forget_if_empty(&topic);
        true
    }

    fn forget_if_empty(&mut self, topic: &str) {
        if self.rooms.get(topic).is_some_and(|room| room.members.is_empty() && room.followers.is_empty()) {
            self.rooms.remove(topic);
        }
    }
}
