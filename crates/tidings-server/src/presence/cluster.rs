//! The members of the other nodes: kept as each node reports its changes, checked against the beat every node
//! sends, fetched whole when they disagree, and dropped when their node falls silent.
//!
//! A node numbers the changes of its members and hands each to the broker under its lock, beats and answers
//! likewise, and the broker delivers one node's messages in order. So a node knows exactly what it has of
//! another: the changes numbered up to some `received`. A change that skips a number, or a beat that counts
//! otherwise, shows that some were lost (or that this node has just started): it asks for that node's members,
//! whose answer replaces what it held, and numbers go on from the answer's count; a change it already has (at or
//! below that count) is passed over. A node that restarts under its name draws a new epoch, and its old members
//! go. A node not heard for [`SILENT_NODE_MS`] is taken for dead (killed, cut off): its members leave, and their
//! followers hear it as from any leave.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Inner, Member, Presence};
use crate::broker::Publication;
use crate::storage::EventKind;

/// How often a node beats, in milliseconds.
pub const BEAT_MS: u64 = 1_000;

/// How long a node may be silent before its members are dropped, in milliseconds: a few beats, so that one lost
/// or late beat drops nothing.
pub const SILENT_NODE_MS: u64 = 5_000;

/// The most members one part of a node's answer holds: an answer is as many broker messages as it needs, so
/// that none grows with the node's members (a Redis subscriber that falls too far behind is cut off).
pub const ANSWER_PART: usize = 100;

/// What a node says of its members every [`BEAT_MS`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// The node.
    pub node: String,
    /// Its epoch: drawn at its start.
    pub epoch: u64,
    /// How many changes of its own members it has made since it started.
    pub changes: u64,
}

/// What this node knows of another.
#[derive(Debug)]
pub(super) struct Peer {
    /// The epoch its messages carry.
    epoch: u64,
    /// When it was last heard from.
    heard: Instant,
    /// The number of its last change this node has (every one up to it).
    received: u64,
    /// The parts of its answer received so far, while more are to come: the answer's change count, the next
    /// part's number, and the members.
    answer: Option<(u64, u32, Vec<Member>)>,
}

impl Presence {
    /// Hands this node's beat to the broker.
    pub fn beat(&self) {
        let inner = self.inner();
        let beat = Beat { node: self.node.clone(), epoch: self.epoch, changes: inner.changes };
        self.broker.publish(Publication::PresenceBeat { beat });
    }

    /// Hands this node's members to the broker, the answer to an ask, in parts of [`ANSWER_PART`] members, all
    /// under the lock: no change of this node comes between them.
    pub fn answer(&self) {
        let inner = self.inner();
        let (changes, mut members) = self.own_members(&inner);
        // In the order of their ids, so that two answers of the same count are split alike.
        members.sort_by(|a, b| a.id.cmp(&b.id));
        let parts = members.len().div_ceil(ANSWER_PART).max(1);
        let mut members = members.into_iter();
        for part in 0..parts {
            self.broker.publish(Publication::PresenceMembers {
                from: self.node.clone(),
                epoch: self.epoch,
                changes,
                members: members.by_ref().take(ANSWER_PART).collect(),
                part: u32::try_from(part).unwrap_or(u32::MAX),
                more: part + 1 < parts,
            });
        }
    }

    /// Takes another node's change numbered `seq`; true when one before it was lost, so that this node should ask
    /// for that node's members.
    pub fn heard_change(&self, kind: EventKind, member: Member, epoch: u64, seq: u64) -> bool {
        let mut inner = self.inner();
        let peer = inner.peer(&self.node, &member.node, epoch);
        // A node's parts come one after another: anything else from it ends an answer that is still missing some.
        peer.answer = None;
        if seq <= peer.received {
            return false;
        }
        let lost = seq != peer.received + 1;
        peer.received = seq;
        inner.apply(&self.node, kind, member);
        lost
    }

    /// Takes another node's beat; true when what this node holds of it is not what it counts.
    pub fn heard_beat(&self, beat: &Beat) -> bool {
        let mut inner = self.inner();
        let peer = inner.peer(&self.node, &beat.node, beat.epoch);
        peer.answer = None;
        peer.received != beat.changes
    }

