//! Validated field types: strings and numbers whose constraints the spec fixes (docs/protocol.md, "Field types").
//!
//! Each type checks its constraint when it is deserialized, so a payload that decodes is a payload that is
//! valid, and describes the same constraint to the JSON Schema generator, so schema/ and the decoder agree.
//! The vectors test runs every case through both and fails when they do not.

use std::borrow::Cow;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize};

/// The largest integer a JavaScript client can hold exactly (2^53 - 1): the bound of every integer on the wire.
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Defines a string newtype whose constraint is checked on deserialization and published in the schema.
macro_rules! checked_string {
    (
        $(#[$doc:meta])*
        $name:ident {
            pattern: $pattern:literal,
            max_len: $max:literal,
            check: $check:expr,
            reason: $reason:literal $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The regular expression that the JSON Schema publishes for this field.
            pub const PATTERN: &'static str = $pattern;
            /// Why a value is rejected, as the spec's error details say it.
            pub const REASON: &'static str = $reason;

            /// Checks `value` against the spec's constraint.
            pub fn new(value: impl Into<String>) -> Result<Self, &'static str> {
                let value = value.into();
                let check: fn(&str) -> bool = $check;
                if value.is_empty() || value.chars().count() > $max || !check(&value) {
                    return Err($reason);
                }
                Ok(Self(value))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = Cow::<'de, str>::deserialize(deserializer)?;
                Self::new(value.into_owned()).map_err(de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $reason,
                })
            }
        }
    };
}

fn is_printable_ascii(value: &str) -> bool {
    value.bytes().all(|b| (b' '..=b'~').contains(&b))
}

fn is_name(value: &str, first: fn(u8) -> bool, rest: fn(u8) -> bool) -> bool {
    let mut bytes = value.bytes();
    bytes.next().is_some_and(first) && bytes.all(rest)
}

