//! Pushes: `event` and `notification`, which the server sends unasked and never with a client's requestId.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fields::{ResourceId, ResourceType, Seq, SubscriptionId, Text, Topic, UserId, Version};

/// An `event`: something happened to a resource that a subscription covers.
///
/// Only `eventType` and `data` are required, so that the design notes' event (`{eventType, data}`) is valid.
/// A Tidings server sets every field on every event it delivers through a subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// `<resourceType>_created`, `<resourceType>_updated` or `<resourceType>_deleted`, such as `order_created`;
    /// through a query subscription (protocol 1.1) also `<resourceType>_entered` and `<resourceType>_left`.
    pub event_type: Text<1, 128>,
    /// The resource's `data` after the change; for a deletion, its last `data`.
    pub data: Map<String, Value>,
    /// The topic of the subscription that delivers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
    /// The subscription that delivers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
    /// Its position in the topic: strictly increasing within a topic, not necessarily by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    /// The type of the resource that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<ResourceType>,
    /// The id of the resource that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ResourceId>,
    /// The resource's version after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// The resource's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<UserId>,
    /// Who made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// When the change was committed, in Unix milliseconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::fields::optional_safe_integer"
    )]
    pub occurred_at: Option<u64>,
    /// On an event of an update (protocol 1.1): the top-level `data` fields whose value the update changed (added,
    /// removed or different), by name; absent when the server does not know (events logged before 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<String>>,
    /// On an `_updated` event of a type that keeps it (protocol 1.2; the type's `previous_data` setting): the
    /// resource's `data` before the change, without the fields hidden from the subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_data: Option<Map<String, Value>>,
    /// On a `_left` event (protocol 1.1): why the resource left the subscriber's view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<LeaveReason>,
}

/// Why a resource left a subscription's view. Later minor versions may add reasons; a client reads those as
/// [`LeaveReason::Other`] and drops the resource all the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// A change made it stop matching the query: `unmatched`.
    Unmatched,
    /// It was deleted: `deleted`.
    Deleted,
    /// A change made the type's read rule hide it from the subscriber: `hidden`. The event carries no data.
    Hidden,
    /// A reason this version does not know.
    Other,
}

impl LeaveReason {
    /// What the wire says for it.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Unmatched => "unmatched",
            LeaveReason::Deleted => "deleted",
            LeaveReason::Hidden => "hidden",
            LeaveReason::Other => "other",
        }
    }
}

impl Serialize for LeaveReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LeaveReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let reason = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        if reason.is_empty() || reason.len() > 32 || !reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(serde::de::Error::custom("must be 1 to 32 lowercase letters or underscores"));
        }
        Ok(match reason.as_ref() {
            "unmatched" => LeaveReason::Unmatched,
            "deleted" => LeaveReason::Deleted,
            "hidden" => LeaveReason::Hidden,
            _ => LeaveReason::Other,
        })
    }
}

impl JsonSchema for LeaveReason {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LeaveReason".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Open on purpose, like error codes: later minor versions may add reasons, and clients must read them.
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z_]{1,32}$",
            "description": "Why a resource left a subscription's view: unmatched (a change made it stop matching the query), deleted, or hidden (a change made the read rule hide it from the subscriber; the event carries no data); later versions may add others.",
        })
    }
}

/// Who made a change: a user, or the server itself (its HTTP API, a retention job).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    /// `user` or `system`.
    pub kind: ActorKind,
    /// The user id, or the name of the system component.
    pub id: Text<1, 256>,
}

/// The kinds of [`Actor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// An authenticated user.
    User,
    /// The server, acting for an operator or by itself.
    System,
}

/// A `notification` for one user: pushed to each of the user's connections, kept while the user is offline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Unique per notification, such as `NTF-1f3a`.
    pub id: Text<1, 128>,
    /// The notification's position among the user's notifications.
    pub seq: Seq,
    /// How a client should present it.
    pub level: Level,
    /// A short headline.
    pub title: Text<0, 200>,
    /// The text.
    pub body: Text<0, 4000>,
    /// Anything the sender attached, such as the order it is about.
    #[serde(default)]
    pub data: Map<String, Value>,
    /// When it was created, in Unix milliseconds.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub created_at: u64,
    /// Present when delivered through a subscription to `notifications`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<SubscriptionId>,
}

/// The levels of a [`Notification`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// For information.
    Info,
    /// Something went well.
    Success,
    /// Something needs attention.
    Warning,
    /// Something failed.
    Error,
}
