//! Error codes, the `error` payload and what the decoder returns when a message is rejected.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::fields::RequestId;

/// Every error code of protocol v1 (docs/protocol.md, "Error codes").
///
/// A client that meets a code it does not know treats it like [`ErrorCode::Internal`]; on decode such a code
/// becomes [`ErrorCode::Unknown`], so a v1.0 client still reads errors from a later v1.x server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The text is not JSON, not an object, or its envelope is wrong.
    InvalidMessage,
    /// The payload is wrong: `details.errors` lists every bad field.
    InvalidParams,
    /// The `type` is unknown, or not one that the sender's side may send.
    UnsupportedType,
    /// The type is valid but not in the connection's current state (auth before connect, a second connect).
    InvalidState,
    /// The operation needs an authenticated session, or a token was rejected.
    Unauthorized,
    /// The user is authenticated but not allowed to do this.
    Forbidden,
    /// The resource, subscription or notification does not exist, or the user may not know it exists.
    NotFound,
    /// A stale `expectedVersion`, a topic already subscribed, or a requestId reused with another create.
    Conflict,
    /// Too many messages: `details.retryAfterMs` says when to try again.
    RateLimited,
    /// The message is larger than the advertised `maxMessageBytes`.
    PayloadTooLarge,
    /// A configured count limit is reached, such as subscriptions per connection.
    LimitExceeded,
    /// The session's token has expired: send a fresh `auth` within `details.graceMs`.
    TokenExpired,
    /// The major version in `connect` is not one the server speaks.
    UnsupportedVersion,
    /// A dependency (storage, broker) is unavailable; the request may be retried.
    Unavailable,
    /// The server failed unexpectedly; nothing about the request was wrong.
    Internal,
    /// A code this version of the protocol crate does not know (sent by a newer server).
    Unknown,
}

impl ErrorCode {
    /// Every code of protocol v1, in the order of the spec's table.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidMessage,
        ErrorCode::InvalidParams,
        ErrorCode::UnsupportedType,
        ErrorCode::InvalidState,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge,
        ErrorCode::LimitExceeded,
        ErrorCode::TokenExpired,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "INVALID_MESSAGE",
            ErrorCode::InvalidParams => "INVALID_PARAMS",
            ErrorCode::UnsupportedType => "UNSUPPORTED_TYPE",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }

    /// The form of every code, known or not, as the schema's pattern writes it.
    pub const PATTERN: &'static str = "^[A-Z][A-Z_]{0,63}$";
    /// Why a code is rejected.
    pub const REASON: &'static str =
        "must be an error code: an uppercase letter followed by up to 63 uppercase letters or '_'";

    /// Whether `code` has the form of an error code, as [`ErrorCode::PATTERN`] says.
    pub fn is_well_formed(code: &str) -> bool {
        let mut bytes = code.bytes();
        code.len() <= 64
            && bytes.next().is_some_and(|b| b.is_ascii_uppercase())
            && bytes.all(|b| b.is_ascii_uppercase() || b == b'_')
    }

    /// Looks a wire code up; unknown codes become [`ErrorCode::Unknown`].
    pub fn parse(code: &str) -> ErrorCode {
        Self::ALL.into_iter().find(|c| c.as_str() == code).unwrap_or(ErrorCode::Unknown)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = Cow::<'de, str>::deserialize(deserializer)?;
        // Unknown codes are welcome, but only in the form the schema publishes for every code.
        if !ErrorCode::is_well_formed(&code) {
            return Err(serde::de::Error::custom(ErrorCode::REASON));
        }
        Ok(ErrorCode::parse(&code))
    }
}

impl JsonSchema for ErrorCode {
    fn schema_name() -> Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Open on purpose: later minor versions may add codes, and clients must read them (as INTERNAL).
        let known: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
        json_schema!({
            "type": "string",
            "pattern": Self::PATTERN,
            "description": format!("An error code. Protocol v1 defines: {}.", known.join(", ")),
        })
    }
}

/// One bad field: where it is (a JSON pointer from the message root) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    /// RFC 6901 pointer into the whole message, such as `/payload/data/quantity`.
    pub pointer: String,
    /// What is wrong, in a sentence fragment: "must be at least 1".
    pub reason: String,
}

impl FieldError {
    /// A field error at `pointer`.
    pub fn new(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError { pointer: pointer.into(), reason: reason.into() }
    }
}

/// The payload of `error` and `auth_failed`: `{code, message, details?}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorPayload {
    /// One of the spec's error codes.
    pub code: ErrorCode,
    /// A sentence for people; clients decide by `code`, never by `message`.
    pub message: String,
    /// Facts about the error, by code: `errors` for INVALID_PARAMS, `retryAfterMs` for RATE_LIMITED, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
}

impl ErrorPayload {
    /// An error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorPayload { code, message: message.into(), details: None }
    }

    /// Adds one entry to `details`.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.get_or_insert_with(Map::new).insert(key.to_owned(), value.into());
        self
    }

    /// An error whose `details.errors` lists bad fields, as INVALID_MESSAGE and INVALID_PARAMS do.
    pub fn with_field_errors(code: ErrorCode, message: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let errors = serde_json::to_value(errors).unwrap_or(Value::Null);
        ErrorPayload::new(code, message).with_detail("errors", errors)
    }

    /// The bad fields listed in `details.errors`, if any.
    pub fn field_errors(&self) -> Vec<FieldError> {
        self.details
            .as_ref()
            .and_then(|d| d.get("errors"))
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default()
    }
}

impl fmt::Display for ErrorPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorPayload {}

/// A message the decoder rejected: the `error` payload to answer with, and the requestId to answer to.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeError {
    /// The message's requestId when it had a valid one, so the error reaches the caller's callback.
    pub request_id: Option<RequestId>,
    /// What to send back.
    pub error: ErrorPayload,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for DecodeError {}
