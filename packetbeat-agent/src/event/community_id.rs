//! Community ID v1 flow hashing (placeholder until the full implementation lands).

use std::net::IpAddr;

/// Community ID v1.
#[must_use]
pub fn community_id_v1(_src_ip: IpAddr, _src_port: u16, _dst_ip: IpAddr, _dst_port: u16, _proto: u8, _seed: u16) -> String {
    String::from("1:")
}
