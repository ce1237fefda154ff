//! The in-process broker: nodes in one process share a [`Bus`]. A single `tidings serve` is one node on a bus of
//! its own; tests put several nodes on one bus.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::{Broker, Publication, Received, INBOUND_CAPACITY};

/// What one bus holds before a node that does not keep up misses messages (and resyncs from the log).
const BUS_CAPACITY: usize = 4096;

/// A channel that every node of a process publishes to and receives from.
#[derive(Clone, Debug)]
pub struct Bus {
    sender: broadcast::Sender<(Arc<str>, Publication)>,
}

impl Bus {
    /// A bus with no node on it yet.
    pub fn new() -> Bus {
        Bus { sender: broadcast::channel(BUS_CAPACITY).0 }
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

/// One node's place on a [`Bus`].
#[derive(Debug)]
pub struct MemoryBroker {
    node: Arc<str>,
    bus: Bus,
}

impl MemoryBroker {
    /// Puts node `node` on `bus`; returns its broker and what it receives from the others. Needs a tokio runtime.
    pub fn join(bus: &Bus, node: &str) -> (Arc<dyn Broker>, mpsc::Receiver<Received>) {
        let node: Arc<str> = Arc::from(node);
        let mut receiver = bus.sender.subscribe();
        let (inbound, inbound_receiver) = mpsc::channel(INBOUND_CAPACITY);
        let own = Arc::clone(&node);
        tokio::spawn(async move {
            if inbound.send(Received::Resync).await.is_err() {
                return;
            }
            loop {
                let next = match receiver.recv().await {
                    Ok((from, _)) if from == own => continue,
                    Ok((_, message)) => Received::Publication(message),
                    // This node fell behind the bus: what it missed is in the log.
                    Err(broadcast::error::RecvError::Lagged(_)) => Received::Resync,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if inbound.send(next).await.is_err() {
                    return;
                }
            }
        });
        (Arc::new(MemoryBroker { node, bus: bus.clone() }), inbound_receiver)
    }
}

impl Broker for MemoryBroker {
    fn publish(&self, message: Publication) {
        // No receiver but this node's own: nobody to tell.
        let _ = self.bus.sender.send((Arc::clone(&self.node), message));
    }

    fn kind(&self) -> &'static str {
        "memory"
    }

    fn connected(&self) -> bool {
        true
    }

    fn has_peers(&self) -> bool {
        self.bus.sender.receiver_count() > 1
    }
}
