//! What every session shares: the config, the authenticator, connection counts and the shutdown signal.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::directory::Directory;
use crate::hub::Hub;
use crate::metrics;
use crate::notifications::Notifier;
use crate::relay::Relay;
use crate::resources::Resources;
use crate::storage::Storage;

/// State shared by the HTTP handlers and all sessions of one server.
#[derive(Debug)]
pub struct Shared {
    /// The settings the server started with.
    pub config: Config,
    /// Verifies (and, with a secret, mints) tokens.
    pub auth: Authenticator,
    /// The resource operations.
    pub resources: Resources,
    /// The storage behind them, for readiness checks and pruning the event log.
    pub storage: Arc<dyn Storage>,
    /// Subscriptions and the fan-out of events.
    pub hub: Arc<Hub>,
    /// Between this node's hub and the other nodes.
    pub relay: Arc<Relay>,
    /// Sends notifications.
    pub notifier: Arc<Notifier>,
    /// Open connections, in total and per user.
    pub connections: Arc<Connections>,
    /// Live sessions, for the admin API.
    pub directory: Arc<Directory>,
    /// Cancelled when the server shuts down: every session then says goodbye with 1001.
    pub shutdown: CancellationToken,
    /// Every session task, so that shutdown can wait for them.
    pub sessions: TaskTracker,
}

/// Connection counts, kept exact by permits that give their place back when dropped, so a session that ends
/// in any way (error, panic, shutdown) never leaks its place.
#[derive(Debug, Default)]
pub struct Connections {
    total: AtomicUsize,
    per_user: Mutex<HashMap<String, usize>>,
}

/// One place among the server's connections.
#[derive(Debug)]
pub struct ConnectionPermit(Arc<Connections>);

/// One place among a user's authenticated connections.
#[derive(Debug)]
pub struct UserPermit {
    connections: Arc<Connections>,
    user: String,
}

impl Connections {
    /// Takes a place if fewer than `max` connections are open.
    pub fn open(self: &Arc<Self>, max: usize) -> Option<ConnectionPermit> {
        let taken = self.total.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        let permit = taken.ok().map(|_| ConnectionPermit(Arc::clone(self)))?;
        ::metrics::gauge!(metrics::CONNECTIONS_OPEN).increment(1.0);
        ::metrics::counter!(metrics::CONNECTIONS_TOTAL).increment(1);
        Some(permit)
    }

    /// Takes a place for `user` if they hold fewer than `max` authenticated connections.
    pub fn authenticate(self: &Arc<Self>, user: &str, max: usize) -> Option<UserPermit> {
        let mut per_user = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        let count = per_user.entry(user.to_owned()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        ::metrics::gauge!(metrics::SESSIONS_AUTHENTICATED).increment(1.0);
        Some(UserPermit { connections: Arc::clone(self), user: user.to_owned() })
    }

    /// Connections open now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Authenticated connections of `user` now.
    pub fn of_user(&self, user: &str) -> usize {
        let per_user = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        per_user.get(user).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.0.total.fetch_sub(1, Ordering::AcqRel);
        ::metrics::gauge!(metrics::CONNECTIONS_OPEN).decrement(1.0);
    }
}

impl Drop for UserPermit {
    fn drop(&mut self) {
        ::metrics::gauge!(metrics::SESSIONS_AUTHENTICATED).decrement(1.0);
        let mut per_user = self.connections.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_count_and_give_back_their_place() {
        let connections = Arc::new(Connections::default());
        let first = connections.open(2);
        let second = connections.open(2);
        assert!(first.is_some() && second.is_some());
        assert!(connections.open(2).is_none());
        drop(first);
        assert_eq!(connections.total(), 1);
        let alice = connections.authenticate("alice", 1);
        assert!(alice.is_some());
        assert!(connections.authenticate("alice", 1).is_none());
        assert!(connections.authenticate("bob", 1).is_some());
        drop(alice);
        assert_eq!(connections.of_user("alice"), 0);
    }
}
