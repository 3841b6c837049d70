//! Which lines an output wants (`--stdout-events`, `--file-events`, `--otlp-events`): a
//! comma-separated list of terms, and a line goes out when any term matches it.
//!
//! - `all`: every line.
//! - `violations`: every line that carries a violation.
//! - `low`, `medium`, `high`, `critical`: violations of at least that severity.
//! - an event kind (`exec`, `file`, `session`, `connect`, `accept`, `listen`): every line of that
//!   kind, with or without a violation.
//!
//! `loss` lines always go out: an output that drops lines must be able to say so to its reader.
//! `none` alone turns an output off (`--stdout-events none` when a file or collector takes the
//! lines).
use std::{fmt, str::FromStr};

use super::EventLine;
use crate::policy::Severity;

/// Kinds a selection may name (the schema's `kind` values, less `loss`, which is always sent).
const KINDS: &[&str] = &["exec", "file", "session", "connect", "accept", "listen"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    none: bool,
    all: bool,
    /// Violations of at least this severity (`violations` is `Low`).
    min_severity: Option<Severity>,
    kinds: Vec<&'static str>,
    /// As written, for logs and `--help`.
    text: String,
}

impl Selection {
    pub fn all() -> Self {
        Selection {
            none: false,
            all: true,
            min_severity: None,
            kinds: Vec::new(),
            text: "all".into(),
        }
    }

    /// Whether every line is wanted (spares the check per line).
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// Whether nothing is wanted (the output is off).
    pub fn is_none(&self) -> bool {
        self.none
    }

    pub fn matches(&self, line: &EventLine) -> bool {
        if self.none {
            return false;
        }
        if self.all || line.kind == "loss" {
            return true;
        }
        if let (Some(min), Some(violation)) = (self.min_severity, &line.violation) {
            if Severity::from_name(violation.severity).is_some_and(|s| s >= min) {
                return true;
            }
        }
        self.kinds.contains(&line.kind)
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Selection {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "none" {
            return Ok(Selection {
                none: true,
                all: false,
                min_severity: None,
                kinds: Vec::new(),
                text: "none".into(),
            });
        }
        let mut selection = Selection {
            none: false,
            all: false,
            min_severity: None,
            kinds: Vec::new(),
            text: text.trim().to_string(),
        };
        for term in text.split(',').map(str::trim) {
            match term {
                "" => return Err(format!("empty term in {text:?}")),
                "none" => return Err("none stands alone (it turns the output off)".into()),
                "all" => selection.all = true,
                "violations" => selection.lower_severity(Severity::Low),
                _ => {
                    if let Some(severity) = Severity::from_name(term) {
                        selection.lower_severity(severity);
                    } else if let Some(kind) = KINDS.iter().find(|k| **k == term) {
                        selection.kinds.push(kind);
                    } else {
                        return Err(format!(
                            "unknown term {term:?}: expected all, none, violations, a severity \
                             (low, medium, high, critical) or an event kind ({})",
                            KINDS.join(", ")
                        ));
                    }
                }
            }
        }
        Ok(selection)
    }
}

impl Selection {
    fn lower_severity(&mut self, severity: Severity) {
        self.min_severity = Some(self.min_severity.map_or(severity, |s| s.min(severity)));
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::output::ViolationJson;

    fn line(kind: &'static str, severity: Option<&'static str>) -> EventLine {
        let mut line = crate::tail::test_line(kind);
        line.violation = severity.map(|severity| ViolationJson {
            rule: "drift-exec",
            severity,
            message: String::new(),
            repeats: None,
            action: None,
        });
        line
    }

    fn picks(spec: &str, line: &EventLine) -> bool {
        spec.parse::<Selection>().unwrap().matches(line)
    }

    #[test]
    fn terms_are_a_union() {
        let exec = line("exec", None);
        let high = line("exec", Some("high"));
        let low_file = line("file", Some("low"));
        let connect = line("connect", None);
        assert!(picks("all", &connect));
        assert!(!picks("violations", &exec));
        assert!(picks("violations", &low_file));
        assert!(picks("high", &high));
        assert!(!picks("high", &low_file));
        assert!(picks("critical,exec", &exec));
        assert!(!picks("critical,exec", &low_file));
        assert!(picks("high, connect", &connect));
        // The lowest severity named wins: `violations,high` is every violation.
        assert!(picks("high,violations", &low_file));
    }

    #[test]
    fn loss_lines_always_go_out() {
        assert!(picks("critical", &line("loss", None)));
        assert!(picks("exec", &line("loss", None)));
    }

    #[test]
    fn bad_terms_say_what_is_allowed() {
        let err = "violations,execs".parse::<Selection>().unwrap_err();
        assert!(
            err.contains("\"execs\"") && err.contains("exec, file"),
            "{err}"
        );
        assert!("violations,".parse::<Selection>().is_err());
        assert!("loss".parse::<Selection>().is_err());
        assert!("none,exec".parse::<Selection>().is_err());
        assert!(!picks("none", &line("loss", None)));
    }
}
