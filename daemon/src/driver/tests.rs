//! The driver with a scripted source that plays the live daemon's part (the recorder observes,
//! a rotation takes the pipeline's snapshot, a reload goes in as a policy step), and the proof
//! that replay goes through the same driver.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::{cell::Cell, sync::Arc};

use super::{run_ready, Driver, Source, Step};
use crate::{
    capture::Recorder,
    input::{Input, Request},
    output::{EventLine, LineSink},
    pipeline::Pipeline,
    policy::Policy,
};

/// One move of a scripted live run.
pub enum Move {
    Inputs(Vec<Input>),
    /// The capture rotates (the writer asked): the next file starts with a snapshot.
    Rotate,
    Policy(Arc<Policy>),
}

/// A live run as a script: the driver's source, with the recorder observing as live.
pub struct Script {
    pub moves: std::vec::IntoIter<Move>,
    pub recorder: Recorder,
    pub lines: Vec<EventLine>,
    /// How many lines were printed when the capture rotated.
    pub lines_at_rotation: Option<usize>,
}

impl Source for Script {
    type Error = std::convert::Infallible;

    async fn next(&mut self, pipeline: Option<&Pipeline>) -> Result<Step, Self::Error> {
        Ok(match self.moves.next() {
            None => Step::End,
            Some(Move::Inputs(inputs)) => Step::Inputs(inputs),
            Some(Move::Policy(policy)) => Step::Policy(policy),
            Some(Move::Rotate) => {
                self.lines_at_rotation = Some(self.lines.len());
                if let Some(pipeline) = pipeline {
                    self.recorder.rotate(pipeline.snapshot());
                }
                Step::Idle
            }
        })
    }

    fn sink(&mut self) -> &mut dyn LineSink {
        &mut self.lines
    }

    fn observe(&mut self, input: &Input) {
        self.recorder.record(input);
    }

    fn violations(&mut self, count: u64) {
        self.recorder.violations(count);
    }

    fn route(&mut self, requests: Vec<Request>) {
        drop(requests);
    }

    fn policy_changed(&mut self, policy: &Arc<Policy>) {
        self.recorder.policy_changed(policy);
    }
}

thread_local! {
    /// Driver runs on this thread (tests only): proves which paths go through the driver.
    pub static RUNS: Cell<u64> = const { Cell::new(0) };
}

#[test]
fn live_and_replay_both_go_through_the_one_driver() {
    let dir = tempfile::tempdir().unwrap();
    let before = RUNS.with(Cell::get);
    let (live, _) = crate::capture::tests::record_run(dir.path());
    assert_eq!(RUNS.with(Cell::get), before + 1, "the scripted live run");
    let files = crate::capture::capture_files(dir.path()).unwrap();
    let mut replayed: Vec<EventLine> = Vec::new();
    crate::replay::replay_files(&files, None, &mut replayed, &mut |_, _| {}).unwrap();
    assert_eq!(RUNS.with(Cell::get), before + 2, "replay");
    assert!(!live.is_empty());
    let json = |lines: &[EventLine]| lines.iter().map(EventLine::to_json).collect::<Vec<_>>();
    assert_eq!(json(&replayed), json(&live));
}

#[test]
fn a_restart_finishes_the_pipeline_before_it() {
    // Two runs back to back: what the first still held goes out before the second starts.
    struct TwoRuns(Vec<Step>, Vec<EventLine>);
    impl Source for TwoRuns {
        type Error = std::convert::Infallible;
        async fn next(&mut self, _: Option<&Pipeline>) -> Result<Step, Self::Error> {
            Ok(if self.0.is_empty() {
                Step::End
            } else {
                self.0.remove(0)
            })
        }
        fn sink(&mut self) -> &mut dyn LineSink {
            &mut self.1
        }
        fn route(&mut self, _: Vec<Request>) {}
    }
    let restart = || Step::Restart {
        config: crate::pipeline::PipelineConfig::for_tests(),
        policy: Arc::new(Policy::embedded_default()),
    };
    // An exec in a cgroup nobody announced waits for its metadata (1 s hold) until the restart.
    let exec = crate::capture::tests::exec(7, 1, 0, 42, 1, "/bin/true");
    let mut source = TwoRuns(
        vec![restart(), Step::Inputs(vec![exec]), restart(), Step::Idle],
        Vec::new(),
    );
    let last = run_ready(Driver::empty().run(&mut source)).unwrap();
    assert_eq!(source.1.len(), 1, "the held exec went out at the restart");
    assert_eq!(last.map(|p| p.stats().events), Some(0), "a fresh pipeline");
}
