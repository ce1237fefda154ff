//! `tidings bench`: a load generator for any server that speaks protocol v1 (Tidings, or the peers in bench/peers),
//! with latency in HDR histograms, a progress line, and a report for people or as JSON.
//!
//! Connections are spread over source addresses in 127.0.0.0/8, since one address runs out of ports at scale.
//! Each connection signs in as its own user (`bench-N`, role `admin`) with an HS256 token made from `--secret`,
//! so that per-user connection limits do not cap a run and every subscriber may read every order.

mod conn;
mod fanout;
mod presence;
mod report;
mod requests;
mod sign_in;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use conn::{Conn, Target};
use report::{Report, Stats};

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Ping round trips, one in flight per connection.
    Rpc,
    /// Ping round trips, `--in-flight` per connection.
    RpcPipelined,
    /// Reads of existing orders by id.
    Read,
    /// Durable creates, each acknowledged after commit.
    Create,
    /// One topic, `--subscribers` subscribers, one publisher creating orders.
    Fanout,
    /// The same on `pulse`, an ephemeral type (protocol 1.2): fanned out, never stored. The server must declare
    /// it (bench/tidings.toml).
    Broadcast,
    /// The same through `--queries` distinct queries of the topic (protocol 1.1), each order matching a tenth of
    /// them: as many deliveries per event as `fanout` to a tenth of the subscribers.
    FanoutFiltered,
    /// Connections held open, signed in and subscribed; server memory per connection with `--server-pid`.
    Idle,
    /// Fan-out where one subscriber reads at a tenth of the publish rate.
    SlowConsumer,
    /// Connect, sign in, subscribe and close in a loop, beside a fan-out at `--rate`.
    Churn,
    /// `--connections` presence members joining and leaving `--topics` topics, `--followers` following each
    /// (protocol 1.2).
    Presence,
    /// `--connections` new connections opened as fast as the server takes them (connect, sign in as a user of
    /// their own, subscribe), as after a deploy; after as many plain WebSocket opens of the same server, the
    /// baseline its CPU per open is compared with.
    SignIn,
}

/// Arguments of `tidings bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The server's WebSocket URL, such as ws://127.0.0.1:8080/ws (an IP address, not a name).
    url: String,
    /// What to run.
    #[arg(long, value_enum)]
    workload: Workload,
    /// Connections (for churn: connections cycling at once; for fanout: see --subscribers).
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Seconds of measuring, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Requests in flight per connection (rpc-pipelined), and creates in flight from a fan-out's publisher.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Subscribers of the topic (fanout, fanout-filtered, slow-consumer).
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Distinct queries the subscribers follow (fanout-filtered).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Connections that create the events of a fan-out (fanout, slow-consumer).
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Events per second the publishers create (fanout, slow-consumer, churn); default: as fast as acknowledged.
    #[arg(long)]
    rate: Option<f64>,
    /// Orders created before a read run.
    #[arg(long, default_value_t = 1000)]
    records: usize,
    /// Topics the presence members spread over (presence): one is the orders' topic, more are orders' own.
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// Followers of each topic's presence (presence).
    #[arg(long, default_value_t = 10)]
    followers: usize,
    /// The HS256 secret the server verifies tokens with.
    #[arg(long, env = "TIDINGS_AUTH__SECRET", hide_env_values = true)]
    secret: String,
    /// How many source addresses (127.0.0.1, 127.0.0.2, ...) to spread connections over.
    #[arg(long, default_value_t = 32)]
    source_addresses: u32,
    /// The server's process id, to read its memory from /proc (idle, slow-consumer, churn).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

/// What every task of a run shares.
#[derive(Clone)]
pub struct Run {
    args: Arc<Args>,
    target: Arc<Target>,
    stats: Arc<Stats>,
    extra: Arc<Mutex<Map<String, Value>>>,
    key: Arc<jsonwebtoken::EncodingKey>,
}

impl Run {
    /// Opens connection number `index`: its source address and its user follow from the number.
    async fn open(&self, index: usize) -> anyhow::Result<Conn> {
        Conn::open(&self.target, self.source(index), &self.token(index)?).await
    }

