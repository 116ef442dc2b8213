//! The binary protocol of prepared statements: `COM_STMT_EXECUTE` parameters and binary result
//! rows, decoded to text. Pure functions over `&[u8]`.
//!
//! Values are written as SQL literals would be: integers (signed or unsigned per the flag), floats
//! in their shortest round-trip form, `DECIMAL` as sent, dates as `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`,
//! `TIME` as `[-]HHH:MM:SS[.ffffff]`, strings as UTF-8 and other bytes as a `0x…` hex literal, NULL
//! as `NULL`. Each value is cut to [`MYSQL_MAX_VALUE_LEN`] bytes.

use std::fmt::Write as _;

use super::parser::{le, lenenc_int, lenenc_str, take, MysqlParseError};

/// The most bytes kept of one decoded value.
pub const MYSQL_MAX_VALUE_LEN: usize = 1024;

/// `COM_STMT_EXECUTE` flag: the parameter count is sent (query attributes).
const PARAMETER_COUNT_AVAILABLE: u64 = 0x08;
/// Column/parameter flag bit: unsigned integer.
const UNSIGNED_FLAG: u16 = 0x20;

/// A field type and whether an integer is unsigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinaryType {
    /// `MYSQL_TYPE_*`.
    pub field_type: u8,
    /// Integer is unsigned.
    pub unsigned: bool,
}

impl BinaryType {
    /// From a column definition's type and flags.
    #[must_use]
    pub fn of_column(field_type: u8, flags: u16) -> Self {
        Self { field_type, unsigned: flags & UNSIGNED_FLAG != 0 }
    }
}

/// The statement id of a `COM_STMT_EXECUTE`/`CLOSE`/`RESET` payload (command byte included).
#[must_use]
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    let id = payload.get(1..5)?;
    Some(u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
}

