//! packetbeat-agent: a kernel-assisted network analyzer that speaks Packetbeat 8.x.
//!
//! The data flow (see DESIGN.md): capture source → L2–L4 decode → shard by flow → per-worker
//! connection table and TCP reassembly → protocol parser and correlator → ECS event → output.

pub mod capture;
pub mod cli;
pub mod config;
pub mod event;
pub mod flow;
pub mod flows;
pub mod memory;
pub mod metrics;
pub mod output;
pub mod packet;
pub mod pipeline;
pub mod processors;
pub mod protocols;
pub mod text;
pub mod time;
pub mod worker;
