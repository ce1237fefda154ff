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

/// How deeply a message may nest objects and arrays: the envelope is level 1, its payload level 2.
const MAX_DEPTH: usize = 128;

/// The whitespace JSON allows around a value.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

fn decode<M: Decode>(text: &str) -> Result<Envelope<M>, DecodeError> {
    // Checked first: serde would read an array as a struct, field by field.
    if !text.trim_start_matches(JSON_WHITESPACE).starts_with('{') {
        return Err(DecodeError { request_id: None, error: not_an_object(text) });
    }
    let raw: RawEnvelope<'_> = serde_json::from_str(text)
        .map_err(|e| DecodeError { request_id: request_id_alone(text), error: not_an_envelope(&e) })?;

    let mut errors = Vec::new();
    let request_id = raw.request_id.and_then(|raw| {
        let id = string(raw).ok_or("must be a string").and_then(|s| RequestId::new(s).map_err(|_| RequestId::REASON));
        id.map_err(|reason| errors.push(FieldError::new("/requestId", reason))).ok()
    });
    // Raw fields are read without a depth limit, so the limit is checked here, for the whole message at once.
    if nests_deeper_than(text, MAX_DEPTH) {
        let reason = format!("nests objects and arrays more than {MAX_DEPTH} levels deep");
        let message = format!("the message {reason}");
        let error =
            ErrorPayload::with_field_errors(ErrorCode::InvalidMessage, message, vec![FieldError::new("", reason)]);
        return Err(DecodeError { request_id, error });
    }
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

/// The error for text that is not a JSON object: not JSON at all, or another JSON value.
fn not_an_object(text: &str) -> ErrorPayload {
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Err(error) => not_an_envelope(&error),
        Ok(_) => ErrorPayload::with_field_errors(
            ErrorCode::InvalidMessage,
            "a message must be a JSON object",
            vec![FieldError::new("", "must be an object")],
        ),
    }
}

/// The error for an object that does not parse as an envelope.
fn not_an_envelope(error: &serde_json::Error) -> ErrorPayload {
    use serde_json::error::Category;
    let reason = strip_position(&error.to_string());
    let (pointer, message) = match error.classify() {
        Category::Data => {
            // The only data error an object can raise here is a repeated envelope field.
            let field = reason.split('`').nth(1).unwrap_or_default();
            (format!("/{field}"), format!("the envelope field '{field}' appears more than once"))
        }
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

/// The requestId of an object whose envelope could not be read (a repeated field), when it is itself valid,
/// so that the error still reaches the caller's callback.
fn request_id_alone(text: &str) -> Option<RequestId> {
    #[derive(Deserialize)]
    struct OnlyRequestId<'a> {
        #[serde(rename = "requestId", borrow, default)]
        request_id: Option<Cow<'a, str>>,
    }
    // Fails, as it should, when the requestId itself is repeated or is not a string.
    let only: OnlyRequestId<'_> = serde_json::from_str(text).ok()?;
    RequestId::new(only.request_id?).ok()
}

/// Whether JSON `text` nests objects and arrays more than `max` levels deep.
fn nests_deeper_than(text: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A create whose message nests `depth` levels: envelope, payload, then `data` and objects inside it.
    fn create_nested(depth: usize) -> String {
        let inner = depth - 2;
        let data = format!("{}{{}}{}", "{\"a\":".repeat(inner - 1), "}".repeat(inner - 1));
        format!(
            r#"{{"type":"create","timestamp":1,"requestId":"r1","payload":{{"resourceType":"order","data":{data}}}}}"#
        )
    }

    #[test]
    fn messages_may_nest_up_to_the_limit_and_no_deeper() {
        assert!(decode_client(&create_nested(MAX_DEPTH)).is_ok());
        let error = decode_client(&create_nested(MAX_DEPTH + 1)).err().map(|e| (e.error.code, e.request_id));
        assert_eq!(error, Some((ErrorCode::InvalidMessage, RequestId::new("r1").ok())));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(!nests_deeper_than(r#"{"a":"[[[[\"[[["}"#, 1));
        assert!(nests_deeper_than(r#"{"a":"]]]","b":[{}]}"#, 2));
    }

    #[test]
    fn an_array_is_never_an_envelope() {
        let error = decode_client(r#"["ping", 1, "r1", {}]"#).err().map(|e| e.error.code);
        assert_eq!(error, Some(ErrorCode::InvalidMessage));
    }
}
