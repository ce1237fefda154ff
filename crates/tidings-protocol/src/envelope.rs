//! The envelope every message travels in, `{type, timestamp, requestId?, payload}`, and its encoding.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::client::ClientMessage;
use crate::fields::RequestId;
use crate::message_type::MessageType;
use crate::server::ServerMessage;

/// A message in its envelope. `M` is [`ClientMessage`] or [`ServerMessage`].
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<M> {
    /// When the message was sent, in Unix milliseconds (the decoder turns a client's seconds into milliseconds).
    pub timestamp: u64,
    /// Correlates a reply with its request; pushes have none.
    pub request_id: Option<RequestId>,
    /// The typed message.
    pub message: M,
}

impl<M> Envelope<M> {
    /// A message stamped with the current time.
    pub fn now(request_id: Option<RequestId>, message: M) -> Self {
        Envelope { timestamp: now_ms(), request_id, message }
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// Timestamps below this are Unix seconds, at or above it Unix milliseconds (10^11 ms is March 1973;
/// 10^11 s is the year 5138).
pub const SECONDS_BELOW: f64 = 1e11;

/// Turns a client's timestamp, in seconds or milliseconds, into Unix milliseconds.
pub fn normalize_timestamp(value: f64) -> u64 {
    let ms = if value < SECONDS_BELOW { value * 1000.0 } else { value };
    // Values are checked to be finite, non-negative and at most 2^53 - 1 before they get here.
    ms.round() as u64
}

/// A message type whose payload can be written into an envelope.
pub trait Message {
    /// The envelope `type`.
    fn message_type(&self) -> MessageType;
    /// Writes the payload.
    fn serialize_payload<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;
}

struct Payload<'a, M>(&'a M);

impl<M: Message> Serialize for Payload<'_, M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_payload(serializer)
    }
}

impl<M: Message> Serialize for Envelope<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if self.request_id.is_some() { 4 } else { 3 };
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("type", self.message.message_type().as_str())?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        if let Some(request_id) = &self.request_id {
            map.serialize_entry("requestId", request_id)?;
        }
        map.serialize_entry("payload", &Payload(&self.message))?;
        map.end()
    }
}

/// Writes a message as the JSON text of one WebSocket frame.
pub fn encode<M: Message>(envelope: &Envelope<M>) -> String {
    // Serializing these types cannot fail: every map key is a string and every number is finite.
    serde_json::to_string(envelope).unwrap_or_default()
}

impl Message for ClientMessage {
    fn message_type(&self) -> MessageType {
        ClientMessage::message_type(self)
    }

    fn serialize_payload<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ClientMessage::Connect(p) => p.serialize(s),
            ClientMessage::Disconnect(p) => p.serialize(s),
            ClientMessage::Ping(p) | ClientMessage::Pong(p) => p.serialize(s),
            ClientMessage::Auth(p) => p.serialize(s),
            ClientMessage::Create(p) => p.serialize(s),
            ClientMessage::Read(p) => p.serialize(s),
            ClientMessage::Update(p) => p.serialize(s),
            ClientMessage::Delete(p) => p.serialize(s),
            ClientMessage::Subscribe(p) => p.serialize(s),
            ClientMessage::Unsubscribe(p) => p.serialize(s),
            ClientMessage::Batch(p) => p.serialize(s),
        }
    }
}

impl Message for ServerMessage {
    fn message_type(&self) -> MessageType {
        ServerMessage::message_type(self)
    }

    fn serialize_payload<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ServerMessage::Connect(p) => p.serialize(s),
            ServerMessage::Disconnect(p) => p.serialize(s),
            ServerMessage::Ping(p) | ServerMessage::Pong(p) => p.serialize(s),
            ServerMessage::AuthSuccess(p) => p.serialize(s),
            ServerMessage::AuthFailed(p) | ServerMessage::Error(p) => p.serialize(s),
            ServerMessage::Create(p) | ServerMessage::Update(p) => p.serialize(s),
            ServerMessage::Read(p) => p.serialize(s),
            ServerMessage::Delete(p) => p.serialize(s),
            ServerMessage::Subscribe(p) => p.serialize(s),
            ServerMessage::Unsubscribe(p) => p.serialize(s),
            ServerMessage::Batch(p) => p.serialize(s),
            ServerMessage::Notification(p) => p.serialize(s),
            ServerMessage::Event(p) => p.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Empty;

    #[test]
    fn encoding_writes_the_envelope_fields_in_order_and_omits_a_missing_request_id() {
        let pong = Envelope { timestamp: 1_764_000_000_001, request_id: None, message: ServerMessage::Pong(Empty {}) };
        assert_eq!(encode(&pong), r#"{"type":"pong","timestamp":1764000000001,"payload":{}}"#);
        let request_id = RequestId::new("p-41").ok();
        let ping = Envelope { timestamp: 5, request_id, message: ClientMessage::Ping(Empty {}) };
        assert_eq!(encode(&ping), r#"{"type":"ping","timestamp":5,"requestId":"p-41","payload":{}}"#);
    }

    #[test]
    fn timestamps_below_ten_to_the_eleven_are_seconds() {
        assert_eq!(normalize_timestamp(1_630_423_456.0), 1_630_423_456_000);
        assert_eq!(normalize_timestamp(1_630_423_456.789), 1_630_423_456_789);
        assert_eq!(normalize_timestamp(99_999_999_999.0), 99_999_999_999_000);
        assert_eq!(normalize_timestamp(100_000_000_000.0), 100_000_000_000);
        assert_eq!(normalize_timestamp(0.0), 0);
    }
}
