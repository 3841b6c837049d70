//! A real ClickHouse server for the fleet test, and the conventions of `deploy/clickhouse/`.
//!
//! [`ClickHouse::start`] runs Debian's `clickhouse-server` (18.16 on Debian 12) as root in a
//! temporary directory of its own (data, tmp, user files, logs), listening on 127.0.0.1 only, on
//! free HTTP and native ports, and waits until `GET /ping` answers `Ok.`. SQL goes over HTTP
//! ([`ClickHouse::query`]); a script goes through `clickhouse-client --multiquery`, as the deploy
//! README tells users to load `schema.sql` ([`ClickHouse::run_script`]). The server is killed
//! when dropped. A missing or failing server is an error naming `cargo xtask setup`, never a
//! skip.
//!
//! The server's time zone is set to `America/St_Johns` (UTC-3:30, a half-hour offset): the
//! shipped schema must store and bucket UTC whatever zone the server runs in.
//!
//! [`named_queries`] splits a `.sql` file of `deploy/clickhouse/` at its `-- name:` markers and
//! [`substitute`] fills its `{placeholder}`s with literals ([`string_literal`]).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::cmd;

/// The server's time zone: not UTC, and not a whole-hour offset.
pub const SERVER_TIME_ZONE: &str = "America/St_Johns";
/// How long the server may take to answer `/ping` after start.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one HTTP request (a query, an insert) may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);
const SETUP_HINT: &str = "install it with `cargo xtask setup` (Debian's clickhouse-server and \
                          clickhouse-client packages)";

/// A running `clickhouse-server`, killed on drop.
pub struct ClickHouse {
    child: Child,
    dir: tempfile::TempDir,
    http: SocketAddr,
    tcp_port: u16,
}

/// One query of a `deploy/clickhouse/*.sql` file.
#[derive(Clone, Debug)]
pub struct NamedQuery {
    /// The word after `-- name:`.
    pub name: String,
    /// The comment line right after the name.
    pub description: String,
    /// The statement, without comments and the final `;`.
    pub sql: String,
}

