//! `cargo xtask bench --sinks`: sealwatch runs with its file sink and its OTLP sink on, every
//! line to both, so the daemon figures include what the sinks cost. The OTLP sink exports to the
//! project's test receiver (`tests/otlp/receiver.py`, decoding every request with the official
//! definitions and keeping nothing), a stand-in for a collector on the same node.
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context as _, Result};

/// The running receiver; killed on drop.
pub struct SinkReceiver {
    child: Child,
    port: u16,
}

impl SinkReceiver {
    pub fn start() -> Result<SinkReceiver> {
        let script = crate::repo_root().join("tests/otlp/receiver.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting python3 {}", script.display()))?;
        let stdout = child.stdout.take().context("the receiver's stdout")?;
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .context("reading the receiver's first line")?;
        let Some(port) = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|addr| addr.rsplit(':').next()?.parse().ok())
        else {
            let _ = child.kill();
            bail!("the OTLP receiver said {first:?} instead of `listening HOST:PORT` (run `cargo xtask setup`)");
        };
        Ok(SinkReceiver { child, port })
    }

    /// The daemon flags: a file in `dir` (rotated at 64 MiB, two kept) and OTLP to the receiver.
    pub fn daemon_args(&self, dir: &Path) -> Vec<String> {
        vec![
            "--file".into(),
            dir.join("events.jsonl").display().to_string(),
            "--file-max-size".into(),
            "64MiB".into(),
            "--file-keep".into(),
            "2".into(),
            "--otlp-endpoint".into(),
            format!("http://127.0.0.1:{}", self.port),
            "--otlp-events".into(),
            "all".into(),
        ]
    }
}

impl Drop for SinkReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
