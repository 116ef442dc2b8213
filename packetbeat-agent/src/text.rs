//! Bytes from the wire as text: valid UTF-8 as it is, anything else with U+FFFD for each bad
//! sequence (what `String::from_utf8_lossy` gives, which is what Packetbeat's Go strings show).
//!
//! Why not `String::from_utf8_lossy` directly: it walks the bytes one at a time even when they are
//! valid, while `str::from_utf8` checks ASCII a word at a time; protocol strings (queries, headers,
//! column names, cells) are nearly always valid, so the check comes first and the lossy walk only
//! runs for the rare bad string. Same result either way.

use std::borrow::Cow;

/// `b` as text, borrowed when it is valid UTF-8.
#[must_use]
pub fn lossy(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// `b` as an owned text.
#[must_use]
pub fn lossy_string(b: &[u8]) -> String {
    lossy(b).into_owned()
}

/// Owned bytes as text: no copy when they are valid UTF-8.
#[must_use]
pub fn lossy_owned(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_the_standard_lossy_conversion() {
        let samples: [&[u8]; 8] = [
            b"",
            b"select * from t where id = 1",
            "é ü ✓ 🙂 and more ascii after it".as_bytes(),
            b"bad \xff byte",
            b"\xc3",
            b"cut \xe2\x9c",
            b"\xed\xa0\x80 surrogate",
            b"ok\x00nul",
        ];
        for b in samples {
            let want = String::from_utf8_lossy(b);
            assert_eq!(lossy(b), want);
            assert_eq!(lossy_string(b), want);
            assert_eq!(lossy_owned(b.to_vec()), want);
            assert_eq!(matches!(lossy(b), Cow::Borrowed(_)), matches!(want, Cow::Borrowed(_)));
        }
    }
}
