//! The `presence` workload (protocol 1.2): `--connections` members join and leave `--topics` topics in a loop,
//! while `--followers` connections per topic follow their presence; each join a follower hears of is one
//! operation, timed from the moment the member sent it (its `state` carries the time). One topic is the orders'
//! type topic; more are orders' own topics (`order:ID`), made first.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::conn::{Conn, Reply};
use super::report::{record, Samples};
use super::requests::seed_orders;
use super::Run;

/// The part of a presence event the followers read.
#[derive(Deserialize)]
struct Joined<'a> {
    #[serde(rename = "eventType")]
    event_type: &'a str,
    #[serde(borrow)]
    data: JoinedData<'a>,
}

#[derive(Deserialize)]
struct JoinedData<'a> {
    #[serde(borrow)]
    state: Option<Stamp<'a>>,
}

#[derive(Deserialize)]
struct Stamp<'a> {
    t: &'a str,
}

/// The presence workload's connections, opened before the clock starts (as a fan-out's are: opening 10,000
/// members took seconds, after a run with 10,000 subscribers once nearly all of the measured time).
pub struct Opened {
    topics: Vec<String>,
    /// Each follower's connection, subscribed to its topic's presence.
    followers: Vec<Conn>,
    members: Vec<Conn>,
}

/// Opens `topics` topics' `followers` followers each, subscribed, and the run's connections as members.
pub async fn open(run: &Run, topics: usize, followers: usize) -> anyhow::Result<Opened> {
    let topics: Vec<String> = if topics <= 1 {
        vec!["order".to_owned()]
    } else {
        seed_orders(run, topics).await?.into_iter().map(|id| format!("order:{id}")).collect()
    };
    let mut watching = Vec::new();
    for (n, topic) in topics.iter().enumerate() {
        for k in 0..followers {
            let mut conn = run.open(run.args.connections + n * followers + k).await?;
            let subscribe = format!(
                r#"{{"type":"subscribe","timestamp":0,"requestId":"p","payload":{{"topic":"presence:{topic}"}}}}"#
            );
            conn.call("p", &subscribe).await?;
            watching.push(conn);
        }
    }
    let members = run.open_all(run.args.connections).await?;
    Ok(Opened { topics, followers: watching, members })
}

/// Runs the workload on the connections [`open`] made.
pub async fn presence(run: &Run, opened: Opened) -> anyhow::Result<()> {
    let Opened { topics, followers: watching, members } = opened;
    let followers = watching.len() / topics.len().max(1);
    let base = Instant::now();
    let end = run.end();
    let watchers: Vec<_> = watching
        .into_iter()
        .map(|conn| tokio::spawn(follow(conn, base, end + Duration::from_millis(500), run.clone())))
        .collect();
    let mut tasks = Vec::new();
    for (n, conn) in members.into_iter().enumerate() {
        let topic = topics[n % topics.len()].clone();
        tasks.push(tokio::spawn(member(conn, topic, base, end, run.clone())));
    }
    let mut joins = 0;
    for task in tasks {
        joins += task.await??;
    }
    for watcher in watchers {
        watcher.await?;
    }
    run.add_extra(serde_json::json!({
        "joins": joins,
        "topics": topics.len(),
        "followers_per_topic": followers,
        "members": run.args.connections,
    }));
    Ok(())
}

/// One member: joins its topic with the time in its state, leaves, and again, until `end`; returns its joins.
async fn member(mut conn: Conn, topic: String, base: Instant, end: Instant, run: Run) -> anyhow::Result<u64> {
    let mut joins = 0;
    while Instant::now() < end {
        let stamp = base.elapsed().as_micros();
        let join = format!(
            r#"{{"type":"create","timestamp":0,"requestId":"j","payload":{{"resourceType":"presence","data":{{"topic":"{topic}","state":{{"t":"t{stamp}"}}}}}}}}"#
        );
        let reply = match conn.call("j", &join).await {
            Ok(reply) => reply,
            Err(_) => {
                run.stats.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                break;
            }
        };
        joins += 1;
        let id = member_id(&reply).unwrap_or_default();
        let leave = format!(
            r#"{{"type":"delete","timestamp":0,"requestId":"l","payload":{{"resourceType":"presence","id":"{id}"}}}}"#
        );
        if conn.call("l", &leave).await.is_err() {
            run.stats.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            break;
        }
    }
    conn.close().await;
    Ok(joins)
}

/// The member id of a join's reply.
fn member_id(reply: &str) -> Option<String> {
    let parsed: Reply<'_> = serde_json::from_str(reply).ok()?;
    let payload: serde_json::Value = serde_json::from_str(parsed.payload?.get()).ok()?;
    payload["id"].as_str().map(str::to_owned)
}

/// One follower: times every join it hears of, until `end`.
async fn follow(mut conn: Conn, base: Instant, end: Instant, run: Run) {
    let mut local = Samples::default();
    while Instant::now() < end {
        let text = match conn.recv_within(end.saturating_duration_since(Instant::now())).await {
            Ok(Some(text)) => text,
            _ => break,
        };
        let Ok(reply) = serde_json::from_str::<Reply<'_>>(&text) else { continue };
        let Some(payload) = reply.payload.filter(|_| reply.kind == "event") else { continue };
        let Ok(event) = serde_json::from_str::<Joined<'_>>(payload.get()) else { continue };
        if event.event_type != "presence_created" {
            continue;
        }
        let sent = event.data.state.and_then(|stamp| stamp.t.strip_prefix('t')?.parse::<u64>().ok());
        if let Some(sent_us) = sent {
            record(&run.stats, &mut local, base + Duration::from_micros(sent_us));
        }
    }
    run.stats.merge(&mut local);
}
