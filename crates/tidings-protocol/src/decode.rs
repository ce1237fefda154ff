//! Decoding one text frame into a typed message, or into the exact `error` the spec says it earns.
//!
//! The order of checks is the spec's ("Decoding", docs/protocol.md): JSON syntax, then the envelope (every
//! bad envelope field at once, INVALID_MESSAGE), then the type (UNSUPPORTED_TYPE), then the payload (every
//! bad payload field at once, INVALID_PARAMS), then the few rules that no field type can express.
//!
//! Valid messages take the fast path: serde straight into the typed payload. Only a payload that fails is
//! checked again against its JSON Schema, to list every bad field rather than the first.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::{ClientMessage, Empty};
use crate::envelope::{normalize_timestamp, Envelope, MessageType, Side};
use crate::error::{DecodeError, ErrorCode, ErrorPayload, FieldError};
use crate::fields::{RequestId, MAX_SAFE_INTEGER};
use crate::schema;
use crate::server::ServerMessage;
use crate::PROTOCOL_MAJOR;

/// Decodes a message sent by a client, as the server must.
pub fn decode_client(text: &str) -> Result<Envelope<ClientMessage>, DecodeError> {
    decode(text)
}

/// Decodes a message sent by the server, as a client must.
pub fn decode_server(text: &str) -> Result<Envelope<ServerMessage>, DecodeError> {
    decode(text)
}

/// The envelope with each field still raw, so that every field can be judged on its own.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    ty: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    timestamp: Option<&'a RawValue>,
    #[serde(rename = "requestId", borrow, default, deserialize_with = "present")]
    request_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
}

/// Keeps an explicit `null` apart from a missing field: `null` is present, and mistyped.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// One side's message enum: how its payloads decode, and the rules beyond field types.
trait Decode: Sized {
    const SIDE: Side;
    fn decode_payload(ty: MessageType, payload: &str) -> serde_json::Result<Self>;
    fn check(&self) -> Result<(), ErrorPayload>;
}

fn decode<M: Decode>(text: &str) -> Result<Envelope<M>, DecodeError> {
    let raw: RawEnvelope<'_> =
        serde_json::from_str(text).map_err(|e| DecodeError { request_id: None, error: not_an_envelope(text, &e) })?;

    let mut errors = Vec::new();
    let request_id = raw.request_id.and_then(|raw| {
        let id = string(raw).ok_or("must be a string").and_then(|s| RequestId::new(s).map_err(|_| RequestId::REASON));
        id.map_err(|reason| errors.push(FieldError::new("/requestId", reason))).ok()
    });
    let ty = match raw.ty {
        None => Err("is required"),
        Some(raw) => string(raw).ok_or("must be a string"),
    };
    let ty = ty.map_err(|reason| errors.push(FieldError::new("/type", reason))).ok();
    let timestamp = match raw.timestamp {
        None => Err("is required"),
        Some(raw) => timestamp(raw),
    };
    let timestamp = timestamp.map_err(|reason| errors.push(FieldError::new("/timestamp", reason))).ok();
    let payload = match raw.payload {
        None => Err("is required"),
        Some(raw) if raw.get().starts_with('{') => Ok(raw),
        Some(_) => Err("must be an object"),
    };
    let payload = payload.map_err(|reason| errors.push(FieldError::new("/payload", reason))).ok();

    let fail = |error: ErrorPayload| DecodeError { request_id: request_id.clone(), error };
    let (Some(ty), Some(timestamp), Some(payload), true) = (ty, timestamp, payload, errors.is_empty()) else {
        let message = format!("invalid envelope: {}", summary(&errors));
        return Err(fail(ErrorPayload::with_field_errors(ErrorCode::InvalidMessage, message, errors)));
    };

    let Some(message_type) = MessageType::parse(&ty) else {
        let message = format!("unknown message type '{}'", ty.chars().take(64).collect::<String>());
        return Err(fail(ErrorPayload::new(ErrorCode::UnsupportedType, message).with_detail("type", ty.as_ref())));
    };
    if !message_type.sent_by(M::SIDE) {
        let other = if M::SIDE == Side::Client { "server" } else { "client" };
        let message = format!("'{message_type}' is sent only by the {other}");
        let error = ErrorPayload::new(ErrorCode::UnsupportedType, message).with_detail("type", ty.as_ref());
        return Err(fail(error));
    }

    let message = match M::decode_payload(message_type, payload.get()) {
        Ok(message) => message,
        Err(serde_error) => {
            let mut errors = schema::payload_errors(M::SIDE, message_type, payload.get());
            if errors.is_empty() {
                errors.push(FieldError::new("/payload", strip_position(&serde_error.to_string())));
            }
            let message = format!("invalid {message_type} payload: {}", summary(&errors));
            return Err(fail(ErrorPayload::with_field_errors(ErrorCode::InvalidParams, message, errors)));
        }
    };
    message.check().map_err(fail)?;
    Ok(Envelope { timestamp, request_id, message })
}

