//! Messages a client sends to the server, and their payloads.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::FieldError;
use crate::fields::{
    FieldName, Limit, OrderBy, ProtocolVersion, ResourceId, ResourceType, Seq, SubscriptionId, Text, Topic, UserId,
    Version,
};
use crate::message_type::MessageType;
use crate::query::Query;

/// A message from client to server: one variant per type a client may send.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// Opens the session and negotiates the protocol version.
    Connect(Connect),
    /// Ends the session; the server closes with 1000 and sends no reply.
    Disconnect(DisconnectRequest),
    /// Asks for a `pong`.
    Ping(Empty),
    /// Answers a server `ping`.
    Pong(Empty),
    /// Authenticates, or re-authenticates with a fresh token.
    Auth(Auth),
    /// Creates a resource.
    Create(Create),
    /// Reads one resource or a list.
    Read(Read),
    /// Changes a resource with a JSON merge patch.
    Update(Update),
    /// Deletes a resource.
    Delete(Delete),
    /// Starts a subscription to a topic.
    Subscribe(Subscribe),
    /// Ends a subscription.
    Unsubscribe(Unsubscribe),
    /// Applies several changes together, or none (protocol 1.2).
    Batch(Batch),
}

impl ClientMessage {
    /// The envelope `type` of this message.
    pub fn message_type(&self) -> MessageType {
        match self {
            ClientMessage::Connect(_) => MessageType::Connect,
            ClientMessage::Disconnect(_) => MessageType::Disconnect,
            ClientMessage::Ping(_) => MessageType::Ping,
            ClientMessage::Pong(_) => MessageType::Pong,
            ClientMessage::Auth(_) => MessageType::Auth,
            ClientMessage::Create(_) => MessageType::Create,
            ClientMessage::Read(_) => MessageType::Read,
            ClientMessage::Update(_) => MessageType::Update,
            ClientMessage::Delete(_) => MessageType::Delete,
            ClientMessage::Subscribe(_) => MessageType::Subscribe,
            ClientMessage::Unsubscribe(_) => MessageType::Unsubscribe,
            ClientMessage::Batch(_) => MessageType::Batch,
        }
    }
}

/// A payload with no fields, as `ping` and `pong` carry: `{}`. Extra fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

/// `connect`: the first message of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connect {
    /// The protocol version the client speaks, such as `1.0`; the major version must be 1. Since 1.1 it may be
    /// left out (the newest 1.x) or given as a whole number, a major version (`1`).
    #[serde(default = "newest_version", deserialize_with = "version_or_major")]
    #[schemars(with = "Option<VersionOrMajor>")]
    pub protocol_version: ProtocolVersion,
    /// Who the client is, for the server's logs and connection list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientInfo>,
}

/// A protocol version as `connect` may give it: `"1.1"`, or a major version as a whole number.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum VersionOrMajor {
    /// `MAJOR.MINOR` or `MAJOR`, as a string.
    Version(ProtocolVersion),
    /// A major version: a whole number (`1`, or `1.0` as some encoders write it).
    Major(#[schemars(with = "u32", range(min = 0, max = 9999))] serde_json::Number),
}

/// The version a client that names none speaks: the newest this crate knows.
fn newest_version() -> ProtocolVersion {
    ProtocolVersion::new(crate::PROTOCOL_VERSION).expect("the crate's version is a valid version")
}

fn version_or_major<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<ProtocolVersion, D::Error> {
    // `null` counts as absent, as for every optional field.
    match Option::<VersionOrMajor>::deserialize(deserializer)? {
        None => Ok(newest_version()),
        Some(VersionOrMajor::Version(version)) => Ok(version),
        Some(VersionOrMajor::Major(number)) => {
            let whole =
                number.as_u64().or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
            let major = whole.filter(|n| *n <= 9999).ok_or_else(|| {
                serde::de::Error::custom("must be a version such as '1.1', or a whole major version such as 1")
            })?;
            ProtocolVersion::new(major.to_string()).map_err(serde::de::Error::custom)
        }
    }
}

/// A client's name and version, as shown to operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientInfo {
    /// The client library or application, such as `tidings-js`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text<1, 64>>,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Text<1, 64>>,
}