/// Finds `program` on `$PATH` or in the sbin directories (root's PATH may lack them).
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl ClickHouse {
    /// Starts a server of its own and waits until it answers.
    pub fn start() -> Result<ClickHouse> {
        crate::require_root()?;
        let server = find_program("clickhouse-server")
            .with_context(|| format!("clickhouse-server is not installed: {SETUP_HINT}"))?;
        ensure!(
            find_program("clickhouse-client").is_some(),
            "clickhouse-client is not installed: {SETUP_HINT}"
        );
        let dir = tempfile::Builder::new()
            .prefix("clickhouse-")
            .tempdir_in(crate::artifacts_dir()?)
            .context("creating the ClickHouse directory")?;
        let http_port = crate::prometheus::free_port()?;
        let tcp_port = crate::prometheus::free_port()?;
        let config = write_config(dir.path(), http_port, tcp_port)?;
        let out_path = dir.path().join("stdout.log");
        let out =
            File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
        let mut command = Command::new(&server);
        command
            .arg(format!("--config-file={}", config.display()))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let line = cmd::describe(&command);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start `{line}`: {SETUP_HINT}"))?;
        let mut ch = ClickHouse {
            child,
            dir,
            http: SocketAddr::from(([127, 0, 0, 1], http_port)),
            tcp_port,
        };
        ch.wait_ready(&line)?;
        Ok(ch)
    }

    fn wait_ready(&mut self, line: &str) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "`{line}` exited with {status} before answering /ping ({SETUP_HINT})\n{}",
                    self.log_tail()
                );
            }
            if let Ok((200, body)) = self.http("GET", "/ping", b"") {
                if body == "Ok.\n" {
                    return Ok(());
                }
            }
            ensure!(
                Instant::now() < deadline,
                "`{line}` did not answer /ping within {START_TIMEOUT:?}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The native protocol port (for `clickhouse-client --port`).
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// Runs one statement over HTTP (the body of a POST; an INSERT's data may follow its first
    /// line) and returns the answer's body. A status other than 200 is an error with the
    /// server's message.
    pub fn query(&self, sql: &str) -> Result<String> {
        self.query_bytes(sql.as_bytes())
    }

    /// [`ClickHouse::query`] of raw bytes (an INSERT with its rows).
    pub fn query_bytes(&self, body: &[u8]) -> Result<String> {
        let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        let (status, answer) = self
            .http("POST", "/", body)
            .with_context(|| format!("sending to ClickHouse: {shown}"))?;
        ensure!(
            status == 200,
            "ClickHouse answered {status}: {}\nto: {shown}",
            answer.trim()
        );
        Ok(answer)
    }

    /// Runs `sql` with `FORMAT JSONEachRow` appended and parses each answer line.
    pub fn rows(&self, sql: &str) -> Result<Vec<Value>> {
        let answer = self.query(&format!("{sql}\nFORMAT JSONEachRow"))?;
        answer
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .with_context(|| format!("ClickHouse answered a line that is not JSON: {line}"))
            })
            .collect()
    }

    /// The server's version as (major, minor): (18, 16) for Debian 12's.
    pub fn version(&self) -> Result<(u32, u32)> {
        let text = self.query("SELECT version()")?;
        let mut parts = text.trim().split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor))) => Ok((major, minor)),
            _ => bail!("unexpected version {text:?}"),
        }
    }

    /// `clickhouse-client --multiquery < script`, as users load `schema.sql`.
    pub fn run_script(&self, script: &Path) -> Result<()> {
        let input = File::open(script).with_context(|| format!("opening {}", script.display()))?;
        let port = self.tcp_port.to_string();
        let mut command = cmd::command(
            "clickhouse-client",
            &["--host", "127.0.0.1", "--port", &port, "--multiquery"],
        );
        command.stdin(input);
        let out = run_with_stdin(&mut command)?;
        ensure!(
            out.status.success(),
            "`clickhouse-client --multiquery < {}` failed with {}: {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }

    /// The last lines of the server's logs, for error messages.
    pub fn log_tail(&self) -> String {
        let dir = self.dir.path();
        format!(
            "--- clickhouse-server output (last 20 lines):\n{}\n--- its error log (last 20 lines):\n{}",
            cmd::file_tail(&dir.join("stdout.log"), 20),
            cmd::file_tail(&dir.join("server.err.log"), 20)
        )
    }

    /// One HTTP/1.0 request (the server closes the connection, no chunked answers).
    fn http(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.http, HTTP_TIMEOUT)
            .with_context(|| format!("connecting to http://{}", self.http))?;
        stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
        stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            self.http,
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .with_context(|| format!("no end of headers in {:?}", String::from_utf8_lossy(&raw)))?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no status in {head:?}"))?;
        let body = String::from_utf8(raw[split + 4..].to_vec())
            .context("ClickHouse answered bytes that are not UTF-8")?;
        Ok((status, body))
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Ok(pid) = i32::try_from(self.child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            if !matches!(
                cmd::wait_timeout(&mut self.child, Duration::from_secs(15)),
                Ok(Some(_))
            ) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Runs `command` whose stdin is already set, capturing stdout and stderr; kills it after
/// [`cmd::DEFAULT_TIMEOUT`].
fn run_with_stdin(command: &mut Command) -> Result<std::process::Output> {
    let line = cmd::describe(command);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{line}`: {SETUP_HINT}"))?;
    if cmd::wait_timeout(&mut child, cmd::DEFAULT_TIMEOUT)?.is_none() {
        let _ = child.kill();
        bail!("`{line}` did not finish within {:?}", cmd::DEFAULT_TIMEOUT);
    }
    // It exited: its pipes are at their end (the script's output is a few lines).
    child
        .wait_with_output()
        .with_context(|| format!("waiting for `{line}`"))
}

/// A small config of the server's own: everything under `dir`, 127.0.0.1 only, a default user
/// without password reachable from 127.0.0.1, small caches.
fn write_config(dir: &Path, http_port: u16, tcp_port: u16) -> Result<PathBuf> {
    let path = |name: &str| format!("{}/{name}", dir.display());
    for sub in ["data", "tmp", "user_files", "format_schemas"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let users = dir.join("users.xml");
    std::fs::write(
        &users,
        r#"<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
"#,
    )?;
    let config = dir.join("config.xml");
    std::fs::write(
        &config,
        format!(
            r#"<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{log}</log>
        <errorlog>{errlog}</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{data}/</path>
    <tmp_path>{tmp}/</tmp_path>
    <user_files_path>{user_files}/</user_files_path>
    <format_schema_path>{format_schemas}/</format_schema_path>
    <users_config>{users}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>{SERVER_TIME_ZONE}</timezone>
    <mark_cache_size>104857600</mark_cache_size>
    <uncompressed_cache_size>104857600</uncompressed_cache_size>
    <max_concurrent_queries>20</max_concurrent_queries>
</yandex>
"#,
            log = path("server.log"),
            errlog = path("server.err.log"),
            data = path("data"),
            tmp = path("tmp"),
            user_files = path("user_files"),
            format_schemas = path("format_schemas"),
            users = users.display(),
        ),
    )?;
    Ok(config)
}

/// The queries of a `deploy/clickhouse/*.sql` file: each starts at a `-- name: <name>` line,
/// whose next line is a `-- ` description, and runs to the `;` that ends a line. Comment lines
/// are left out of the statement.
pub fn named_queries(text: &str) -> Result<Vec<NamedQuery>> {
    let mut queries: Vec<NamedQuery> = Vec::new();
    let mut current: Option<(NamedQuery, bool)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("-- name:") {
            if let Some((query, _)) = current.take() {
                bail!("query {} has no `;` before the next -- name:", query.name);
            }
            let query = NamedQuery {
                name: name.trim().to_owned(),
                description: String::new(),
                sql: String::new(),
            };
            current = Some((query, false));
            continue;
        }
        let Some((query, described)) = current.as_mut() else {
            continue;
        };
        if let Some(comment) = line.trim_start().strip_prefix("--") {
            if !*described {
                query.description = comment.trim().to_owned();
                *described = true;
            }
            continue;
        }
        let trimmed = line.trim_end();
        if let Some(last) = trimmed.strip_suffix(';') {
            query.sql.push_str(last);
            let (mut query, _) = current.take().context("a query is open")?;
            query.sql = query.sql.trim().to_owned();
            ensure!(
                !query.description.is_empty(),
                "query {} has no description line",
                query.name
            );
            queries.push(query);
        } else {
            query.sql.push_str(trimmed);
            query.sql.push('\n');
        }
    }
    if let Some((query, _)) = current {
        bail!("query {} has no final `;`", query.name);
    }
    Ok(queries)
}

/// `sql` with every placeholder `{name}` (lowercase letters and `_`) replaced by its literal
/// from `values`, in one pass (a literal is never searched again); an unknown one is an error.
pub fn substitute(sql: &str, values: &[(&str, String)]) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let word_len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if word_len > 0 && after.as_bytes().get(word_len) == Some(&b'}') {
            let word = &after[..word_len];
            let literal = values
                .iter()
                .find(|(name, _)| *name == word)
                .map(|(_, literal)| literal)
                .with_context(|| format!("no value for placeholder {{{word}}} in:\n{sql}"))?;
            out.push_str(literal);
            rest = &after[word_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `s` as a single-quoted ClickHouse string literal (`\` and `'` escaped with a backslash).
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The body of an insert into `sealwatch.ingest`: the statement, then one JSONEachRow row
/// `{"line": "<the line>"}` per event line, as a log shipper sends them.
pub fn ingest_body(lines: &[String]) -> Result<Vec<u8>> {
    let mut body = b"INSERT INTO sealwatch.ingest FORMAT JSONEachRow\n".to_vec();
    for line in lines {
        serde_json::to_writer(&mut body, &serde_json::json!({ "line": line }))?;
        body.push(b'\n');
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
    use super::*;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(string_literal(r"a'b\c"), r"'a\'b\\c'");
    }

    #[test]
    fn substitution_is_one_pass_and_strict() {
        let values = [("exe", string_literal("/tmp/{exe}")), ("days", "30".into())];
        assert_eq!(
            substitute("x = {exe} AND d = {days} AND r = '[{]'", &values).unwrap(),
            "x = '/tmp/{exe}' AND d = 30 AND r = '[{]'"
        );
        assert!(substitute("x = {image}", &values).is_err());
    }

    #[test]
    fn named_queries_split_at_their_markers() {
        let text = "-- header\n\n-- name: one\n-- The first.\nSELECT 1\nFROM t;\n\n\
                    -- name: two\n-- The second.\nSELECT {x};\n";
        let queries = named_queries(text).unwrap();
        assert_eq!(queries.len(), 2);
        assert_eq!(
            (queries[0].name.as_str(), queries[0].description.as_str()),
            ("one", "The first.")
        );
        assert_eq!(queries[0].sql, "SELECT 1\nFROM t");
        assert_eq!(queries[1].sql, "SELECT {x}");
        assert!(named_queries("-- name: open\n-- No end.\nSELECT 1\n").is_err());
    }
}
