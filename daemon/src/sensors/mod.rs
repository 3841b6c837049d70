//! Kernel side, seen from userspace: checks, loading and attaching the programs.
//!
//! `families` is the registry of every program and how it attaches (one file per hook family),
//! `attach` walks it, `loader` owns the result ([`Sensors`]).
mod attach;
pub mod drain_window;
pub mod enforce;
pub mod families;
pub mod loader;
pub mod offsets;
pub mod preflight;

pub use drain_window::DrainWindows;
pub use loader::{AttachFailure, LoadOptions, SensorError, Sensors};
