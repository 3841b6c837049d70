//! Prometheus metrics and health endpoints for SREs.
//!
//! - [`families`]: the registry and every metric family; [`Metrics::publish`] copies the
//!   pipeline's counters in on each tick (the pipeline itself never sees the wall clock or this
//!   module, so replay stays deterministic).
//! - [`http`]: `/metrics`, `/healthz`, `/readyz` on `--metrics-addr`.
//! - [`namespaces`]: the cap on distinct `pod_namespace` label values.
//!
//! The metrics and the alert rules in `deploy/prometheus/` are documented in `docs/sre.md`.
pub mod families;
pub mod http;
pub mod namespaces;

#[cfg(test)]
mod deploy_tests;
#[cfg(test)]
mod tests;

pub use families::{Metrics, PipelineView};
