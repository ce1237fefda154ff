//! Messages the server sends: replies to requests and the payloads they carry.
//!
//! Pushes that are not replies (`event`, `notification`) live in `push.rs`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::Empty;
use crate::error::ErrorPayload;
use crate::fields::{ResourceId, ResourceType, Seq, SubscriptionId, Text, Topic, UserId, Version};
use crate::message_type::MessageType;
use crate::push::{Event, Notification};

/// A message from server to client: one variant per type the server may send.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    /// The reply to `connect`: the session's parameters.
    Connect(Connected),
    /// Sent before every close the server initiates.
    Disconnect(Disconnect),
    /// A server heartbeat; the client answers `pong`.
    Ping(Empty),
    /// The reply to a client `ping`.
    Pong(Empty),
    /// The reply to a successful `auth`.
    AuthSuccess(AuthSuccess),
    /// The reply to an `auth` whose token was rejected.
    AuthFailed(ErrorPayload),
    /// The reply to `create`: the new resource.
    Create(Resource),
    /// The reply to `read`: one resource or a page of a list.
    Read(ReadResult),
    /// The reply to `update`: the changed resource.
    Update(Resource),
    /// The reply to `delete`.
    Delete(Deleted),
    /// The reply to `subscribe`.
    Subscribe(Subscribed),
    /// The reply to `unsubscribe`, or a push when the server ends a subscription.
    Unsubscribe(Unsubscribed),
    /// A notification for the user.
    Notification(Notification),
    /// A change to a resource, delivered through a subscription.
    Event(Event),
    /// The reply to a request that failed, or a push about the session (TOKEN_EXPIRED).
    Error(ErrorPayload),
    /// The reply to `batch` (protocol 1.2).
    Batch(BatchResult),
}

impl ServerMessage {
    /// The envelope `type` of this message.
    pub fn message_type(&self) -> MessageType {
        match self {
            ServerMessage::Connect(_) => MessageType::Connect,
            ServerMessage::Disconnect(_) => MessageType::Disconnect,
            ServerMessage::Ping(_) => MessageType::Ping,
            ServerMessage::Pong(_) => MessageType::Pong,
            ServerMessage::AuthSuccess(_) => MessageType::AuthSuccess,
            ServerMessage::AuthFailed(_) => MessageType::AuthFailed,
            ServerMessage::Batch(_) => MessageType::Batch,
            ServerMessage::Create(_) => MessageType::Create,
            ServerMessage::Read(_) => MessageType::Read,
            ServerMessage::Update(_) => MessageType::Update,
            ServerMessage::Delete(_) => MessageType::Delete,
            ServerMessage::Subscribe(_) => MessageType::Subscribe,
            ServerMessage::Unsubscribe(_) => MessageType::Unsubscribe,
            ServerMessage::Notification(_) => MessageType::Notification,
            ServerMessage::Event(_) => MessageType::Event,
            ServerMessage::Error(_) => MessageType::Error,
        }
    }
}

/// The `connect` reply: what the client needs to know to keep the session healthy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connected {
    /// The server's own version, the highest 1.x it speaks, such as `1.0`; a client accepts any 1.x.
    pub protocol_version: String,
    /// This connection's id, as logs and the admin API show it.
    pub session_id: String,
    /// Heartbeat timing.
    pub heartbeat: Heartbeat,
    /// Milliseconds from the opening of the socket within which `auth` must succeed.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub auth_timeout_ms: u64,
    /// Limits the server enforces on this connection.
    pub limits: Limits,
}

/// Heartbeat timing, advertised in the `connect` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// How often the server sends `ping`; a client that hears nothing for this plus a margin may assume the link is dead.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub ping_interval_ms: u64,
    /// The server closes with 4000 when it receives nothing from the client for this long.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub idle_timeout_ms: u64,
}

/// Limits advertised in the `connect` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// The largest message accepted, in bytes of UTF-8; larger ones get PAYLOAD_TOO_LARGE.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_message_bytes: u64,
    /// Subscriptions one connection may hold; one more gets LIMIT_EXCEEDED.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_subscriptions: u32,
    /// The per-connection token bucket; messages beyond it get RATE_LIMITED.
    pub rate_limit: RateLimit,
    /// The bounds of a query (protocol 1.1; docs/protocol.md, 7.7), the same on every server of a version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryLimits>,
    /// The most operations one `batch` may hold (protocol 1.2); more get LIMIT_EXCEEDED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_operations: Option<u32>,
    /// The bounds of presence (protocol 1.2; docs/protocol.md, 8.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceLimits>,
}

