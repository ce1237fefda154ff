//! What the fuzz targets share: one runtime, one real server (never listening) and tokens it accepts.
//!
//! The targets run Tidings' own code the way a connection does, without sockets: a session is fed inbound
//! messages over its channel and writes to a recorder. The server is built once per process, so its SQLite
//! database grows over a run as a long-lived server's would.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tidings_server::auth::Identity;
use tidings_server::shared::Shared;
use tidings_server::{Config, Server};

/// The HS256 secret of the fuzzed server; the token target mints with it too.
pub const SECRET: &str = "tidings-fuzz-secret-of-at-least-32-bytes";

/// The runtime every target runs its async code on.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
    })
}

/// The config of the fuzzed server: a known secret, a data dir that lives as long as the process, and limits
/// loose enough that sequences reach the operations instead of the rate limit.
pub fn config() -> Config {
    static DATA_DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    // /dev/shm keeps SQLite's fsyncs off the disk, so a run tries more inputs.
    let data_dir = DATA_DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("tidings-fuzz")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("a data dir")
    });
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("an address"),
        data_dir: data_dir.path().to_owned(),
        ..Config::default()
    };
    config.auth.secret = Some(SECRET.to_owned());
    config.limits.rate_per_second = 1_000_000;
    config.limits.rate_burst = 1_000_000;
    config
}

/// The server the targets share. It is bound to a loopback port but never accepts: the targets drive its
/// sessions and services directly.
pub fn shared() -> &'static Arc<Shared> {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| runtime().block_on(Server::bind(config())).expect("the server starts")).shared()
}

/// A token the shared server accepts for `user`, with `roles`, valid for a day.
pub fn token(user: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    shared().auth.mint(user, &roles, Duration::from_secs(24 * 3600)).expect("a token")
}

/// The identity a verified token of `user` with `roles` gives.
pub fn identity(user: &str, roles: &[&str]) -> Identity {
    runtime().block_on(shared().auth.verify(&token(user, roles))).expect("a token the server accepts")
}
