//! Test helpers: the real `tidings` binary, started as a process on a free port with its own data dir.

#![allow(dead_code)]

pub mod cluster;
pub mod endpoint;
pub mod nginx;
#[path = "../../../tidings-server/tests/common/redis.rs"]
pub mod redis;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The binary under test.
pub const TIDINGS: &str = env!("CARGO_BIN_EXE_tidings");

/// A `tidings serve` process on a free port with its own data dir; killed if the test fails.
pub struct Served {
    pub child: Child,
    pub url: String,
    pub data_dir: tempfile::TempDir,
}

impl Served {
    pub fn start() -> Served {
        Self::start_in(tempfile::tempdir().expect("temp dir"), &[])
    }

    /// A server on an existing data dir (as after a crash), with extra `TIDINGS_*` settings.
    pub fn start_in(data_dir: tempfile::TempDir, settings: &[(&str, &str)]) -> Served {
        Self::start_on("127.0.0.1:0", data_dir, settings)
    }

    /// A server listening on `listen` (as a restarted server comes back on its old port).
    pub fn start_on(listen: &str, data_dir: tempfile::TempDir, settings: &[(&str, &str)]) -> Served {
        Self::start_configured(listen, None, data_dir, settings)
    }

    /// A server with the config file `config` (and `settings` over it), on a free port.
    pub fn start_with_config(config: &Path, settings: &[(&str, &str)]) -> Served {
        Self::start_configured("127.0.0.1:0", Some(config), tempfile::tempdir().expect("temp dir"), settings)
    }

    fn start_configured(
        listen: &str,
        config: Option<&Path>,
        data_dir: tempfile::TempDir,
        settings: &[(&str, &str)],
    ) -> Served {
        let mut command = Command::new(TIDINGS);
        if let Some(config) = config {
            command.arg("serve").arg("--config").arg(config);
        } else {
            command.arg("serve");
        }
        let mut child = command
            .args(["--listen", listen, "--data-dir"])
            .arg(data_dir.path() as &Path)
            .envs(settings.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tidings serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("a first line").expect("readable");
        let url = first.split_whitespace().find(|w| w.starts_with("ws://")).expect("the ws:// address").to_owned();
        // The greeting ends with "Try it:"; reading further would wait for output that never comes.
        let mut rest = Vec::new();
        for line in lines.map_while(Result::ok) {
            let last = line.starts_with("Try it:");
            rest.push(line);
            if last {
                break;
            }
        }
        assert!(rest.iter().any(|l| l.to_lowercase().contains("token")), "serve says how tokens work: {rest:?}");
        Served { child, url, data_dir }
    }

    /// The address the server listens on, such as `127.0.0.1:41234`.
    pub fn address(&self) -> String {
        self.url.trim_start_matches("ws://").trim_end_matches("/ws").to_owned()
    }

    pub fn token(&self, user: &str) -> String {
        let output = Command::new(TIDINGS)
            .args(["token", "--user", user, "--role", "admin", "--ttl", "10m", "--data-dir"])
            .arg(self.data_dir.path())
            .output()
            .expect("tidings token runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

impl Served {
    /// Hands over the process (to wait for its exit); the placeholder left behind kills nothing.
    pub fn take_child(&mut self) -> Child {
        let placeholder = Command::new("true").spawn().expect("a placeholder process");
        std::mem::replace(&mut self.child, placeholder)
    }

    /// Kills the process with SIGKILL, as a crash would, and returns its data dir.
    pub fn crash(mut self) -> tempfile::TempDir {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
        let data_dir = tempfile::tempdir().expect("placeholder");
        std::mem::replace(&mut self.data_dir, data_dir)
    }
}

/// A fresh database on the PostgreSQL that scripts/test starts; `None` (the test is skipped) only when asked.
pub fn postgres_database(name: &str) -> Option<String> {
    let Ok(base) = std::env::var("TIDINGS_TEST_POSTGRES_URL") else {
        if std::env::var_os("TIDINGS_TEST_SKIP_POSTGRES").is_some() {
            eprintln!("skipped {name} on PostgreSQL (TIDINGS_TEST_SKIP_POSTGRES)");
            return None;
        }
        panic!("{name} needs PostgreSQL but TIDINGS_TEST_POSTGRES_URL is not set: run scripts/test");
    };
    let database = format!("tidings_{name}_{}", std::process::id());
    let status = std::process::Command::new("psql")
        .args([base.as_str(), "-q", "-c", &format!("CREATE DATABASE {database}")])
        .status()
        .expect("psql runs");
    assert!(status.success(), "could not create the test database");
    let (root, _) = base.rsplit_once('/').expect("a database in the URL");
    Some(format!("{root}/{database}"))
}

/// Every order the client may see, read page by page.
pub async fn all_orders(client: &tidings_client::Client) -> Vec<tidings_protocol::Resource> {
    use tidings_protocol::{ClientMessage, Limit, Read, ReadResult, ResourceType, ServerMessage};
    let mut orders = Vec::new();
    let mut cursor = None;
    loop {
        let read = Read {
            resource_type: ResourceType::new("order").expect("type"),
            id: None,
            filter: None,
            query: None,
            order_by: None,
            limit: Limit::new(100).ok(),
            cursor,
            fields: None,
            count: None,
        };
        let Ok(ServerMessage::Read(ReadResult::List(page))) = client.request(ClientMessage::Read(read)).await else {
            panic!("a list page")
        };
        orders.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return orders,
        }
    }
}
