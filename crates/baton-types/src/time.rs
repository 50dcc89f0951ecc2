//! Keystone's timestamp renderings.
//!
//! Token timestamps are printed as `YYYY-MM-DDTHH:MM:SS.000000Z`: Keystone truncates to the second
//! and then prints microseconds, so the fraction is always zero. `password_expires_at` has the same
//! form without the `Z`. Parsing accepts any fraction and an optional `Z`/offset, since other
//! implementations (or older Keystones) may send one.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};

/// The strftime form of token timestamps: whole seconds, a zero fraction, `Z`.
pub const KEYSTONE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S.000000Z";

/// Renders a token timestamp the way Keystone does.
pub fn render(t: &DateTime<Utc>) -> String {
    t.trunc_subsecs(0).format(KEYSTONE_FORMAT).to_string()
}

/// Parses a Keystone timestamp; accepts `Z`, an explicit offset, or none (taken as UTC).
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

/// serde adapter for `expires_at` / `issued_at`.
pub mod keystone {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the timestamp as Keystone does.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::render(t))
    }

    /// Reads a timestamp in any form [`parse`](super::parse) takes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {text}")))
    }
}

/// serde adapter for `password_expires_at` (no `Z`, may be null).
pub mod keystone_naive_opt {
    use chrono::{NaiveDateTime, SubsecRound};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the timestamp without `Z`, or null.
    pub fn serialize<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(
                &t.trunc_subsecs(0)
                    .format("%Y-%m-%dT%H:%M:%S.000000")
                    .to_string(),
            ),
            None => s.serialize_none(),
        }
    }

    /// Reads a timestamp in any form [`parse`](super::parse) takes, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDateTime>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        match text {
            None => Ok(None),
            Some(text) => super::parse(&text)
                .map(|t| Some(t.naive_utc()))
                .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {text}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn renders_with_zero_microseconds_like_keystone() {
        let t = Utc.timestamp_opt(1_893_499_200, 123_456_789).unwrap();
        assert_eq!(render(&t), "2030-01-01T12:00:00.000000Z");
    }

    #[test]
    fn parses_keystone_and_rfc3339_forms() {
        let want = Utc.timestamp_opt(1_893_499_200, 0).unwrap();
        assert_eq!(parse("2030-01-01T12:00:00.000000Z"), Some(want));
        assert_eq!(parse("2030-01-01T12:00:00Z"), Some(want));
        assert_eq!(parse("2030-01-01T12:00:00"), Some(want));
        assert_eq!(parse("yesterday"), None);
    }
}
