//! The Redis broker: every node publishes to one Redis pub/sub channel and subscribes to it.
//!
//! Two tasks per node, each with its own connection: the publisher drains a bounded queue and sends what waits
//! as one pipeline of `PUBLISH` commands (one round trip per batch, not per event); the receiver holds the
//! subscription and hands other nodes' messages to the node. Both reconnect on their own, with a backoff; the
//! receiver reports [`Received::Resync`] each time its subscription is in place, since Redis pub/sub keeps nothing
//! for a subscriber that was away.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{Broker, Publication, Received, Wire, INBOUND_CAPACITY};

/// Messages waiting to be published; beyond this the broker drops them (the other nodes resync from the log).
const QUEUE: usize = 64 * 1024;
/// Bytes waiting to be published, at most: a broadcast notification to many users is one large message, so a
/// bound in messages alone does not bound memory while Redis is away.
const QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// The most messages sent in one pipeline.
const BATCH: usize = 512;
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A node's link to the other nodes through Redis.
#[derive(Debug)]
pub struct RedisBroker {
    /// Messages encoded for the wire, waiting for the publisher.
    queue: mpsc::Sender<Vec<u8>>,
    /// Their bytes, kept within [`QUEUE_BYTES`].
    queued: Arc<AtomicUsize>,
    node: String,
    subscribed: Arc<AtomicBool>,
}

impl RedisBroker {
    /// Starts the publisher and the receiver of node `node` on `channel` at `url` (`redis://HOST:PORT[/DB]`).
    /// Connections are made in the background, so a node starts while Redis is down. Needs a tokio runtime.
    pub fn open(url: &str, channel: &str, node: &str) -> anyhow::Result<(Arc<dyn Broker>, mpsc::Receiver<Received>)> {
        let (broker, inbound) = Self::start(url, channel, node)?;
        Ok((broker, inbound))
    }

    fn start(url: &str, channel: &str, node: &str) -> anyhow::Result<(Arc<RedisBroker>, mpsc::Receiver<Received>)> {
        let client = ::redis::Client::open(url).map_err(|e| anyhow::anyhow!("bad broker.url: {e}"))?;
        let (queue, pending) = mpsc::channel(QUEUE);
        let (inbound, inbound_receiver) = mpsc::channel(INBOUND_CAPACITY);
        let subscribed = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        let link = Link { client, channel: channel.to_owned(), node: node.to_owned() };
        tokio::spawn(link.clone().publish_all(pending, Arc::clone(&queued)));
        tokio::spawn(link.receive_all(inbound, Arc::clone(&subscribed)));
        let broker = RedisBroker { queue, queued, node: node.to_owned(), subscribed };
        Ok((Arc::new(broker), inbound_receiver))
    }
}

impl Broker for RedisBroker {
    fn publish(&self, message: Publication) {
        let bytes = Wire::encode(&self.node, message);
        let size = bytes.len();
        let fits = self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
            (queued + size <= QUEUE_BYTES).then_some(queued + size)
        });
        if fits.is_err() {
            ::metrics::counter!(crate::metrics::BROKER_DROPPED).increment(1);
            return;
        }
        if self.queue.try_send(bytes).is_err() {
            self.queued.fetch_sub(size, Ordering::AcqRel);
            ::metrics::counter!(crate::metrics::BROKER_DROPPED).increment(1);
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    fn connected(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }
}

/// What both tasks need to reach Redis.
#[derive(Clone)]
struct Link {
    client: ::redis::Client,
    channel: String,
    node: String,
}

impl Link {
    /// The publisher: batches what waits into one pipeline; a batch that fails twice is dropped and counted.
    async fn publish_all(self, mut pending: mpsc::Receiver<Vec<u8>>, queued: Arc<AtomicUsize>) {
        let mut connection = None;
        let mut backoff = Backoff::default();
        let mut batch = Vec::with_capacity(BATCH);
        while pending.recv_many(&mut batch, BATCH).await > 0 {
            let mut pipeline = ::redis::pipe();
            let count = batch.len();
            // The batch's bytes count against the budget until it is sent or dropped.
            let bytes: usize = batch.iter().map(Vec::len).sum();
            for message in batch.drain(..) {
                pipeline.cmd("PUBLISH").arg(&self.channel).arg(message).ignore();
            }
            let mut sent = false;
            for _ in 0..2 {
                if connection.is_none() {
                    match self.client.get_multiplexed_async_connection().await {
                        Ok(c) => connection = Some(c),
                        Err(error) => {
                            warn!("broker: cannot connect to Redis to publish: {error}");
                            backoff.wait().await;
                            continue;
                        }
                    }
                }
                let Some(c) = connection.as_mut() else { continue };
                match pipeline.query_async::<()>(c).await {
                    Ok(()) => {
                        sent = true;
                        backoff.reset();
                        break;
                    }
                    Err(error) => {
                        warn!("broker: publishing to Redis failed: {error}");
                        connection = None;
                    }
                }
            }
            drop(pipeline);
            queued.fetch_sub(bytes, Ordering::AcqRel);
            if !sent {
                ::metrics::counter!(crate::metrics::BROKER_DROPPED).increment(count as u64);
            }
        }
    }

