//! The subscriber index: topic, owner and audience to mailboxes, so an event finds its subscribers without a scan.
//!
//! A type topic's subscribers are kept in groups by subscription id: the plain topic is one group, and each
//! distinct query on the type another, so that the fan-out evaluates a query once for everyone who follows it.
//! Within a group, the subscribers whose read rule depends on the data are kept by what they may see (an
//! audience), so that a rule too is evaluated once per event for everyone who sees the same.

use std::collections::HashMap;
use std::sync::Arc;

use tidings_protocol::{Topic, TopicKind};

use super::Mailbox;
use crate::push::Told;
use crate::query::{Condition, Required};

/// What one subscription follows in the hub: a topic, and on a type topic, perhaps a query.
#[derive(Clone, Debug)]
pub struct Follow {
    /// The topic.
    pub topic: Topic,
    /// The subscription's id: the topic itself, or for a query, the type and a digest of the query. The same for
    /// every subscriber to the same query, so that its events are evaluated and encoded once for them all.
    pub id: Arc<str>,
    /// On a type topic: only the changes of what this matches.
    pub condition: Option<Arc<Condition>>,
}

impl Follow {
    /// A whole topic; its id is the topic.
    pub fn topic(topic: Topic) -> Follow {
        Follow { id: Arc::from(topic.as_str()), topic, condition: None }
    }
}

/// How much of a type a subscription reaches: the type's read rule, specialized for its subscriber
/// (`resources/access.rs`).
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// Every event of the type.
    All,
    /// Events of this user's resources only.
    Own(String),
    /// Events of the resources this matches, before or after their change: the subscriber hears a resource
    /// enter their sight and leave it.
    Where(Arc<Condition>),
}

/// The subscribers of one subscription id who see the same part of the type (the same [`Scope::Where`]) and the
/// same fields, so that the rule is evaluated and the event encoded once per event for them all, as for a query.
#[derive(Debug)]
pub struct Audience {
    /// What they may see: `None` for the whole type.
    pub condition: Option<Arc<Condition>>,
    /// The data fields hidden from them.
    pub hidden: Option<Arc<[String]>>,
    /// Their mailboxes.
    pub mailboxes: Vec<Mailbox>,
}

/// A subscriber of a one-resource topic, and what the read rule lets them see of it when that depends on its
/// data (`None` when it does not: their right was checked when they subscribed, and an owner never changes).
#[derive(Clone, Debug)]
pub struct Watcher {
    /// Their mailbox.
    pub mailbox: Mailbox,
    /// What they may see.
    pub visible: Option<Arc<Condition>>,
    /// The data fields hidden from them.
    pub hidden: Option<Arc<[String]>>,
}

/// The subscribers of a type topic that share one subscription id.
#[derive(Debug, Default)]
pub struct Group {
    /// For a query subscription, its query.
    pub condition: Option<Arc<Condition>>,
    /// An equality every match of the query has, if there is one: the fan-out passes the group by without
    /// evaluating its query when an event's resource has none of its values.
    pub required: Option<Required>,
    /// For a query subscription, its id quoted as its pushes carry it (`push::Told::quote`), made once.
    pub quoted: Option<Arc<str>>,
    all: Vec<Mailbox>,
    owners: HashMap<String, Vec<Mailbox>>,
    /// By the condition's debug form, which is the same for equal conditions.
    audiences: HashMap<String, Audience>,
}

impl Group {
    /// The mailboxes that may see an event of a resource owned by `owner`.
    pub fn subscribers<'a>(&'a self, owner: &str) -> impl Iterator<Item = &'a Mailbox> {
        let own = self.owners.get(owner).map(Vec::as_slice).unwrap_or_default();
        self.all.iter().chain(own)
    }

    /// The subscribers who see a part of the type that a rule decides, by what they see.
    pub fn audiences(&self) -> impl Iterator<Item = &Audience> {
        self.audiences.values()
    }

    fn mailboxes(&self) -> impl Iterator<Item = &Mailbox> {
        let audiences = self.audiences.values().flat_map(|audience| &audience.mailboxes);
        self.all.iter().chain(self.owners.values().flatten()).chain(audiences)
    }

    fn remove(&mut self, connection: u64) -> usize {
        let mut removed = retain_others(&mut self.all, connection);
        for list in self.owners.values_mut() {
            removed += retain_others(list, connection);
        }
        self.owners.retain(|_, list| !list.is_empty());
        for audience in self.audiences.values_mut() {
            removed += retain_others(&mut audience.mailboxes, connection);
        }
        self.audiences.retain(|_, audience| !audience.mailboxes.is_empty());
        removed
    }

    fn is_empty(&self) -> bool {
        self.all.is_empty() && self.owners.is_empty() && self.audiences.is_empty()
    }
}

/// Mailboxes by topic.
#[derive(Debug, Default)]
pub struct Index {
    types: HashMap<String, HashMap<Arc<str>, Group>>,
    resources: HashMap<(String, String), Vec<Watcher>>,
    users: HashMap<String, Vec<Mailbox>>,
    count: usize,
}

