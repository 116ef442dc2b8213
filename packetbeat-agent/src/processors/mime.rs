//! MIME sniffing (placeholder until the full table lands).

/// Sniffs `data`.
#[must_use]
pub fn detect_mime_type(data: &[u8]) -> Option<&'static str> {
    if data.is_empty() {
        return None;
    }
    if data.starts_with(b"<html") {
        Some("text/html; charset=utf-8")
    } else {
        Some("text/plain; charset=utf-8")
    }
}
