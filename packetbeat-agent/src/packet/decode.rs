//! Frame → [`super::TcpSegment`].

use super::{DecodeError, LinkType, TcpSegment};
use crate::time::Timestamp;

/// Decodes one frame.
///
/// # Errors
/// Why the frame is not a usable TCP segment.
pub fn decode(_link: LinkType, _frame: &[u8], _ts: Timestamp) -> Result<TcpSegment<'_>, DecodeError> {
    Err(DecodeError::NotTcp)
}
