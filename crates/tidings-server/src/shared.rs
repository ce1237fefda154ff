//! What every session shares: the config, the authenticator, connection counts and the shutdown signal.

use std::collections::HashMap;
use std::net::IpAddr;
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
use crate::peer::TrustedProxies;
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
    /// Who is present at which topic, on every node.
    pub presence: Arc<crate::presence::Presence>,
    /// Between this node's hub and the other nodes.
    pub relay: Arc<Relay>,
    /// Sends notifications.
    pub notifier: Arc<Notifier>,
    /// The webhooks, for the admin API (their deliverers run on their own).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Open connections, in total and per user.
    pub connections: Arc<Connections>,
    /// Live sessions, for the admin API.
    pub directory: Arc<Directory>,
    /// Cancelled when the server shuts down: every session then says goodbye with 1001.
    pub shutdown: CancellationToken,
    /// Every session task, so that shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Whose forwarding headers name the client (`trusted_proxies`).
    pub proxies: TrustedProxies,
    /// The Origins refused so far, each logged once.
    pub refused_origins: RefusedOrigins,
    /// The clock of every session's rate limit: made once, since making one calibrates it (a visible share of
    /// each connection's cost when it was made per session).
    pub clock: governor::clock::DefaultClock,
}

/// The browser Origins refused at the WebSocket upgrade: a browser shows its page nothing but a failed socket, so
/// the server logs each refused Origin once, with the setting that would allow it. At most [`Self::MAX`] are
/// remembered, so that a client sending made-up Origins cannot grow the set.
#[derive(Debug, Default)]
pub struct RefusedOrigins {
    seen: Mutex<std::collections::HashSet<String>>,
}

impl RefusedOrigins {
    /// How many distinct Origins are logged.
    pub const MAX: usize = 64;

    /// Whether `origin` is refused for the first time (and may be logged).
    pub fn first_time(&self, origin: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.len() < Self::MAX && seen.insert(origin.to_owned())
    }
}

/// Connection counts, kept exact by permits that give their place back when dropped, so a session that ends
/// in any way (error, panic, shutdown) never leaks its place.
#[derive(Debug, Default)]
pub struct Connections {
    total: AtomicUsize,
    per_user: Mutex<HashMap<String, usize>>,
    /// WebSockets not authenticated yet, per client address.
    unauthenticated: Mutex<HashMap<IpAddr, usize>>,
}

/// A WebSocket's place among its client address's unauthenticated ones, given back when it authenticates or
/// ends. Without these, silent sockets from one address could fill `max_connections` and lock out every user.
#[derive(Debug)]
pub struct Arrival {
    connections: Arc<Connections>,
    /// `None` for a client that is not counted (loopback).
    address: Option<IpAddr>,
}

/// One place among the server's connections.
#[derive(Debug)]
pub struct ConnectionPermit {
    connections: Arc<Connections>,
    /// Its place among its address's unauthenticated sockets, until it authenticates.
    arrival: Option<Arrival>,
}

impl ConnectionPermit {
    /// Counts this connection as `arrival` until it authenticates.
    pub fn arrived(mut self, arrival: Arrival) -> Self {
        self.arrival = Some(arrival);
        self
    }

    /// The connection authenticated: its address's place among unauthenticated sockets is given back.
    pub fn authenticated(&mut self) {
        self.arrival = None;
    }
}

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
        let permit = taken.ok().map(|_| ConnectionPermit { connections: Arc::clone(self), arrival: None })?;
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

    /// Takes a place for a WebSocket from `address` that has not authenticated, if that address holds fewer than
    /// `max`; loopback clients are not counted (a client on this machine has easier ways to hurt it).
    /// IPv6 clients are counted by their /64, the block one subscriber usually holds whole.
    pub fn arrive(self: &Arc<Self>, address: IpAddr, max: usize) -> Option<Arrival> {
        let address = address.to_canonical();
        let address = match address {
            _ if address.is_loopback() => None,
            IpAddr::V6(v6) => Some(IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)))),
            v4 => Some(v4),
        };
        let Some(address) = address else {
            return Some(Arrival { connections: Arc::clone(self), address: None });
        };
        let mut unauthenticated = self.unauthenticated.lock().unwrap_or_else(PoisonError::into_inner);
        let count = unauthenticated.entry(address).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Arrival { connections: Arc::clone(self), address: Some(address) })
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
        self.connections.total.fetch_sub(1, Ordering::AcqRel);
        ::metrics::gauge!(metrics::CONNECTIONS_OPEN).decrement(1.0);
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        let Some(address) = self.address else { return };
        let mut unauthenticated = self.connections.unauthenticated.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = unauthenticated.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                unauthenticated.remove(&address);
            }
        }
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

    #[test]
    fn an_address_holds_a_bounded_number_of_unauthenticated_sockets() {
        let connections = Arc::new(Connections::default());
        let remote: IpAddr = "198.51.100.7".parse().expect("an address");
        let first = connections.arrive(remote, 2);
        let second = connections.arrive(remote, 2);
        assert!(first.is_some() && second.is_some());
        assert!(connections.arrive(remote, 2).is_none(), "a third from the same address");
        assert!(connections.arrive("198.51.100.8".parse().expect("an address"), 2).is_some());
        drop(first);
        assert!(connections.arrive(remote, 2).is_some(), "a place given back is taken again");
        let local: Vec<_> = (0..10).map(|_| connections.arrive("127.0.0.1".parse().expect("loopback"), 2)).collect();
        assert!(local.iter().all(Option::is_some), "loopback is not counted");
        // One /64 is one client, whichever of its addresses it uses.
        let v6 = |text: &str| connections.arrive(text.parse().expect("an address"), 2);
        let (first, second) = (v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"));
        assert!(first.is_some() && second.is_some());
        assert!(v6("2001:db8:1:2::77").is_none(), "a third address of the same /64");
        assert!(v6("2001:db8:1:3::1").is_some(), "another /64");
    }
}
