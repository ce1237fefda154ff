//! Fan-out workloads: `fanout` (one topic, many subscribers, create-to-delivery latency), `broadcast` (the same
//! on `pulse`, an ephemeral type: nothing stored), `fanout-filtered` (the same through many distinct queries of
//! the topic), `slow-consumer` (the same with one subscriber reading at a
//! tenth of the rate), `churn` (connect, sign in, subscribe, close, in a
//! loop, beside a fan-out at a given rate) and `idle` (connections held open, server memory per connection).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use memchr::memmem::Finder;
use serde_json::json;

use super::conn::Conn;
use super::report::{record, record_delivery, rss_bytes, Samples, Stats};
use super::requests::{create_message_in, nonce};
use super::Run;

pub const SUBSCRIBE: &str = r#"{"type":"subscribe","timestamp":0,"requestId":"s","payload":{"topic":"order"}}"#;

/// The ephemeral type `broadcast` sends: a copy of `order` declared `ephemeral` (bench/tidings.toml).
pub const PULSE: &str = "pulse";

/// The subscribe of the topic of `resource_type`.
fn subscribe_to(resource_type: &str) -> String {
    format!(r#"{{"type":"subscribe","timestamp":0,"requestId":"s","payload":{{"topic":"{resource_type}"}}}}"#)
}

/// The subscribe of query `n` of `fanout-filtered`: the orders of quantity `1 + n % 10`, made distinct from the
/// other queries of that quantity by a bound that every order passes. An order thus matches a tenth of the queries.
pub fn subscribe_query(n: usize) -> String {
    let quantity = 1 + n % 10;
    let bound = 1_000_000 + n;
    format!(
        r#"{{"type":"subscribe","timestamp":0,"requestId":"s","payload":{{"topic":"order","query":{{"and":[{{"field":"data.quantity","eq":{quantity}}},{{"field":"data.totalAmount","lt":{bound}}}]}}}}}}"#
    )
}

/// An event's send time, or `None` for a message that is no event; an event without one gives `Some(None)`. The
/// publisher puts the send time in the product id (`t<micros since the run began>`), and it is found by a byte
/// search, not a parse: at a million events a second the generator's core is the limit, and parsing every event
/// spent a third of it (more on a system whose events are larger), so the run measured the generator.
fn sent_micros(text: &[u8]) -> Option<Option<u64>> {
    // Built once: building a finder costs more than a search of a short message.
    static EVENT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""type":"event""#));
    static SENT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""productId":"t"#));
    EVENT.find(text)?;
    let digits = SENT.find(text).map(|at| &text[at + SENT.needle().len()..]);
    Some(digits.and_then(|digits| {
        let end = digits.iter().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
        std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
    }))
}

/// Micro-seconds since `base`, the clock every task of the run shares.
fn micros_since(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

/// Opens `count` subscribers of `order`; with `queries`, subscriber `n` follows query `n % queries`.
async fn subscribers(run: &Run, count: usize, queries: Option<usize>) -> anyhow::Result<Vec<Conn>> {
    let mut conns = run.open_all(count).await?;
    let plain = subscribe_to(&run.resource_type());
    for (n, conn) in conns.iter_mut().enumerate() {
        match queries {
            Some(queries) => conn.call("s", &subscribe_query(n % queries.max(1))).await?,
            None => conn.call("s", &plain).await?,
        };
    }
    Ok(conns)
}

/// Publishes creates from one connection with up to `in_flight` outstanding, at `rate` per second if given, until
/// `end`.
/// Each create's productId is `t<µs since base>`, so that subscribers time the delivery.
fn publisher(
    mut conn: Conn,
    resource_type: String,
    base: Instant,
    (rate, in_flight): (Option<f64>, usize),
    end: Instant,
    published: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(0.001))));
        let (mut n, mut outstanding) = (0_u64, 0_usize);
        // Each publisher's requestIds are its own, whichever user it signs in as.
        let publisher: u32 = rand::random();
        loop {
            let sending = Instant::now() < end;
            if sending && outstanding < in_flight.max(1) {
                if let Some(ticks) = ticks.as_mut() {
                    ticks.tick().await;
                }
                // Quantities 1 to 10 in turn: each order matches a tenth of `fanout-filtered`'s queries.
                let message = create_message_in(
                    &resource_type,
                    &format!("e{}-{publisher:08x}-{n}", nonce()),
                    &format!("t{}", micros_since(base)),
                    1 + n % 10,
                );
                if conn.send(&message).await.is_err() {
                    return;
                }
                n += 1;
                outstanding += 1;
                continue;
            }
            if outstanding == 0 {
                break;
            }
            match conn.recv().await {
                Ok(text) if text.contains("\"requestId\"") => {
                    outstanding -= 1;
                    published.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
        conn.close().await;
    })
}

