//! The attacker tests' start: the daemon (no metrics endpoint, no tail socket: neither is under
//! test there), then a long-running container from the test image, started after it so that the
//! daemon sees the container from its first process.
use anyhow::Result;

use crate::daemon::Daemon;
use crate::runtime::{Container, RunOptions, Runtime};
use crate::unique_name;

/// The daemon and a container of `rt` (named after `prefix`) running `sleep 300` with `options`.
pub fn daemon_and_container(
    rt: Runtime,
    prefix: &str,
    options: &RunOptions,
) -> Result<(Daemon, Container)> {
    rt.ensure_ready()?;
    let daemon = Daemon::start(&["--metrics-addr", "none", "--tail-socket", "none"])?;
    let c = rt.run_detached_with(&unique_name(prefix), options, &["sleep", "300"])?;
    Ok((daemon, c))
}
