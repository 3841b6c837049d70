//! Policy errors. Each one displays as a single line, `<file>:<line>:<column>: <reason>` when the
//! place in the file is known and `<file>: <reason>` otherwise, so an operator can jump to it.

use std::io;

/// Why a policy could not be loaded. The daemon exits with [`PolicyError::EXIT_CODE`] on any of them.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{file}: cannot read: {reason}")]
    Read {
        file: String,
        reason: String,
        #[source]
        source: io::Error,
    },
    /// The text is not a valid policy, and the place in the file is known (1-based).
    #[error("{file}:{line}:{column}: {reason}")]
    At {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },
    /// The text is not a valid policy, and no single place in it is to blame.
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

impl PolicyError {
    /// Process exit code for a bad policy (`EX_USAGE` from sysexits.h).
    pub const EXIT_CODE: i32 = 64;

    /// The file the error is about, as given to `load` / `parse`.
    pub fn file(&self) -> &str {
        match self {
            PolicyError::Read { file, .. }
            | PolicyError::At { file, .. }
            | PolicyError::Invalid { file, .. } => file,
        }
    }

    /// `(line, column)`, 1-based, when the error points at a place in the file.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            PolicyError::At { line, column, .. } => Some((*line, *column)),
            PolicyError::Read { .. } | PolicyError::Invalid { .. } => None,
        }
    }

    /// The reason alone, without file and location.
    pub fn reason(&self) -> &str {
        match self {
            PolicyError::Read { reason, .. }
            | PolicyError::At { reason, .. }
            | PolicyError::Invalid { reason, .. } => reason,
        }
    }

    pub(crate) fn read(file: &str, source: io::Error) -> PolicyError {
        let text = source.to_string();
        // "No such file or directory (os error 2)" -> "No such file or directory"
        let reason = match text.find(" (os error ") {
            Some(cut) => &text[..cut],
            None => &text,
        };
        PolicyError::Read {
            file: one_line(file),
            reason: one_line(reason),
            source,
        }
    }

    pub(crate) fn invalid(file: &str, reason: &str) -> PolicyError {
        PolicyError::Invalid {
            file: one_line(file),
            reason: one_line(reason),
        }
    }

    /// Converts a YAML error, taking its location out of the message and into the prefix.
    pub(crate) fn from_yaml(file: &str, error: &serde_yaml_ng::Error) -> PolicyError {
        let text = error.to_string();
        match error.location() {
            Some(loc) => {
                let (line, column) = (loc.line(), loc.column());
                // The library appends " at line L column C" to its messages; the prefix says it.
                let suffix = format!(" at line {line} column {column}");
                let reason = match text.find(&suffix) {
                    Some(at) => format!("{}{}", &text[..at], &text[at + suffix.len()..]),
                    None => text,
                };
                PolicyError::At {
                    file: one_line(file),
                    line,
                    column,
                    reason: one_line(&reason),
                }
            }
            None => PolicyError::invalid(file, &text),
        }
    }
}

/// Keeps every message on one line whatever a file name or a YAML value contains.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}
