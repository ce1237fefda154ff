//! What a bench run measures and prints: latency in an HDR histogram, counts, a progress line, a report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Map, Value};

/// Counters and latencies shared by a run's tasks.
#[derive(Debug)]
pub struct Stats {
    /// Operations completed while measuring (after the warm-up).
    pub ops: AtomicU64,
    /// Operations that failed.
    pub errors: AtomicU64,
    /// Latencies in microseconds, added from the tasks' samples.
    latency: Mutex<Histogram<u64>>,
    /// When measuring starts; operations before it are not counted.
    pub measure_from: Instant,
}

impl Stats {
    pub fn new(warmup: Duration) -> Arc<Stats> {
        Arc::new(Stats {
            ops: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Mutex::new(histogram()),
            measure_from: Instant::now() + warmup,
        })
    }

    /// Empty stats that measure from the same moment as `other`.
    pub fn new_like(other: &Stats) -> Stats {
        Stats {
            ops: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Mutex::new(histogram()),
            measure_from: other.measure_from,
        }
    }

    /// Whether the warm-up is over.
    pub fn measuring(&self) -> bool {
        Instant::now() >= self.measure_from
    }

    /// Adds a task's samples to the run's histogram, leaving it empty: when it has gathered a batch, and when the task
    /// ends.
    pub fn merge(&self, local: &mut Samples) {
        if let Ok(mut latency) = self.latency.lock() {
            for micros in local.0.drain(..) {
                let _ = latency.record(micros);
            }
        }
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A histogram of latencies from 1 µs to 100 s, with 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// A task's latencies (µs) on their way to the run's histogram, added a batch at a time. A histogram of the task's
/// own at this range and precision is 147 KiB: 10,000 subscribers each holding one took 1.4 GiB, and seconds of the
/// generator's core to allocate, in the middle of the fan-out they measured.
#[derive(Debug, Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    /// Counts one operation of `micros` (at least 1), and adds the batch to the run's histogram once it is full.
    fn add(&mut self, stats: &Stats, micros: u128) {
        self.0.push((micros.min(u128::from(u64::MAX)) as u64).max(1));
        stats.ops.fetch_add(1, Ordering::Relaxed);
        if self.0.len() >= BATCH {
            stats.merge(self);
        }
    }
}

/// Samples a task gathers before adding them to the run's histogram.
const BATCH: usize = 256;

/// Records one operation that took from `started` until now, if measuring.
pub fn record(stats: &Stats, local: &mut Samples, started: Instant) {
    if started >= stats.measure_from {
        local.add(stats, started.elapsed().as_micros());
    }
}

/// Records one delivery of an event sent at `sent`, received now, if it came while measuring (from the warm-up's end
/// to `end`). A delivery counts by when it arrives, not when its event was sent: a system whose backlog grows longer
/// than the run still shows the deliveries it made, each with its whole latency. (Counted by sending time, the
/// Node and FastAPI peers showed none at 10,000 subscribers, whose events arrived seconds after the run.)
pub fn record_delivery(stats: &Stats, local: &mut Samples, sent: Instant, end: Instant) {
    let now = Instant::now();
    if now >= stats.measure_from && now < end {
        local.add(stats, now.saturating_duration_since(sent).as_micros());
    }
}

/// Prints `elapsed  ops  ops/s` on one line of stderr every second until dropped.
pub fn progress(stats: &Arc<Stats>, quiet: bool) -> Option<tokio::task::JoinHandle<()>> {
    if quiet {
        return None;
    }
    let stats = Arc::clone(stats);
    Some(tokio::spawn(async move {
        let mut last = 0;
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let ops = stats.ops.load(Ordering::Relaxed);
            let since = stats.measure_from.elapsed().as_secs_f64();
            let phase = if stats.measuring() { format!("{since:5.1}s") } else { " warm ".to_owned() };
            eprint!(
                "\r  {phase}  {ops:>10} ops  {:>9}/s  {} errors   ",
                ops - last,
                stats.errors.load(Ordering::Relaxed)
            );
            last = ops;
        }
    }))
}

/// The outcome of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub workload: String,
    pub url: String,
    pub connections: usize,
    pub seconds: f64,
    pub operations: u64,
    pub throughput: f64,
    pub errors: u64,
    pub latency_us: Latency,
    /// Workload-specific figures (deliveries, memory per connection, cycles).
    pub extra: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Report {
    /// Builds the report from what the tasks recorded over `seconds` of measuring.
    pub fn from_stats(workload: &str, url: &str, connections: usize, seconds: f64, stats: &Stats) -> Report {
        let latency = stats.latency.lock().map(|h| h.clone()).unwrap_or_else(|_| histogram());
        let operations = stats.ops.load(Ordering::Relaxed);
        Report {
            workload: workload.to_owned(),
            url: url.to_owned(),
            connections,
            seconds,
            operations,
            throughput: operations as f64 / seconds.max(1e-9),
            errors: stats.errors.load(Ordering::Relaxed),
            latency_us: Latency {
                p50: latency.value_at_quantile(0.5),
                p99: latency.value_at_quantile(0.99),
                p999: latency.value_at_quantile(0.999),
                max: latency.max(),
            },
            extra: Map::new(),
        }
    }

    /// Prints for people, or as one JSON object.
    pub fn print(&self, json: bool) {
        if json {
            println!("{}", serde_json::to_string(self).unwrap_or_default());
            return;
        }
        println!(
            "{}: {} connections, {:.1} s: {:.0} ops/s ({} ops, {} errors); latency p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
            self.workload,
            self.connections,
            self.seconds,
            self.throughput,
            self.operations,
            self.errors,
            self.latency_us.p50,
            self.latency_us.p99,
            self.latency_us.p999,
            self.latency_us.max
        );
        for (key, value) in &self.extra {
            println!("  {key}: {value}");
        }
    }
}

/// The first number of a field of a process's /proc status (Linux), such as `VmRSS` or `Threads`.
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The resident memory of a process in bytes, from /proc (Linux).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS").map(|kib| kib * 1024)
}

/// The CPU time a process used so far (user + system), from /proc (Linux).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every common configuration.
    Some(Duration::from_millis(ticks * 10))
}

/// Samples a process's threads every 20 ms until the handle is aborted; `peak` keeps the most seen.
pub fn watch_threads(pid: u32, peak: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Some(threads) = status_field(pid, "Threads") {
                peak.fetch_max(threads, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}
