//! Durations in the settings: every `*_ms` setting takes a whole number of milliseconds, or text with a unit as
//! people write it (`"25s"`, `"1m 30s"`, `"500ms"`, `"7days"`), read by `humantime`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// Reads a duration setting as milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Number(u64),
        Text(String),
    }
    match Given::deserialize(deserializer)? {
        Given::Number(ms) => Ok(ms),
        Given::Text(text) => parse(&text).map_err(D::Error::custom),
    }
}

/// `"25000"` (an environment variable's text), or a number with a unit, as milliseconds.
fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let duration = humantime::parse_duration(text).map_err(|e| {
        format!("'{text}' is not a duration ({e}): give milliseconds, such as 25000, or a number with a unit: 25s, 1m, 500ms, 7days")
    })?;
    u64::try_from(duration.as_millis()).map_err(|_| format!("'{text}' is too long a duration"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn milliseconds_and_durations_with_units_are_read() {
        for (text, ms) in
            [("25000", 25_000), ("25s", 25_000), ("1m 30s", 90_000), ("500ms", 500), ("7days", 604_800_000)]
        {
            assert_eq!(parse(text), Ok(ms), "{text}");
        }
        for bad in ["soon", "25 parsecs", "-5s", ""] {
            let error = parse(bad).expect_err(bad);
            assert!(error.contains("25s"), "the error says what to write: {error}");
        }
    }
}
