//! Presence for one connection (docs/protocol.md, 8.7): following `presence:TOPIC`, and joining, updating and
//! leaving a topic's presence as a member of the built-in type `presence` (`create`, `update`, `delete`).
//!
//! A member lives as long as its connection: the session's end leaves every topic it joined. Who may follow or
//! join a topic's presence is who may subscribe to the topic. Every change is applied to this node's presence,
//! which tells its followers here, and handed to the relay for the other nodes.

use std::sync::Arc;

use serde_json::{Map, Value};
use tidings_protocol::{
    Create, Delete, Deleted, ErrorCode, ErrorPayload, FieldError, RequestId, ResourceId, ResourceType, Seq,
    ServerMessage, Subscribed, Topic, Update, Version,
};

use super::subscriptions::{subscription_id, Subscription};
use super::{Flow, Session};
use crate::auth::Identity;
use crate::connection::Outbound;
use crate::errors::{internal, invalid_params, limit_exceeded, not_found, prefix_pointers, version_conflict};
use crate::hub::{Follow, Scope};
use crate::presence::{Member, Presence, Refusal, PRESENCE};
use crate::query::Condition;
use crate::resources::data::merge;
use crate::resources::{new_id, resource, EventTopic};
use crate::shared::Shared;
use crate::storage::EventKind;

impl<O: Outbound> Session<O> {
    /// Follows `topic` (`presence:` and `of`): the reply carries the members present now; each change after it
    /// follows as an event. Presence keeps no history, so a `since` is answered `recovered: false`.
    pub(super) async fn subscribe_presence(
        &mut self,
        request_id: Option<RequestId>,
        topic: Topic,
        of: &str,
        since: Option<u64>,
    ) -> Flow {
        let Some(identity) = self.user.as_ref().map(|user| user.identity.clone()) else { return Flow::Continue };
        if let Err(error) = may_follow_presence(&self.shared, &identity, of).await {
            return self.send(request_id, ServerMessage::Error(prefix_pointers(error, "/payload"))).await;
        }
        // Pushes of an earlier follow of this topic may still wait in the mailbox (presence pushes have no seq to
        // tell them by): they go now, dropped as of no subscription, before the new follow's snapshot.
        if self.deliver_waiting().await == Flow::Stop {
            return Flow::Stop;
        }
        let follow = Follow::topic(topic.clone());
        let sight = sight_of(&self.shared, &identity, of);
        let members = self.shared.presence.follow(follow.topic.as_str(), self.mailbox.clone(), sight);
        let items = members.into_iter().map(resource).collect::<Result<Vec<_>, _>>();
        let Ok(items) = items else {
            self.shared.presence.unfollow(follow.topic.as_str(), self.mailbox.connection);
            return self.send(request_id, ServerMessage::Error(internal("a member cannot be shown"))).await;
        };
        let subscription = Subscription { follow, scope: None, owner: None, hidden: None, last_seq: 0 };
        self.subscriptions.insert(topic.to_string(), subscription);
        self.list_subscriptions();
        let reply = Subscribed {
            subscription_id: subscription_id(&Follow::topic(topic.clone())),
            topic,
            seq: Seq::saturating(0),
            recovered: since.map(|_| false),
            items: Some(items),
            next_cursor: None,
        };
        self.send(request_id, ServerMessage::Subscribe(reply)).await
    }

    /// `create` of a `presence` member: joins `data.topic` with `data.state`.
    pub(super) async fn join_presence(&mut self, request_id: Option<RequestId>, create: Create) -> Flow {
        let reply = self.joined(create).await;
        self.answer(request_id, reply.map(ServerMessage::Create)).await
    }

