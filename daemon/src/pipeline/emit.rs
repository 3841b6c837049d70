//! Printing: a line once per violation it carries (counted by rule, severity and namespace),
//! and the `loss` lines that account for what was dropped.
use super::{DropCounts, Pipeline, ViolationKey};
use crate::{
    detect::Verdict,
    output::{line::OutputBySink, EventLine, LineSink, LossJson, ViolationJson, SCHEMA},
};

impl Pipeline {
    /// Prints `line`, once per violation (each a complete event: alerting pipelines filter on one
    /// field), or once without one when `always` is set.
    pub(super) fn emit_line(
        &mut self,
        line: EventLine,
        verdicts: Vec<Verdict>,
        always: bool,
        repeats: u64,
        sink: &mut dyn LineSink,
    ) {
        if line
            .container
            .as_ref()
            .is_some_and(|c| c.metadata == "pending")
        {
            self.stats.metadata_pending += 1;
        }
        if verdicts.is_empty() {
            if always {
                self.write(&line, sink);
            }
            return;
        }
        let pod_namespace = line
            .container
            .as_ref()
            .and_then(|c| c.pod.as_ref())
            .and_then(|p| p.namespace.clone());
        for verdict in verdicts {
            self.stats.violations += 1;
            let key = ViolationKey {
                rule: verdict.rule.as_str(),
                severity: verdict.severity.as_str(),
                pod_namespace: pod_namespace.clone(),
            };
            *self.stats.violations_by.entry(key).or_default() += 1;
            let mut violating = line.clone();
            violating.violation = Some(ViolationJson {
                rule: verdict.rule.as_str(),
                severity: verdict.severity.as_str(),
                message: verdict.message,
                repeats: (repeats > 0).then_some(repeats),
                action: verdict.action,
            });
            self.write(&violating, sink);
        }
    }

    pub(super) fn write(&mut self, line: &EventLine, sink: &mut dyn LineSink) {
        self.stats.lines += 1;
        sink.emit(line);
    }

    /// A `loss` line with what was dropped since the last one, if anything was.
    pub(super) fn report_loss(
        &mut self,
        ktime_ns: u64,
        drops: DropCounts,
        sink: &mut dyn LineSink,
    ) {
        let last = self.last_drops;
        let by_sink = OutputBySink {
            stdout: drops.output.saturating_sub(last.output),
            file: drops.output_file.saturating_sub(last.output_file),
            otlp: drops.output_otlp.saturating_sub(last.output_otlp),
        };
        let output = by_sink.stdout + by_sink.file + by_sink.otlp;
        let loss = LossJson {
            kernel_critical: drops.kernel_critical.saturating_sub(last.kernel_critical),
            kernel_bulk: drops.kernel_bulk.saturating_sub(last.kernel_bulk),
            decode: drops.decode.saturating_sub(last.decode),
            output,
            output_by_sink: (output > 0).then_some(by_sink),
            capture: drops.capture.saturating_sub(last.capture),
            ..LossJson::default()
        };
        self.last_drops = drops;
        self.stats.drops = drops;
        if loss.total() == 0 {
            return;
        }
        let line = EventLine {
            loss: Some(loss),
            ..self.line(ktime_ns, "loss")
        };
        let dropped_before = sink.dropped();
        self.write(&line, sink);
        if sink.dropped() != dropped_before {
            // The loss line was itself dropped (stdout stalled): the next tick reports these
            // counts again, plus this line, rather than lose them with it.
            self.last_drops = last;
        }
    }

    /// An empty line of `kind` at boot-time `ktime_ns`, for the caller to fill in.
    pub(super) fn line(&self, ktime_ns: u64, kind: &'static str) -> EventLine {
        EventLine {
            schema: SCHEMA,
            time: self.config.clock.wall(ktime_ns),
            node: self.config.node.clone(),
            kind,
            process: None,
            container: None,
            file: None,
            network: None,
            session: None,
            violation: None,
            loss: None,
            escaped: Vec::new(),
        }
    }
}
