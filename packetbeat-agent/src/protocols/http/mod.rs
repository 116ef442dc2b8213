//! HTTP/1.x (placeholder until the decoder lands).

use std::sync::Arc;

use serde::Deserialize;

use super::{Direction, ParseCtx, ProtocolState};

/// HTTP settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Ports.
    pub ports: Vec<u16>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { ports: vec![80, 8080, 8000, 5000, 8002] }
    }
}

/// Per-connection state.
pub struct HttpState;

impl HttpState {
    /// New state.
    #[must_use]
    pub fn new(_cfg: Arc<HttpConfig>) -> Self {
        Self
    }
}

impl ProtocolState for HttpState {
    fn parse(&mut self, _dir: Direction, data: &[u8], _cx: &mut ParseCtx<'_>) -> usize {
        data.len()
    }
    fn gap(&mut self, _dir: Direction, _len: u32, _cx: &mut ParseCtx<'_>) {}
    fn fin(&mut self, _dir: Direction, _cx: &mut ParseCtx<'_>) {}
    fn expire(&mut self, _cx: &mut ParseCtx<'_>) {}
    fn close(&mut self, _cx: &mut ParseCtx<'_>) {}
}
