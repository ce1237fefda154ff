//! What the test process holds (resident memory, descriptors, tokio tasks), to show that an attack left nothing.

use std::time::Duration;

/// What the test process holds: resident memory, open descriptors and live tokio tasks. The server runs in this
/// process, so a leak in it shows here.
#[derive(Clone, Copy, Debug)]
pub struct Footprint {
    pub rss_kib: u64,
    pub fds: usize,
    pub tasks: usize,
}

impl Footprint {
    pub fn now() -> Footprint {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        let fds = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count();
        let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        Footprint { rss_kib, fds, tasks }
    }

    /// Waits until the connections of an attack are gone: descriptors and tasks back at `baseline` or below.
    pub async fn settled(baseline: Footprint) -> Footprint {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let now = Footprint::now();
            if (now.fds <= baseline.fds && now.tasks <= baseline.tasks) || tokio::time::Instant::now() > deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
