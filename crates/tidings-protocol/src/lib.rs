//! Tidings protocol v1: the wire types, their codec and their JSON Schemas, and nothing that does I/O.
//!
//! This crate is the only place in the workspace that knows the shape of a message on the wire
//! (docs/protocol.md is the normative text; this crate is its executable form). The server and the
//! clients speak in [`ClientMessage`] and [`ServerMessage`] and call [`decode_client`],
//! [`decode_server`] and [`encode`].

mod client;
mod close;
mod decode;
mod envelope;
mod error;
mod fields;
mod message_type;
mod push;
mod query;
pub mod schema;
mod server;

pub use client::{
    Auth, Batch, ClientInfo, ClientMessage, Connect, Create, Delete, DisconnectRequest, Empty, Operation, Order, Read,
    Scalar, Subscribe, Unsubscribe, Update, MAX_BATCH_OPERATIONS,
};
pub use close::{should_reconnect, CloseCode};
pub use decode::{decode_client, decode_client_payload, decode_server, peek_request_id};
pub use envelope::{encode, normalize_timestamp, now_ms, Envelope, Message, SECONDS_BELOW};
pub use error::{DecodeError, ErrorCode, ErrorPayload, FieldError};
pub use fields::{
    FieldName, FieldPath, Limit, OrderBy, ProtocolVersion, RequestId, ResourceId, ResourceType, Seq, SubscriptionId,
    Text, Topic, TopicKind, UserId, Version, MAX_SAFE_INTEGER,
};
pub use message_type::{MessageType, Side};
pub use push::{Actor, ActorKind, Event, LeaveReason, Level, Notification};
pub use query::{And, Not, Op, Or, Query, Term};
pub use server::{
    AuthSuccess, BatchResult, Connected, Deleted, Disconnect, Heartbeat, Limits, OperationResult, PresenceLimits,
    QueryLimits, RateLimit, ReadResult, Resource, ResourceList, ServerMessage, Subscribed, Unsubscribed,
};

/// The protocol version this crate implements.
pub const PROTOCOL_VERSION: &str = "1.2";

/// The major version: a peer with another major version is refused with UNSUPPORTED_VERSION.
pub const PROTOCOL_MAJOR: u32 = 1;
