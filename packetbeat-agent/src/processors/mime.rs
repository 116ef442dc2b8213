//! Content sniffing for the `detect_mime_type` processor: Go's `net/http.DetectContentType`
//! (the WHATWG MIME sniffing table it implements), which libbeat falls back to when no magic number
//! matches. Packetbeat's default config runs it on `http.request.body.content` and
//! `http.response.body.content`.
//!
//! Only the first 512 bytes are examined, as in Go.

/// Bytes examined, as Go's `sniffLen`.
const SNIFF_LEN: usize = 512;

/// Detects the media type of `data` the way Go's `http.DetectContentType` does (e.g.
/// `"text/html; charset=utf-8"`, `"text/plain; charset=utf-8"`, `"image/png"`,
/// `"application/octet-stream"`). `None` for empty data: there is nothing to detect.
#[must_use]
pub fn detect_mime_type(data: &[u8]) -> Option<&'static str> {
    if data.is_empty() {
        return None;
    }
    let data = data.get(..SNIFF_LEN).unwrap_or(data);
    let text = skip_ws(data);
    if let Some(t) = html(text) {
        return Some(t);
    }
    if text.starts_with(b"<?xml") {
        return Some("text/xml; charset=utf-8");
    }
    for &(sig, mime) in EXACT {
        if data.starts_with(sig) {
            return Some(mime);
        }
    }
    for &(pattern, mask, mime) in MASKED {
        if masked_match(data, pattern, mask) {
            return Some(mime);
        }
    }
    if is_mp4(data) {
        return Some("video/mp4");
    }
    if data.starts_with(b"\x1A\x45\xDF\xA3") {
        return Some("video/webm");
    }
    if data.get(34..36) == Some(b"LP") {
        return Some("application/vnd.ms-fontobject");
    }
    for &(sig, mime) in FONTS_AND_ARCHIVES {
        if data.starts_with(sig) {
            return Some(mime);
        }
    }
    if data.iter().all(|&b| !is_binary(b)) {
        return Some("text/plain; charset=utf-8");
    }
    Some("application/octet-stream")
}

/// Go's `isWS`: tab, newline, form feed, carriage return, space.
const fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// Go's `isTT`: a byte that ends an HTML tag name.
const fn is_tag_terminator(b: u8) -> bool {
    b == b' ' || b == b'>'
}

/// Go's binary-data bytes (the WHATWG "binary data byte" set).
const fn is_binary(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F)
}

fn skip_ws(data: &[u8]) -> &[u8] {
    let start = data.iter().position(|&b| !is_ws(b)).unwrap_or(data.len());
    &data[start..]
}

fn starts_with_ci(data: &[u8], prefix: &[u8]) -> bool {
    data.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

const HTML_TAGS: &[&[u8]] = &[
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
];

/// Go's `htmlSig`: a known tag (any case) after leading whitespace, followed by a space or `>`.
fn html(text: &[u8]) -> Option<&'static str> {
    HTML_TAGS
        .iter()
        .any(|tag| starts_with_ci(text, tag) && text.get(tag.len()).is_some_and(|&b| is_tag_terminator(b)))
        .then_some("text/html; charset=utf-8")
}

/// Signatures checked before the masked ones, in Go's table order.
const EXACT: &[(&[u8], &str)] = &[(b"%PDF-", "application/pdf"), (b"%!PS-Adobe-", "application/postscript")];

