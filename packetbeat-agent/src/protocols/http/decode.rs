//! Undoing `Content-Encoding`/`Transfer-Encoding` codings of a captured body (Packetbeat's
//! `decode.go`): gzip, deflate and identity, applied last-first, output capped at `max_size`.
//!
//! Errors become notes with Packetbeat's wording (`unable to decode body using gzip encoding: …`).
//! Deflate is raw DEFLATE as in Go's `compress/flate`; a zlib-wrapped stream (what many servers
//! send) is accepted too, where Packetbeat would report an error.

use std::io::{self, Read};

use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};

/// Decodes `body` through `encodings` (in the order the sender applied them). On failure returns the
/// note; the body is then partial (failure on the first-applied coding) or empty.
pub fn decode_body(body: Vec<u8>, encodings: &[String], max_size: usize) -> (Vec<u8>, Option<String>) {
    let mut body = body;
    for (idx, format) in encodings.iter().enumerate().rev() {
        match decode_one(&body, format, max_size) {
            Ok(out) => body = out,
            Err((partial, reason)) => {
                let kept = if idx == 0 { partial } else { Vec::new() };
                return (kept, Some(format!("unable to decode body using {format} encoding: {reason}")));
            }
        }
    }
    (body, None)
}

fn decode_one(data: &[u8], format: &str, max_size: usize) -> Result<Vec<u8>, (Vec<u8>, String)> {
    match format {
        "gzip" | "x-gzip" => read_max(GzDecoder::new(data), max_size),
        "deflate" | "x-deflate" => read_max(DeflateDecoder::new(data), max_size).or_else(|raw_err| {
            if data.len() >= 2 && u16::from_be_bytes([data[0], data[1]]).is_multiple_of(31) && data[0] & 0x0f == 8 {
                read_max(ZlibDecoder::new(data), max_size)
            } else {
                Err(raw_err)
            }
        }),
        "identity" => read_max(data, max_size),
        _ => Err((Vec::new(), "decoder not found".to_owned())),
    }
}

/// Reads at most `max_size` bytes; more is an error that keeps the first `max_size`.
fn read_max(reader: impl Read, max_size: usize) -> Result<Vec<u8>, (Vec<u8>, String)> {
    let mut out = Vec::new();
    let limit = u64::try_from(max_size).unwrap_or(u64::MAX).saturating_add(1);
    match reader.take(limit).read_to_end(&mut out) {
        Ok(_) if out.len() > max_size => {
            out.truncate(max_size);
            Err((out, "body truncated due to size limitation".to_owned()))
        }
        Ok(_) => Ok(out),
        Err(e) => Err((out, go_error_text(&e))),
    }
}

/// Go's wording for the common failures.
fn go_error_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "unexpected EOF".to_owned(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            let msg = e.to_string();
            if msg.contains("header") {
                "gzip: invalid header".to_owned()
            } else {
                "flate: corrupt input".to_owned()
            }
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_deflate_zlib_identity() {
        let enc = vec!["gzip".to_owned()];
        assert_eq!(decode_body(gz(b"hello"), &enc, 100), (b"hello".to_vec(), None));
        let mut d = DeflateEncoder::new(Vec::new(), Compression::default());
        d.write_all(b"raw").unwrap();
        assert_eq!(decode_body(d.finish().unwrap(), &["deflate".to_owned()], 100).0, b"raw");
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(b"zlib").unwrap();
        assert_eq!(decode_body(z.finish().unwrap(), &["deflate".to_owned()], 100).0, b"zlib");
        assert_eq!(decode_body(b"x".to_vec(), &["identity".to_owned()], 100).0, b"x");
    }

    #[test]
    fn failures_give_packetbeat_notes() {
        let (body, note) = decode_body(gz(b"0123456789"), &["gzip".to_owned()], 4);
        assert_eq!(body, b"0123");
        assert_eq!(note.unwrap(), "unable to decode body using gzip encoding: body truncated due to size limitation");
        let (body, note) = decode_body(b"abc".to_vec(), &["br".to_owned()], 10);
        assert!(body.is_empty());
        assert_eq!(note.unwrap(), "unable to decode body using br encoding: decoder not found");
        let mut truncated = gz(b"hello world, hello world");
        truncated.truncate(truncated.len() - 10);
        let (_, note) = decode_body(truncated, &["gzip".to_owned()], 100);
        assert_eq!(note.unwrap(), "unable to decode body using gzip encoding: unexpected EOF");
        // Two codings, gzip applied last: failure on the outer one drops the body.
        let (body, note) = decode_body(b"junk".to_vec(), &["identity".to_owned(), "gzip".to_owned()], 10);
        assert!(body.is_empty() && note.is_some());
    }
}