/// Decodes the parameters of a `COM_STMT_EXECUTE` payload (command byte included) for a statement
/// with `num_params` placeholders. `types` holds the types bound by an earlier execute and is
/// replaced when this one binds new types (`new_params_bound_flag`), as the server does.
///
/// # Errors
/// Truncated payloads, unknown types, or a later execute that relies on types never seen.
pub fn execute_params(
    payload: &[u8],
    num_params: usize,
    types: &mut Vec<BinaryType>,
    query_attributes: bool,
) -> Result<Vec<String>, MysqlParseError> {
    let (_, rest) = take(payload, 5)?;
    let (flags, rest) = le::<1>(rest)?;
    let (_iterations, mut rest) = le::<4>(rest)?;
    let mut count = num_params;
    if query_attributes && (num_params > 0 || flags & PARAMETER_COUNT_AVAILABLE != 0) {
        let (n, r) = lenenc_int(rest)?;
        count = usize::try_from(n).map_err(|_| MysqlParseError::Malformed("parameter count"))?;
        rest = r;
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    // Every parameter costs at least one bit on the wire: bounds the allocations below.
    if count > payload.len().saturating_mul(8) {
        return Err(MysqlParseError::Malformed("parameter count"));
    }
    let (null_bitmap, rest) = take(rest, count.div_ceil(8))?;
    let (bound, mut rest) = le::<1>(rest)?;
    if bound == 1 {
        types.clear();
        for _ in 0..count {
            let (t, r) = take(rest, 2)?;
            types.push(BinaryType { field_type: t[0], unsigned: t[1] & 0x80 != 0 });
            rest = r;
            if query_attributes {
                rest = lenenc_str(rest)?.1;
            }
        }
    }
    if types.len() != count {
        return Err(MysqlParseError::Malformed("parameter types unknown"));
    }
    let mut out = Vec::with_capacity(count);
    for (i, ty) in types.iter().enumerate() {
        if is_null(null_bitmap, i) {
            out.push("NULL".to_owned());
            continue;
        }
        let (text, r) = value(*ty, rest)?;
        out.push(text);
        rest = r;
    }
    Ok(out)
}

fn is_null(bitmap: &[u8], bit: usize) -> bool {
    bitmap.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// Decodes a binary result row (`0x00`, NULL bitmap with a 2-bit offset, values), calling `cell`
/// with each column's text.
///
/// # Errors
/// Truncated rows or unknown types.
pub fn binary_row(payload: &[u8], columns: &[BinaryType], mut cell: impl FnMut(&str)) -> Result<(), MysqlParseError> {
    let (_, rest) = take(payload, 1)?;
    let (bitmap, mut rest) = take(rest, (columns.len() + 9) / 8)?;
    for (i, ty) in columns.iter().enumerate() {
        if is_null(bitmap, i + 2) {
            cell("NULL");
            continue;
        }
        let (text, r) = value(*ty, rest)?;
        cell(&text);
        rest = r;
    }
    Ok(())
}

/// Decodes one binary value.
///
/// # Errors
/// Truncated value or unknown type.
pub fn value(ty: BinaryType, data: &[u8]) -> Result<(String, &[u8]), MysqlParseError> {
    let int = |n: usize, data| -> Result<(String, &[u8]), MysqlParseError> {
        let (v, rest) = match n {
            1 => le::<1>(data)?,
            2 => le::<2>(data)?,
            4 => le::<4>(data)?,
            _ => le::<8>(data)?,
        };
        let text = if ty.unsigned {
            v.to_string()
        } else {
            let shift = 64 - 8 * n as u32;
            (((v << shift) as i64) >> shift).to_string()
        };
        Ok((text, rest))
    };
    match ty.field_type {
        0x01 => int(1, data),
        0x02 | 0x0d => int(2, data),
        0x03 | 0x09 => int(4, data),
        0x08 => int(8, data),
        0x04 => {
            let (v, rest) = le::<4>(data)?;
            Ok((f32::from_bits(v as u32).to_string(), rest))
        }
        0x05 => {
            let (v, rest) = le::<8>(data)?;
            Ok((f64::from_bits(v).to_string(), rest))
        }
        0x06 => Ok(("NULL".to_owned(), data)),
        0x07 | 0x0a | 0x0c => date_time(ty.field_type == 0x0a, data),
        0x0b => time(data),
        0x00 | 0x0f | 0x10 | 0xf2..=0xff => {
            let (bytes, rest) = lenenc_str(data)?;
            Ok((text_of(bytes), rest))
        }
        _ => Err(MysqlParseError::Malformed("unknown field type")),
    }
}

fn date_time(date_only: bool, data: &[u8]) -> Result<(String, &[u8]), MysqlParseError> {
    let (len, rest) = le::<1>(data)?;
    let (b, rest) = take(rest, len as usize)?;
    let byte = |i: usize| b.get(i).copied().unwrap_or(0);
    let year = u16::from_le_bytes([byte(0), byte(1)]);
    let mut s = format!("{year:04}-{:02}-{:02}", byte(2), byte(3));
    if !date_only || len > 4 {
        let _ = write!(s, " {:02}:{:02}:{:02}", byte(4), byte(5), byte(6));
        if len >= 11 {
            let micros = u32::from_le_bytes([byte(7), byte(8), byte(9), byte(10)]);
            let _ = write!(s, ".{micros:06}");
        }
    }
    Ok((s, rest))
}

fn time(data: &[u8]) -> Result<(String, &[u8]), MysqlParseError> {
    let (len, rest) = le::<1>(data)?;
    let (b, rest) = take(rest, len as usize)?;
    let byte = |i: usize| b.get(i).copied().unwrap_or(0);
    let days = u32::from_le_bytes([byte(1), byte(2), byte(3), byte(4)]);
    let hours = u64::from(days) * 24 + u64::from(byte(5));
    let sign = if byte(0) == 1 { "-" } else { "" };
    let mut s = format!("{sign}{hours:02}:{:02}:{:02}", byte(6), byte(7));
    if len >= 12 {
        let micros = u32::from_le_bytes([byte(8), byte(9), byte(10), byte(11)]);
        let _ = write!(s, ".{micros:06}");
    }
    Ok((s, rest))
}

/// Text of a string/blob value: UTF-8 as is, anything else as a hex literal; cut to
/// [`MYSQL_MAX_VALUE_LEN`] bytes.
#[must_use]
pub fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.get(..s.floor_char_boundary(MYSQL_MAX_VALUE_LEN)).unwrap_or(s).to_owned(),
        Err(_) => {
            let keep = bytes.get(..(MYSQL_MAX_VALUE_LEN - 2) / 2).unwrap_or(bytes);
            let mut s = String::with_capacity(2 + 2 * keep.len());
            s.push_str("0x");
            for b in keep {
                let _ = write!(s, "{b:02x}");
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(field_type: u8) -> BinaryType {
        BinaryType { field_type, unsigned: false }
    }

    #[test]
    fn integers_signed_and_unsigned() {
        assert_eq!(value(t(1), &[0xff]).unwrap().0, "-1");
        assert_eq!(value(BinaryType { field_type: 1, unsigned: true }, &[0xff]).unwrap().0, "255");
        assert_eq!(value(t(2), &[0x00, 0x80]).unwrap().0, "-32768");
        assert_eq!(value(t(3), &42i32.to_le_bytes()).unwrap().0, "42");
        assert_eq!(value(t(8), &(-5i64).to_le_bytes()).unwrap().0, "-5");
        assert_eq!(
            value(BinaryType { field_type: 8, unsigned: true }, &u64::MAX.to_le_bytes()).unwrap().0,
            "18446744073709551615"
        );
        assert_eq!(value(t(3), &[1, 2]), Err(MysqlParseError::Incomplete));
    }

    #[test]
    fn floats_dates_times_strings() {
        assert_eq!(value(t(4), &1.5f32.to_le_bytes()).unwrap().0, "1.5");
        assert_eq!(value(t(5), &2.25f64.to_le_bytes()).unwrap().0, "2.25");
        assert_eq!(value(t(0x0a), &[4, 0xe8, 0x07, 2, 29]).unwrap().0, "2024-02-29");
        assert_eq!(value(t(0x0c), &[7, 0xe8, 0x07, 2, 29, 13, 5, 9]).unwrap().0, "2024-02-29 13:05:09");
        assert_eq!(
            value(t(0x0c), &[11, 0xe8, 0x07, 2, 29, 13, 5, 9, 0x40, 0xe2, 0x01, 0]).unwrap().0,
            "2024-02-29 13:05:09.123456"
        );
        assert_eq!(value(t(0x0c), &[0]).unwrap().0, "0000-00-00 00:00:00");
        assert_eq!(value(t(0x0b), &[8, 1, 1, 0, 0, 0, 2, 3, 4]).unwrap().0, "-26:03:04");
        assert_eq!(value(t(0xf6), b"\x0512.50").unwrap().0, "12.50");
        assert_eq!(value(t(0xfc), b"\x03\x00\x01\xff").unwrap().0, "0x0001ff");
        assert_eq!(value(t(0xfd), b"\xfc\x02\x00hi").unwrap().0, "hi");
        assert_eq!(value(t(0x06), b"").unwrap().0, "NULL");
        assert!(value(t(0x20), b"x").is_err());
        assert_eq!(value(t(0xfe), b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f"), Err(MysqlParseError::Incomplete));
    }

    #[test]
    fn execute_with_null_bitmap_and_rebinding() {
        // id 1, flags 0, iterations 1, 3 params: NULL bitmap 0b010, bound, types LONGLONG, STRING, DOUBLE.
        let mut p = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0b010, 1, 8, 0, 0xfe, 0, 5, 0];
        p.extend_from_slice(&7i64.to_le_bytes());
        p.extend_from_slice(&0.5f64.to_le_bytes());
        let mut types = Vec::new();
        assert_eq!(execute_params(&p, 3, &mut types, false).unwrap(), ["7", "NULL", "0.5"]);
        // Same statement again without new types: the saved ones apply.
        let mut q = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0b000, 0];
        q.extend_from_slice(&8i64.to_le_bytes());
        q.extend_from_slice(b"\x02ab");
        q.extend_from_slice(&1.0f64.to_le_bytes());
        assert_eq!(execute_params(&q, 3, &mut types, false).unwrap(), ["8", "ab", "1"]);
        assert!(execute_params(&q, 3, &mut Vec::new(), false).is_err());
        assert!(execute_params(&q[..14], 3, &mut types, false).is_err());
        assert_eq!(execute_params(&q, 0, &mut types, false).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn binary_rows() {
        let cols = [t(3), t(0xfd), t(0x0a)];
        // NULL bitmap bit (1 + 2) = 3 → second column NULL.
        let row = [0, 0b1000, 9, 0, 0, 0, 4, 0xe8, 0x07, 1, 2];
        let mut cells = Vec::new();
        binary_row(&row, &cols, |c| cells.push(c.to_owned())).unwrap();
        assert_eq!(cells, ["9", "NULL", "2024-01-02"]);
        assert!(binary_row(&row[..5], &cols, |_| {}).is_err());
    }

    #[test]
    fn long_text_is_cut() {
        assert_eq!(text_of(&[b'a'; 5000]).len(), MYSQL_MAX_VALUE_LEN);
        assert!(text_of(&[0xff; 5000]).len() <= MYSQL_MAX_VALUE_LEN);
    }
}
