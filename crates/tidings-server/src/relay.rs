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
//!
//! A user's notifications take the same ways: the hub releases each user's in `seq` order, and what stays
//! missing is read from storage.
//!
//! What is never stored takes the broker alone: an ephemeral type's events go to the hub and the other nodes as
//! they come, and presence changes to the other nodes' presence, with every node's beat to find what was lost
//! (`presence/cluster.rs`).
//!
//! A log (a type's events, a user's notifications) has at most one fill at a time, whatever asks for it; a fill
//! that fails is tried again with a growing, jittered pause while the hub still waits. When storage proves that
//! missing ones are gone (pruned before this node received them), the hub passes over them and tells their
//! subscribers, rather than wait for ever.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::broker::{Broker, Publication, Received};
use crate::hub::Hub;
use crate::presence::{Presence, BEAT_MS, SILENT_NODE_MS};
use crate::storage::{EventKind, EventRecord, NotificationRecord, Storage, StorageError};

/// How long a gap may stay open before it is read from the log: publishers are usually only a moment behind.
const GAP_PAUSE: Duration = Duration::from_millis(100);
/// Events read from the log per query when filling.
const FILL_BATCH: usize = 500;
/// The first pause after a fill failed; each failure doubles it, up to [`FILL_RETRY_MAX`].
const FILL_RETRY_MIN: Duration = Duration::from_millis(100);
const FILL_RETRY_MAX: Duration = Duration::from_secs(5);

/// A node's relay: its hub, its broker, and the log behind them.
#[derive(Debug)]
pub struct Relay {
    hub: Arc<Hub>,
    presence: Arc<Presence>,
    broker: Arc<dyn Broker>,
    storage: Arc<dyn Storage>,
    /// The logs with a fill running: one at a time per log.
    filling: Mutex<HashSet<Log>>,
}

