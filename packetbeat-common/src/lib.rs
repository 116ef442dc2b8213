//! Types shared by the kernel program and the agent.
#![no_std]
