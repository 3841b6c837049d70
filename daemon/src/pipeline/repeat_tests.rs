//! The repeat window of file violations, with repeats the kernel already folded into a record.
use std::sync::Arc;

use super::{Pipeline, PipelineConfig};
use crate::policy::Policy;

const SECOND: u64 = 1_000_000_000;

fn pipeline() -> Pipeline {
    Pipeline::new(
        PipelineConfig::for_tests(),
        Arc::new(Policy::embedded_default()),
    )
}

/// The repeat key of appends to /etc/group in container c1.
fn key() -> super::repeats::RepeatKey {
    (
        "c1".to_owned(),
        "image-file-modified",
        "open_write",
        b"/etc/group".to_vec(),
    )
}

#[test]
fn kernel_folded_repeats_add_to_the_held_back_count() {
    let mut p = pipeline();
    // First record: prints, with what the kernel folded before it (nothing yet).
    assert_eq!(p.repeat_gate(key(), SECOND, 0), Some(0));
    // Within the window: held back, itself and the 7 the kernel folded into it.
    assert_eq!(p.repeat_gate(key(), 2 * SECOND, 7), None);
    assert_eq!(p.repeat_gate(key(), 3 * SECOND, 0), None);
    // After the window: printed with every occurrence since the last line (8 + 1 + 3).
    assert_eq!(p.repeat_gate(key(), 12 * SECOND, 3), Some(12));
    assert_eq!(p.stats().repeats_suppressed, 12);
    // Another operation on the same file has a window of its own.
    let chmod = (
        "c1".to_owned(),
        "image-file-modified",
        "chmod",
        b"/etc/group".to_vec(),
    );
    assert_eq!(p.repeat_gate(chmod, 12 * SECOND, 2), Some(2));
}

#[test]
fn a_held_back_violation_is_printed_when_its_window_closes() {
    let mut p = pipeline();
    assert_eq!(p.repeat_gate(key(), SECOND, 0), Some(0));
    // Two held back (the second with one the kernel folded), each leaving its line.
    assert_eq!(p.repeat_gate(key(), 2 * SECOND, 0), None);
    p.repeats
        .hold_line(&key(), p.line(2 * SECOND, "file"), Vec::new());
    assert_eq!(p.repeat_gate(key(), 3 * SECOND, 1), None);
    p.repeats
        .hold_line(&key(), p.line(3 * SECOND, "file"), Vec::new());
    assert!(
        p.repeats.take_due(5 * SECOND).is_empty(),
        "the window is open"
    );
    let due = p.repeats.take_due(11 * SECOND);
    assert_eq!(due.len(), 1, "the window closed on held-back violations");
    assert_eq!(due[0].repeats, 3, "every one held back, the folded one too");
    assert_eq!(
        due[0].line.time,
        p.line(3 * SECOND, "file").time,
        "the latest line"
    );
    assert!(p.repeats.take_due(30 * SECOND).is_empty(), "printed once");
    // The next identical violation starts a fresh window and prints at once.
    assert_eq!(p.repeat_gate(key(), 31 * SECOND, 0), Some(0));
}
