//! Unit tests of the policy: parsing, errors with their exact location, exception matching.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod errors;
mod matching;
mod parse;

use super::{Policy, PolicyError};

/// The example policies shipped beside this module.
const VALID_EXAMPLE: &str = include_str!("../examples/valid.yaml");
const INVALID_EXAMPLE: &str = include_str!("../examples/invalid.yaml");

/// Parses `text` as `p.yaml`, expecting an error; returns its one-line display.
pub(in crate::policy) fn parse_err(text: &str) -> String {
    let error: PolicyError = Policy::parse(text, "p.yaml").unwrap_err();
    let shown = error.to_string();
    assert!(!shown.contains('\n'), "error is not one line: {shown:?}");
    shown
}

/// Asserts that parsing `text` fails at `line:column` with a reason starting with `reason`.
#[track_caller]
pub(in crate::policy) fn assert_err_at(text: &str, line: usize, column: usize, reason: &str) {
    let shown = parse_err(text);
    let prefix = format!("p.yaml:{line}:{column}: {reason}");
    assert!(
        shown.starts_with(&prefix),
        "got {shown:?}\nwanted prefix {prefix:?}"
    );
}
