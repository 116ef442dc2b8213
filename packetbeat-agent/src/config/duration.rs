//! Go-style durations (`"10s"`, `"1m30s"`, `"500ms"`, `"-1s"`) as libbeat configs write them, and
//! the serde adapters every config section uses.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Parses a Go `time.Duration` string: decimal numbers with optional fraction, each with a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `"10s"`, `"1.5h"`, `"1m30s"`, `"500ms"`, or `"0"`.
/// A negative duration (libbeat's "disabled" marker, e.g. `period: -1s`) gives `None`.
///
/// # Errors
/// A message naming the bad input when it is not a Go duration.
pub fn parse_go_duration(input: &str) -> Result<Option<Duration>, String> {
    let bad = || format!("invalid duration {input:?} (expected e.g. \"10s\", \"500ms\", \"1m30s\")");
    let s = input.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if s == "0" {
        return Ok((!negative).then_some(Duration::ZERO));
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = tail;
    }
    let d = Duration::try_from_secs_f64(total).map_err(|_| bad())?;
    Ok((!negative).then_some(d))
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Option<Duration>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"10s\" or a number of seconds")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_go_duration(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Duration::from_secs(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).ok().map(Duration::from_secs))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v < 0.0 {
            return Ok(None);
        }
        Duration::try_from_secs_f64(v).map(Some).map_err(E::custom)
    }
}

/// serde adapter: a Go duration string or a number of seconds; negative → `None`.
///
/// # Errors
/// When the value is not a valid duration.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// serde adapter for a duration that must be set and not negative.
///
/// # Errors
/// When the value is not a valid non-negative duration.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    deserialize_opt(d)?.ok_or_else(|| de::Error::custom("duration must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("10s"), Ok(Some(Duration::from_secs(10))));
        assert_eq!(parse_go_duration("1m30s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(parse_go_duration("500ms"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(parse_go_duration("1.5h"), Ok(Some(Duration::from_secs(5400))));
        assert_eq!(parse_go_duration("250us"), Ok(Some(Duration::from_micros(250))));
        assert_eq!(parse_go_duration("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(parse_go_duration("-1s"), Ok(None));
        for bad in ["10x", "s", "", "10", ".s", "-"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_are_seconds() {
        let d: serde_json::Value = serde_json::json!(3);
        assert_eq!(deserialize(d).unwrap(), Duration::from_secs(3));
        assert_eq!(deserialize_opt(serde_json::json!(-1)).unwrap(), None);
        assert!(deserialize(serde_json::json!("-1s")).is_err());
    }
}
