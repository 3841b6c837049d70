//! A real Prometheus server (Debian's `prometheus`) on a loopback port, scraping the daemon's
//! metrics endpoint every second with the project's alert rules loaded, plus a minimal HTTP/1.1
//! client for its API and for the daemon's endpoints (no HTTP client crate: loopback only).
//!
//! [`Prometheus::start`] writes a temporary config, starts the server and waits for `/-/ready`;
//! dropping it kills the server. Its log goes to `<target>/sealwatch-tests/logs/prometheus-*.log`
//! and its tail is part of every error.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::cmd;

/// How long Prometheus may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one HTTP request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A free TCP port on 127.0.0.1 (bound, read and released: a tiny race with other binders).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// An HTTP response: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `GET path` (path and query, already encoded) on `addr` with HTTP/1.1 and `Connection: close`.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)
        .with_context(|| format!("connecting to http://{addr}"))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .with_context(|| format!("sending GET {path} to {addr}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer to GET {path} from {addr}"))?;
    parse_response(&raw).with_context(|| format!("answer to GET http://{addr}{path}"))
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no end of headers in {text:?}"))?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &str) -> Result<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").context("truncated chunk size")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size:?}"))?;
        if size == 0 {
            return Ok(body);
        }
        ensure!(after.len() >= size, "truncated chunk");
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// Percent-encodes a query parameter value.
pub fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of sample `series` (name and labels exactly as the exposition prints them) in an
/// OpenMetrics/Prometheus text body.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split(' ').next()?.parse().ok()
    })
}

/// Copies the alert rules file `src` to `dst` with every `for:` duration set to `for_`, so alerts
/// fire within a test's patience.
pub fn rules_with_short_for(src: &Path, dst: &Path, for_: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(src).with_context(|| format!("reading {}", src.display()))?;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.trim_start().strip_prefix("for: ") {
            Some(_) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push_str(&format!("{indent}for: {for_}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    std::fs::write(dst, out).with_context(|| format!("writing {}", dst.display()))
}

/// A running Prometheus server.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (job `sealwatch`, every second) and evaluating
    /// `rules` every second; waits until it is ready.
    pub fn start(target: SocketAddr, rules: &Path) -> Result<Prometheus> {
        crate::require_root()?;
        let dir = tempfile::Builder::new()
            .prefix("prometheus-")
            .tempdir_in(crate::artifacts_dir()?)
            .context("creating the Prometheus directory")?;
        let rules_copy = dir.path().join("rules.yaml");
        std::fs::copy(rules, &rules_copy)
            .with_context(|| format!("copying {}", rules.display()))?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: sealwatch\n    scrape_interval: 1s\n    \
                 scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n",
                rules_copy.display()
            ),
        )
        .context("writing prometheus.yml")?;
        let check = cmd::run(
            &mut cmd::command(
                "promtool",
                &["check".as_ref(), "config".as_ref(), config.as_os_str()],
            ),
            cmd::DEFAULT_TIMEOUT,
        )?;
        ensure!(
            check.status.success(),
            "promtool check config failed: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );

        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let logs = crate::artifacts_dir()?.join("logs");
        std::fs::create_dir_all(&logs)?;
        let log_path = logs.join(format!("{}.log", crate::unique_name("prometheus")));
        let log = File::create(&log_path)?;
        let mut command = Command::new("prometheus");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let line = cmd::describe(&command);
        let child = command.spawn().with_context(|| {
            format!("cannot start `{line}`: install Debian's prometheus (cargo xtask setup)")
        })?;
        let mut prometheus = Prometheus {
            child,
            addr,
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = http_get(addr, "/-/ready") {
                if r.status == 200 {
                    return Ok(prometheus);
                }
            }
            if let Some(status) = prometheus.child.try_wait()? {
                bail!("`{line}` exited with {status}\n{}", prometheus.log_tail());
            }
            if Instant::now() >= deadline {
                bail!(
                    "Prometheus not ready within {START_TIMEOUT:?}\n{}",
                    prometheus.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where its HTTP API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /api/v1/<path>`; fails unless the API says `"status": "success"`; returns `data`.
    pub fn api(&self, path: &str) -> Result<Value> {
        let r = http_get(self.addr, &format!("/api/v1/{path}"))?;
        let v: Value = serde_json::from_str(&r.body)
            .with_context(|| format!("Prometheus answered {} with {:?}", r.status, r.body))?;
        ensure!(
            v["status"] == "success",
            "Prometheus API /api/v1/{path} failed ({}): {}",
            r.status,
            r.body
        );
        Ok(v["data"].clone())
    }

    /// An instant query; the result vector's samples as (labels, value).
    pub fn query(&self, expr: &str) -> Result<Vec<(Value, f64)>> {
        let data = self.api(&format!("query?query={}", encode_query(expr)))?;
        let result = data["result"].as_array().cloned().unwrap_or_default();
        result
            .into_iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("no value in {s}"))?;
                Ok((s["metric"].clone(), value))
            })
            .collect()
    }

    /// The sum of an instant query's values (0 when the result is empty).
    pub fn query_sum(&self, expr: &str) -> Result<f64> {
        Ok(self.query(expr)?.iter().fold(0.0, |sum, (_, v)| sum + v))
    }

    /// Active alerts (pending and firing) as the API lists them.
    pub fn alerts(&self) -> Result<Vec<Value>> {
        Ok(self.api("alerts")?["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Polls `probe` every 250 ms until it returns `Some`, failing after `timeout` with
    /// `description` and the last error or state it reported.
    pub fn wait_for<T>(
        &self,
        description: &str,
        timeout: Duration,
        mut probe: impl FnMut(&Prometheus) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("(no answer yet)");
        loop {
            match probe(self) {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() >= deadline {
                bail!(
                    "Prometheus: no {description} within {timeout:?}; last error: {last}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        format!(
            "--- prometheus log (last 20 lines; full log {}):\n{}",
            self.log_path.display(),
            cmd::file_tail(&self.log_path, 20)
        )
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_and_plain_bodies_parse() {
        let plain =
            parse_response(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 3\r\n\r\nno\n")
                .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!((plain.status, plain.body.as_str()), (503, "no\n"));
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n",
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!((chunked.status, chunked.body.as_str()), (200, "abcdef"));
        assert_eq!(
            encode_query("a{b=\"c\"} > 0"),
            "a%7Bb%3D%22c%22%7D%20%3E%200"
        );
        assert_eq!(sample("x_total{a=\"b\"} 3\nx 1.5 123\n", "x"), Some(1.5));
    }
}
