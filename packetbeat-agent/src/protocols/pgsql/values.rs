//! Rendering of parameter and column values as text, for `params` and the `response` CSV.
//!
//! Text-format values are the server's own text (lossy UTF-8). Binary-format values are decoded by
//! type OID for the common types (bool, integers, floats, numeric, text types, bytea, uuid, date,
//! time, timestamp, timestamptz, json, jsonb) into the text PostgreSQL itself would print; any
//! other type, or a value whose length does not fit its type, is shown as bytea hex (`\x…`).
//! Packetbeat shows binary columns as empty strings and never decodes parameters.

use std::fmt::Write as _;

/// Type OIDs from `pg_type.dat`.
mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// A value as text: `format` 0 is text, 1 binary (decoded with `type_oid`).
#[must_use]
pub fn render(value: &[u8], format: u16, type_oid: u32) -> String {
    if format == 0 {
        return crate::text::lossy_string(value);
    }
    render_binary(value, type_oid).unwrap_or_else(|| hex(value))
}

fn hex(v: &[u8]) -> String {
    let mut s = String::with_capacity(2 + v.len() * 2);
    s.push_str("\\x");
    for b in v {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn array<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
    v.try_into().ok()
}

fn render_binary(v: &[u8], type_oid: u32) -> Option<String> {
    Some(match type_oid {
        oid::BOOL => match v {
            [0] => "f".into(),
            [1] => "t".into(),
            _ => return None,
        },
        oid::INT2 => i16::from_be_bytes(array(v)?).to_string(),
        oid::INT4 => i32::from_be_bytes(array(v)?).to_string(),
        oid::OID => u32::from_be_bytes(array(v)?).to_string(),
        oid::INT8 => i64::from_be_bytes(array(v)?).to_string(),
        oid::FLOAT4 => float(f64::from(f32::from_be_bytes(array(v)?))),
        oid::FLOAT8 => float(f64::from_be_bytes(array(v)?)),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::CHAR | oid::JSON | oid::XML | oid::UNKNOWN => {
            crate::text::lossy_string(v)
        }
        oid::JSONB => match v.split_first() {
            Some((1, text)) => crate::text::lossy_string(text),
            _ => return None,
        },
        oid::BYTEA => hex(v),
        oid::UUID => {
            let b: [u8; 16] = array(v)?;
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
        }
        oid::DATE => date(i64::from(i32::from_be_bytes(array(v)?)))?,
        oid::TIME => time_of_day(i64::from_be_bytes(array(v)?))?,
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(array(v)?);
            let days = us.div_euclid(86_400_000_000);
            let tod = us.rem_euclid(86_400_000_000);
            let tz = if type_oid == oid::TIMESTAMPTZ { "+00" } else { "" };
            format!("{} {}{tz}", date(days)?, time_of_day(tod)?)
        }
        oid::NUMERIC => numeric(v)?,
        _ => return None,
    })
}

fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        f.to_string()
    }
}

/// `days` since 2000-01-01 as `YYYY-MM-DD` (proleptic Gregorian, years 1..=9999 only).
fn date(days: i64) -> Option<String> {
    let z = days.checked_add(PG_EPOCH_DAYS)?.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (1..=9999).contains(&y).then(|| format!("{y:04}-{m:02}-{d:02}"))
}

fn time_of_day(us: i64) -> Option<String> {
    if !(0..=86_400_000_000).contains(&us) {
        return None;
    }
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60);
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    Some(s)
}

/// Binary NUMERIC: ndigits, weight, sign, dscale, then base-10000 digits.
fn numeric(v: &[u8]) -> Option<String> {
    let word = |i: usize| v.get(i * 2..i * 2 + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)?.cast_signed());
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    if v.len() != 8 + 2 * ndigits || dscale > 1000 || weight.abs() > 10_000 {
        return None;
    }
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0 | 0x4000 => {}
        _ => return None,
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Option<_>>()?;
    let digit = |i: i64| usize::try_from(i).ok().and_then(|i| digits.get(i)).copied().unwrap_or(0);
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            let d = digit(i);
            if i == 0 {
                let _ = write!(s, "{d}");
            } else {
                let _ = write!(s, "{d:04}");
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        s.push_str(&frac);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_fallbacks() {
        assert_eq!(render(b"hello", 0, 0), "hello");
        assert_eq!(render(&[0xde, 0xad], 1, 9999), "\\xdead");
        assert_eq!(render(&[1, 2, 3], 1, oid::INT4), "\\x010203");
    }

    #[test]
    fn binary_scalars() {
        assert_eq!(render(&[1], 1, oid::BOOL), "t");
        assert_eq!(render(&(-7i16).to_be_bytes(), 1, oid::INT2), "-7");
        assert_eq!(render(&42i32.to_be_bytes(), 1, oid::INT4), "42");
        assert_eq!(render(&(-5_000_000_000i64).to_be_bytes(), 1, oid::INT8), "-5000000000");
        assert_eq!(render(&1.5f32.to_be_bytes(), 1, oid::FLOAT4), "1.5");
        assert_eq!(render(&0.25f64.to_be_bytes(), 1, oid::FLOAT8), "0.25");
        assert_eq!(render(b"abc", 1, oid::TEXT), "abc");
        assert_eq!(render(b"\x01{\"a\": 1}", 1, oid::JSONB), "{\"a\": 1}");
        assert_eq!(render(&[0xab, 0x01], 1, oid::BYTEA), "\\xab01");
        let u = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(render(&u, 1, oid::UUID), "12345678-9abc-def0-0001-020304050607");
    }

    #[test]
    fn binary_dates_and_times() {
        assert_eq!(render(&0i32.to_be_bytes(), 1, oid::DATE), "2000-01-01");
        assert_eq!(render(&8_766i32.to_be_bytes(), 1, oid::DATE), "2024-01-01");
        assert_eq!(render(&(-1i32).to_be_bytes(), 1, oid::DATE), "1999-12-31");
        let ts = (8_766i64 * 86_400 + 3_723) * 1_000_000 + 500_000;
        assert_eq!(render(&ts.to_be_bytes(), 1, oid::TIMESTAMP), "2024-01-01 01:02:03.5");
        assert_eq!(render(&ts.to_be_bytes(), 1, oid::TIMESTAMPTZ), "2024-01-01 01:02:03.5+00");
        assert_eq!(render(&i64::MAX.to_be_bytes(), 1, oid::TIMESTAMP), "\\x7fffffffffffffff");
    }

    #[test]
    fn binary_numeric() {
        // 12345.678: ndigits 3, weight 1, sign +, dscale 3, digits 1 2345 6780
        let v = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c];
        assert_eq!(render(&v, 1, oid::NUMERIC), "12345.678");
        // -0.05: ndigits 1, weight -1, sign -, dscale 2, digits 500
        let v = [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4];
        assert_eq!(render(&v, 1, oid::NUMERIC), "-0.05");
        assert_eq!(render(&[0, 0, 0, 0, 0, 0, 0, 0], 1, oid::NUMERIC), "0");
        assert_eq!(render(&[0, 0, 0, 0, 0xc0, 0, 0, 0], 1, oid::NUMERIC), "NaN");
        assert_eq!(render(&[0, 9, 0, 0, 0, 0, 0, 0], 1, oid::NUMERIC), "\\x0009000000000000");
    }
}
