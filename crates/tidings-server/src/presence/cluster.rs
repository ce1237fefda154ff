//! The members of the other nodes: kept as each node reports its changes, checked against the beat every node
//! sends, fetched whole when they disagree, and dropped when their node falls silent.
//!
//! Every node beats every [`BEAT_MS`] with how many changes of its own members it has made. The broker delivers a
//! node's messages in order, so when its beat arrives every change it counts has arrived before it: a node that
//! has received fewer lost some (or has just started), and asks for that node's members, which replace what it
//! held. A node not heard for [`SILENT_NODE_MS`] is taken for dead (killed, cut off): its members leave, and their
//! followers hear it as from any leave.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Member, Presence};
use crate::storage::EventKind;

/// How often a node beats, in milliseconds.
pub const BEAT_MS: u64 = 1_000;

/// How long a node may be silent before its members are dropped, in milliseconds: a few beats, so that one lost
/// or late beat drops nothing.
pub const SILENT_NODE_MS: u64 = 5_000;

/// What a node says of its members every [`BEAT_MS`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// The node.
    pub node: String,
    /// How many changes of its own members it has made since it started.
    pub changes: u64,
}

/// What this node knows of another.
#[derive(Debug)]
pub(super) struct Peer {
    /// When it was last heard from.
    heard: Instant,
    /// How many of its changes arrived here.
    pub(super) received: u64,
}

impl Default for Peer {
    fn default() -> Self {
        Peer { heard: Instant::now(), received: 0 }
    }
}

impl Presence {
    /// This node's beat.
    pub fn beat(&self) -> Beat {
        Beat { node: self.node.clone(), changes: self.inner().changes }
    }

    /// Takes another node's beat; true when what this node holds of it disagrees, so that it should ask for the
    /// node's members.
    pub fn heard(&self, beat: &Beat) -> bool {
        let mut inner = self.inner();
        let peer = inner.peers.entry(beat.node.clone()).or_default();
        peer.heard = Instant::now();
        peer.received != beat.changes
    }

    /// Replaces what this node holds of `node` by `members`, its answer to an ask made when it had made `changes`
    /// changes, and tells the followers of what differs.
    pub fn replace(&self, node: &str, changes: u64, members: Vec<Member>) {
        let mut inner = self.inner();
        let held: Vec<Member> =
            inner.rooms.values().flat_map(|room| room.members.values()).filter(|m| m.node == node).cloned().collect();
        for member in held.into_iter().filter(|held| !members.iter().any(|m| m.id == held.id)) {
            inner.apply(&self.node, EventKind::Deleted, member);
        }
        for member in members.into_iter().filter(|m| m.node == node) {
            let kind = if inner.topics.contains_key(&member.id) { EventKind::Updated } else { EventKind::Created };
            inner.apply(&self.node, kind, member);
        }
        let peer = inner.peers.entry(node.to_owned()).or_default();
        peer.heard = Instant::now();
        peer.received = changes;
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
            let gone: Vec<Member> = inner
                .rooms
                .values()
                .flat_map(|room| room.members.values())
                .filter(|m| &m.node == node)
                .cloned()
                .collect();
            for member in gone {
                inner.apply(&self.node, EventKind::Deleted, member);
            }
        }
        silent
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Map;

    use super::super::{Member, Presence};
    use crate::storage::EventKind;

    fn member(node: &str, id: &str) -> Member {
        Member {
            id: id.to_owned(),
            topic: "order".to_owned(),
            user: "alice".to_owned(),
            node: node.to_owned(),
            // One connection per member: a connection is present at a topic once.
            connection: id.trim_start_matches("PRS-").parse().unwrap_or(0),
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

    /// Node B learns node A's members from A's changes; a beat shows B when it lost one, A's answer to B's ask
    /// puts B right, and when A falls silent B drops its members.
    #[test]
    fn a_node_finds_what_it_lost_and_forgets_a_silent_node() {
        let (a, b) = (Presence::new("a"), Presence::new("b"));
        a.join(member("a", "PRS-1"), 10, 10).expect("joins");
        b.change(EventKind::Created, member("a", "PRS-1"));
        assert!(!b.heard(&a.beat()), "B has every change A counts");
        a.join(member("a", "PRS-2"), 10, 10).expect("joins");
        assert!(b.heard(&a.beat()), "the change B never got shows in A's beat");
        let (changes, members) = a.own_members();
        b.replace("a", changes, members);
        assert_eq!(ids(&b, "a"), ["PRS-1", "PRS-2"]);
        assert!(!b.heard(&a.beat()));
        a.leave_connection(1);
        a.leave_connection(2);
        let (changes, members) = a.own_members();
        b.replace("a", changes, members);
        assert!(ids(&b, "a").is_empty(), "what A no longer has, B drops");

        b.change(EventKind::Created, member("a", "PRS-3"));
        assert!(b.drop_silent(Duration::from_secs(60)).is_empty(), "A was heard a moment ago");
        assert_eq!(b.drop_silent(Duration::ZERO), ["a"]);
        assert!(ids(&b, "a").is_empty());
    }
}
