//! Request workloads: `rpc` and `rpc-pipelined` (ping round trips), `read` (reads of existing orders) and
//! `create` (durable creates), each connection keeping a fixed number of requests in flight.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::conn::{Conn, Reply};
use super::report::{record, Samples, Stats};
use super::Run;

/// What one request is: how to write the n-th, and the reply type that answers it.
#[derive(Clone)]
pub enum Kind {
    Ping,
    Read(Arc<Vec<String>>),
    Create,
}

impl Kind {
    pub(super) fn request(&self, connection: usize, n: u64) -> String {
        match self {
            Kind::Ping => format!(r#"{{"type":"ping","timestamp":0,"requestId":"p{n}","payload":{{}}}}"#),
            Kind::Read(ids) => {
                let id = &ids[(n as usize * 7919 + connection * 104_729) % ids.len()];
                format!(
                    r#"{{"type":"read","timestamp":0,"requestId":"r{n}","payload":{{"resourceType":"order","id":"{id}"}}}}"#
                )
            }
            Kind::Create => create_message(&format!("c{}-{connection}-{n}", nonce()), &format!("P{connection}-{n}")),
        }
    }

    fn reply_type(&self) -> &'static str {
        match self {
            Kind::Ping => "pong",
            Kind::Read(_) => "read",
            Kind::Create => "create",
        }
    }
}

/// A random number of this process, put in every create's requestId: a server remembers requestIds for retries,
/// and another run against the same server, even one started in the same millisecond, must create anew rather
/// than replay this run's creates.
pub fn nonce() -> u64 {
    static NONCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NONCE.get_or_init(rand::random)
}

/// A `create` of an order whose `productId` is `product` (about 100 bytes of data).
pub fn create_message(request_id: &str, product: &str) -> String {
    create_message_of(request_id, product, 2)
}

/// A create of an order of `quantity` (1 to 10 for the queries of `fanout-filtered`).
pub fn create_message_of(request_id: &str, product: &str, quantity: u64) -> String {
    create_message_in("order", request_id, product, quantity)
}

/// The same create of a resource of `resource_type` (an order's fields: `pulse`, the ephemeral copy of `order`
/// that `broadcast` sends, has them).
pub fn create_message_in(resource_type: &str, request_id: &str, product: &str, quantity: u64) -> String {
    format!(
        r#"{{"type":"create","timestamp":0,"requestId":"{request_id}","payload":{{"resourceType":"{resource_type}","data":{{"productId":"{product}","quantity":{quantity},"totalAmount":99.99,"status":"pending"}}}}}}"#
    )
}

/// Creates `count` orders through one connection and returns their ids (the `read` workload's data).
pub async fn seed_orders(run: &Run, count: usize) -> anyhow::Result<Vec<String>> {
    let mut conn = run.open(0).await?;
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let request_id = format!("seed{}-{n}", nonce());
        let reply = conn.call(&request_id, &create_message(&request_id, &format!("SEED-{n}"))).await?;
        let parsed: Reply<'_> = serde_json::from_str(&reply)?;
        let payload = parsed.payload.context("a create reply without payload")?;
        let resource: serde_json::Value = serde_json::from_str(payload.get())?;
        ids.push(resource["id"].as_str().context("a created resource without id")?.to_owned());
    }
    conn.close().await;
    Ok(ids)
}

/// Runs `kind` on every connection with `in_flight` requests outstanding each, until the run's end.
pub async fn run(run: &Run, kind: Kind, in_flight: usize) -> anyhow::Result<()> {
    let conns = run.open_all(run.args.connections).await?;
    let mut tasks = Vec::new();
    for (index, conn) in conns.into_iter().enumerate() {
        let (stats, kind, end) = (Arc::clone(&run.stats), kind.clone(), run.end());
        tasks.push(tokio::spawn(async move { requests(conn, index, &kind, in_flight.max(1), &stats, end).await }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(())
}

/// One connection's loop: keep `in_flight` requests outstanding, time each reply against its request. Replies
/// come back in request order (a session answers one message at a time), so a queue of send times suffices.
async fn requests(mut conn: Conn, index: usize, kind: &Kind, in_flight: usize, stats: &Stats, end: Instant) {
    let mut local = Samples::default();
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(in_flight);
    let mut n = 0;
    let expected = kind.reply_type();
    for _ in 0..in_flight {
        if conn.send(&kind.request(index, n)).await.is_err() {
            return stats.error();
        }
        sent.push_back(Instant::now());
        n += 1;
    }
    while let Some(&started) = sent.front() {
        let text = match conn.recv().await {
            Ok(text) => text,
            Err(_) => {
                stats.error();
                break;
            }
        };
        let Ok(reply) = serde_json::from_str::<Reply<'_>>(&text) else { continue };
        if reply.request_id.is_none() {
            // A push (an event, a notification): not an answer.
            continue;
        }
        sent.pop_front();
        if reply.kind == expected {
            record(stats, &mut local, started);
        } else {
            stats.error();
        }
        if Instant::now() < end {
            if conn.send(&kind.request(index, n)).await.is_err() {
                stats.error();
                break;
            }
            sent.push_back(Instant::now());
            n += 1;
        }
    }
    stats.merge(&mut local);
    conn.close().await;
}