/// `(pattern, mask, type)`: `data[i] & mask[i] == pattern[i]` for every `i`.
const MASKED: &[(&[u8], &[u8], &str)] = &[
    (b"\xFE\xFF\x00\x00", b"\xFF\xFF\x00\x00", "text/plain; charset=utf-16be"),
    (b"\xFF\xFE\x00\x00", b"\xFF\xFF\x00\x00", "text/plain; charset=utf-16le"),
    (b"\xEF\xBB\xBF\x00", b"\xFF\xFF\xFF\x00", "text/plain; charset=utf-8"),
    (b"\x00\x00\x01\x00", b"\xFF\xFF\xFF\xFF", "image/x-icon"),
    (b"\x00\x00\x02\x00", b"\xFF\xFF\xFF\xFF", "image/x-icon"),
    (b"BM", b"\xFF\xFF", "image/bmp"),
    (b"GIF87a", b"\xFF\xFF\xFF\xFF\xFF\xFF", "image/gif"),
    (b"GIF89a", b"\xFF\xFF\xFF\xFF\xFF\xFF", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP", b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF", "image/webp"),
    (b"\x89PNG\x0D\x0A\x1A\x0A", b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", "image/png"),
    (b"\xFF\xD8\xFF", b"\xFF\xFF\xFF", "image/jpeg"),
    (b"FORM\x00\x00\x00\x00AIFF", b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", "audio/aiff"),
    (b"ID3", b"\xFF\xFF\xFF", "audio/mpeg"),
    (b"OggS\x00", b"\xFF\xFF\xFF\xFF\xFF", "application/ogg"),
    (b"MThd\x00\x00\x00\x06", b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", "audio/midi"),
    (b"RIFF\x00\x00\x00\x00AVI ", b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", "video/avi"),
    (b"RIFF\x00\x00\x00\x00WAVE", b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", "audio/wave"),
];

/// Signatures after WebM and EOT, in Go's table order.
const FONTS_AND_ARCHIVES: &[(&[u8], &str)] = &[
    (b"\x00\x01\x00\x00", "font/ttf"),
    (b"OTTO", "font/otf"),
    (b"ttcf", "font/collection"),
    (b"wOFF", "font/woff"),
    (b"wOF2", "font/woff2"),
    (b"\x1F\x8B\x08", "application/x-gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
    (b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
    (b"\x00\x61\x73\x6D", "application/wasm"),
];

fn masked_match(data: &[u8], pattern: &[u8], mask: &[u8]) -> bool {
    data.len() >= pattern.len() && pattern.iter().zip(mask).zip(data).all(|((&p, &m), &d)| d & m == p)
}

/// Go's `mp4Sig`: an `ftyp` box whose major or compatible brands include `mp4`.
fn is_mp4(data: &[u8]) -> bool {
    let Some(size) = data.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
        return false;
    };
    let Ok(size) = usize::try_from(size) else {
        return false;
    };
    if data.len() < size || size % 4 != 0 || data.get(4..8) != Some(b"ftyp") {
        return false;
    }
    (8..size).step_by(4).filter(|&st| st != 12).any(|st| data.get(st..st + 3) == Some(b"mp4"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_markup() {
        assert_eq!(detect_mime_type(b"user=monica&pass=secret"), Some("text/plain; charset=utf-8"));
        assert_eq!(
            detect_mime_type(b"\n  <!DOCTYPE html>\n<html><body>x</body></html>"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(detect_mime_type(b"<html>"), Some("text/html; charset=utf-8"));
        assert_eq!(detect_mime_type(b"<p class=x>"), Some("text/html; charset=utf-8"));
        assert_eq!(detect_mime_type(b"<pre>"), Some("text/plain; charset=utf-8"));
        assert_eq!(detect_mime_type(b"<?xml version=\"1.0\"?><a/>"), Some("text/xml; charset=utf-8"));
        assert_eq!(detect_mime_type(b"<?XML version=\"1.0\"?>"), Some("text/plain; charset=utf-8"));
        assert_eq!(detect_mime_type(b"{\"a\": 1}"), Some("text/plain; charset=utf-8"));
        assert_eq!(detect_mime_type(b"\xEF\xBB\xBFhi"), Some("text/plain; charset=utf-8"));
        assert_eq!(detect_mime_type(b"\xFF\xFEh\x00"), Some("text/plain; charset=utf-16le"));
        assert_eq!(detect_mime_type(b""), None);
    }

    #[test]
    fn binary_formats() {
        assert_eq!(detect_mime_type(b"%PDF-1.4"), Some("application/pdf"));
        assert_eq!(detect_mime_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(detect_mime_type(b"GIF89a.."), Some("image/gif"));
        assert_eq!(detect_mime_type(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(detect_mime_type(b"RIFF\x10\x00\x00\x00WEBPVP8 "), Some("image/webp"));
        assert_eq!(detect_mime_type(b"\x1F\x8B\x08\x00"), Some("application/x-gzip"));
        assert_eq!(detect_mime_type(b"PK\x03\x04rest"), Some("application/zip"));
        assert_eq!(detect_mime_type(b"\x00\x01\x02\x03"), Some("application/octet-stream"));
        let mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom";
        assert_eq!(detect_mime_type(mp4), Some("video/mp4"));
    }

    #[test]
    fn only_the_first_512_bytes_count() {
        let mut data = vec![b'a'; 600];
        data[550] = 0;
        assert_eq!(detect_mime_type(&data), Some("text/plain; charset=utf-8"));
    }
}