    /// Takes part `part` of `node`'s answer, made when it had made `changes` changes; with the last part (`more`
    /// false), replaces what this node holds of `node` by the whole answer and tells the followers of what
    /// differs. A part whose earlier parts were lost is passed over: the node's next beat shows that this node is
    /// not in step, and it asks again.
    pub fn replace(&self, node: &str, epoch: u64, changes: u64, members: Vec<Member>, (part, more): (u32, bool)) {
        let mut inner = self.inner();
        let peer = inner.peer(&self.node, node, epoch);
        let mut answer = match peer.answer.take() {
            _ if part == 0 => Vec::new(),
            Some((count, next, held)) if (count, next) == (changes, part) => held,
            _ => return,
        };
        answer.extend(members);
        if more {
            peer.answer = Some((changes, part + 1, answer));
            return;
        }
        inner.replace(&self.node, node, answer);
        inner.peer(&self.node, node, epoch).received = changes;
    }

    /// The other nodes this node hears, each with how long ago it was last heard: the cluster as the admin API
    /// shows it. Every node beats, so a live node is heard within [`BEAT_MS`] or so.
    pub fn nodes(&self) -> Vec<(String, Duration)> {
        let inner = self.inner();
        let mut nodes: Vec<_> = inner.peers.iter().map(|(node, peer)| (node.clone(), peer.heard.elapsed())).collect();
        nodes.sort();
        nodes
    }

    /// Drops the members of every node not heard for `silent_for` ([`SILENT_NODE_MS`] on a server), and forgets
    /// those nodes; returns them.
    pub fn drop_silent(&self, silent_for: Duration) -> Vec<String> {
        let mut inner = self.inner();
        let silent: Vec<String> = inner
            .peers
            .iter()
            .filter(|(_, peer)| peer.heard.elapsed() >= silent_for)
            .map(|(node, _)| node.clone())
            .collect();
        for node in &silent {
            inner.peers.remove(node);
            inner.replace(&self.node, node, Vec::new());
        }
        silent
    }
}

impl Inner {
    /// What this node (`here`) knows of `node`, heard now with `epoch`: a new epoch is a new node, whose old
    /// members go.
    fn peer(&mut self, here: &str, node: &str, epoch: u64) -> &mut Peer {
        let known = self.peers.get(node).map(|peer| peer.epoch);
        if known.is_some_and(|known| known != epoch) {
            self.replace(here, node, Vec::new());
        }
        if known != Some(epoch) {
            self.peers.insert(node.to_owned(), Peer { epoch, heard: Instant::now(), received: 0, answer: None });
        }
        let peer = self.peers.get_mut(node).expect("just inserted");
        peer.heard = Instant::now();
        peer
    }