    /// The receiver: subscribes, reports a resync, forwards other nodes' messages; on loss, again.
    async fn receive_all(self, inbound: mpsc::Sender<Received>, subscribed: Arc<AtomicBool>) {
        let mut backoff = Backoff::default();
        loop {
            match self.subscribe().await {
                Ok(pubsub) => {
                    backoff.reset();
                    subscribed.store(true, Ordering::Relaxed);
                    info!("broker: subscribed to Redis channel {}", self.channel);
                    if inbound.send(Received::Resync).await.is_err() {
                        return;
                    }
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        let wire = match Wire::decode(message.get_payload_bytes()) {
                            Ok(wire) => wire,
                            Err(error) => {
                                warn!("broker: an unreadable message on {}: {error}", self.channel);
                                continue;
                            }
                        };
                        if wire.node == self.node {
                            continue;
                        }
                        if inbound.send(Received::Publication(wire.message)).await.is_err() {
                            return;
                        }
                    }
                    subscribed.store(false, Ordering::Relaxed);
                    warn!("broker: the Redis subscription ended; reconnecting");
                }
                Err(error) => warn!("broker: cannot subscribe on Redis: {error}"),
            }
            if inbound.is_closed() {
                return;
            }
            backoff.wait().await;
        }
    }

    async fn subscribe(&self) -> ::redis::RedisResult<::redis::aio::PubSub> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(&self.channel).await?;
        Ok(pubsub)
    }
}

/// Doubling waits from 50 ms up to [`MAX_BACKOFF`], each drawn at random from its upper half: after a Redis
/// restart, every node retries, and without the chance they would all retry in lockstep, again and again.
#[derive(Default)]
struct Backoff(Duration);

impl Backoff {
    async fn wait(&mut self) {
        tokio::time::sleep(self.next()).await;
    }

    /// The next wait: the ceiling doubles, and the wait is between half of it and all of it.
    fn next(&mut self) -> Duration {
        self.0 = (self.0 * 2).clamp(Duration::from_millis(50), MAX_BACKOFF);
        self.0.mul_f64(0.5 + rand::random::<f64>() / 2.0)
    }

    fn reset(&mut self) {
        self.0 = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use serde_json::{json, Map};

    use super::{Backoff, RedisBroker, QUEUE_BYTES};
    use crate::broker::{Broker, Publication};
    use crate::storage::NotificationRecord;

    /// While Redis is away, what waits to be published stays within its byte budget: large messages (a broadcast
    /// to many users) are dropped and counted once it is spent, rather than held until memory runs out.
    #[tokio::test]
    async fn the_publish_queue_is_bounded_in_bytes() {
        // Nothing listens on port 1: the publisher keeps trying to connect while messages pile up.
        let (broker, _inbound) = RedisBroker::start("redis://127.0.0.1:1", "bounded", "a").expect("broker");
        let mut data = Map::new();
        data.insert("note".to_owned(), json!("x".repeat(100_000)));
        let record = NotificationRecord {
            user_id: "u".to_owned(),
            seq: 1,
            id: "NTF-1".to_owned(),
            level: "info".to_owned(),
            title: "t".to_owned(),
            body: String::new(),
            data,
            created_at: 0,
        };
        // A hundred messages of a megabyte each: more than the budget of 64 MiB.
        for _ in 0..100 {
            broker.publish(Publication::Notifications { records: vec![record.clone(); 10] });
        }
        let queued = broker.queued.load(Ordering::Acquire);
        assert!(queued <= QUEUE_BYTES, "{queued} bytes wait, past the budget of {QUEUE_BYTES}");
        assert!(queued > QUEUE_BYTES / 2, "the queue was used: {queued}");
    }

    #[test]
    fn nodes_that_back_off_together_do_not_retry_together() {
        // Fifty nodes lose Redis at once and each backs off three times: their third waits must be spread out
        // (a ceiling of 200 ms, each between 100 and 200 ms), not all the same.
        let waits: Vec<Duration> = (0..50)
            .map(|_| {
                let mut backoff = Backoff::default();
                backoff.next();
                backoff.next();
                backoff.next()
            })
            .collect();
        assert!(
            waits.iter().all(|w| (Duration::from_millis(100)..=Duration::from_millis(200)).contains(w)),
            "{waits:?}"
        );
        let distinct: BTreeSet<Duration> = waits.into_iter().collect();
        assert!(distinct.len() > 25, "the nodes retry in lockstep: {distinct:?}");
    }
}
