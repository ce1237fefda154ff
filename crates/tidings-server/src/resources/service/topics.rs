//! The subscription side of the resource operations: who may follow a topic, where it stands, and its replay.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tidings_protocol::{ErrorPayload, FieldError, Query, Topic, TopicKind};

use super::{Operation, Resources};
use crate::auth::Identity;
use crate::errors::{forbidden, invalid_params, not_found, storage_error};
use crate::hub::{Follow, Scope};
use crate::push::encode_seen;
use crate::query::judge;
use crate::resources::data::fingerprint;
use crate::storage::EventRecord;

/// A topic of resource events: a whole type, or one resource. (The `notifications` topic is not one: the
/// session serves it from the user's notifications.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTopic<'a> {
    /// Every event of a type (`order`).
    Type(&'a str),
    /// The events of one resource (`order:ORD-7K3M9Q2XAB`).
    Resource(&'a str, &'a str),
}

impl<'a> EventTopic<'a> {
    /// The event topic `topic` names; `None` for the notifications topic.
    pub fn of(topic: &'a Topic) -> Option<EventTopic<'a>> {
        match topic.kind() {
            TopicKind::ResourceType(name) => Some(EventTopic::Type(name)),
            TopicKind::Resource(name, id) => Some(EventTopic::Resource(name, id)),
            TopicKind::Notifications | TopicKind::Presence(_) => None,
        }
    }
}

/// A query with the terms of every `and` and `or` in one order, so that the same query written in another order
/// has the same id (object keys need no such care: the fingerprint sorts them).
fn canonical(query: Value) -> Value {
    match query {
        Value::Object(mut object) => {
            for key in ["and", "or"] {
                if let Some(Value::Array(terms)) = object.remove(key) {
                    let mut terms: Vec<Value> = terms.into_iter().map(canonical).collect();
                    terms.sort_by_cached_key(|term| fingerprint("", term.as_object().unwrap_or(&Map::new())));
                    object.insert(key.to_owned(), Value::Array(terms));
                }
            }
            if let Some(not) = object.remove("not") {
                object.insert("not".to_owned(), canonical(not));
            }
            Value::Object(object)
        }
        other => other,
    }
}

/// The most a replay page holds, in encoded events, beyond the one that passes it: at most 500 events are read
/// per page, and a page of large ones would otherwise pin tens of MiB per subscribing connection.
pub const REPLAY_PAGE_BYTES: usize = 1024 * 1024;

/// One step of a replay.
#[derive(Debug, Default)]
pub struct ReplayPage {
    /// The events the subscriber may see, with their `seq`, encoded.
    pub events: Vec<(u64, Arc<str>)>,
    /// The `seq` of the first event read (seen or not); the replay is whole only if it follows `after` directly.
    pub first: Option<u64>,
    /// The `seq` of the last event read, to continue after; `None` at the end of the log.
    pub last: Option<u64>,
}

/// What a subscription to a topic may see, and where the topic stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// For a type topic, how much of it the user reaches; `None` for a one-resource topic.
    pub scope: Option<Scope>,
    /// For a one-resource topic, the resource's owner (to check again after a re-authentication).
    pub owner: Option<String>,
    /// The topic's current `seq`.
    pub head: u64,
}

impl Resources {
    /// What a subscription to `topic` with `query` follows in the hub. A query is checked against the type's
    /// schema (errors point into `/query`); its subscription id is the type and a digest of the query, the same
    /// for everyone who sends the same query, however its keys are ordered.
    pub fn follow(&self, who: &Identity, topic: &Topic, query: Option<&Query>) -> Result<Follow, ErrorPayload> {
        let (Some(query), TopicKind::ResourceType(name)) = (query, topic.kind()) else {
            return Ok(Follow::topic(topic.clone()));
        };
        let def = self.type_of(name)?;
        let condition = crate::query::check(query, &def.config.schema, "/query")
            .map_err(|errors| invalid_params(format!("invalid query of {name}"), errors))?;
        // A query on a field the user may not see would tell its values by what enters and leaves.
        if def.hidden_fields(who).iter().flat_map(|hidden| hidden.iter()).any(|f| condition.reads_data_field(f)) {
            let error = FieldError::new("/query", "names a field you may not read");
            return Err(invalid_params(format!("invalid query of {name}"), vec![error]));
        }
        let digest = fingerprint(name, &Map::from_iter([("query".to_owned(), canonical(json!(query)))]));
        let id = format!("{name}?{}", &digest[..digest.len().min(16)]);
        Ok(Follow { topic: topic.clone(), id: Arc::from(id), condition: Some(Arc::new(condition)) })
    }