    async fn joined(&mut self, create: Create) -> Result<tidings_protocol::Resource, ErrorPayload> {
        let Some(identity) = self.user.as_ref().map(|user| user.identity.clone()) else {
            return Err(internal("no user"));
        };
        let (topic, state) = self.checked_member(&create.data, "/data")?;
        may_follow_presence(&self.shared, &identity, &topic).await?;
        let now = tidings_protocol::now_ms();
        let member = Member {
            id: new_id("PRS"),
            topic,
            user: identity.user_id.clone(),
            node: self.shared.presence.node().to_owned(),
            connection: self.mailbox.connection,
            version: 1,
            joined_at: now,
            updated_at: now,
            state,
        };
        let limits = &self.shared.config.presence;
        let (max_members, max_joins) = (limits.max_members as usize, limits.max_joins as usize);
        let sight = sight_of(&self.shared, &identity, &member.topic);
        let record = match self.shared.presence.join(member.clone(), (max_members, max_joins), sight) {
            Ok(record) => record,
            Err(Refusal::TopicFull) => {
                let message = format!("a topic has at most {max_members} members");
                return Err(limit_exceeded("presence.maxMembers", max_members, message));
            }
            Err(Refusal::TooManyJoins) => {
                let message = format!("a connection is present at {max_joins} topics at most");
                return Err(limit_exceeded("presence.maxJoins", max_joins, message));
            }
            Err(Refusal::AlreadyJoined(id)) => {
                let message = format!("this connection is present at {} already: update member {id}", member.topic);
                return Err(ErrorPayload::new(ErrorCode::Conflict, message).with_detail("id", id));
            }
        };
        resource(record)
    }

    /// `update` of this connection's member: a merge patch of its `data`, whose `state` may change and whose
    /// `topic` may not.
    pub(super) async fn update_presence(&mut self, request_id: Option<RequestId>, update: Update) -> Flow {
        let reply = self.updated_member(update);
        self.answer(request_id, reply.map(ServerMessage::Update)).await
    }

    fn updated_member(&self, update: Update) -> Result<tidings_protocol::Resource, ErrorPayload> {
        let id = update.id.as_str();
        let member = self.shared.presence.own(id, self.mailbox.connection).ok_or_else(|| not_found(PRESENCE, id))?;
        version_conflict(update.expected_version, "member", member.version)?;
        let data = merge(&member.record().data, &update.patch);
        let (topic, state) = self.checked_member(&data, "/patch")?;
        if topic != member.topic {
            let error = FieldError::new("/patch/topic", "a member's topic cannot change; leave, and join the other");
            return Err(invalid_params("invalid update of a presence member".to_owned(), vec![error]));
        }
        if state == member.state {
            return resource(member.record());
        }
        let now = tidings_protocol::now_ms();
        let member = Member { state, version: member.version + 1, updated_at: now.max(member.updated_at), ..member };
        let record = member.record();
        self.shared.presence.change(EventKind::Updated, member);
        resource(record)
    }

    /// `delete` of this connection's member: leaves its topic.
    pub(super) async fn leave_presence_member(&mut self, request_id: Option<RequestId>, delete: Delete) -> Flow {
        let reply = self.left(delete);
        self.answer(request_id, reply.map(ServerMessage::Delete)).await
    }

    fn left(&self, delete: Delete) -> Result<Deleted, ErrorPayload> {
        let id = delete.id.as_str();
        let member = self.shared.presence.own(id, self.mailbox.connection).ok_or_else(|| not_found(PRESENCE, id))?;
        version_conflict(delete.expected_version, "member", member.version)?;
        let (version, deleted_at) = self.end(member);
        Ok(Deleted {
            resource_type: ResourceType::new(PRESENCE).map_err(|_| internal("the presence type"))?,
            id: ResourceId::new(id).map_err(|_| internal("a member id"))?,
            version: Version::new(version).map_err(|_| internal("a member's version"))?,
            deleted_at,
        })
    }

    /// After a re-authentication: the members of topics the new claims no longer let the user see leave them; the
    /// others are judged by the new claims from now on.
    pub(super) async fn recheck_presence(&mut self) {
        let Some(identity) = self.user.as_ref().map(|user| user.identity.clone()) else { return };
        for member in self.shared.presence.members_of_connection(self.mailbox.connection) {
            if may_follow_presence(&self.shared, &identity, &member.topic).await.is_err_and(|e| refuses(&e)) {
                self.end(member);
            } else {
                // What the member may see is the new claims' from now on: a later change is judged by them.
                let sight = sight_of(&self.shared, &identity, &member.topic);
                self.shared.presence.resight_member(&member.id, sight);
            }
        }
    }

    /// Ends one of this connection's members, here and on the other nodes; returns its last version and when.
    fn end(&self, member: Member) -> (u64, u64) {
        let now = tidings_protocol::now_ms();
        let gone = Member { version: member.version + 1, updated_at: now.max(member.updated_at), ..member };
        let ended = (gone.version, gone.updated_at);
        self.shared.presence.change(EventKind::Deleted, gone);
        ended
    }

