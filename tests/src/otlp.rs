//! A real OTLP/HTTP logs receiver for the exporter tests: `python3 tests/otlp/receiver.py`, which
//! decodes every `POST /v1/logs` with the official protobuf definitions (the `opentelemetry-proto`
//! PyPI package, installed by `cargo xtask setup`).
//!
//! [`OtlpReceiver::start`] spawns it on a free loopback port and waits for its `listening` line.
//! Every decoded LogRecord is appended as one JSON object to a file read by
//! [`OtlpReceiver::records`], every export request (answered or refused) to one read by
//! [`OtlpReceiver::requests`]. A test makes it misbehave with [`OtlpReceiver::set_status`] (the next
//! N exports get that status and are not recorded; 429 carries `Retry-After: 1`), takes it down
//! with [`OtlpReceiver::stop`] and brings it back on the same port with [`OtlpReceiver::restart`]
//! (same files, appended to). [`OtlpReceiver::start`] can require a bearer token and serve HTTPS
//! with a certificate from [`test_certs`]. Dropping it kills the process.
//!
//! The receiver's files and log live in `<target>/sealwatch-tests/otlp/<name>/`; the log's tail is
//! part of every error. When python3 or the package is missing the harness fails and says to run
//! `cargo xtask setup`: it never skips.
//!
//! Record objects (one per LogRecord): `time_unix_nano`, `observed_time_unix_nano`,
//! `severity_number`, `severity_text`, `body` (AnyValue as JSON: a string body is a JSON string),
//! `attributes` and `resource` (objects, key -> value; arrays as arrays, kvlists as objects, bytes
//! as `{"bytes_base64": ...}`), `scope` (`name`, `version`, `attributes`), plus `event_name`,
//! `flags`, `trace_id`, `span_id` (hex), `dropped_attributes_count`, `resource_schema_url`,
//! `scope_schema_url`.
//!
//! Request objects (one per `POST /v1/logs`): `status` (answered), `gzip`, `records` (decoded and
//! recorded; 0 unless status 200), `body_bytes`, `content_type`, `content_encoding`, `user_agent`,
//! `authorization`, `content_length`, `tls`, `error` (why it was refused), `rejected` (partial
//! success reported), `time`, `duration_ms`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::cmd;

