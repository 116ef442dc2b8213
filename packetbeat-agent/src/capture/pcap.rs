//! pcap and pcapng file source (replay).
