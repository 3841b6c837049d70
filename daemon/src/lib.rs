//! sealwatch: node-level runtime security monitor on eBPF.
//!
//! Data flows one way: `sensors` (kernel programs) → `reader` (ring buffers → typed [`input`]s) →
//! `pipeline` (`state` → `detect` → render) → `output`. One [`driver`] feeds the pipeline from
//! either source: the live kernel (`run`) or a capture file (`replay`), so replay is the same
//! pipeline by construction and everything after the reader is deterministic: time comes from
//! event timestamps, state from events and recorded snapshots.

pub mod capture;
pub mod cli;
pub mod clock;
pub mod container;
pub mod detect;
pub mod driver;
pub mod event;
pub mod filter;
pub mod input;
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