fn is_resource_type(value: &str) -> bool {
    value.len() <= 64
        && is_name(value, |b| b.is_ascii_lowercase(), |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn is_resource_id(value: &str) -> bool {
    value.len() <= 128
        && is_name(
            value,
            |b| b.is_ascii_alphanumeric(),
            |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'),
        )
}

fn is_field_name(value: &str) -> bool {
    value.len() <= 64
        && is_name(value, |b| b.is_ascii_alphabetic() || b == b'_', |b| b.is_ascii_alphanumeric() || b == b'_')
}

checked_string! {
    /// A client's correlation id: 1 to 128 printable ASCII characters (UUIDs, `req-123`).
    RequestId {
        pattern: "^[ -~]{1,128}$",
        max_len: 128,
        check: is_printable_ascii,
        reason: "must be 1 to 128 printable ASCII characters",
    }
}

checked_string! {
    /// The name of a resource type, such as `order`.
    ResourceType {
        pattern: "^[a-z][a-z0-9_]{0,63}$",
        max_len: 64,
        check: is_resource_type,
        reason: "must be a lowercase letter followed by up to 63 lowercase letters, digits or underscores",
    }
}

checked_string! {
    /// The id of a resource, such as `ORD-78901`. No slashes, spaces or colons, so ids are safe in URLs and topics.
    ResourceId {
        pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        max_len: 128,
        check: is_resource_id,
        reason: "must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit",
    }
}

checked_string! {
    /// A top-level field of a resource's `data`, as used by list filters and ordering.
    FieldName {
        pattern: "^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        max_len: 64,
        check: is_field_name,
        reason: "must be a field name: a letter or '_' followed by up to 63 letters, digits or '_'",
    }
}

/// A query's field: one of the resource's own, or `data.` and 1 to 8 field names.
fn is_field_path(value: &str) -> bool {
    if ["id", "ownerId", "version", "createdAt", "updatedAt"].contains(&value) {
        return true;
    }
    let Some(path) = value.strip_prefix("data.") else { return false };
    let names: Vec<&str> = path.split('.').collect();
    names.len() <= 8 && names.iter().all(|name| is_field_name(name))
}

checked_string! {
    /// What a query term compares: `id`, `ownerId`, `version`, `createdAt`, `updatedAt`, or `data.` and a path of
    /// 1 to 8 field names into the resource's data (`data.customer.city`).
    FieldPath {
        pattern: "^(id|ownerId|version|createdAt|updatedAt|data(\\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,8})$",
        max_len: 525,
        check: is_field_path,
        reason: "must be id, ownerId, version, createdAt, updatedAt, or data. and 1 to 8 field names joined by '.'",
    }
}

checked_string! {
    /// The order of a list: a field name, ascending, or `-` and a field name, descending.
    OrderBy {
        pattern: "^-?[A-Za-z_][A-Za-z0-9_]{0,63}$",
        max_len: 65,
        check: |v| is_field_name(v.strip_prefix('-').unwrap_or(v)),
        reason: "must be a field name, or '-' and a field name for descending order",
    }
}

impl OrderBy {
    /// The field the list is ordered by.
    pub fn field(&self) -> &str {
        self.0.strip_prefix('-').unwrap_or(&self.0)
    }

    /// Whether the order is descending.
    pub fn descending(&self) -> bool {
        self.0.starts_with('-')
    }
}

checked_string! {
    /// A subscription topic: `notifications`, a resource type (`order`), one resource (`order:ORD-78901`), or
    /// (protocol 1.2) the presence of either (`presence:order:ORD-78901`), in at most 200 characters (a
    /// subscription id's bound, since a topic is its subscription's id).
    Topic {
        pattern: "^(notifications|(presence:)?[a-z][a-z0-9_]{0,63}(:[A-Za-z0-9][A-Za-z0-9._-]{0,127})?)$",
        max_len: 200,
        check: |v| v == "notifications" || is_event_topic(v.strip_prefix("presence:").unwrap_or(v)),
        reason: "must be 'notifications', a resource type such as 'order', a resource such as 'order:ORD-1', or \
                 the presence of one of these, such as 'presence:order:ORD-1'",
    }
}

/// Whether `v` names a resource type (`order`) or one resource (`order:ORD-1`).
fn is_event_topic(v: &str) -> bool {
    match v.split_once(':') {
        Some((ty, id)) => is_resource_type(ty) && is_resource_id(id),
        None => is_resource_type(v),
    }
}

/// What a topic names, parsed from its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicKind<'a> {
    /// The user's own notifications.
    Notifications,
    /// Every resource of a type that the user may read.
    ResourceType(&'a str),
    /// One resource.
    Resource(&'a str, &'a str),
    /// Who is present at a resource type's or a resource's topic, which this holds (protocol 1.2).
    Presence(&'a str),
}

impl Topic {
    /// The name of the notifications topic, which no resource type may take.
    pub const NOTIFICATIONS: &'static str = "notifications";

    /// The name of the built-in type of presence members, and the start of presence topics, which no resource
    /// type may take either.
    pub const PRESENCE: &'static str = "presence";

    /// What this topic names.
    pub fn kind(&self) -> TopicKind<'_> {
        if self.0 == Self::NOTIFICATIONS {
            return TopicKind::Notifications;
        }
        if let Some(of) = self.0.strip_prefix("presence:") {
            return TopicKind::Presence(of);
        }
        match self.0.split_once(':') {
            Some((ty, id)) => TopicKind::Resource(ty, id),
            None => TopicKind::ResourceType(&self.0),
        }
    }
}

checked_string! {
    /// A protocol version, `MAJOR.MINOR` or `MAJOR`, such as `1.0`.
    ProtocolVersion {
        pattern: "^[0-9]{1,4}(\\.[0-9]{1,4})?$",
        max_len: 9,
        check: |v| {
            let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
            [major, minor].iter().all(|p| (1..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        },
        reason: "must be a version such as '1.0'",
    }
}

impl ProtocolVersion {
    /// The major version, which decides compatibility.
    pub fn major(&self) -> u32 {
        let major = self.0.split('.').next().unwrap_or_default();
        major.parse().unwrap_or(u32::MAX)
    }
}

/// Free text of `MIN` to `MAX` characters (Unicode scalar values, as JSON Schema counts them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Text<const MIN: usize, const MAX: usize>(String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    /// Checks the length of `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        let len = value.chars().count();
        if (MIN..=MAX).contains(&len) {
            Ok(Self(value))
        } else {
            Err(Self::reason())
        }
    }

    fn reason() -> String {
        if MIN == 0 {
            format!("must be at most {MAX} characters")
        } else {
            format!("must be {MIN} to {MAX} characters")
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as an owned `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MIN: usize, const MAX: usize> fmt::Display for Text<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de, const MIN: usize, const MAX: usize> Deserialize<'de> for Text<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Cow::<'de, str>::deserialize(deserializer)?;
        Self::new(value.into_owned()).map_err(de::Error::custom)
    }
}

impl<const MIN: usize, const MAX: usize> JsonSchema for Text<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Text{MIN}To{MAX}").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut schema = json_schema!({ "type": "string", "maxLength": MAX });
        if MIN > 0 {
            schema.insert("minLength".to_owned(), MIN.into());
        }
        schema
    }
}

/// A user id: the `sub` claim of the user's token.
pub type UserId = Text<1, 256>;

/// A subscription's id, unique within its connection, chosen by the server (room for any topic).
pub type SubscriptionId = Text<1, 200>;

/// A JSON number as an integer from 0 to 2^53-1, if it is one. `10.0` is the integer 10, as it is for JSON Schema's
/// `"type": "integer"` and for JavaScript, which cannot tell the two apart.
fn whole_number(number: &serde_json::Number) -> Option<u64> {
    let value = match number.as_u64() {
        Some(value) => value,
        None => {
            let value = number.as_f64().filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= MAX_SAFE_INTEGER as f64)?;
            // The value is a whole number within 0..=2^53-1, so the conversion is exact.
            value as u64
        }
    };
    (value <= MAX_SAFE_INTEGER).then_some(value)
}

/// Why a plain integer field of the wire (a time, a duration, a size) is rejected.
const SAFE_INTEGER_REASON: &str = "must be an integer from 0 to 2^53-1 that fits the field";

/// Deserializes a plain integer field (`u64`, `u32`, `u16`): an integer from 0 to 2^53-1 that fits the field's
/// type, as its schema publishes; `100.0` counts, as for the schema.
pub(crate) fn safe_integer<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<T, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    whole_number(&number).and_then(|n| T::try_from(n).ok()).ok_or_else(|| de::Error::custom(SAFE_INTEGER_REASON))
}

/// [`safe_integer`] for an optional field, where `null` counts as absent.
pub(crate) fn optional_safe_integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let number = Option::<serde_json::Number>::deserialize(deserializer)?;
    number.map(|n| whole_number(&n).ok_or_else(|| de::Error::custom(SAFE_INTEGER_REASON))).transpose()
}

/// Defines an integer newtype with bounds checked on deserialization and published in the schema.
macro_rules! bounded_integer {
    ($(#[$doc:meta])* $name:ident, $inner:ty, min: $min:expr, max: $max:expr, reason: $reason:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name($inner);

        impl $name {
            /// The smallest value allowed.
            pub const MIN: $inner = $min;
            /// The largest value allowed.
            pub const MAX: $inner = $max;

            /// The value brought into the bounds.
            pub fn saturating(value: $inner) -> Self {
                Self(value.clamp(Self::MIN, Self::MAX))
            }

            /// Checks `value` against the bounds.
            pub fn new(value: $inner) -> Result<Self, &'static str> {
                if (Self::MIN..=Self::MAX).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err($reason)
                }
            }

            /// The number.
            pub fn get(self) -> $inner {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let number = serde_json::Number::deserialize(deserializer)?;
                whole_number(&number)
                    .and_then(|value| <$inner>::try_from(value).ok())
                    .ok_or($reason)
                    .and_then(Self::new)
                    .map_err(de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "integer",
                    "minimum": $min,
                    "maximum": $max,
                    "description": $reason,
                })
            }
        }
    };
}

bounded_integer! {
    /// A position in a topic's event stream; 0 means "before the first event".
    Seq, u64, min: 0, max: MAX_SAFE_INTEGER, reason: "must be an integer from 0 to 2^53-1"
}

bounded_integer! {
    /// A resource's version: 1 after create, one more after each update.
    Version, u64, min: 1, max: MAX_SAFE_INTEGER, reason: "must be an integer from 1 to 2^53-1"
}

bounded_integer! {
    /// How many items one list read returns at most.
    Limit, u32, min: 1, max: 100, reason: "must be an integer from 1 to 100"
}

impl Limit {
    /// The page size when a list read names none.
    pub const DEFAULT: Limit = Limit(20);
    /// The largest page: also a query subscription's snapshot.
    pub const LARGEST: Limit = Limit(100);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_into_their_kind() {
        let topic = |s: &str| Topic::new(s).expect("valid topic");
        assert_eq!(topic("notifications").kind(), TopicKind::Notifications);
        assert_eq!(topic("order").kind(), TopicKind::ResourceType("order"));
        assert_eq!(topic("order:ORD-1").kind(), TopicKind::Resource("order", "ORD-1"));
        assert_eq!(topic("presence:order").kind(), TopicKind::Presence("order"));
        assert_eq!(topic("presence:order:ORD-1").kind(), TopicKind::Presence("order:ORD-1"));
        for bad in ["", "Order", "order:", "order:../x", "order:a:b", "9order", "presence:"] {
            assert!(Topic::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn bounds_are_enforced_on_deserialize() {
        assert!(serde_json::from_str::<Limit>("0").is_err());
        assert!(serde_json::from_str::<Limit>("101").is_err());
        assert_eq!(serde_json::from_str::<Limit>("100").ok(), Limit::new(100).ok());
        assert!(serde_json::from_str::<Version>("0").is_err());
        assert!(serde_json::from_str::<Seq>("9007199254740992").is_err());
        assert!(serde_json::from_str::<Seq>("-1").is_err());
        assert!(serde_json::from_str::<Seq>("1.5").is_err());
        assert_eq!(serde_json::from_str::<Limit>("10.0").ok(), Limit::new(10).ok());
        assert!(serde_json::from_str::<Version>("-1.0").is_err());
    }

    #[test]
    fn plain_integers_stay_within_2_pow_53() {
        let read = |s: &str| safe_integer::<_, u64>(&mut serde_json::Deserializer::from_str(s)).ok();
        assert_eq!(read("9007199254740991"), Some(MAX_SAFE_INTEGER));
        assert_eq!(read("9007199254740992"), None);
        assert_eq!(read("1630423456000.0"), Some(1_630_423_456_000));
        assert_eq!(read("-1"), None);
        assert_eq!(read("0.5"), None);
        let code = |s: &str| safe_integer::<_, u16>(&mut serde_json::Deserializer::from_str(s)).ok();
        assert_eq!(code("1001.0"), Some(1001));
        assert_eq!(code("65536"), None);
    }

    #[test]
    fn strings_are_checked_by_length_and_alphabet() {
        assert!(RequestId::new("123e4567-e89b-12d3-a456-426614174000").is_ok());
        assert!(RequestId::new("x".repeat(129)).is_err());
        assert!(RequestId::new("tab\there").is_err());
        assert!(ResourceId::new("ORD-78901").is_ok());
        assert!(ResourceId::new("../etc/passwd").is_err());
        assert!(ResourceId::new("1' OR '1'='1").is_err());
        assert!(ProtocolVersion::new("1.0").is_ok_and(|v| v.major() == 1));
        assert!(ProtocolVersion::new("2").is_ok_and(|v| v.major() == 2));
        assert!(ProtocolVersion::new("v1").is_err());
        assert!(OrderBy::new("-createdAt").is_ok_and(|o| o.descending() && o.field() == "createdAt"));
    }
}
