//! Human-friendly durations such as `90`, `90s`, `15m`, `6h`, `2d`.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: expected a whole number with an optional unit s, m, h or d (e.g. 90, 90s, 15m, 6h, 2d)")]
pub struct DurationError {
    /// The rejected text.
    pub input: String,
}

/// Parses a whole number of seconds, optionally suffixed by `s`, `m`, `h` or
/// `d` (seconds, minutes, hours, days). Surrounding whitespace is ignored;
/// signs, fractions, spaces before the unit and overflow are rejected.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        input: input.to_owned(),
    };
    let text = input.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&text[..at], c),
        _ => (text, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    let number: u64 = digits.parse().map_err(|_| error())?;
    let multiplier: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 60 * 60,
        'd' => 24 * 60 * 60,
        _ => return Err(error()),
    };
    number
        .checked_mul(multiplier)
        .map(Duration::from_secs)
        .ok_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_seconds_and_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "s",
            "-5",
            "+5",
            "1.5h",
            "6 h",
            "6H",
            "6w",
            "h6",
            "abc",
            "18446744073709551615d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_duration("6x").unwrap_err().to_string(),
            "invalid duration \"6x\": expected a whole number with an optional unit s, m, h or d (e.g. 90, 90s, 15m, 6h, 2d)"
        );
    }
}