/// `disconnect` from a client: an optional reason, for the server's logs. It decodes whenever its envelope is
/// valid: a payload that breaks its schema decodes as the default, without a reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DisconnectRequest {
    /// Why the client leaves. A bad reason is ignored: the server closes with 1000 all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Text<0, 123>>,
}

/// `auth`: a token, and optionally the user it must belong to (the design notes send both).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// A JWT whose `sub` claim is the user id.
    pub token: Text<1, 8192>,
    /// When present, must equal the token's `sub`, or the server answers `auth_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

/// `create`: a new resource of a type, with its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Create {
    /// The type of resource to create, such as `order`.
    pub resource_type: ResourceType,
    /// The resource's fields, checked against the type's schema; schema defaults fill missing fields.
    pub data: Map<String, Value>,
}

/// `read`: one resource by `id`, or, without `id`, a page of the list the user may see.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Read {
    /// The type of resource to read.
    pub resource_type: ResourceType,
    /// The resource to read; when present, none of the list fields may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ResourceId>,
    /// List only resources whose top-level `data` fields equal these values (strings, numbers, booleans, null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 16))]
    pub filter: Option<BTreeMap<FieldName, Scalar>>,
    /// List only resources that match this query (protocol 1.1; docs/protocol.md, 7.7); with `filter`, both must
    /// hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Query>,
    /// The list's order: `createdAt` (the default), `-createdAt`, `updatedAt`, `id`, or a top-level data field;
    /// since 1.1 also a list of up to four such keys, each deciding the ties of the one before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_by: Option<Order>,
    /// The page size, 1 to 100; 20 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// The `nextCursor` of the previous page; the other list fields must be the same as for that page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Text<1, 512>>,
    /// Only these top-level `data` fields in the items (protocol 1.1); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub fields: Option<Vec<FieldName>>,
    /// With `true`, the reply's `total` counts every resource of the list (all pages), as of the read (protocol
    /// 1.1). It costs the server a pass over what matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<bool>,
}

/// The order of a list: one key, or (since 1.1) up to four, each deciding the ties of the one before; the id
/// decides the last ties, in the direction of the last key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Order {
    /// One key: `status`, `-createdAt`.
    One(OrderBy),
    /// Up to four keys: `["status", "-totalAmount"]`.
    Many(#[schemars(length(min = 1, max = 4))] Vec<OrderBy>),
}

impl Order {
    /// The most keys an order may have.
    pub const MAX_KEYS: usize = 4;

    /// The keys, first to last.
    pub fn keys(&self) -> &[OrderBy] {
        match self {
            Order::One(key) => std::slice::from_ref(key),
            Order::Many(keys) => keys,
        }
    }
}

impl Read {
    /// The list fields that a read of one resource may not carry.
    const LIST_FIELDS: [&'static str; 7] = ["filter", "query", "orderBy", "limit", "cursor", "fields", "count"];
    /// How many fields one filter may name.
    const MAX_FILTERS: usize = 16;

    /// Checks what the field types alone cannot: `id` goes with none of the list fields, and a filter names at
    /// most 16 fields. The decoder runs it on every `read`; the server's HTTP API runs it on the reads it builds.
    /// Pointers start at the message root (`/payload/filter`).
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.filter.as_ref().is_some_and(|f| f.len() > Self::MAX_FILTERS) {
            errors.push(FieldError::new("/payload/filter", "must have at most 16 fields"));
        }
        if let Some(query) = &self.query {
            errors.extend(query.check("/payload/query"));
        }
        // The HTTP API builds reads without the schema: the bounds the schema sets on lists, checked again.
        if let Some(Order::Many(keys)) = &self.order_by {
            if keys.is_empty() || keys.len() > Order::MAX_KEYS {
                errors.push(FieldError::new("/payload/orderBy", "must have 1 to 4 keys"));
            }
        }
        if self.fields.as_ref().is_some_and(|fields| fields.is_empty() || fields.len() > 64) {
            errors.push(FieldError::new("/payload/fields", "must name 1 to 64 fields"));
        }
        if self.id.is_none() {
            return errors;
        }
        let present = [
            self.filter.is_some(),
            self.query.is_some(),
            self.order_by.is_some(),
            self.limit.is_some(),
            self.cursor.is_some(),
            self.fields.is_some(),
            self.count.is_some(),
        ];
        let combined = Self::LIST_FIELDS.iter().zip(present).filter(|(_, present)| *present);
        errors.extend(
            combined.map(|(field, _)| FieldError::new(format!("/payload/{field}"), "cannot be combined with id")),
        );
        errors
    }
}