    /// The source address of connection number `index`.
    fn source(&self, index: usize) -> IpAddr {
        let spread = self.args.source_addresses.max(1) as usize;
        let k = (index % spread) as u32;
        IpAddr::V4(Ipv4Addr::new(127, 0, (k / 250) as u8, (1 + k % 250) as u8))
    }

    /// Opens `count` connections, 256 at a time.
    async fn open_all(&self, count: usize) -> anyhow::Result<Vec<Conn>> {
        let opened: Vec<anyhow::Result<Conn>> =
            futures_util::stream::iter(0..count).map(|i| self.open(i)).buffer_unordered(256).collect().await;
        opened.into_iter().collect()
    }

    fn token(&self, index: usize) -> anyhow::Result<String> {
        let claims = serde_json::json!({
            "sub": format!("bench-{index}"),
            "roles": ["admin"],
            "exp": tidings_protocol::now_ms() / 1000 + 24 * 3600,
        });
        Ok(jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &self.key)?)
    }

    /// The type a fan-out publishes and subscribes to: `pulse` for `broadcast`, else `order`.
    fn resource_type(&self) -> String {
        match self.args.workload {
            Workload::Broadcast => fanout::PULSE.to_owned(),
            _ => "order".to_owned(),
        }
    }

    /// When the run stops: the warm-up, then the duration.
    fn end(&self) -> Instant {
        self.stats.measure_from + Duration::from_secs_f64(self.args.duration)
    }

    fn add_extra(&self, extra: Value) {
        if let (Value::Object(map), Ok(mut all)) = (extra, self.extra.lock()) {
            all.extend(map);
        }
    }
}