    /// Leaves every topic this connection joined, as its session ends.
    pub(super) fn leave_presence(&self) {
        self.shared.presence.leave_connection(self.mailbox.connection);
    }

    /// A member's `data` checked: `topic` a type or a resource topic, `state` an object within the size bound,
    /// nothing else. Pointers are relative to the payload, under `at` (`/data` of a join, `/patch` of an update).
    fn checked_member(
        &self,
        data: &Map<String, Value>,
        at: &str,
    ) -> Result<(String, Map<String, Value>), ErrorPayload> {
        let mut errors = Vec::new();
        let topic = match data.get("topic").and_then(Value::as_str).map(Topic::new) {
            Some(Ok(topic)) if EventTopic::of(&topic).is_some() => Some(topic.to_string()),
            _ => {
                let reason = "must be a resource type or a resource, such as 'order:ORD-1'";
                errors.push(FieldError::new(format!("{at}/topic"), reason));
                None
            }
        };
        let state = match data.get("state") {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(state)) => {
                let max = self.shared.config.presence.max_state_bytes as usize;
                let size = Value::Object(state.clone()).to_string().len();
                if size > max {
                    errors.push(FieldError::new(
                        format!("{at}/state"),
                        format!("has {size} bytes of JSON; at most {max}"),
                    ));
                }
                Some(state.clone())
            }
            Some(_) => {
                errors.push(FieldError::new(format!("{at}/state"), "must be an object"));
                None
            }
        };
        for field in data.keys().filter(|field| !["topic", "state"].contains(&field.as_str())) {
            errors.push(FieldError::new(format!("{at}/{field}"), "is not a field of a presence member"));
        }
        match (topic, state, errors.is_empty()) {
            (Some(topic), Some(state), true) => Ok((topic, state)),
            _ => Err(invalid_params("invalid presence member".to_owned(), errors)),
        }
    }
}

/// What ends a connection's members when its session is dropped, however it ends: a close, a panic, an aborted
/// task. (The session also leaves on its way out; leaving twice finds nothing the second time.)
pub(super) struct Leaving {
    presence: Arc<Presence>,
    connection: u64,
}

impl Leaving {
    pub(super) fn new(presence: &Arc<Presence>, connection: u64) -> Leaving {
        Leaving { presence: Arc::clone(presence), connection }
    }
}

impl Drop for Leaving {
    fn drop(&mut self) {
        self.presence.leave_connection(self.connection);
    }
}

/// Whether `who` may follow or join the presence of `of` (a type or one resource): as they may subscribe to
/// it. NOT_FOUND for a type or a resource that does not exist for them.
pub(super) async fn may_follow_presence(shared: &Shared, who: &Identity, of: &str) -> Result<(), ErrorPayload> {
    let topic = Topic::new(of).map_err(|_| not_found(PRESENCE, of))?;
    match EventTopic::of(&topic) {
        Some(followed @ EventTopic::Resource(..)) => {
            shared.resources.open_subscription(who, followed).await.map(|_| ())
        }
        Some(EventTopic::Type(name)) => shared.resources.scope_for(who, name).map(|_| ()),
        None => Err(not_found(PRESENCE, of)),
    }
}

/// What the read rule lets `who` see of the resource at presence topic `of`, where that depends on the resource's
/// data (a rule on `data`), so that presence there ends when a change hides it from them; `None` for a type's
/// topic, and where the rule depends on the user alone or on ownership, which no update changes.
pub(super) fn sight_of(shared: &Shared, who: &Identity, of: &str) -> Option<Arc<Condition>> {
    let topic = Topic::new(of).ok()?;
    let EventTopic::Resource(name, _) = EventTopic::of(&topic)? else { return None };
    match shared.resources.scope_for(who, name) {
        Ok(Scope::Where(sight)) => Some(sight),
        _ => None,
    }
}

/// Whether an answer of [`may_follow_presence`] says no (rather than that storage could not be asked): a storage
/// hiccup during a re-authentication must not end anyone's presence.
pub(super) fn refuses(error: &ErrorPayload) -> bool {
    matches!(error.code, ErrorCode::NotFound | ErrorCode::Forbidden)
}
