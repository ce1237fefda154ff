//! The relay between this node's hub and the other nodes: committed events and stored notifications go to the hub
//! at once and to the other nodes through the broker; what comes from the other nodes goes to the hub, with the
//! shared event log filling whatever the broker lost. (The fan-out to connections itself is the hub's.)
//!
//! Three ways keep every node's hub complete, each cheap where the one before it fails:
//! 1. the broker carries each event to every node, once, right after its commit;
//! 2. when the hub holds an event whose predecessors have not come (a lost message, or a commit whose publisher is
//!    a moment behind), it asks for a gap fill, read from the log after a short pause;
//! 3. when the broker reconnects (it may have lost anything), and on a periodic sweep that catches a lost event
//!    with nothing after it, the node reads the log past what its hub has released.
//!
//! The hub drops an event it has already released, so an event that comes both ways is delivered once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::broker::{Broker, Publication, Received};
use crate::hub::Hub;
use crate::storage::{EventRecord, NotificationRecord, Storage, StorageError};

/// How long a gap may stay open before it is read from the log: publishers are usually only a moment behind.
const GAP_PAUSE: Duration = Duration::from_millis(100);
/// Events read from the log per query when filling.
const FILL_BATCH: usize = 500;

/// A node's relay: its hub, its broker, and the log behind them.
#[derive(Debug)]
pub struct Relay {
    hub: Arc<Hub>,
    broker: Arc<dyn Broker>,
    storage: Arc<dyn Storage>,
}

impl Relay {
    /// The relay of one node.
    pub fn new(hub: Arc<Hub>, broker: Arc<dyn Broker>, storage: Arc<dyn Storage>) -> Arc<Relay> {
        Arc::new(Relay { hub, broker, storage })
    }

    /// The broker, for the status endpoint.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// Tells the hub where each type's event stream stands; call once before serving.
    pub async fn start_streams<'a>(&self, types: impl IntoIterator<Item = &'a str>) -> Result<(), StorageError> {
        for name in types {
            self.hub.start_stream(name, self.storage.head(name).await?);
        }
        Ok(())
    }

    /// An event this node committed: to its own hub, and to the other nodes.
    pub fn event(self: &Arc<Self>, event: EventRecord) {
        if self.broker.has_peers() {
            self.broker.publish(Publication::Event { event: event.clone() });
        }
        self.release(event);
    }

    /// Notifications this node stored: to its own connections, and to the other nodes'.
    pub fn notifications(&self, records: Vec<NotificationRecord>) {
        self.hub.notify(&records);
        if self.broker.has_peers() && !records.is_empty() {
            self.broker.publish(Publication::Notifications { records });
        }
    }

    /// Hands an event to the hub; a gap before it is filled from the log if it stays open.
    fn release(self: &Arc<Self>, event: EventRecord) {
        let Some(gap) = self.hub.publish(event) else { return };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(GAP_PAUSE).await;
            if this.hub.waits_after(&gap.resource_type, gap.after) {
                this.fill(&gap.resource_type, gap.after).await;
            }
        });
    }

    /// Reads the log after `after` and hands every event to the hub, until the type's stream has caught up.
    async fn fill(&self, resource_type: &str, mut after: u64) {
        loop {
            let events = match self.storage.events_after(resource_type, None, after, FILL_BATCH).await {
                Ok(events) => events,
                Err(error) => return warn!("cannot read the event log of {resource_type} to fill a gap: {error}"),
            };
            let Some(last) = events.last().map(|e| e.seq) else { return };
            for event in events {
                self.hub.publish(event);
            }
            after = last;
        }
    }

    /// Brings every stream up to the log's head: after the broker may have lost messages.
    async fn catch_up(&self, types: &[String]) {
        for resource_type in types {
            if let Some(released) = self.hub.released(resource_type) {
                self.fill(resource_type, released).await;
            }
        }
    }

    /// Serves what the broker brings until it closes: other nodes' events and notifications, and resyncs; and
    /// sweeps the log every `sweep` for an event lost with nothing after it.
    pub async fn run(self: Arc<Self>, mut inbound: mpsc::Receiver<Received>, types: Vec<String>, sweep: Duration) {
        let mut ticks = tokio::time::interval(sweep);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The heads seen at the last sweep: a stream still short of one a whole sweep later lost an event.
        let mut seen: HashMap<String, u64> = HashMap::new();
        loop {
            tokio::select! {
                next = inbound.recv() => match next {
                    Some(Received::Publication(Publication::Event { event })) => self.release(event),
                    Some(Received::Publication(Publication::Notifications { records })) => self.hub.notify(&records),
                    Some(Received::Resync) => {
                        debug!("broker resync: reading the event log past what the hub has released");
                        self.catch_up(&types).await;
                    }
                    None => return,
                },
                _ = ticks.tick(), if self.broker.has_peers() => self.sweep(&types, &mut seen).await,
            }
        }
    }

    async fn sweep(&self, types: &[String], seen: &mut HashMap<String, u64>) {
        for resource_type in types {
            let Some(released) = self.hub.released(resource_type) else { continue };
            if let Some(&head) = seen.get(resource_type) {
                if released < head {
                    debug!("sweep: {resource_type} is behind the log ({released} < {head}); filling");
                    self.fill(resource_type, released).await;
                }
            }
            match self.storage.head(resource_type).await {
                Ok(head) => {
                    seen.insert(resource_type.clone(), head);
                }
                Err(error) => debug!("sweep: cannot read the head of {resource_type}: {error}"),
            }
        }
    }
}