    /// Makes `node`'s members here `members`, telling the followers of what differs.
    fn replace(&mut self, here: &str, node: &str, members: Vec<Member>) {
        let held: Vec<Member> =
            self.rooms.values().flat_map(|room| room.members.values()).filter(|m| m.node == node).cloned().collect();
        for member in held.into_iter().filter(|held| !members.iter().any(|m| m.id == held.id)) {
            self.apply(here, EventKind::Deleted, member);
        }
        for member in members.into_iter().filter(|m| m.node == node) {
            let kind = if self.topics.contains_key(&member.id) { EventKind::Updated } else { EventKind::Created };
            self.apply(here, kind, member);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::Map;

    use super::super::{Member, Presence};
    use crate::broker::{Broker, Publication};

    /// A broker that keeps what it is given, for a test to deliver (or lose) by hand.
    #[derive(Debug, Default)]
    struct Kept(Mutex<Vec<Publication>>);

    impl Broker for Kept {
        fn publish(&self, message: Publication) {
            self.0.lock().expect("kept").push(message);
        }
        fn kind(&self) -> &'static str {
            "kept"
        }
        fn connected(&self) -> bool {
            true
        }
    }

    impl Kept {
        fn take(&self) -> Vec<Publication> {
            std::mem::take(&mut *self.0.lock().expect("kept"))
        }
    }

    fn member(node: &str, n: u64) -> Member {
        Member {
            id: format!("PRS-{node}-{n}"),
            topic: "order".to_owned(),
            user: "alice".to_owned(),
            node: node.to_owned(),
            // One connection per member: a connection is present at a topic once.
            connection: n,
            version: 1,
            joined_at: 1,
            updated_at: 1,
            state: Map::new(),
        }
    }

    fn ids(presence: &Presence, node: &str) -> Vec<String> {
        let mut ids: Vec<String> = presence.members_of(node).into_iter().map(|m| m.id).collect();
        ids.sort();
        ids
    }

    /// Delivers `messages` to `to` as the relay would; returns whether it would ask for members.
    fn deliver(to: &Presence, messages: Vec<Publication>) -> bool {
        let mut ask = false;
        for message in messages {
            ask |= match message {
                Publication::Presence { change, member, epoch, seq } => to.heard_change(change, member, epoch, seq),
                Publication::PresenceBeat { beat } => to.heard_beat(&beat),
                Publication::PresenceMembers { from, epoch, changes, members, part, more } => {
                    to.replace(&from, epoch, changes, members, (part, more));
                    false
                }
                _ => false,
            };
        }
        ask
    }

    /// Node B learns node A's members from A's numbered changes; a lost change shows in the next one's number, A's
    /// answer puts B right, a change the answer already holds is passed over, a restarted A's old members go, and
    /// a silent A's members are dropped.
    #[test]
    fn a_node_finds_what_it_lost_and_forgets_a_silent_node() {
        let (to_a, to_b) = (Arc::new(Kept::default()), Arc::new(Kept::default()));
        let a = Presence::new("a", Arc::clone(&to_a) as Arc<dyn Broker>);
        let b = Presence::new("b", Arc::clone(&to_b) as Arc<dyn Broker>);
        a.join(member("a", 1), (10, 10), None).expect("joins");
        a.beat();
        assert!(!deliver(&b, to_a.take()), "B has every change A counts");
        assert_eq!(ids(&b, "a"), ["PRS-a-1"]);

        a.join(member("a", 2), (10, 10), None).expect("joins");
        to_a.take(); // lost on the way
        a.join(member("a", 3), (10, 10), None).expect("joins");
        assert!(deliver(&b, to_a.take()), "the number after a lost one shows the loss");
        a.answer();
        // The answer holds the changes up to its count; the leave made after it follows it.
        let answer = to_a.take();
        a.leave_connection(1);
        assert!(!deliver(&b, answer));
        assert!(!deliver(&b, to_a.take()));
        assert_eq!(ids(&b, "a"), ["PRS-a-2", "PRS-a-3"]);
        a.beat();
        assert!(!deliver(&b, to_a.take()), "in step after the answer");

        // A restarted A (a new epoch) has none of the old members.
        let restarted = Presence::new("a", Arc::clone(&to_a) as Arc<dyn Broker>);
        restarted.join(member("a", 9), (10, 10), None).expect("joins");
        assert!(!deliver(&b, to_a.take()));
        assert_eq!(ids(&b, "a"), ["PRS-a-9"]);

        // An answer of more members than a part holds comes in parts; B takes it whole, and none of a lost part.
        for n in 10..10 + 2 * super::ANSWER_PART as u64 + 1 {
            restarted.join(member("a", n), (1000, 10), None).expect("joins");
        }
        to_a.take(); // all lost on the way
        restarted.answer();
        let parts = to_a.take();
        assert_eq!(parts.len(), 3, "{} members in parts of {}", 2 * super::ANSWER_PART + 2, super::ANSWER_PART);
        let mut without_second = parts.clone();
        without_second.remove(1);
        assert!(!deliver(&b, without_second));
        assert_eq!(ids(&b, "a"), ["PRS-a-9"], "an answer missing a part changes nothing");
        assert!(!deliver(&b, parts));
        assert_eq!(ids(&b, "a").len(), 2 * super::ANSWER_PART + 2);
        restarted.beat();
        assert!(!deliver(&b, to_a.take()), "in step after the answer in parts");
        // The first part of one answer and the rest of a later one do not make an answer.
        restarted.answer();
        let first = to_a.take();
        restarted.join(member("a", 999), (1000, 10), None).expect("joins");
        to_a.take(); // lost on the way
        restarted.answer();
        let second = to_a.take();
        let spliced = vec![first[0].clone(), second[1].clone(), second[2].clone()];
        assert!(!deliver(&b, spliced));
        assert!(!ids(&b, "a").contains(&"PRS-a-999".to_owned()), "no answer was taken whole");
        assert!(!deliver(&b, second));
        assert!(ids(&b, "a").contains(&"PRS-a-999".to_owned()));

        assert!(b.drop_silent(Duration::from_secs(60)).is_empty(), "A was heard a moment ago");
        assert_eq!(b.drop_silent(Duration::ZERO), ["a"]);
        assert!(ids(&b, "a").is_empty());
        assert!(to_b.take().is_empty(), "B made no change of its own, so it told nobody anything");
    }
}
