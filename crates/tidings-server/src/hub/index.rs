//! The subscriber index: topic and owner to mailboxes, so an event finds its subscribers without a scan.

use std::collections::HashMap;
use std::sync::Arc;

use tidings_protocol::{Topic, TopicKind};

use super::Mailbox;

/// How much of a type topic a subscription reaches, decided by the type's read rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every event of the type.
    All,
    /// Events of this user's resources only.
    Own(String),
}

#[derive(Debug, Default)]
struct TypeSubscribers {
    all: Vec<Mailbox>,
    owners: HashMap<String, Vec<Mailbox>>,
}

/// Mailboxes by topic.
#[derive(Debug, Default)]
pub struct Index {
    types: HashMap<String, TypeSubscribers>,
    resources: HashMap<(String, String), Vec<Mailbox>>,
    users: HashMap<String, Vec<Mailbox>>,
    count: usize,
}

impl Index {
    /// Adds one subscription.
    pub fn add(&mut self, topic: &Topic, mailbox: &Mailbox, scope: Scope) {
        let list = match topic.kind() {
            TopicKind::ResourceType(ty) => {
                let subscribers = self.types.entry(ty.to_owned()).or_default();
                match scope {
                    Scope::All => &mut subscribers.all,
                    Scope::Own(owner) => subscribers.owners.entry(owner).or_default(),
                }
            }
            TopicKind::Resource(ty, id) => self.resources.entry((ty.to_owned(), id.to_owned())).or_default(),
            TopicKind::Notifications => return,
        };
        list.push(mailbox.clone());
        self.count += 1;
    }

    /// Removes a connection's subscription to one topic.
    pub fn remove(&mut self, topic: &Topic, connection: u64) {
        let removed = match topic.kind() {
            TopicKind::ResourceType(ty) => self.types.get_mut(ty).map_or(0, |subscribers| {
                let mut removed = retain_others(&mut subscribers.all, connection);
                for list in subscribers.owners.values_mut() {
                    removed += retain_others(list, connection);
                }
                subscribers.owners.retain(|_, list| !list.is_empty());
                removed
            }),
            TopicKind::Resource(ty, id) => {
                let key = (ty.to_owned(), id.to_owned());
                let removed = self.resources.get_mut(&key).map_or(0, |list| retain_others(list, connection));
                if self.resources.get(&key).is_some_and(Vec::is_empty) {
                    self.resources.remove(&key);
                }
                removed
            }
            TopicKind::Notifications => 0,
        };
        self.count -= removed;
    }

    /// Removes every subscription of a connection (a slow consumer), wherever it is.
    pub fn drop_connection(&mut self, connection: u64) {
        let mut removed = 0;
        for subscribers in self.types.values_mut() {
            removed += retain_others(&mut subscribers.all, connection);
            for list in subscribers.owners.values_mut() {
                removed += retain_others(list, connection);
            }
        }
        for list in self.resources.values_mut() {
            removed += retain_others(list, connection);
        }
        for list in self.users.values_mut() {
            retain_others(list, connection);
        }
        self.count -= removed;
    }

    /// The mailboxes of a type topic that may see an event of a resource owned by `owner`.
    pub fn type_subscribers<'a>(&'a self, resource_type: &str, owner: &str) -> impl Iterator<Item = &'a Mailbox> {
        let subscribers = self.types.get(resource_type);
        let all = subscribers.map(|s| s.all.as_slice()).unwrap_or_default();
        let own = subscribers.and_then(|s| s.owners.get(owner)).map(Vec::as_slice).unwrap_or_default();
        all.iter().chain(own)
    }

    /// The mailboxes of a one-resource topic.
    pub fn resource_subscribers<'a>(&'a self, resource_type: &str, id: &str) -> impl Iterator<Item = &'a Mailbox> {
        let key = (resource_type.to_owned(), id.to_owned());
        self.resources.get(&key).map(Vec::as_slice).unwrap_or_default().iter()
    }

    /// Every subscription to a type's topic and to its resources' topics, as (topic, mailbox): for word that the
    /// type lost events. A rare walk over the type's one-resource topics, never on the path of an event.
    pub fn topics_of_type(&self, resource_type: &str) -> Vec<(Arc<str>, Mailbox)> {
        let mut found = Vec::new();
        if let Some(subscribers) = self.types.get(resource_type) {
            let topic: Arc<str> = Arc::from(resource_type);
            for mailbox in subscribers.all.iter().chain(subscribers.owners.values().flatten()) {
                found.push((Arc::clone(&topic), mailbox.clone()));
            }
        }
        for ((ty, id), mailboxes) in &self.resources {
            if ty == resource_type {
                let topic: Arc<str> = Arc::from(format!("{ty}:{id}"));
                found.extend(mailboxes.iter().map(|mailbox| (Arc::clone(&topic), mailbox.clone())));
            }
        }
        found
    }

    /// Adds an authenticated connection of `user`, which receives the user's notifications.
    pub fn join_user(&mut self, user: &str, mailbox: &Mailbox) {
        self.users.entry(user.to_owned()).or_default().push(mailbox.clone());
    }

    /// Removes a connection from its user's notifications.
    pub fn leave_user(&mut self, user: &str, connection: u64) {
        if let Some(list) = self.users.get_mut(user) {
            retain_others(list, connection);
            if list.is_empty() {
                self.users.remove(user);
            }
        }
    }

    /// The mailboxes of a user's authenticated connections.
    pub fn user_mailboxes<'a>(&'a self, user: &str) -> impl Iterator<Item = &'a Mailbox> {
        self.users.get(user).map(Vec::as_slice).unwrap_or_default().iter()
    }

    /// Subscriptions held.
    pub fn len(&self) -> usize {
        self.count
    }
}

fn retain_others(list: &mut Vec<Mailbox>, connection: u64) -> usize {
    let before = list.len();
    list.retain(|m| m.connection != connection);
    before - list.len()
}
