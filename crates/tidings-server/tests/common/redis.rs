//! A throwaway `redis-server` on a free loopback port, for the broker and cluster tests; killed when dropped.
//!
//! scripts/test installs Debian's redis-server when it is missing. Set `TIDINGS_TEST_SKIP_REDIS` to skip these
//! tests on a machine without it; otherwise a missing binary fails them, so that CI cannot pass them silently.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts one on a free port; `None` only when `TIDINGS_TEST_SKIP_REDIS` is set and the binary is missing.
    pub fn start() -> Option<RedisServer> {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        Self::start_on(port)
    }

    /// Starts one on `port` (as Redis comes back after an outage).
    pub fn start_on(port: u16) -> Option<RedisServer> {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(_) if std::env::var_os("TIDINGS_TEST_SKIP_REDIS").is_some() => {
                eprintln!("skipped: redis-server is not installed and TIDINGS_TEST_SKIP_REDIS is set");
                return None;
            }
            Err(e) => {
                panic!("redis-server does not start ({e}); scripts/test installs it, or set TIDINGS_TEST_SKIP_REDIS")
            }
        };
        let server = RedisServer { child, port };
        server.wait_until_listening();
        Some(server)
    }

    /// The URL nodes use for it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: nothing is kept) and starts a fresh one on the same port, as a crashed Redis restarted.
    pub fn restart(mut self) -> RedisServer {
        self.stop();
        let port = self.port;
        std::mem::forget(self);
        Self::start_on(port).expect("redis-server restarts")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {} within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
