//! `sealwatch tail`: connect, send the filter, print event lines to stdout and protocol notices
//! to stderr, until the daemon stops or stdout closes.
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;

use serde_json::Value;

use super::{control, TailArgs, TailError};
use crate::filter::Filter;

pub fn tail(args: &TailArgs) -> Result<(), TailError> {
    // Refuse bad flags here, with the flag's name, before bothering the daemon.
    Filter::compile(&args.filter)?;
    let mut stream =
        UnixStream::connect(&args.tail_socket).map_err(|source| TailError::Connect {
            path: args.tail_socket.clone(),
            source,
        })?;
    let hello = serde_json::to_string(&args.filter).map_err(std::io::Error::other)?;
    stream.write_all(format!("{hello}\n").as_bytes())?;
    let reader = BufReader::new(stream);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in reader.lines() {
        let line = line?;
        if line.starts_with(control::PREFIX) {
            control_line(&line)?;
            continue;
        }
        let written = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        match written {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::BrokenPipe => return Ok(()),
            Err(err) => return Err(err.into()),
        }
    }
    eprintln!("sealwatch tail: the daemon closed the connection (stopped?)");
    Ok(())
}

fn control_line(line: &str) -> Result<(), TailError> {
    let value: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    match value.get("kind").and_then(Value::as_str) {
        Some("tail-skipped") => {
            let count = value.get("count").and_then(Value::as_u64).unwrap_or(0);
            eprintln!(
                "sealwatch tail: {count} lines skipped here: this terminal did not keep up (the daemon never waits for a tail)"
            );
            Ok(())
        }
        Some("tail-error") => Err(TailError::Refused(
            value
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or(line)
                .to_owned(),
        )),
        _ => {
            tracing::debug!(line, "tail: control line");
            Ok(())
        }
    }
}
