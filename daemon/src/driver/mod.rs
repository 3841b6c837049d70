//! The one loop that drives the pipeline, live and in replay.
//!
//! A [`Source`] hands out [`Step`]s (live: the readers' channel, ticks, policy reloads and
//! signals; replay: the records of capture files) and takes back what the pipeline produced:
//! its lines (through [`Source::sink`]), its requests ([`Source::route`]: live, answered by the
//! resolvers and the enforcer; replay, dropped, since the recorded answers follow in the stream)
//! and a look at every input ([`Source::observe`]: live, the flight recorder). Because both
//! `sealwatch run` and `sealwatch replay` go through [`Driver::run`], replay is the same pipeline
//! by construction, not by care.
pub mod recording;
#[cfg(test)]
pub(crate) mod tests;

use std::{
    future::Future,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use crate::{
    input::{Input, Request},
    output::{EventLine, LineSink},
    pipeline::{Pipeline, PipelineConfig},
    policy::Policy,
};

/// What a source hands the driver next.
#[derive(Debug)]
pub enum Step {
    /// Inputs, in the order they happened: each is observed, handled, and its lines printed.
    Inputs(Vec<Input>),
    /// Inputs that only rebuild state (the snapshot at the head of a capture file that starts a
    /// run): what they would print belongs to the past and is discarded, their requests too.
    Prime(Vec<Input>),
    /// A new policy is in force from here on (reload).
    Policy(Arc<Policy>),
    /// What follows belongs to another daemon run: finish the current pipeline (its held events
    /// go out) and start a fresh one.
    Restart {
        config: PipelineConfig,
        policy: Arc<Policy>,
    },
    /// Nothing for the pipeline (a record or a signal the source handled itself).
    Idle,
    /// The source is exhausted or was told to stop.
    End,
}

/// Where inputs come from and where what the pipeline makes goes.
pub trait Source {
    type Error;

    /// The next step. `pipeline` is the one in force, none before the first
    /// [`Step::Restart`] of a driver made [`Driver::empty`].
    fn next(
        &mut self,
        pipeline: Option<&Pipeline>,
    ) -> impl Future<Output = Result<Step, Self::Error>>;

    /// Where lines go.
    fn sink(&mut self) -> &mut dyn LineSink;

    /// Sees every input just before the pipeline handles it (live: the recorder records it).
    fn observe(&mut self, _input: &Input) {}

    /// `count` violation lines followed from the input just observed.
    fn violations(&mut self, _count: u64) {}

    /// The pipeline's requests after each step.
    fn route(&mut self, requests: Vec<Request>);

    /// A new policy went into the pipeline (live: the kernel's filters, the enforcer and the
    /// capture follow it).
    fn policy_changed(&mut self, _policy: &Arc<Policy>) {}

    /// After each step, once its requests are routed (live: metrics, capture rotation, stdout
    /// batch hand-off).
    fn after_step(&mut self, _pipeline: &Pipeline) {}
}

/// Owns the pipeline while a source feeds it.
pub struct Driver {
    pipeline: Option<Pipeline>,
}

impl Driver {
    /// A driver with its pipeline (live).
    pub fn new(pipeline: Pipeline) -> Self {
        Driver {
            pipeline: Some(pipeline),
        }
    }

    /// A driver whose source starts with [`Step::Restart`] (replay: the first file's header
    /// makes the pipeline).
    pub fn empty() -> Self {
        Driver { pipeline: None }
    }

    /// The pipeline in force, if any.
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.pipeline.as_ref()
    }

    /// Feeds `source` into the pipeline until it ends, then emits everything still held.
    /// Returns the last pipeline (its counters), if there was one.
    pub async fn run<S: Source>(mut self, source: &mut S) -> Result<Option<Pipeline>, S::Error> {
        #[cfg(test)]
        tests::RUNS.with(|runs| runs.set(runs.get() + 1));
        loop {
            let step = source.next(self.pipeline.as_ref()).await?;
            if matches!(step, Step::End) {
                break;
            }
            self.step(step, source);
            if let Some(pipeline) = &mut self.pipeline {
                source.route(pipeline.take_requests());
                source.after_step(pipeline);
            }
        }
        if let Some(pipeline) = &mut self.pipeline {
            pipeline.finish(source.sink());
        }
        Ok(self.pipeline)
    }

    fn step<S: Source>(&mut self, step: Step, source: &mut S) {
        match step {
            Step::Inputs(inputs) => {
                let Some(pipeline) = &mut self.pipeline else {
                    tracing::warn!(
                        inputs = inputs.len(),
                        "inputs before any pipeline started: skipped"
                    );
                    return;
                };
                for input in inputs {
                    feed(pipeline, source, input);
                }
            }
            Step::Prime(inputs) => {
                if let Some(pipeline) = &mut self.pipeline {
                    for input in inputs {
                        pipeline.handle(input, &mut Discard);
                    }
                    drop(pipeline.take_requests());
                }
            }
            Step::Policy(policy) => {
                if let Some(pipeline) = &mut self.pipeline {
                    pipeline.set_policy(policy.clone());
                    source.policy_changed(&policy);
                }
            }
            Step::Restart { config, policy } => {
                if let Some(mut done) = self.pipeline.take() {
                    done.finish(source.sink());
                }
                self.pipeline = Some(Pipeline::new(config, policy));
            }
            Step::Idle | Step::End => {}
        }
    }
}

/// One input: observed, handled, and the violations it caused reported back.
fn feed<S: Source>(pipeline: &mut Pipeline, source: &mut S, input: Input) {
    source.observe(&input);
    let before = pipeline.stats().violations;
    pipeline.handle(input, source.sink());
    let new = pipeline.stats().violations.saturating_sub(before);
    if new > 0 {
        source.violations(new);
    }
}

/// A sink that forgets: lines printed while a snapshot is taken in belong to the past.
pub struct Discard;

impl LineSink for Discard {
    fn emit(&mut self, _line: &EventLine) {}
}

/// Runs a future whose every await is ready at once (a replay source never waits on anything),
/// on this thread, without an async runtime: replay is plain synchronous code that happens to
/// share the live loop. A future that does wait is polled again after a yield.
pub fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}