/// The Python module the receiver imports: its absence means `cargo xtask setup` was not run.
pub const PROTO_MODULE: &str = "opentelemetry.proto.collector.logs.v1.logs_service_pb2";
/// How long the receiver may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one control request.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start an [`OtlpReceiver`]. `Default` is plain HTTP without authentication.
#[derive(Debug, Clone, Default)]
pub struct ReceiverOptions {
    /// Require `Authorization: Bearer <token>`; anything else is answered 401.
    pub token: Option<String>,
    /// Serve HTTPS with this (certificate, private key), PEM files: see [`test_certs`].
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running (or stopped, see [`OtlpReceiver::stop`]) OTLP/HTTP logs receiver on 127.0.0.1.
pub struct OtlpReceiver {
    options: ReceiverOptions,
    child: Option<Child>,
    port: u16,
    control_port: u16,
    dir: PathBuf,
    log_path: PathBuf,
}

/// Fails with a message naming `cargo xtask setup` unless `python3` runs and imports the OTLP
/// definitions. Checked once per test process.
pub fn require_receiver() -> Result<()> {
    static CHECKED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let out = cmd::run(
                &mut cmd::command("python3", &["-c", &format!("import {PROTO_MODULE}")]),
                Duration::from_secs(60),
            )
            .map_err(|err| {
                format!(
                    "the OTLP test receiver needs python3, which does not run ({err:#}): \
                     run `cargo xtask setup`"
                )
            })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "the OTLP test receiver needs the `opentelemetry-proto` Python package \
                     (`python3 -c \"import {PROTO_MODULE}\"` failed: {}): run `cargo xtask setup`",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// `tests/otlp/receiver.py` in the repository.
pub fn receiver_script() -> Result<PathBuf> {
    let script = crate::repo_root().join("tests/otlp/receiver.py");
    ensure!(
        script.is_file(),
        "the OTLP test receiver {} is missing (is $SEALWATCH_REPO the repository?)",
        script.display()
    );
    Ok(script)
}

impl OtlpReceiver {
    /// Starts a receiver on a free port of 127.0.0.1 and waits until it listens.
    pub fn start(options: ReceiverOptions) -> Result<OtlpReceiver> {
        require_receiver()?;
        let dir = crate::artifacts_dir()?
            .join("otlp")
            .join(crate::unique_name("receiver"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut receiver = OtlpReceiver {
            options,
            child: None,
            port: 0,
            control_port: 0,
            log_path: dir.join("receiver.log"),
            dir,
        };
        receiver.spawn()?;
        Ok(receiver)
    }

    /// The base URL of the OTLP endpoint, `http://127.0.0.1:PORT` (`https://` with TLS), without
    /// a path: the exporter appends `/v1/logs`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The full logs URL: [`OtlpReceiver::endpoint`] + `/v1/logs`.
    pub fn logs_url(&self) -> String {
        format!("{}/v1/logs", self.endpoint())
    }

    /// The OTLP port (the same across [`OtlpReceiver::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the receiver keeps `records.jsonl`, `requests.jsonl` and `receiver.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the process is running (between [`OtlpReceiver::stop`] and
    /// [`OtlpReceiver::restart`] it is not).
    pub fn is_up(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Every LogRecord recorded so far (across restarts), in arrival order.
    pub fn records(&self) -> Result<Vec<Value>> {
        read_jsonl(&self.dir.join("records.jsonl"))
    }

    /// Every export request seen so far (across restarts), in arrival order.
    pub fn requests(&self) -> Result<Vec<Value>> {
        read_jsonl(&self.dir.join("requests.jsonl"))
    }

    /// Polls [`OtlpReceiver::records`] until `done` holds for them, and returns them. Fails after
    /// `timeout` with `description`, the record and request counts and the receiver's log tail.
    pub fn wait_for_records(
        &self,
        description: &str,
        timeout: Duration,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.records()?;
            if done(&records) {
                return Ok(records);
            }
            if Instant::now() >= deadline {
                let requests = self.requests()?;
                let statuses: Vec<String> =
                    requests.iter().map(|r| r["status"].to_string()).collect();
                bail!(
                    "the OTLP receiver did not get {description} within {timeout:?}: {} records \
                     in {} requests (statuses {}); receiver log tail:\n{}",
                    records.len(),
                    requests.len(),
                    statuses.join(","),
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Answers the next `count` export requests with `status` (not recording them); 429 answers
    /// carry `Retry-After: 1`. Then it answers 200 again.
    pub fn set_status(&self, status: u16, count: u32) -> Result<()> {
        self.control(&json!({"status": status, "count": count}))
            .map(drop)
    }

    /// Answers every export request normally again.
    pub fn reset(&self) -> Result<()> {
        self.control(&json!({"status": 200})).map(drop)
    }

    /// Sends a raw control object: `status`, `count` (absent: until reset), `retry_after` (the
    /// `Retry-After` value; default 1 for 429, none otherwise), `delay_ms` (answer that late),
    /// `rejected` (with status 200: an OTLP partial success saying that many records were
    /// rejected; they are still recorded). Unknown keys are refused. Returns the receiver's new
    /// state. Lost on [`OtlpReceiver::restart`].
    pub fn control(&self, spec: &Value) -> Result<Value> {
        ensure!(
            self.child.is_some(),
            "the OTLP receiver is stopped: restart it before controlling it"
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], self.control_port));
        let (status, body) = http_post(addr, "/control", &spec.to_string())
            .with_context(|| format!("controlling the OTLP receiver with {spec}"))?;
        ensure!(
            status == 200,
            "the OTLP receiver refused control {spec}: {status} {body}"
        );
        serde_json::from_str(&body).with_context(|| format!("control answer {body:?}"))
    }

    /// Takes the receiver down: the process is killed (SIGKILL, open connections are reset) and
    /// its port refuses connections until [`OtlpReceiver::restart`]. Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // Already exited is fine: down is down.
            let _ = child.kill();
            child
                .wait()
                .context("waiting for the killed OTLP receiver")?;
        }
        Ok(())
    }

    /// Brings a stopped receiver back up on the same port, appending to the same files (a
    /// running one is stopped first). Its control state starts afresh (status 200).
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        // The port was ours a moment ago; another binder could take it in between: retry a bit.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(err) if Instant::now() >= deadline => {
                    return Err(err.context(format!(
                        "restarting the OTLP receiver on port {}",
                        self.port
                    )))
                }
                Err(_) => thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The last lines of the receiver's log (stderr of every run).
    pub fn log_tail(&self) -> String {
        cmd::file_tail(&self.log_path, 30)
    }

    fn spawn(&mut self) -> Result<()> {
        let script = receiver_script()?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let mut command = Command::new("python3");
        command
            .arg("-u")
            .arg(&script)
            .args(["--port", &self.port.to_string()])
            .args(["--control-port", &self.control_port.to_string()])
            .arg("--out")
            .arg(self.dir.join("records.jsonl"))
            .arg("--requests")
            .arg(self.dir.join("requests.jsonl"));
        if let Some(token) = &self.options.token {
            command.args(["--token", token]);
        }
        if let Some((cert, key)) = &self.options.tls {
            command
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let line = cmd::describe(&command);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start `{line}` (run `cargo xtask setup`)"))?;
        let stdout = child.stdout.take().context("the receiver's stdout")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let addrs = (|| -> Result<(u16, u16)> {
            let deadline = Instant::now() + START_TIMEOUT;
            let (mut port, mut control) = (None, None);
            while port.is_none() || control.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                let line = rx.recv_timeout(left).map_err(|_| {
                    anyhow::anyhow!("it printed no `listening` and `control` lines")
                })?;
                let parse = |rest: &str| -> Result<u16> {
                    rest.rsplit(':')
                        .next()
                        .and_then(|p| p.trim().parse().ok())
                        .with_context(|| format!("bad receiver line {line:?}"))
                };
                if let Some(rest) = line.strip_prefix("listening ") {
                    port = Some(parse(rest)?);
                } else if let Some(rest) = line.strip_prefix("control ") {
                    control = Some(parse(rest)?);
                }
            }
            Ok((port.unwrap_or_default(), control.unwrap_or_default()))
        })();
        match addrs {
            Ok((port, control)) => {
                ensure!(
                    self.port == 0 || self.port == port,
                    "the OTLP receiver listens on {port}, not on {}",
                    self.port
                );
                self.port = port;
                self.control_port = control;
                self.child = Some(child);
                Ok(())
            }
            Err(err) => {
                let _ = child.kill();
                let status = child.wait().ok();
                bail!(
                    "the OTLP receiver `{line}` did not start ({err:#}; exit status {}); \
                     its log tail:\n{}",
                    status.map_or("unknown".into(), |s| s.to_string()),
                    self.log_tail()
                )
            }
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The body of a record as JSON: a string body parsed (sealwatch's event line), else as is.
pub fn body_json(record: &Value) -> Result<Value> {
    match &record["body"] {
        Value::String(text) => serde_json::from_str(text)
            .with_context(|| format!("the record body is not JSON: {text:?}")),
        other => Ok(other.clone()),
    }
}

/// Every complete line of a JSON Lines file (a missing file is empty; a last line still being
/// written is left for the next read).
fn read_jsonl(path: &Path) -> Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).with_context(|| format!("bad line in {}: {l}", path.display()))
        })
        .collect()
}

/// `POST path` with a JSON body over plain HTTP/1.1, `Connection: close`: (status, body).
fn http_post(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, CONTROL_TIMEOUT)
        .with_context(|| format!("connecting to http://{addr}"))?;
    stream.set_read_timeout(Some(CONTROL_TIMEOUT))?;
    stream.set_write_timeout(Some(CONTROL_TIMEOUT))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no end of headers in {text:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// A throwaway CA and a server certificate it signed for 127.0.0.1 (SAN `IP:127.0.0.1` and
/// `DNS:localhost`), ECDSA P-256, valid for two days; all PEM. The files live in a temporary
/// directory removed when this is dropped: keep it alive as long as they are used.
pub struct TestCerts {
    /// The CA certificate: give it to the client (the exporter's CA file option).
    pub ca: PathBuf,
    /// The server certificate ([`ReceiverOptions::tls`]'s first path).
    pub cert: PathBuf,
    /// The server's private key (PKCS#8; [`ReceiverOptions::tls`]'s second path).
    pub key: PathBuf,
    dir: tempfile::TempDir,
}

impl TestCerts {
    /// The temporary directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// ([`TestCerts::cert`], [`TestCerts::key`]), as [`ReceiverOptions::tls`] takes them.
    pub fn server_pair(&self) -> (PathBuf, PathBuf) {
        (self.cert.clone(), self.key.clone())
    }
}

/// Makes a [`TestCerts`] with the `openssl` command-line tool.
pub fn test_certs() -> Result<TestCerts> {
    let dir = tempfile::Builder::new()
        .prefix("sealwatch-otlp-tls-")
        .tempdir()
        .context("creating a temporary directory for the test certificates")?;
    let p = |name: &str| dir.path().join(name);
    let (ca, ca_key, cert, key, csr, ext) = (
        p("ca.pem"),
        p("ca.key"),
        p("cert.pem"),
        p("key.pem"),
        p("server.csr"),
        p("server.ext"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let openssl = |args: Vec<&std::ffi::OsStr>| {
        cmd::ok("openssl", &args).context("making the test certificates with the openssl CLI")
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let mut args: Vec<&std::ffi::OsStr> = vec![os("req"), os("-x509")];
    args.extend(ec.map(os));
    args.extend([
        os("-keyout"),
        ca_key.as_os_str(),
        os("-out"),
        ca.as_os_str(),
        os("-days"),
        os("2"),
        os("-subj"),
        os("/CN=sealwatch test CA"),
        os("-addext"),
        os("basicConstraints=critical,CA:TRUE"),
        os("-addext"),
        os("keyUsage=critical,keyCertSign,cRLSign"),
    ]);
    openssl(args)?;
    let mut args: Vec<&std::ffi::OsStr> = vec![os("req"), os("-new")];
    args.extend(ec.map(os));
    args.extend([
        os("-keyout"),
        key.as_os_str(),
        os("-out"),
        csr.as_os_str(),
        os("-subj"),
        os("/CN=127.0.0.1"),
    ]);
    openssl(args)?;
    let mut extensions = File::create(&ext).with_context(|| format!("{}", ext.display()))?;
    extensions.write_all(
        b"subjectAltName=IP:127.0.0.1,DNS:localhost\n\
          basicConstraints=critical,CA:FALSE\n\
          keyUsage=critical,digitalSignature\n\
          extendedKeyUsage=serverAuth\n\
          subjectKeyIdentifier=hash\n\
          authorityKeyIdentifier=keyid\n",
    )?;
    drop(extensions);
    // A fresh serial per certificate: clients may cache by issuer and serial.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let serial = format!("0x{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id());
    openssl(vec![
        os("x509"),
        os("-req"),
        os("-in"),
        csr.as_os_str(),
        os("-CA"),
        ca.as_os_str(),
        os("-CAkey"),
        ca_key.as_os_str(),
        os("-set_serial"),
        std::ffi::OsStr::new(&serial),
        os("-days"),
        os("2"),
        os("-extfile"),
        ext.as_os_str(),
        os("-out"),
        cert.as_os_str(),
    ])?;
    Ok(TestCerts { ca, cert, key, dir })
}
