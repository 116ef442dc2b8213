//! Go-style durations (`"10s"`, `"1m30s"`, `"500ms"`, `"-1s"`) as libbeat configs write them.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a Go duration string; a bare number is taken as seconds (libbeat accepts that too).
/// Negative durations (Packetbeat's "disabled" marker, e.g. `period: -1s`) give `None`.
///
/// # Errors
/// A message naming what is wrong with `s`.
pub fn parse_go_duration(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs >= 0.0).then(|| Duration::from_secs_f64(secs)));
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("invalid duration {s:?}: missing unit (ns, us, ms, s, m, h)")),
            u => return Err(format!("invalid duration {s:?}: unknown unit {u:?}")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok((!neg).then(|| Duration::from_secs_f64(total)))
}

/// serde helper: a Go duration string or a number of seconds; negative → `None`.
///
/// # Errors
/// When the value is not a valid duration.
pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Str(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(n) => Ok((n >= 0.0).then(|| Duration::from_secs_f64(n))),
        Raw::Str(s) => parse_go_duration(&s).map_err(serde::de::Error::custom),
    }
}

/// serde helper for a duration that must be set and non-negative.
///
/// # Errors
/// When the value is not a valid non-negative duration.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    deserialize_opt(d)?.ok_or_else(|| serde::de::Error::custom("duration must not be negative"))
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
        assert_eq!(parse_go_duration("-1s"), Ok(None));
        assert_eq!(parse_go_duration("3"), Ok(Some(Duration::from_secs(3))));
        assert!(parse_go_duration("10x").is_err());
        assert!(parse_go_duration("s").is_err());
        assert!(parse_go_duration("").is_err());
    }
}