/// A filter value: a JSON scalar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// `null`: the field is absent or null.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(String),
}

/// `update`: a JSON merge patch (RFC 7396) for a resource's `data`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    /// The type of the resource.
    pub resource_type: ResourceType,
    /// The resource to change.
    pub id: ResourceId,
    /// Fields to set; a field set to `null` is removed. Fields not named keep their value.
    pub patch: Map<String, Value>,
    /// When present, the update applies only if the resource is at this version (else CONFLICT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<Version>,
}

/// `delete`: removes a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delete {
    /// The type of the resource.
    pub resource_type: ResourceType,
    /// The resource to delete.
    pub id: ResourceId,
    /// When present, the delete applies only if the resource is at this version (else CONFLICT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<Version>,
}

/// `batch` (protocol 1.2): creates, updates and deletes of any types, applied together in one transaction or
/// not at all (docs/protocol.md, 7.8).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// The operations, applied in order: from one to 100 (`MAX_BATCH_OPERATIONS`), each resource at most once.
    pub operations: Vec<Operation>,
}

/// The most operations one `batch` may hold.
pub const MAX_BATCH_OPERATIONS: usize = 100;

impl Batch {
    /// Checks what the field types alone cannot: that there is at least one operation. (The most a batch may hold
    /// is a limit, LIMIT_EXCEEDED, and a resource named twice is found by the server.) Pointers start at the
    /// message root.
    pub fn check(&self) -> Vec<FieldError> {
        if self.operations.is_empty() {
            return vec![FieldError::new("/payload/operations", "must hold at least one operation")];
        }
        Vec::new()
    }
}

/// One operation of a `batch`: the payload of a `create`, `update` or `delete`, with `op` naming which.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// A `create`.
    Create(Create),
    /// An `update`.
    Update(Update),
    /// A `delete`.
    Delete(Delete),
}

/// `subscribe`: live events of a topic, optionally replaying those after `since`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscribe {
    /// `notifications`, a resource type such as `order`, or one resource such as `order:ORD-78901`.
    pub topic: Topic,
    /// Replay every event with a greater `seq` before going live; the reply says whether all could be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Seq>,
    /// Only the resources of a type topic that match this query (protocol 1.1; docs/protocol.md, 8.5): their
    /// changes, and word when one enters or leaves the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Query>,
    /// With `true`, on a type topic (protocol 1.1): the reply carries the first page of what the topic covers now
    /// (what matches the query, when there is one), exactly as of the reply's `seq`; when `since` is recovered,
    /// the replay is sent instead. On a presence topic (1.2): the members present now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<bool>,
}

impl Subscribe {
    /// Checks what the field types alone cannot: a query's bounds, and that `query` and `snapshot` go with a
    /// resource-type topic only. Pointers start at the message root.
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let on_type = matches!(self.topic.kind(), crate::TopicKind::ResourceType(_));
        if let Some(query) = &self.query {
            if on_type {
                errors.extend(query.check("/payload/query"));
            } else {
                errors.push(FieldError::new("/payload/query", "applies to a resource-type topic only"));
            }
        }
        let on_presence = matches!(self.topic.kind(), crate::TopicKind::Presence(_));
        if self.snapshot == Some(true) && !on_type && !on_presence {
            errors.push(FieldError::new("/payload/snapshot", "applies to a resource-type or presence topic only"));
        }
        errors
    }
}

/// `unsubscribe` from a client: ends one subscription of this connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unsubscribe {
    /// The id from the `subscribe` reply.
    pub subscription_id: SubscriptionId,
}
