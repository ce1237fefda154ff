//! `tidings bench` in smoke mode: every workload for a moment against a real server, so the harness cannot rot.
//! The real runs, against the peers, are bench/run's.

mod common;

use std::process::Command;

use common::{Served, TIDINGS};
use serde_json::Value;

const SECRET: &str = "the-bench-smoke-test-secret-0123456789";

fn server() -> Served {
    let settings = [
        ("TIDINGS_AUTH__SECRET", SECRET),
        ("TIDINGS_LIMITS__RATE_PER_SECOND", "1000000"),
        ("TIDINGS_LIMITS__RATE_BURST", "1000000"),
    ];
    // bench/run's config: the default orders, and `pulse`, the ephemeral type of the `broadcast` workload.
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/tidings.toml");
    Served::start_with_config(&config, &settings)
}

/// Runs one workload for half a second and returns its JSON report.
fn bench(served: &Served, workload: &str, extra: &[&str]) -> Value {
    let output = Command::new(TIDINGS)
        .args(["bench", &served.url, "--workload", workload, "--duration", "0.5", "--warmup", "0.1", "--json"])
        .args(["--server-pid", &served.child.id().to_string()])
        .args(extra)
        .env("TIDINGS_AUTH__SECRET", SECRET)
        .output()
        .expect("tidings bench runs");
    assert!(output.status.success(), "{workload}: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON report");
    assert_eq!(report["workload"], workload);
    assert!(report["operations"].as_u64().unwrap_or(0) > 0, "{workload} did something: {report}");
    assert_eq!(report["errors"], 0, "{workload}: {report}");
    let latency = &report["latency_us"];
    assert!(latency["p50"].as_u64() <= latency["p99"].as_u64() && latency["p99"].as_u64() <= latency["max"].as_u64());
    assert!(report["extra"]["server_cpu_seconds"].as_f64().is_some(), "{report}");
    report
}

#[test]
fn every_workload_runs_and_reports() {
    let served = server();
    for workload in ["rpc", "rpc-pipelined", "create"] {
        bench(&served, workload, &["--connections", "4", "--in-flight", "4"]);
    }
    bench(&served, "read", &["--connections", "4", "--records", "20"]);

    // One create in flight per publisher, so that creates go on being made after the warm-up: with 32 each, the
    // first burst of 256 durable creates took a debug build the whole half second in a clean-clone run, and every
    // event it delivered was the warm-up's (0 measured).
    let fanout = bench(&served, "fanout", &["--subscribers", "20", "--in-flight", "1"]);
    // Every subscriber gets every event: deliveries are subscribers times events (those made while measuring).
    let published = fanout["extra"]["events_published"].as_u64().expect("events published");
    assert!(fanout["operations"].as_u64() <= Some(20 * published), "{fanout}");

    // An ephemeral type: every subscriber gets every message, nothing is stored.
    let broadcast = bench(&served, "broadcast", &["--subscribers", "20"]);
    let published = broadcast["extra"]["events_published"].as_u64().expect("messages sent");
    assert!(broadcast["operations"].as_u64() <= Some(20 * published) && published > 0, "{broadcast}");

    // Presence: members join and leave; each join a follower hears of is one operation.
    let presence = bench(&served, "presence", &["--connections", "6", "--topics", "3", "--followers", "2"]);
    assert!(presence["extra"]["joins"].as_u64() >= presence["operations"].as_u64().map(|ops| ops / 2), "{presence}");
    assert_eq!(presence["extra"]["topics"], 3, "{presence}");

    // Forty subscribers over twenty queries, each order matching two of them: four deliveries per event at most.
    let filtered = bench(&served, "fanout-filtered", &["--subscribers", "40", "--queries", "20"]);
    let published = filtered["extra"]["events_published"].as_u64().expect("events published");
    assert!(filtered["operations"].as_u64() <= Some(4 * published), "{filtered}");
    assert_eq!(filtered["extra"]["queries"], 20, "{filtered}");

    let slow = bench(&served, "slow-consumer", &["--subscribers", "20"]);
    assert!(slow["extra"]["slow_subscriber_still_connected"].is_boolean(), "{slow}");
    assert!(slow["extra"]["server_peak_rss_bytes"].as_u64() > Some(0), "{slow}");

    let churn = bench(&served, "churn", &["--connections", "2", "--rate", "100"]);
    assert!(churn["extra"]["background_deliveries_per_s"].as_f64() > Some(0.0), "{churn}");
    assert!(churn["extra"]["server_rss_growth"].is_number(), "{churn}");

    let idle = bench(&served, "idle", &["--connections", "50"]);
    assert_eq!(idle["extra"]["connections_held"], 50, "{idle}");
    assert!(idle["extra"]["server_rss_per_connection_bytes"].is_number(), "{idle}");

    // A crowd signing in: each of the twenty opens is timed, against twenty plain WebSocket opens.
    let sign_in = bench(&served, "sign-in", &["--connections", "20"]);
    assert_eq!(sign_in["operations"], 20, "{sign_in}");
    assert!(sign_in["extra"]["cpu_per_open_over_plain"].is_number(), "{sign_in}");
    assert!(sign_in["extra"]["plain_opens_per_s"].as_f64() > Some(0.0), "{sign_in}");
    assert!(sign_in["extra"]["server_threads_peak"].as_u64() > Some(0), "{sign_in}");
}

#[test]
fn a_wrong_secret_is_a_clear_failure() {
    let served = server();
    let output = Command::new(TIDINGS)
        .args(["bench", &served.url, "--workload", "rpc", "--duration", "0.2", "--secret", "not-the-servers-secret"])
        .output()
        .expect("tidings bench runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auth failed"), "{stderr}");
}
