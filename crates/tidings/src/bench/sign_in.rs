//! The sign-in workload: a crowd of new connections, as after a deploy or a network blip, when every client
//! reconnects at once. It opens `--connections` plain WebSockets first (the baseline: TCP and the upgrade, nothing
//! said), closes them, then opens as many that connect, sign in as users of their own and subscribe. Each open is
//! timed; the server's CPU per open is read from /proc for both parts.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use super::conn::Conn;
use super::fanout::SUBSCRIBE;
use super::report::{cpu_time, record, Samples};
use super::Run;

/// Opens in flight at once, as many clients reconnecting together would have.
const AT_ONCE: usize = 256;

/// The users of the signed-in part start here, so that none is one the server has seen before.
const FIRST_USER: usize = 1_000_000;

/// One part of the run: how long its opens took, and the server's CPU time meanwhile.
struct Part {
    seconds: f64,
    cpu: Option<Duration>,
    conns: Vec<Conn>,
}

/// Opens `count` connections with `open`, `AT_ONCE` at a time, each timed into the run's stats when `timed`.
async fn part<F, Fut>(run: &Run, count: usize, timed: bool, open: F) -> anyhow::Result<Part>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<Conn>>,
{
    let cpu_before = run.args.server_pid.and_then(cpu_time);
    let started = Instant::now();
    let opens = futures_util::stream::iter(0..count).map(|index| {
        let open = open(index);
        async move {
            let begun = Instant::now();
            let conn = open.await;
            (begun, conn)
        }
    });
    let mut opened = opens.buffer_unordered(AT_ONCE);
    let mut conns = Vec::with_capacity(count);
    let mut local = Samples::default();
    while let Some((begun, conn)) = opened.next().await {
        match conn {
            Ok(conn) => {
                if timed {
                    record(&run.stats, &mut local, begun);
                }
                conns.push(conn);
            }
            Err(_) => run.stats.error(),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    run.stats.merge(&mut local);
    let cpu = match (cpu_before, run.args.server_pid.and_then(cpu_time)) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    Ok(Part { seconds, cpu, conns })
}

/// How many file descriptors a process holds now, from /proc (Linux).
fn sockets(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Runs the workload: the plain opens, then the signed-in ones, both held until the part ends.
pub async fn sign_in(run: &Run) -> anyhow::Result<()> {
    let count = run.args.connections;

    let sockets_before = run.args.server_pid.and_then(sockets);
    let plain = part(run, count, false, |index| Conn::upgrade(&run.target, run.source(index))).await?;
    for conn in plain.conns {
        conn.close().await;
    }
    // The server has closed the plain sockets before the signed-in part starts, so that their closing is not
    // counted in it.
    if let (Some(pid), Some(before)) = (run.args.server_pid, sockets_before) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while sockets(pid).is_some_and(|now| now > before) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let signed_in = part(run, count, true, |index| async move {
        let mut conn = run.open(FIRST_USER + index).await?;
        conn.call("s", SUBSCRIBE).await?;
        Ok(conn)
    })
    .await?;
    let opened = signed_in.conns.len();
    for conn in signed_in.conns {
        conn.close().await;
    }

    let per_open = |cpu: Option<Duration>, opened: usize| cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / opened.max(1) as f64);
    let cpu_per_open = per_open(signed_in.cpu, opened);
    let plain_cpu_per_open = per_open(plain.cpu, count);
    let mut extra = json!({
        "measured_seconds": signed_in.seconds,
        "opens_per_s": opened as f64 / signed_in.seconds,
        "plain_opens_per_s": count as f64 / plain.seconds,
    });
    if let (Some(cpu), Some(plain_cpu)) = (cpu_per_open, plain_cpu_per_open) {
        extra["server_cpu_us_per_op"] = json!(cpu);
        extra["plain_cpu_us_per_open"] = json!(plain_cpu);
        extra["cpu_per_open_over_plain"] = json!(cpu / plain_cpu.max(f64::EPSILON));
    }
    run.add_extra(extra);
    Ok(())
}
