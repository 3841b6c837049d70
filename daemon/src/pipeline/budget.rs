//! Per-container budget losses: the kernel drops a container's records over its budget and
//! counts them per cgroup (`sealwatch_abi::budget`); every increase becomes a `loss` line with
//! the container, so a flood and what it cost are on the record of the container that made it.
use std::collections::HashMap;

use super::Pipeline;
use crate::{
    input::{BudgetClass, CgroupBudgetDrops},
    output::{EventLine, LineSink, LossJson},
};

impl Pipeline {
    /// `drops`: every cgroup the kernel holds a budget-drop total for. Totals only grow while
    /// the kernel keeps a cgroup's entry; one that is lower than last seen was evicted and
    /// counted anew, so all of it is new.
    pub(super) fn budget_drops(&mut self, drops: Vec<CgroupBudgetDrops>, sink: &mut dyn LineSink) {
        let mut seen = HashMap::with_capacity(drops.len());
        let mut increases: Vec<(u64, LossJson)> = Vec::new();
        for entry in drops {
            let key = (entry.cgroup_id, entry.class);
            let before = self.budget_seen.get(&key).copied().unwrap_or(0);
            let new = if entry.dropped >= before {
                entry.dropped - before
            } else {
                entry.dropped
            };
            seen.insert(key, entry.dropped);
            if new == 0 {
                continue;
            }
            let at = match increases.iter().position(|(id, _)| *id == entry.cgroup_id) {
                Some(at) => at,
                None => {
                    increases.push((entry.cgroup_id, LossJson::default()));
                    increases.len() - 1
                }
            };
            let loss = &mut increases[at].1;
            match entry.class {
                BudgetClass::File => loss.budget_file += new,
                BudgetClass::Network => loss.budget_network += new,
            }
        }
        // Only what the kernel still holds: bounded by its map.
        self.budget_seen = seen;
        let ktime_ns = self.state.now_ns;
        for (cgroup_id, loss) in increases {
            self.stats.budget_drops.0 += loss.budget_file;
            self.stats.budget_drops.1 += loss.budget_network;
            let line = EventLine {
                container: self.container_json(cgroup_id),
                loss: Some(loss),
                ..self.line(ktime_ns, "loss")
            };
            self.write(&line, sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Input;

    const ID: &str = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

    fn report(cgroup_id: u64, class: BudgetClass, dropped: u64) -> Input {
        Input::BudgetDrops {
            drops: vec![CgroupBudgetDrops {
                cgroup_id,
                class,
                dropped,
            }],
        }
    }

    #[test]
    fn each_increase_is_a_loss_line_of_the_container() {
        let (mut p, mut lines) = Pipeline::with_test_container(90, ID);
        p.handle(report(90, BudgetClass::File, 500), &mut lines);
        p.handle(report(90, BudgetClass::File, 500), &mut lines);
        p.handle(report(90, BudgetClass::File, 700), &mut lines);
        p.handle(report(90, BudgetClass::Network, 3), &mut lines);
        let losses: Vec<(u64, u64)> = lines
            .iter()
            .filter(|l| l.kind == "loss")
            .map(|l| {
                assert_eq!(l.container.as_ref().map(|c| c.id.as_str()), Some(ID));
                let loss = l.loss.as_ref().expect("a loss object");
                (loss.budget_file, loss.budget_network)
            })
            .collect();
        // The network report lists only that class: the file entry left the kernel's map.
        assert_eq!(losses, vec![(500, 0), (200, 0), (0, 3)]);
        assert_eq!(p.stats.budget_drops, (700, 3));
        // Evicted and counted anew: a lower total is all new.
        p.handle(report(90, BudgetClass::File, 40), &mut lines);
        assert_eq!(p.stats.budget_drops, (740, 3));
    }
}