/// A task that ends with what started it: dropped (the relay ended or was aborted), it aborts the task.
struct StopOnDrop(tokio::task::JoinHandle<()>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a fill reads: a type's events, or a user's notifications.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Log {
    Events(String),
    Notifications(String),
}

impl Relay {
    /// The relay of one node.
    pub fn new(
        hub: Arc<Hub>,
        presence: Arc<Presence>,
        broker: Arc<dyn Broker>,
        storage: Arc<dyn Storage>,
    ) -> Arc<Relay> {
        Arc::new(Relay { hub, presence, broker, storage, filling: Mutex::default() })
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

    /// An event of an ephemeral type, never stored: to this node's hub and the other nodes, once.
    pub fn ephemeral(&self, event: EventRecord) {
        self.hub.broadcast(&event);
        if self.broker.has_peers() {
            self.broker.publish(Publication::Ephemeral { event });
        }
    }

    /// Notifications this node stored: to its own connections, and to the other nodes'.
    pub fn notifications(self: &Arc<Self>, records: Vec<NotificationRecord>) {
        self.release_notifications(&records);
        if self.broker.has_peers() && !records.is_empty() {
            self.broker.publish(Publication::Notifications { records });
        }
    }

    /// Starts a user's notification stream in the hub after `head`, what their first connection read at sign-in
    /// (none: from the first that comes); what is missing after it is read from storage.
    pub fn start_user(self: &Arc<Self>, user: &str, head: Option<u64>) {
        if self.hub.start_user(user, head) {
            self.start_fill(Log::Notifications(user.to_owned()));
        }
    }

    /// Hands an event to the hub; a gap before it is filled from the log if it stays open.
    fn release(self: &Arc<Self>, event: EventRecord) {
        let Some(gap) = self.to_hub(event) else { return };
        self.start_fill(Log::Events(gap.resource_type));
    }

    /// Hands an event to the hub, however it came; a deletion also ends the presence of the deleted resource here,
    /// and an update that hides a resource from some ends theirs (every node hears of every change, and ends its own
    /// members and followers).
    fn to_hub(&self, event: EventRecord) -> Option<crate::hub::Gap> {
        match event.kind {
            EventKind::Deleted => self.presence.resource_gone(&event.resource_type, &event.id),
            EventKind::Updated => self.presence.resource_changed(&event),
            EventKind::Created => {}
        }
        self.hub.publish(event)
    }

    /// Hands notifications to the hub; a user's gap is filled from storage if it stays open.
    fn release_notifications(self: &Arc<Self>, records: &[NotificationRecord]) {
        for user in self.hub.notify(records) {
            self.start_fill(Log::Notifications(user));
        }
    }

    /// Whether the hub still waits for something of `log`.
    fn waits(&self, log: &Log) -> bool {
        match log {
            Log::Events(resource_type) => self.hub.gap(resource_type).is_some(),
            Log::Notifications(user) => self.hub.user_gap(user).is_some(),
        }
    }

    /// Takes the log's one fill, unless it is running.
    fn take_fill(&self, log: &Log) -> bool {
        self.filling.lock().unwrap_or_else(PoisonError::into_inner).insert(log.clone())
    }

    /// Gives the log's fill back; true when a gap is open again, which it then owns and must close.
    fn give_back_fill(&self, log: &Log) -> bool {
        let mut filling = self.filling.lock().unwrap_or_else(PoisonError::into_inner);
        // Decided under the lock that `take_fill` takes after every publish: a gap that opened meanwhile either
        // shows here, or finds the fill given back and starts one.
        if self.waits(log) {
            return true;
        }
        filling.remove(log);
        false
    }

    /// Starts the fill of a log's gap, after a short pause, unless one runs; it keeps going while the hub waits.
    fn start_fill(self: &Arc<Self>, log: Log) {
        if !self.take_fill(&log) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut pause = GAP_PAUSE;
            let mut failed = FILL_RETRY_MIN;
            loop {
                tokio::time::sleep(pause).await;
                if !this.give_back_fill(&log) {
                    return;
                }
                pause = match this.fill(&log).await {
                    Ok(()) => GAP_PAUSE,
                    Err(error) => {
                        warn!("cannot read storage to fill a gap in {log:?} (retrying): {error}");
                        let wait = failed.mul_f64(0.5 + rand::random::<f64>() / 2.0);
                        failed = (failed * 2).min(FILL_RETRY_MAX);
                        wait
                    }
                };
            }
        });
    }

    /// Fills now, unless the log's fill is running (it reads to the end anyway); for resyncs and sweeps.
    async fn fill_unless_running(self: &Arc<Self>, log: Log) {
        if !self.take_fill(&log) {
            return;
        }
        if let Err(error) = self.fill(&log).await {
            warn!("cannot read storage to catch up {log:?}: {error}");
        }
        if self.give_back_fill(&log) {
            // A gap opened meanwhile, and this call owns the fill: hand it to a task of its own.
            self.filling.lock().unwrap_or_else(PoisonError::into_inner).remove(&log);
            self.start_fill(log);
        }
    }

    /// Reads storage past what the hub has released of `log` and hands everything to the hub, to the end.
    async fn fill(&self, log: &Log) -> Result<(), StorageError> {
        match log {
            Log::Events(resource_type) => self.fill_events(resource_type).await,
            Log::Notifications(user) => self.fill_notifications(user).await,
        }
    }

    /// [`Relay::fill`] for a type's events. When the log starts later than the hub waits, the missing events
    /// were pruned before this node got them: the hub passes over them, and the loss is counted and logged.
    async fn fill_events(&self, resource_type: &str) -> Result<(), StorageError> {
        let Some(mut after) = self.hub.released(resource_type) else { return Ok(()) };
        loop {
            let events = self.storage.events_after(resource_type, None, after, FILL_BATCH).await?;
            let (Some(first), Some(last)) = (events.first().map(|e| e.seq), events.last().map(|e| e.seq)) else {
                return Ok(());
            };
            if first > after + 1 {
                let lost = self.hub.pass_lost(resource_type, first);
                if lost > 0 {
                    ::metrics::counter!(crate::metrics::EVENTS_LOST, "resource_type" => resource_type.to_owned())
                        .increment(lost);
                    warn!(
                        "{lost} events of {resource_type} before seq {first} were pruned before this node received \
                         them; their subscribers are told to subscribe again"
                    );
                }
            }
            for event in events {
                self.to_hub(event);
            }
            after = last;
        }
    }

    /// [`Relay::fill`] for a user's notifications, while the hub waits for some of them.
    async fn fill_notifications(&self, user: &str) -> Result<(), StorageError> {
        while let Some(after) = self.hub.user_gap(user) {
            let records = self.storage.notifications_after(user, after, FILL_BATCH).await?;
            let Some(first) = records.first().map(|n| n.seq) else { return Ok(()) };
            if first > after + 1 {
                let lost = self.hub.pass_lost_notifications(user, first);
                if lost > 0 {
                    warn!("{lost} notifications of {user} before seq {first} were gone before this node got them");
                }
            }
            self.hub.notify(&records);
        }
        Ok(())
    }

    /// Brings every stream up to the log's head: after the broker may have lost messages.
    async fn catch_up(self: &Arc<Self>, types: &[String]) {
        for resource_type in types {
            self.fill_unless_running(Log::Events(resource_type.clone())).await;
        }
    }

    /// Serves what the broker brings until it closes: other nodes' events and notifications, and resyncs; and
    /// sweeps the log every `sweep` for an event lost with nothing after it.
    pub async fn run(self: Arc<Self>, mut inbound: mpsc::Receiver<Received>, types: Vec<String>, sweep: Duration) {
        let mut ticks = tokio::time::interval(sweep);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Beats go from a task of their own: a sweep or a catch-up waiting on storage must not silence this node, or
        // the others would drop its presence members.
        let _beating = StopOnDrop(tokio::spawn(Arc::clone(&self).beat()));
        // The heads seen at the last sweep: a stream still short of one a whole sweep later lost an event.
        let mut seen: HashMap<String, u64> = HashMap::new();
        loop {
            tokio::select! {
                next = inbound.recv() => match next {
                    Some(Received::Publication(Publication::Event { event })) => self.release(event),
                    Some(Received::Publication(Publication::Notifications { records })) => {
                        self.release_notifications(&records);
                    }
                    Some(Received::Publication(Publication::Ephemeral { event })) => self.hub.broadcast(&event),
                    Some(Received::Publication(presence)) => self.presence_from_peers(presence),
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

    /// Every [`BEAT_MS`]: this node's beat to the others, and the members of nodes gone silent dropped.
    async fn beat(self: Arc<Self>) {
        let mut beats = tokio::time::interval(Duration::from_millis(BEAT_MS));
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beats.tick().await;
            if !self.broker.has_peers() {
                continue;
            }
            self.presence.beat();
            for node in self.presence.drop_silent(Duration::from_millis(SILENT_NODE_MS)) {
                warn!("node {node} was not heard for a while: its presence members left");
            }
        }
    }

    /// Asks `node` for its presence members: this node lost some of its changes, or has just started.
    fn ask(&self, node: String) {
        debug!("presence: asking {node} for its members (changes were lost, or it is new)");
        self.broker.publish(Publication::PresenceAsk { asked: node });
    }

    /// What the other nodes say of presence: a change, a beat (which may show that changes were lost, and then
    /// this node asks for all of that node's members), an ask for this node's members, or a node's members.
    fn presence_from_peers(&self, message: Publication) {
        match message {
            Publication::Presence { change, member, epoch, seq } => {
                let node = member.node.clone();
                if self.presence.heard_change(change, member, epoch, seq) {
                    self.ask(node);
                }
            }
            Publication::PresenceBeat { beat } if self.presence.heard_beat(&beat) => self.ask(beat.node),
            Publication::PresenceAsk { asked } if asked == self.presence.node() => self.presence.answer(),
            Publication::PresenceMembers { from, epoch, changes, members, part, more } => {
                self.presence.replace(&from, epoch, changes, members, (part, more));
            }
            _ => {}
        }
    }

    async fn sweep(self: &Arc<Self>, types: &[String], seen: &mut HashMap<String, u64>) {
        for resource_type in types {
            let Some(released) = self.hub.released(resource_type) else { continue };
            if let Some(&head) = seen.get(resource_type) {
                if released < head {
                    debug!("sweep: {resource_type} is behind the log ({released} < {head}); filling");
                    self.fill_unless_running(Log::Events(resource_type.clone())).await;
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