    /// How much of a type `who` may read, decided by the rules alone (no storage read), for joining the hub
    /// before reading where the topic stands, and for re-checks after a re-authentication.
    pub fn scope_for(&self, who: &Identity, resource_type: &str) -> Result<Scope, ErrorPayload> {
        let def = self.type_of(resource_type)?;
        def.scope(who).ok_or_else(|| forbidden(format!("you may not read {resource_type}")))
    }

    /// The data fields of `resource_type` that a field rule hides from `who`.
    pub fn hidden_for(&self, who: &Identity, resource_type: &str) -> Option<Arc<[String]>> {
        self.types.get(resource_type).and_then(|def| def.hidden_fields(who))
    }

    /// Checks that `who` may subscribe to `topic` and says what the subscription reaches.
    pub async fn open_subscription(&self, who: &Identity, topic: EventTopic<'_>) -> Result<Opened, ErrorPayload> {
        match topic {
            EventTopic::Type(name) => {
                let scope = self.scope_for(who, name)?;
                let head = self.storage.head(name).await.map_err(|e| storage_error(e, name, None))?;
                Ok(Opened { scope: Some(scope), owner: None, head })
            }
            EventTopic::Resource(name, id) => {
                let def = self.type_of(name)?;
                let record = self.storage.get(name, id).await.map_err(|e| storage_error(e, name, Some(id)))?;
                match record {
                    Some(record) if def.allows(Operation::Read, who, Some(&record), None) => {
                        Ok(Opened { scope: None, owner: Some(record.owner_id), head: record.version })
                    }
                    _ => Err(not_found(name, id)),
                }
            }
        }
    }

    /// Whether `who` may still read the resource `id`, for a one-resource topic after a re-authentication: by the
    /// rules alone when they do not depend on the data, else by reading it (a re-authentication is rare). A
    /// storage error keeps the subscription: a hiccup must not end it as FORBIDDEN.
    pub async fn may_read(&self, who: &Identity, resource_type: &str, id: &str, owner: &str) -> bool {
        let Some(def) = self.types.get(resource_type) else { return false };
        match def.scope(who) {
            Some(Scope::All) => true,
            Some(Scope::Own(own)) => own == owner,
            None => false,
            Some(Scope::Where(_)) => match self.storage.get(resource_type, id).await {
                Ok(Some(record)) => def.allows(Operation::Read, who, Some(&record), None),
                Ok(None) => false,
                Err(_) => true,
            },
        }
    }

    /// The events of a subscription after `after` that `scope` lets its subscriber see, encoded as it delivers
    /// them (through a query: only what concerns the query, as its changes); at most `limit` are read from
    /// storage per call.
    pub async fn replay(
        &self,
        follow: &Follow,
        (scope, hidden): (Option<&Scope>, Option<&[String]>),
        after: u64,
        limit: usize,
    ) -> Result<ReplayPage, ErrorPayload> {
        let (name, id) = match EventTopic::of(&follow.topic) {
            Some(EventTopic::Type(name)) => (name, None),
            Some(EventTopic::Resource(name, id)) => (name, Some(id)),
            None => return Ok(ReplayPage::default()),
        };
        let events = self.storage.events_after(name, id, after, limit).await.map_err(|e| storage_error(e, name, id))?;
        let previous_data = self.types.get(name).is_some_and(|def| def.config.previous_data);
        let position = |e: &EventRecord| if id.is_some() { e.version } else { e.seq };
        let first = events.first().map(position);
        let (mut page, mut bytes) = (Vec::new(), 0);
        let mut last = None;
        for event in &events {
            last = Some(position(event));
            // Told exactly as the hub tells it live (`hub/mod.rs`, `fan_out`).
            let visible = match scope {
                Some(Scope::Where(visible)) => Some(&**visible),
                _ => None,
            };
            let text = match scope {
                Some(Scope::Own(owner)) if &event.owner_id != owner => None,
                _ => judge(event, follow.condition.as_deref(), visible).and_then(|change| {
                    let at = (follow.topic.as_str(), &*follow.id, position(event));
                    let shown = (hidden.unwrap_or_default(), previous_data);
                    encode_seen(event, at, change, follow.condition.is_none(), shown)
                }),
            };
            if let Some(text) = text {
                bytes += text.len();
                page.push((position(event), text));
            }
            // The page is held while the client reads it: it ends at the event that passes the bound, and the
            // next page starts after it.
            if bytes >= REPLAY_PAGE_BYTES {
                break;
            }
        }
        Ok(ReplayPage { events: page, first, last })
    }
}
