//! Kernel side, seen from userspace: checks, loading and attaching the programs.
pub mod drain_window;
pub mod enforce;
pub mod loader;
pub mod offsets;
pub mod preflight;

pub use drain_window::DrainWindows;
pub use loader::{AttachFailure, LoadOptions, SensorError, Sensors};
