//! packetbeat-agent: a kernel-assisted network analyzer that speaks Packetbeat 8.x.
//!
//! The data flow (see DESIGN.md): capture source → L2–L4 decode → shard by flow → per-worker
//! connection table and TCP reassembly → protocol parser and correlator → ECS event → output.

pub mod capture;
pub mod event;
pub mod packet;
pub mod processors;
pub mod protocols;
pub mod time;
