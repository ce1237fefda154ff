//! The directory of live sessions, for operators: who is connected, since when, to what, how far behind; and the
//! way to cut a session off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use tidings_protocol::now_ms;
use tokio_util::sync::CancellationToken;

use crate::hub::Mailbox;

/// Live sessions by id.
#[derive(Debug)]
pub struct Directory {
    node: String,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    user_id: Option<String>,
    connected_at: u64,
    subscriptions: Vec<String>,
    mailbox: Mailbox,
    kick: Kick,
}

/// How an operator ends a session: the token its session waits on, whether it was kicked, and the reason to give.
#[derive(Clone, Debug)]
pub struct Kick {
    /// Cancelled to disconnect the session (it may be cancelled for other reasons too: [`Kick::fired`] tells).
    token: CancellationToken,
    /// Whether the session was kicked, and with which reason, if any.
    reason: Arc<Mutex<Option<Option<String>>>>,
}

impl Kick {
    /// Whether an operator kicked the session.
    pub fn fired(&self) -> bool {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// The reason the operator gave, if any.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).clone().flatten()
    }

    fn fire(&self, reason: Option<&str>) {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.map(str::to_owned));
        self.token.cancel();
    }
}

/// One session as the admin API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listing {
    /// The session's id, as its `connect` reply said.
    pub session_id: String,
    /// The node serving it (its listen address, until nodes are named in a cluster).
    pub node: String,
    /// The authenticated user, if any yet.
    pub user_id: Option<String>,
    /// When the socket opened, Unix ms.
    pub connected_at: u64,
    /// The topics it subscribes to.
    pub subscriptions: Vec<String>,
    /// Pushes waiting in its mailbox.
    pub queue_depth: usize,
}

/// A session's place in the directory, given back when dropped, however the session ends.
#[derive(Debug)]
pub struct Registration {
    directory: Arc<Directory>,
    session_id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.directory.lock().remove(&self.session_id);
    }
}

impl Directory {
    /// An empty directory of the sessions of `node`.
    pub fn new(node: impl Into<String>) -> Self {
        Directory { node: node.into(), entries: Mutex::default() }
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists a new session; returns its registration and the kick it must watch.
    pub fn enter(
        self: &Arc<Self>,
        session_id: &str,
        mailbox: &Mailbox,
        token: CancellationToken,
    ) -> (Registration, Kick) {
        let kick = Kick { token, reason: Arc::default() };
        let entry = Entry {
            user_id: None,
            connected_at: now_ms(),
            subscriptions: Vec::new(),
            mailbox: mailbox.clone(),
            kick: kick.clone(),
        };
        self.lock().insert(session_id.to_owned(), entry);
        (Registration { directory: Arc::clone(self), session_id: session_id.to_owned() }, kick)
    }

    /// Records who a session's user is.
    pub fn set_user(&self, session_id: &str, user_id: &str) {
        if let Some(entry) = self.lock().get_mut(session_id) {
            entry.user_id = Some(user_id.to_owned());
        }
    }

    /// Records a session's subscriptions.
    pub fn set_subscriptions(&self, session_id: &str, mut topics: Vec<String>) {
        topics.sort();
        if let Some(entry) = self.lock().get_mut(session_id) {
            entry.subscriptions = topics;
        }
    }

    /// Every live session, oldest first.
    pub fn list(&self) -> Vec<Listing> {
        let mut listed: Vec<Listing> = self
            .lock()
            .iter()
            .map(|(id, entry)| Listing {
                session_id: id.clone(),
                node: self.node.clone(),
                user_id: entry.user_id.clone(),
                connected_at: entry.connected_at,
                subscriptions: entry.subscriptions.clone(),
                queue_depth: entry.mailbox.depth(),
            })
            .collect();
        listed.sort_by(|a, b| (a.connected_at, &a.session_id).cmp(&(b.connected_at, &b.session_id)));
        listed
    }

    /// Disconnects one session; false if there is none with that id.
    pub fn kick(&self, session_id: &str, reason: Option<&str>) -> bool {
        let entries = self.lock();
        let Some(entry) = entries.get(session_id) else { return false };
        entry.kick.fire(reason);
        true
    }

    /// Disconnects every session of a user; returns how many there were.
    pub fn kick_user(&self, user_id: &str, reason: Option<&str>) -> usize {
        let entries = self.lock();
        let mine = entries.values().filter(|e| e.user_id.as_deref() == Some(user_id));
        mine.map(|entry| entry.kick.fire(reason)).count()
    }
}
