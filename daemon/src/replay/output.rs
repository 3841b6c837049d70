//! Replay's output: the same JSON lines the daemon prints, optionally filtered.
use std::io::{self, Write};

use crate::{
    filter::Filter,
    output::{EventLine, LineSink},
};

/// Writes lines that pass the filter; remembers the first write error (a closed pipe ends the
/// output quietly: `sealwatch replay ... | head` is normal use).
pub struct JsonLinesOut<W: Write> {
    filter: Filter,
    out: W,
    error: Option<io::Error>,
    pub written: u64,
}

impl<W: Write> JsonLinesOut<W> {
    pub fn new(filter: Filter, out: W) -> Self {
        JsonLinesOut {
            filter,
            out,
            error: None,
            written: 0,
        }
    }

    /// Flushes; a broken pipe is not an error.
    pub fn finish(mut self) -> io::Result<()> {
        let result = match self.error.take() {
            Some(err) => Err(err),
            None => self.out.flush(),
        };
        match result {
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

impl<W: Write> LineSink for JsonLinesOut<W> {
    fn emit(&mut self, line: &EventLine) {
        if self.error.is_some() || !passes(&self.filter, line) {
            return;
        }
        let json = line.to_json();
        let result = self
            .out
            .write_all(json.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"));
        match result {
            Ok(()) => self.written += 1,
            Err(err) => self.error = Some(err),
        }
    }
}

/// Whether `line` passes `filter` (which looks at the line's JSON form).
pub fn passes(filter: &Filter, line: &EventLine) -> bool {
    if filter.is_empty() {
        return true;
    }
    serde_json::to_value(line).is_ok_and(|value| filter.matches(&value))
}
