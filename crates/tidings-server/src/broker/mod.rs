//! The broker: carries committed events and stored notifications from the node that made them to every other
//! node of a cluster, so that each node's hub can fan them out to its own connections; and what is never stored:
//! events of ephemeral types, and presence (each change, each node's beat, and the members a node asks for).
//!
//! # The contract, for every implementation
//!
//! - [`Broker::publish`] is called once per event (and once per batch of notifications) by the node that committed
//!   it, after the commit, and never waits: a broker buffers within a bound and drops beyond it, counting the drop.
//! - Every other node receives the message as [`Received::Publication`]; the publishing node does not receive its own
//!   messages back (it has already handed them to its hub).
//! - Delivery is best effort: a broker restart or a network blip loses messages. Whenever a node's receiving side
//!   (re)connects, and whenever it may have missed messages, the broker reports [`Received::Resync`]; the node then
//!   reads what it missed from the shared event log ([`crate::relay`]). The broker never has to be durable: the
//!   log is the source of truth, the broker only makes the fan-out fast.
//! - Messages from one publisher arrive in the order it published them.
//!
//! Implementations: [`memory`] (one process: a single node, or several nodes in one test process) and
//! [`redis`] (Redis pub/sub, for nodes on many machines). `tests/broker.rs` runs one suite against both.

pub mod memory;
pub mod redis;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::BrokerConfig;
use crate::presence::{Beat, Member};
use crate::storage::{EventKind, EventRecord, NotificationRecord};

pub use memory::{Bus, MemoryBroker};
pub use redis::RedisBroker;

/// What nodes tell each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Publication {
    /// A committed event.
    Event {
        /// The event, as stored.
        event: EventRecord,
    },
    /// Stored notifications, one copy per recipient.
    Notifications {
        /// The copies.
        records: Vec<NotificationRecord>,
    },
    /// An event of an ephemeral type: fanned out, never stored (`seq` 0).
    Ephemeral {
        /// The event.
        event: EventRecord,
    },
    /// A member of the sending node joined, changed its state, or left: that node's change number `seq`.
    Presence {
        /// `created`, `updated` or `deleted`.
        change: EventKind,
        /// The member as it is after the change (for a leave, as it was).
        member: Member,
        /// The node's epoch (presence/cluster.rs).
        epoch: u64,
        /// The change's number among the node's.
        seq: u64,
    },
    /// A node's beat: how many changes of its members it has made.
    PresenceBeat {
        /// The beat.
        beat: Beat,
    },
    /// A node asks node `asked` for all its members (it missed some of its changes, or has just started). (Not
    /// `node`: that is the name of the sender beside the message on the wire.)
    PresenceAsk {
        /// The node asked.
        asked: String,
    },
    /// One part of a node's answer to an ask: all its members, as of its `changes`th change, in parts of at most
    /// [`crate::presence::ANSWER_PART`] members, so that no message grows with the node's members.
    PresenceMembers {
        /// The node answering.
        from: String,
        /// Its epoch.
        epoch: u64,
        /// How many changes it had made.
        changes: u64,
        /// Its members in this part.
        members: Vec<Member>,
        /// Which part this is, from 0.
        #[serde(default)]
        part: u32,
        /// Whether more parts follow.
        #[serde(default)]
        more: bool,
    },
}

/// What a node's receiving side hands to the node.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// A message from another node.
    Publication(Publication),
    /// Messages may have been lost (the broker connected again, or the node fell behind): read the log.
    Resync,
}

/// A way to reach the other nodes. See the module docs for the contract.
pub trait Broker: Send + Sync + std::fmt::Debug + 'static {
    /// Sends a message to every other node, without waiting.
    fn publish(&self, message: Publication);
    /// `memory` or `redis`, as the status endpoint shows it.
    fn kind(&self) -> &'static str;
    /// Whether the other nodes can be reached now.
    fn connected(&self) -> bool;
    /// Whether any other node may listen; false lets a single node skip building messages nobody reads.
    fn has_peers(&self) -> bool {
        true
    }
}

/// How many inbound messages wait for the node before the broker's receiving side waits in turn.
pub const INBOUND_CAPACITY: usize = 16 * 1024;

/// Opens the configured broker for node `node`: Redis for a `redis://` URL, otherwise this process alone.
pub fn open(config: &BrokerConfig, node: &str) -> anyhow::Result<(Arc<dyn Broker>, mpsc::Receiver<Received>)> {
    match &config.url {
        Some(url) => {
            let (broker, inbound) = RedisBroker::open(url, &config.channel, node)?;
            Ok((broker, inbound))
        }
        None => {
            let (broker, inbound) = MemoryBroker::join(&Bus::new(), node);
            Ok((broker, inbound))
        }
    }
}

/// A message as it travels between processes: which node sent it, and what.
#[derive(Debug, Serialize, Deserialize)]
struct Wire<'a> {
    node: std::borrow::Cow<'a, str>,
    #[serde(flatten)]
    message: Publication,
}

impl Wire<'_> {
    fn encode(node: &str, message: Publication) -> Vec<u8> {
        let wire = Wire { node: node.into(), message };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Result<Wire<'static>, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::EventKind;

    #[test]
    fn messages_survive_the_trip_between_processes() {
        let event = EventRecord {
            resource_type: "order".to_owned(),
            seq: 7,
            id: "ORD-1".to_owned(),
            version: 2,
            kind: EventKind::Updated,
            owner_id: "alice".to_owned(),
            actor: "olga".to_owned(),
            data: serde_json::from_str(r#"{"status":"paid","quantity":2}"#).expect("json"),
            occurred_at: 1_764_000_000_000,
            previous: Some(Box::new(crate::storage::Previous {
                created_at: 1_763_000_000_000,
                updated_at: 1_763_500_000_000,
                data: serde_json::from_str(r#"{"status":"pending","quantity":2}"#).expect("json"),
            })),
        };
        let bytes = Wire::encode("node-a", Publication::Event { event: event.clone() });
        let back = Wire::decode(&bytes).expect("decodes");
        assert_eq!(back.node, "node-a");
        assert_eq!(back.message, Publication::Event { event });
        assert!(Wire::decode(b"{\"node\":\"x\",\"kind\":\"unknown\"}").is_err());
    }

    /// Every kind of message comes back as it was sent, beside the name of its sender (a field of a message named
    /// like the sender's would be lost on the way).
    #[test]
    fn every_kind_of_message_survives_the_trip() {
        let member = crate::presence::Member {
            id: "PRS-1".to_owned(),
            topic: "order:ORD-1".to_owned(),
            user: "alice".to_owned(),
            node: "node-a".to_owned(),
            connection: 7,
            version: 2,
            joined_at: 1,
            updated_at: 2,
            state: serde_json::from_str(r#"{"name":"Alice"}"#).expect("json"),
        };
        let messages = [
            Publication::Presence { change: EventKind::Updated, member: member.clone(), epoch: 7, seq: 3 },
            Publication::PresenceBeat {
                beat: crate::presence::Beat { node: "node-a".to_owned(), epoch: 7, changes: 3 },
            },
            Publication::PresenceAsk { asked: "node-b".to_owned() },
            Publication::PresenceMembers {
                from: "node-a".to_owned(),
                epoch: 7,
                changes: 3,
                members: vec![member],
                part: 1,
                more: true,
            },
            Publication::Notifications { records: Vec::new() },
        ];
        for message in messages {
            let back = Wire::decode(&Wire::encode("node-a", message.clone())).expect("decodes");
            assert_eq!((back.node.as_ref(), back.message), ("node-a", message));
        }
    }
}
