//! sealwatch: node-level runtime security monitor on eBPF.
//!
//! Data flows one way: `sensors` (kernel programs) → `reader` (ring buffers → typed events) →
//! `pipeline` (state + detect) → `output`. Replay feeds the same `pipeline` from a capture file, so
//! everything after the reader is deterministic: time comes from event timestamps, state from
//! events and recorded snapshots.

pub mod capture;
pub mod cli;
pub mod clock;
pub mod container;
pub mod detect;
pub mod event;
pub mod filter;
pub mod learn;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod reader;
pub mod replay;
pub mod run;
pub mod sensors;
pub mod state;
pub mod tail;