impl Index {
    /// Adds one subscription, reaching `scope` and seeing the data without the fields in `hidden`.
    pub fn add(&mut self, follow: &Follow, mailbox: &Mailbox, scope: Scope, hidden: Option<Arc<[String]>>) {
        let list = match follow.topic.kind() {
            TopicKind::ResourceType(ty) => {
                let groups = self.types.entry(ty.to_owned()).or_default();
                let group = groups.entry(Arc::clone(&follow.id)).or_insert_with(|| Group {
                    condition: follow.condition.clone(),
                    required: follow.condition.as_deref().and_then(Condition::required),
                    quoted: follow.condition.as_ref().and_then(|_| Told::quote(&follow.id)),
                    ..Group::default()
                });
                match (scope, hidden) {
                    (Scope::All, None) => &mut group.all,
                    (Scope::Own(owner), None) => group.owners.entry(owner).or_default(),
                    (scope, hidden) => {
                        let condition = match scope {
                            Scope::All => None,
                            Scope::Own(owner) => Some(Arc::new(owned_by(owner))),
                            Scope::Where(condition) => Some(condition),
                        };
                        let key = format!("{condition:?} {hidden:?}");
                        let audience = group.audiences.entry(key).or_insert_with(|| Audience {
                            condition,
                            hidden,
                            mailboxes: Vec::new(),
                        });
                        &mut audience.mailboxes
                    }
                }
            }
            TopicKind::Resource(ty, id) => {
                let visible = match scope {
                    Scope::Where(condition) => Some(condition),
                    Scope::All | Scope::Own(_) => None,
                };
                let watchers = self.resources.entry((ty.to_owned(), id.to_owned())).or_default();
                watchers.push(Watcher { mailbox: mailbox.clone(), visible, hidden });
                self.count += 1;
                return;
            }
            // Presence has its followers in `presence/`, notifications theirs in the hub's user streams.
            TopicKind::Notifications | TopicKind::Presence(_) => return,
        };
        list.push(mailbox.clone());
        self.count += 1;
    }

    /// Removes a connection's subscription.
    pub fn remove(&mut self, follow: &Follow, connection: u64) {
        let removed = match follow.topic.kind() {
            TopicKind::ResourceType(ty) => {
                let Some(groups) = self.types.get_mut(ty) else { return };
                let Some(group) = groups.get_mut(&*follow.id) else { return };
                let removed = group.remove(connection);
                if group.is_empty() {
                    groups.remove(&*follow.id);
                }
                if groups.is_empty() {
                    self.types.remove(ty);
                }
                removed
            }
            TopicKind::Resource(ty, id) => {
                let key = (ty.to_owned(), id.to_owned());
                let removed = self.resources.get_mut(&key).map_or(0, |list| retain_watchers(list, connection));
                if self.resources.get(&key).is_some_and(Vec::is_empty) {
                    self.resources.remove(&key);
                }
                removed
            }
            TopicKind::Notifications | TopicKind::Presence(_) => 0,
        };
        self.count -= removed;
    }

    /// Removes every subscription of a connection (a slow consumer), wherever it is.
    pub fn drop_connection(&mut self, connection: u64) {
        let mut removed = 0;
        for groups in self.types.values_mut() {
            for group in groups.values_mut() {
                removed += group.remove(connection);
            }
            groups.retain(|_, group| !group.is_empty());
        }
        self.types.retain(|_, groups| !groups.is_empty());
        for list in self.resources.values_mut() {
            removed += retain_watchers(list, connection);
        }
        self.resources.retain(|_, list| !list.is_empty());
        for list in self.users.values_mut() {
            retain_others(list, connection);
        }
        self.count -= removed;
    }

    /// The groups of a type topic's subscribers, by subscription id.
    pub fn type_groups(&self, resource_type: &str) -> impl Iterator<Item = (&Arc<str>, &Group)> {
        self.types.get(resource_type).into_iter().flatten()
    }

    /// The subscribers of a one-resource topic.
    pub fn resource_subscribers(&self, resource_type: &str, id: &str) -> &[Watcher] {
        let key = (resource_type.to_owned(), id.to_owned());
        self.resources.get(&key).map(Vec::as_slice).unwrap_or_default()
    }

    /// Every subscription to a type's topic (queries included) and to its resources' topics, as (subscription id,
    /// mailbox): for word that the type lost events. A rare walk over the type's one-resource topics, never on the
    /// path of an event.
    pub fn topics_of_type(&self, resource_type: &str) -> Vec<(Arc<str>, Mailbox)> {
        let mut found = Vec::new();
        for (id, group) in self.type_groups(resource_type) {
            found.extend(group.mailboxes().map(|mailbox| (Arc::clone(id), mailbox.clone())));
        }
        for ((ty, id), watchers) in &self.resources {
            if ty == resource_type {
                let topic: Arc<str> = Arc::from(format!("{ty}:{id}"));
                found.extend(watchers.iter().map(|watcher| (Arc::clone(&topic), watcher.mailbox.clone())));
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

/// The condition of [`Scope::Own`]: the resources `owner` owns.
fn owned_by(owner: String) -> Condition {
    use crate::query::{Field, Operand, Test};
    Condition::Test(Field::OwnerId, Test::In(vec![Operand::Text(owner)]))
}

fn retain_watchers(list: &mut Vec<Watcher>, connection: u64) -> usize {
    let before = list.len();
    list.retain(|w| w.mailbox.connection != connection);
    before - list.len()
}

fn retain_others(list: &mut Vec<Mailbox>, connection: u64) -> usize {
    let before = list.len();
    list.retain(|m| m.connection != connection);
    before - list.len()
}
