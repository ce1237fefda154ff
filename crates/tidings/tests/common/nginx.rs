//! A throwaway nginx in front of cluster nodes, configured as docs/deploy.md says; killed when dropped.
//!
//! scripts/test installs Debian's nginx-light when it is missing. `TIDINGS_TEST_SKIP_NGINX` skips the test on a
//! machine without it; otherwise a missing binary fails it.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx.
pub struct Nginx {
    child: Child,
    port: u16,
    config: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on a free port, balancing over the nodes at `ws_urls`.
    pub fn start(ws_urls: &[&str]) -> Option<Nginx> {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let dir = tempfile::tempdir().expect("temp dir");
        let servers: String = ws_urls
            .iter()
            .map(|url| url.trim_start_matches("ws://").trim_end_matches("/ws"))
            .map(|address| format!("        server {address} max_fails=1 fail_timeout=10s;\n"))
            .collect();
        let path = dir.path().display();
        let config = format!(
            r#"daemon off;
worker_processes 1;
pid {path}/nginx.pid;
error_log {path}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {path}/body;
    proxy_temp_path {path}/proxy;
    fastcgi_temp_path {path}/fastcgi;
    uwsgi_temp_path {path}/uwsgi;
    scgi_temp_path {path}/scgi;
{site}}}
"#,
            site = site(port, &servers)
        );
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, config).expect("nginx.conf written");
        let spawned = Command::new("nginx")
            .args(["-p", &path.to_string(), "-c"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(_) if std::env::var_os("TIDINGS_TEST_SKIP_NGINX").is_some() => {
                eprintln!("skipped: nginx is not installed and TIDINGS_TEST_SKIP_NGINX is set");
                return None;
            }
            Err(e) => panic!("nginx does not start ({e}); scripts/test installs it, or set TIDINGS_TEST_SKIP_NGINX"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "nginx did not listen within 10 s: {log}");
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(Nginx { child, port, config: file, dir })
    }

    /// The WebSocket URL clients use.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }
}

/// The part of the config docs/deploy.md shows: the upstream of nodes and the WebSocket proxying.
fn site(port: u16, servers: &str) -> String {
    format!(
        r#"    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream tidings {{
{servers}    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tidings;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_next_upstream error timeout;
        }}
    }}
"#
    )
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `nginx -s stop` asks the master to stop its workers too; a SIGKILL to the master alone would leave the
        // workers running, holding the port.
        let stopped = Command::new("nginx")
            .args(["-p", &self.dir.path().display().to_string(), "-c"])
            .arg(&self.config)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
