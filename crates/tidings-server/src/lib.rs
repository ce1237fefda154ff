//! The Tidings server as a library: listener, connections, sessions, authentication and limits.
//!
//! The path of a message: [`server`] accepts and upgrades (`http`), [`connection`] turns frames into whole
//! messages and back, and a [`session`] decodes each message (tidings-protocol), checks it against the
//! connection's state and limits, and answers. ARCHITECTURE.md has the map.

mod api;
pub mod auth;
pub mod broker;
pub mod config;
pub mod connection;
mod detached;
pub mod directory;
pub mod errors;
mod http;
pub mod hub;
pub mod metrics;
pub mod notifications;
pub mod paced;
pub mod peer;
pub mod presence;
pub mod push;
pub mod query;
pub mod relay;
pub mod resources;
mod server;
pub mod session;
pub mod shared;
pub mod storage;
pub mod tls;
mod web;
pub mod webhooks;

pub use auth::Authenticator;
pub use config::Config;
pub use server::Server;
