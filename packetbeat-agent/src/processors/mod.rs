//! Event processors configured under `processors:` (libbeat's), applied to each document before output.

pub mod mime;
