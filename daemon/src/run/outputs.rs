//! `sealwatch run` output flags (stdout's selection, the file and OTLP sinks) and the sinks they
//! start.
use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;

use crate::output::{
    sink::{
        file::{FileOptions, FileSink},
        otlp::{self, Compression, OtlpOptions, OtlpSink},
        Batching, Bound, Sink,
    },
    Selection,
};

#[derive(Debug, Args)]
#[command(next_help_heading = "Outputs")]
pub struct OutputArgs {
    /// Lines printed on stdout: comma-separated terms, a line goes out when any matches: `all`,
    /// `violations`, a minimum severity (`low`, `medium`, `high`, `critical`), or an event kind
    /// (`exec`, `file`, `session`, `connect`, `accept`, `listen`); `none` turns stdout off.
    /// `loss` lines always go out. The same terms select for --file-events and --otlp-events.
    #[arg(
        long,
        env = "SEALWATCH_STDOUT_EVENTS",
        value_name = "TERMS",
        default_value = "all"
    )]
    pub stdout_events: Selection,
    /// Also write lines (JSON, one per line) to this file, rotated by size and age: the file
    /// is renamed PATH.1, PATH.1 becomes PATH.2, and so on (what log tailers follow).
    #[arg(long = "file", env = "SEALWATCH_FILE", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Lines written to --file (terms as for --stdout-events).
    #[arg(long, value_name = "TERMS", default_value = "all")]
    pub file_events: Selection,
    /// Rotate --file before it grows past this size (bytes, or with KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", default_value = "100MiB", value_parser = parse_size)]
    pub file_max_size: u64,
    /// Rotate --file once it is this old and holds lines (e.g. 1h, 30m).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub file_max_age: Duration,
    /// Rotated files kept beside --file (PATH.1 .. PATH.N); older ones are deleted.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub file_keep: usize,
    /// Also export lines as OTLP logs over HTTP (protobuf) to this collector: its base URL
    /// (`http://collector:4318`, `/v1/logs` is added) or the full URL of its logs path.
    #[arg(long, env = "SEALWATCH_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Lines exported to --otlp-endpoint (terms as for --stdout-events). Violations by default:
    /// a record costs the daemon about 6 µs of CPU to build and send, three times what the
    /// line itself costs; `all` sends every line (the fleet's ClickHouse needs every exec).
    #[arg(long, value_name = "TERMS", default_value = "violations")]
    pub otlp_events: Selection,
    /// A header sent with every OTLP request, NAME=VALUE (repeat the flag, or separate with
    /// commas in the variable), e.g. `Authorization=Bearer TOKEN`. Prefer the variable for
    /// secrets: flags show in `ps`.
    #[arg(
        long = "otlp-header",
        env = "SEALWATCH_OTLP_HEADERS",
        value_name = "NAME=VALUE",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub otlp_headers: Vec<String>,
    /// PEM file of the CA(s) that sign the collector's certificate (https endpoints). Default:
    /// the public web roots built into sealwatch.
    #[arg(long, env = "SEALWATCH_OTLP_CA_FILE", value_name = "PATH")]
    pub otlp_ca_file: Option<PathBuf>,
    /// Compression of OTLP request bodies.
    #[arg(long, value_enum, default_value = "gzip")]
    pub otlp_compression: Compression,
    /// Time an OTLP request may take, connection included, before it is retried.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub otlp_timeout: Duration,
}

/// Starts the sinks the flags ask for; each queues at most `bound` (the stdout queue's bound).
pub fn start_sinks(args: &OutputArgs, node: &str, bound: Bound) -> anyhow::Result<Vec<Sink>> {
    let mut sinks = Vec::new();
    if let Some(path) = &args.file {
        let file = FileSink::open(FileOptions {
            path: path.clone(),
            max_bytes: args.file_max_size,
            max_age: args.file_max_age,
            keep: args.file_keep,
        })
        .with_context(|| format!("opening --file {}", path.display()))?;
        // Lines reach the disk within 200 ms; a batch is one write.
        let batching = Batching {
            max_lines: 4096,
            max_bytes: 4 << 20,
            linger: Duration::from_millis(200),
        };
        sinks.push(
            Sink::spawn(file, args.file_events.clone(), bound, batching)
                .context("starting the file sink")?,
        );
    }
    if let Some(endpoint) = &args.otlp_endpoint {
        let headers = args
            .otlp_headers
            .iter()
            .map(|h| otlp::parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let sink = OtlpSink::new(OtlpOptions {
            endpoint: endpoint.clone(),
            headers,
            ca_file: args.otlp_ca_file.clone(),
            compression: args.otlp_compression,
            timeout: args.otlp_timeout,
            node: node.to_string(),
        })?;
        // The OpenTelemetry SDK's defaults for a log batch (512 records, 1 s); 4 MiB stays well
        // under collectors' usual request limits.
        let batching = Batching {
            max_lines: 512,
            max_bytes: 4 << 20,
            linger: Duration::from_secs(1),
        };
        sinks.push(
            Sink::spawn(sink, args.otlp_events.clone(), bound, batching)
                .context("starting the OTLP sink")?,
        );
    }
    Ok(sinks)
}

/// A file size as `--capture-max-bytes` takes it (`4096`, `512KiB`, `100MiB`, `1GiB`), at least
/// 4096 bytes: a file smaller than one long line would rotate at every line.
fn parse_size(text: &str) -> Result<u64, String> {
    let size = crate::capture::options::parse_bytes(text)?;
    if size < 4096 {
        return Err(format!("{text} is below 4096 bytes"));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert!(parse_size("10").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