/// The bounds of presence: beyond them, a join is LIMIT_EXCEEDED and a state INVALID_PARAMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceLimits {
    /// Members one topic may have.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_members: u32,
    /// The largest `state` of a member, in bytes of JSON.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_state_bytes: u32,
    /// Topics one connection may be present at at once.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_joins: u32,
}

/// The bounds of a query: beyond any of them, a query is INVALID_PARAMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryLimits {
    /// How deep `and`, `or` and `not` may nest.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_depth: u32,
    /// How many terms one query may have.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_terms: u32,
    /// How many values `in` and `nin` may list.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_values: u32,
    /// The longest string operand, in characters.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub max_string_length: u32,
}

impl QueryLimits {
    /// The bounds this crate's [`crate::Query`] checks.
    pub const OF_THIS_VERSION: QueryLimits = QueryLimits {
        max_depth: crate::Query::MAX_DEPTH as u32,
        max_terms: crate::Query::MAX_TERMS as u32,
        max_values: crate::Query::MAX_VALUES as u32,
        max_string_length: crate::Query::MAX_TEXT as u32,
    };
}

/// A token bucket: `burst` messages at once, refilled at `messagesPerSecond`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// The sustained rate.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub messages_per_second: u32,
    /// The bucket's size.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub burst: u32,
}

/// `disconnect` from the server: why it is about to close, and whether to come back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Disconnect {
    /// The close code that follows (docs/protocol.md, "Close codes").
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub code: u16,
    /// The reason, for people.
    pub reason: String,
    /// Whether the client should reconnect (with backoff).
    pub reconnect: bool,
}

/// The `auth_success` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSuccess {
    /// The authenticated user: the token's `sub`.
    pub user_id: UserId,
    /// The token's roles, such as `admin`.
    pub roles: Vec<String>,
    /// When the token expires, in Unix milliseconds; re-authenticate before then.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub expires_at: u64,
}

/// A resource as the server returns it from create, read and update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// The resource's type, such as `order`.
    pub resource_type: ResourceType,
    /// Its id, chosen by the server, such as `ORD-78901`.
    pub id: ResourceId,
    /// 1 after create, one more after each update.
    pub version: Version,
    /// The user who created it.
    pub owner_id: UserId,
    /// When it was created, in Unix milliseconds.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub created_at: u64,
    /// When it last changed, in Unix milliseconds.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub updated_at: u64,
    /// Its fields, as the type's schema defines them.
    pub data: Map<String, Value>,
}

/// A page of a list read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceList {
    /// The type listed.
    pub resource_type: ResourceType,
    /// The resources on this page, in the requested order.
    pub items: Vec<Resource>,
    /// Pass this as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<Text<1, 512>>,
    /// When the read asked to `count` (protocol 1.1): how many resources the whole list has.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::fields::optional_safe_integer"
    )]
    pub total: Option<u64>,
}

/// The `read` reply: a resource when the request named an `id`, a list page otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ReadResult {
    /// A page of a list (has `items`).
    List(ResourceList),
    /// One resource.
    One(Resource),
}

/// The `delete` reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// The type of the deleted resource.
    pub resource_type: ResourceType,
    /// Its id.
    pub id: ResourceId,
    /// The version the deletion gave it: one more than its last version.
    pub version: Version,
    /// When it was deleted, in Unix milliseconds.
    #[serde(deserialize_with = "crate::fields::safe_integer")]
    pub deleted_at: u64,
}

/// The `batch` reply: one result per operation, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    /// What each operation did, as the reply to the single message would say it.
    pub results: Vec<OperationResult>,
}

/// What one operation of a batch did, with `op` naming the operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OperationResult {
    /// The created resource.
    Create(Resource),
    /// The resource after the update.
    Update(Resource),
    /// The deletion.
    Delete(Deleted),
}

/// The `subscribe` reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscribed {
    /// Names this subscription in its events and in `unsubscribe`.
    pub subscription_id: SubscriptionId,
    /// The topic subscribed to.
    pub topic: Topic,
    /// The topic's current sequence number: live events will have greater ones.
    pub seq: Seq,
    /// Present when the request had `since`: true if every event after `since` follows this reply, false if
    /// some are gone (outside retention) and the client must re-read what it shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// Present when the request asked for a `snapshot` (protocol 1.1) and no replay follows: the first page of
    /// what the subscription covers, exactly as of `seq`, in the order of `createdAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Resource>>,
    /// With `items`, when more match: read the rest with `read` (the same `query`, this `cursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Text<1, 512>>,
}

/// The `unsubscribe` reply, or a push when the server ends a subscription (then with `reason`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unsubscribed {
    /// The subscription that ended.
    pub subscription_id: SubscriptionId,
    /// Its topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
    /// Why the server ended it (only on a push), such as FORBIDDEN after a re-auth with fewer rights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ErrorPayload>,
}