/// The error for text that does not even parse as an envelope object.
fn not_an_envelope(text: &str, error: &serde_json::Error) -> ErrorPayload {
    use serde_json::error::Category;
    let reason = strip_position(&error.to_string());
    let (pointer, message) = match error.classify() {
        Category::Data if text.trim_start().starts_with('{') => {
            // The only data error an object can raise here is a repeated envelope field.
            let field = reason.split('`').nth(1).unwrap_or_default();
            (format!("/{field}"), format!("the envelope field '{field}' appears more than once"))
        }
        Category::Data => (String::new(), "a message must be a JSON object".to_owned()),
        _ => (String::new(), format!("not valid JSON: {reason}")),
    };
    let field_reason = if pointer.is_empty() { reason } else { "appears more than once".to_owned() };
    let mut payload = ErrorPayload::with_field_errors(
        ErrorCode::InvalidMessage,
        message,
        vec![FieldError::new(pointer, field_reason)],
    );
    if error.line() > 0 {
        payload = payload.with_detail("line", error.line()).with_detail("column", error.column());
    }
    payload
}

/// serde_json appends " at line 1 column 5" to its messages; the pointer already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn summary(errors: &[FieldError]) -> String {
    let mut text = match errors.first() {
        Some(first) if first.pointer.is_empty() => first.reason.clone(),
        Some(first) => format!("{} {}", first.pointer, first.reason),
        None => String::from("rejected"),
    };
    if errors.len() > 1 {
        text.push_str(&format!(" (and {} more)", errors.len() - 1));
    }
    text
}

fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<'_, str>>(raw.get()).ok()
}

fn timestamp(raw: &RawValue) -> Result<u64, &'static str> {
    const REASON: &str = "must be a Unix time in seconds or milliseconds, from 0 to 2^53-1";
    let number = serde_json::from_str::<serde_json::Number>(raw.get()).map_err(|_| "must be a number")?;
    let value = number.as_f64().ok_or(REASON)?;
    // Precision: integers up to 2^53 - 1 are exact in an f64, and that is the bound.
    if !(value.is_finite() && (0.0..=MAX_SAFE_INTEGER as f64).contains(&value)) {
        return Err(REASON);
    }
    Ok(normalize_timestamp(value))
}

fn payload<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str(text)
}

impl Decode for ClientMessage {
    const SIDE: Side = Side::Client;

    fn decode_payload(ty: MessageType, text: &str) -> serde_json::Result<Self> {
        use ClientMessage as M;
        Ok(match ty {
            MessageType::Connect => M::Connect(payload(text)?),
            MessageType::Disconnect => M::Disconnect(payload(text)?),
            MessageType::Ping => M::Ping(payload::<Empty>(text)?),
            MessageType::Pong => M::Pong(payload::<Empty>(text)?),
            MessageType::Auth => M::Auth(payload(text)?),
            MessageType::Create => M::Create(payload(text)?),
            MessageType::Read => M::Read(payload(text)?),
            MessageType::Update => M::Update(payload(text)?),
            MessageType::Delete => M::Delete(payload(text)?),
            MessageType::Subscribe => M::Subscribe(payload(text)?),
            MessageType::Unsubscribe => M::Unsubscribe(payload(text)?),
            // `decode` has already refused the types a client may not send.
            other => return Err(serde::de::Error::custom(format!("'{other}' is sent only by the server"))),
        })
    }

    fn check(&self) -> Result<(), ErrorPayload> {
        match self {
            ClientMessage::Connect(connect) if connect.protocol_version.major() != PROTOCOL_MAJOR => {
                let message = format!(
                    "protocol version {} is not supported; this server speaks {}",
                    connect.protocol_version,
                    crate::PROTOCOL_VERSION
                );
                Err(ErrorPayload::new(ErrorCode::UnsupportedVersion, message)
                    .with_detail("requested", connect.protocol_version.as_str())
                    .with_detail("supported", vec![crate::PROTOCOL_VERSION]))
            }
            ClientMessage::Read(read) => {
                let errors = read.check();
                if errors.is_empty() {
                    return Ok(());
                }
                let message = format!("invalid read payload: {}", summary(&errors));
                Err(ErrorPayload::with_field_errors(ErrorCode::InvalidParams, message, errors))
            }
            _ => Ok(()),
        }
    }
}

impl Decode for ServerMessage {
    const SIDE: Side = Side::Server;

    fn decode_payload(ty: MessageType, text: &str) -> serde_json::Result<Self> {
        use ServerMessage as M;
        Ok(match ty {
            MessageType::Connect => M::Connect(payload(text)?),
            MessageType::Disconnect => M::Disconnect(payload(text)?),
            MessageType::Ping => M::Ping(payload::<Empty>(text)?),
            MessageType::Pong => M::Pong(payload::<Empty>(text)?),
            MessageType::AuthSuccess => M::AuthSuccess(payload(text)?),
            MessageType::AuthFailed => M::AuthFailed(payload(text)?),
            MessageType::Create => M::Create(payload(text)?),
            MessageType::Read => M::Read(payload(text)?),
            MessageType::Update => M::Update(payload(text)?),
            MessageType::Delete => M::Delete(payload(text)?),
            MessageType::Subscribe => M::Subscribe(payload(text)?),
            MessageType::Unsubscribe => M::Unsubscribe(payload(text)?),
            MessageType::Notification => M::Notification(payload(text)?),
            MessageType::Event => M::Event(payload(text)?),
            MessageType::Error => M::Error(payload(text)?),
            MessageType::Auth => return Err(serde::de::Error::custom("'auth' is sent only by the client")),
        })
    }

    fn check(&self) -> Result<(), ErrorPayload> {
        Ok(())
    }
}