/// A subscriber's loop until `end`: each event's delivery latency, counted as one operation. With `allowed`,
/// it reads no more events than that function allows (the slow consumer).
async fn subscriber(
    mut conn: Conn,
    base: Instant,
    end: Instant,
    stats: Arc<Stats>,
    allowed: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
) -> bool {
    let mut local = Samples::default();
    let mut received = 0_u64;
    // One deadline for the whole loop rather than a timer for each read; the connection is dropped after it.
    let reading = tokio::time::timeout_at(end.into(), async {
        loop {
            if let Some(allowed) = &allowed {
                if received >= allowed() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
            let Some(sent) = conn.recv_with(sent_micros).await? else { continue };
            received += 1;
            if let (Some(sent_us), None) = (sent, &allowed) {
                record_delivery(&stats, &mut local, base + Duration::from_micros(sent_us), end);
            }
        }
    })
    .await;
    // The deadline passed (the connection stayed open), or a read failed.
    let open: anyhow::Result<bool> = match reading {
        Err(_elapsed) => Ok(true),
        Ok(result) => result,
    };
    stats.merge(&mut local);
    open.unwrap_or(false)
}

/// The connections of a fan-out, opened before the clock starts: opening 10,000 takes seconds, more than a warm-up,
/// and a measured second in which the subscribers are still being opened measures the generator, not the server.
pub struct Opened {
    subscribers: Vec<Conn>,
    publishers: Vec<Conn>,
    queries: Option<usize>,
}

/// Opens `subscriber_count` subscribers of the topic (through `queries` distinct queries, `fanout-filtered`, when
/// given) and the `--publishers` connections that create the events.
pub async fn open(run: &Run, subscriber_count: usize, queries: Option<usize>) -> anyhow::Result<Opened> {
    let subscribers = subscribers(run, subscriber_count, queries).await?;
    let mut publishers = Vec::new();
    for p in 0..run.args.publishers.max(1) {
        publishers.push(run.open(subscriber_count + p).await?);
    }
    Ok(Opened { subscribers, publishers, queries })
}

/// `fanout`, and `slow-consumer` when `slow` is set: the publishers create orders (events come from many users at
/// once, as they would), the subscribers receive them.
pub async fn fanout(run: &Run, opened: Opened, rate: Option<f64>, slow: bool) -> anyhow::Result<()> {
    let base = Instant::now();
    let Opened { subscribers: subs, publishers: publisher_conns, queries } = opened;
    let subscriber_count = subs.len();
    let published = Arc::new(AtomicU64::new(0));
    let end = run.end();
    let peak_rss = run.args.server_pid.map(|pid| sample_peak_rss(pid, end));
    // Every subscriber reads before the first event is sent: one spawned later finds a socket full of events and
    // the server's writes to it waiting, which slows the start of a run of 10,000.
    let mut tasks = Vec::new();
    for (index, conn) in subs.into_iter().enumerate() {
        let stats = Arc::clone(&run.stats);
        let allowed: Option<Arc<dyn Fn() -> u64 + Send + Sync>> = if slow && index == 0 {
            let published = Arc::clone(&published);
            Some(Arc::new(move || published.load(Ordering::Relaxed) / 10))
        } else {
            None
        };
        tasks.push(tokio::spawn(subscriber(conn, base, end, stats, allowed)));
    }
    // Each publisher takes an equal share of the rate.
    let share = rate.map(|r| r / publisher_conns.len() as f64);
    let publishers: Vec<_> = publisher_conns
        .into_iter()
        .map(|conn| {
            publisher(conn, run.resource_type(), base, (share, run.args.in_flight), end, Arc::clone(&published))
        })
        .collect();
    for publisher in publishers {
        publisher.await?;
    }
    let mut still_open = Vec::new();
    for task in tasks {
        still_open.push(task.await?);
    }
    let mut extra = json!({
        "events_published": published.load(Ordering::Relaxed),
        "subscribers": subscriber_count,
    });
    if let Some(queries) = queries {
        extra["queries"] = json!(queries);
    }
    if slow {
        extra["slow_subscriber_still_connected"] = json!(still_open.first().copied().unwrap_or(false));
    }
    if let Some(peak) = peak_rss {
        extra["server_peak_rss_bytes"] = json!(peak.await?);
    }
    run.add_extra(extra);
    Ok(())
}

/// Samples a process's RSS every 100 ms until `end`; returns the highest.
fn sample_peak_rss(pid: u32, end: Instant) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while Instant::now() < end {
            peak = peak.max(rss_bytes(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peak
    })
}

/// `churn`: `connections` loops of connect + auth + subscribe + close, beside a fan-out to 100 subscribers.
pub async fn churn(run: &Run, rate: Option<f64>) -> anyhow::Result<()> {
    // The baseline is taken when the warm-up ends: the server has then met the background fan-out and the
    // first cycles (its caches and pools are warm), so growth after that is what the cycles leave behind.
    let baseline = run.args.server_pid.map(|pid| {
        let from = run.stats.measure_from;
        tokio::spawn(async move {
            tokio::time::sleep_until(from.into()).await;
            rss_bytes(pid)
        })
    });
    let base = Instant::now();
    let subs = subscribers(run, 100, None).await?;
    let end = run.end();
    let published = Arc::new(AtomicU64::new(0));
    let background = publisher(
        run.open(100).await?,
        run.resource_type(),
        base,
        (rate, run.args.in_flight),
        end,
        Arc::clone(&published),
    );
    let deliveries = Arc::new(Stats::new_like(&run.stats));
    let mut tasks: Vec<tokio::task::JoinHandle<bool>> = Vec::new();
    for conn in subs {
        tasks.push(tokio::spawn(subscriber(conn, base, end, Arc::clone(&deliveries), None)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut churners = Vec::new();
    for worker in 0..run.args.connections {
        let (stats, stop, run) = (Arc::clone(&run.stats), Arc::clone(&stop), run.clone());
        churners.push(tokio::spawn(async move {
            let mut local = Samples::default();
            let mut cycle = 0;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let index = 1000 + worker + cycle * run.args.connections;
                let result = async {
                    let mut conn = run.open(index).await?;
                    conn.call("s", SUBSCRIBE).await?;
                    conn.close().await;
                    anyhow::Ok(())
                }
                .await;
                match result {
                    Ok(()) => record(&stats, &mut local, started),
                    Err(_) => stats.error(),
                }
                cycle += 1;
            }
            stats.merge(&mut local);
        }));
    }
    tokio::time::sleep_until(end.into()).await;
    stop.store(true, Ordering::Relaxed);
    for churner in churners {
        churner.await?;
    }
    background.await?;
    for task in tasks {
        task.await?;
    }
    let seconds = run.args.duration;
    let mut extra = json!({
        "background_deliveries_per_s": deliveries.ops.load(Ordering::Relaxed) as f64 / seconds,
        "background_events_published": published.load(Ordering::Relaxed),
    });
    let before = match baseline {
        Some(task) => task.await?,
        None => None,
    };
    if let (Some(pid), Some(before)) = (run.args.server_pid, before) {
        // Give the server a moment to release what the closed connections held.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_bytes(pid).unwrap_or(0);
        extra["server_rss_before_bytes"] = json!(before);
        extra["server_rss_after_bytes"] = json!(after);
        extra["server_rss_growth"] = json!(after as f64 / before.max(1) as f64 - 1.0);
    }
    run.add_extra(extra);
    Ok(())
}

/// `idle`: opens `connections` authenticated subscribers, holds them for the run, and reports the server's memory
/// per connection (with `--server-pid`). Each open (connect, auth, subscribe) is one timed operation.
pub async fn idle(run: &Run) -> anyhow::Result<()> {
    let before = run.args.server_pid.and_then(rss_bytes);
    let count = run.args.connections;
    let stats = Arc::clone(&run.stats);
    let opened: Vec<Conn> = futures_util::stream::iter(0..count)
        .map(|index| {
            let (run, stats) = (run.clone(), Arc::clone(&stats));
            async move {
                let started = Instant::now();
                let mut conn = run.open(index).await.ok()?;
                conn.call("s", SUBSCRIBE).await.ok()?;
                let mut local = Samples::default();
                record(&stats, &mut local, started);
                stats.merge(&mut local);
                Some(conn)
            }
        })
        .buffer_unordered(512)
        .filter_map(|conn| async move { conn })
        .collect()
        .await;
    let held = opened.len();
    let after = run.args.server_pid.and_then(rss_bytes);
    // Hold them, answering the server's pings, until the run ends.
    let end = run.end();
    let holders: Vec<_> = opened
        .into_iter()
        .map(|mut conn| {
            tokio::spawn(async move {
                while let Ok(Some(_)) = conn.recv_within(end.saturating_duration_since(Instant::now())).await {}
            })
        })
        .collect();
    for holder in holders {
        holder.await?;
    }
    let mut extra = json!({ "connections_held": held, "failed": count - held });
    if let (Some(before), Some(after)) = (before, after) {
        extra["server_rss_before_bytes"] = json!(before);
        extra["server_rss_after_bytes"] = json!(after);
        extra["server_rss_per_connection_bytes"] = json!((after.saturating_sub(before)) / held.max(1) as u64);
    }
    run.add_extra(extra);
    Ok(())
}