/// Runs `tidings bench`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.url)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let run = Run {
            args: Arc::new(args.clone()),
            target: Arc::new(target),
            stats: Stats::new(Duration::ZERO),
            extra: Arc::default(),
            key: Arc::new(jsonwebtoken::EncodingKey::from_secret(args.secret.as_bytes())),
        };
        // The read workload needs orders to read; they are made before the clock starts.
        let ids =
            if args.workload == Workload::Read { Some(requests::seed_orders(&run, args.records).await?) } else { None };
        // A fan-out's connections too, and presence's: see `fanout::Opened`.
        let mut opened = match args.workload {
            Workload::Fanout | Workload::Broadcast | Workload::SlowConsumer => {
                Some(fanout::open(&run, args.subscribers, None).await?)
            }
            Workload::FanoutFiltered => Some(fanout::open(&run, args.subscribers, Some(args.queries)).await?),
            _ => None,
        };
        let mut present = if args.workload == Workload::Presence {
            Some(presence::open(&run, args.topics, args.followers).await?)
        } else {
            None
        };
        // Idle and sign-in measure the opening of their connections, which is all of their load: no warm-up.
        let warmup = if matches!(args.workload, Workload::Idle | Workload::SignIn) { 0.0 } else { args.warmup };
        let run = Run { stats: Stats::new(Duration::from_secs_f64(warmup)), ..run };
        // The server's CPU time and the generator's own over the measured part only, read when the warm-up ends.
        // The generator's share of its core says whether a run measured the server or the generator.
        let cpu_before = {
            let (from, server) = (run.stats.measure_from, args.server_pid);
            tokio::spawn(async move {
                tokio::time::sleep_until(from.into()).await;
                (server.and_then(report::cpu_time), report::cpu_time(std::process::id()))
            })
        };
        let progress = report::progress(&run.stats, args.quiet || args.json);
        // The most threads the server runs under the workload: a storm of work must not become a storm of threads.
        let peak_threads = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads = args.server_pid.map(|pid| report::watch_threads(pid, Arc::clone(&peak_threads)));
        let started = Instant::now();
        match args.workload {
            Workload::Rpc => requests::run(&run, requests::Kind::Ping, 1).await,
            Workload::RpcPipelined => requests::run(&run, requests::Kind::Ping, args.in_flight).await,
            Workload::Read => {
                let ids = Arc::new(ids.context("seeded orders")?);
                requests::run(&run, requests::Kind::Read(ids), 1).await
            }
            Workload::Create => requests::run(&run, requests::Kind::Create, 1).await,
            Workload::Fanout | Workload::Broadcast | Workload::FanoutFiltered | Workload::SlowConsumer => {
                let opened = opened.take().context("the fan-out's connections")?;
                fanout::fanout(&run, opened, args.rate, args.workload == Workload::SlowConsumer).await
            }
            Workload::Churn => fanout::churn(&run, args.rate).await,
            Workload::Idle => fanout::idle(&run).await,
            Workload::Presence => {
                presence::presence(&run, present.take().context("the presence workload's connections")?).await
            }
            Workload::SignIn => sign_in::sign_in(&run).await,
        }?;
        if let Some(progress) = progress {
            progress.abort();
            eprintln!();
        }
        if let Some(threads) = threads {
            threads.abort();
            let peak = peak_threads.load(std::sync::atomic::Ordering::Relaxed);
            run.add_extra(serde_json::json!({ "server_threads_peak": peak }));
        }
        // A workload that measures only a part of its run says how long that part took.
        let measured = run.extra.lock().ok().and_then(|extra| extra.get("measured_seconds").and_then(Value::as_f64));
        let seconds = measured.unwrap_or_else(|| args.duration.min(started.elapsed().as_secs_f64()));
        let connections = match args.workload {
            Workload::Fanout | Workload::Broadcast | Workload::FanoutFiltered | Workload::SlowConsumer => {
                args.subscribers + args.publishers
            }
            Workload::Presence => args.connections + args.topics.max(1) * args.followers,
            _ => args.connections,
        };
        let name =
            clap::ValueEnum::to_possible_value(&args.workload).map_or_else(String::new, |v| v.get_name().to_owned());
        let mut report = Report::from_stats(&name, &args.url, connections, seconds, &run.stats);
        let (server_before, load_before) = cpu_before.await?;
        if let (Some(pid), Some(before)) = (args.server_pid, server_before) {
            if let Some(after) = report::cpu_time(pid) {
                let cpu = after.saturating_sub(before).as_secs_f64();
                report.extra.insert("server_cpu_seconds".to_owned(), serde_json::json!(cpu));
                let per_op = cpu * 1e6 / report.operations.max(1) as f64;
                report.extra.insert("server_cpu_us_per_op".to_owned(), serde_json::json!(per_op));
            }
        }
        if let (Some(before), Some(after)) = (load_before, report::cpu_time(std::process::id())) {
            let share = after.saturating_sub(before).as_secs_f64() / seconds.max(f64::EPSILON);
            report.extra.insert("load_cpu_share".to_owned(), serde_json::json!(share));
        }
        if let Ok(extra) = run.extra.lock() {
            report.extra.extend(extra.clone());
        }
        report.print(args.json);
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::conn::{auth_message, CONNECT, PONG};
    use super::fanout::{subscribe_query, SUBSCRIBE};
    use super::requests::Kind;

    /// The generator writes its messages by hand (conn.rs says why); each must still be one the protocol crate
    /// decodes, so that the bench measures the protocol and not a dialect of it.
    #[test]
    fn every_message_the_generator_writes_is_valid_protocol() {
        let ids = Arc::new(vec!["ORD-7K3M9Q2XAB".to_owned()]);
        let texts = [
            CONNECT.to_owned(),
            auth_message("a.b.c"),
            PONG.to_owned(),
            SUBSCRIBE.to_owned(),
            subscribe_query(0),
            subscribe_query(999),
            Kind::Ping.request(1, 2),
            Kind::Read(ids).request(1, 2),
            Kind::Create.request(1, 2),
        ];
        for text in texts {
            if let Err(rejected) = tidings_protocol::decode_client(&text) {
                panic!("{text} is refused: {:?}", rejected.error);
            }
        }
    }
}
