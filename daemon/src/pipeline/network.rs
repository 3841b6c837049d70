//! Network events: connections, accepts and listeners of containers wait for their container's
//! metadata (the workload is chosen by image, name and namespace), then `detect::network` judges
//! them. DNS answers are learned per container, and what the kernel must enforce is asked for.
use super::{
    hold::{Held, Waiting},
    render, Enforce, Pipeline, Request,
};
use crate::{
    detect::{
        network::{activity, enforced_workload, workload, Activity, NetFacts},
        Actor, ContainerFacts,
    },
    event::{DnsRecord, NetRecord},
    net::{
        dns,
        pending::{Exchange, Rejection},
        SocketText,
    },
    output::{LineSink, TextFields},
};

impl Pipeline {
    /// A connection, accept or listener: it waits for its container's metadata.
    pub(super) fn net(&mut self, net: NetRecord, sink: &mut dyn LineSink) {
        if net.protocol.is_none() {
            return;
        }
        let held = Held {
            cgroup_id: self.state.task_container_cgroup(&net.task),
            ktime_ns: net.task.ktime_ns,
            what: Waiting::Net(net),
        };
        self.hold_or_emit(held, sink);
    }

    /// A DNS query a container sent waits for its answer; an answer that matches one is
    /// remembered for the names of later connections and, for a blocking workload that allows
    /// the name, added to the kernel's allowlist. Any other answer teaches nothing (`pending`).
    pub(super) fn dns(&mut self, record: DnsRecord) {
        let cgroup_id = self.state.task_container_cgroup(&record.task);
        let Some(entry) = self.state.container(cgroup_id) else {
            return;
        };
        let container_id = entry.info.id.clone();
        let now = record.task.ktime_ns;
        if record.query {
            // A query that does not parse waits for nothing: no answer can match it.
            if let (Ok(query), Some(ends)) =
                (dns::parse_query(&record.data, record.tcp), record.ends)
            {
                let exchange = Exchange {
                    tcp: record.tcp,
                    ends,
                    id: query.id,
                    questions: query.questions,
                };
                self.state.dns_queries.sent(&container_id, exchange, now);
            }
            return;
        }
        let parsed = if record.tcp {
            dns::parse_tcp(&record.data)
        } else {
            dns::parse_udp(&record.data)
        };
        let answer = match parsed {
            Ok(answer) => answer,
            Err(err) => {
                self.stats.dns_unparsed += 1;
                tracing::debug!(container = %container_id, %err, "DNS answer not understood");
                return;
            }
        };
        if let Err(rejection) = self.answers_a_query(&container_id, &record, &answer, now) {
            *self.stats.dns_rejected.entry(rejection).or_default() += 1;
            tracing::debug!(
                container = %container_id,
                reason = rejection.as_str(),
                names = ?answer.names.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                "DNS answer rejected: it answers no query of this container"
            );
            return;
        }
        self.stats.dns_answers += 1;
        self.state.names.learn(&container_id, &answer, now);
        let Some(workload) = self.state.enforced.get(&cgroup_id).copied() else {
            return;
        };
        let policy = self.detector.policy().clone();
        for (name, addrs) in &answer.names {
            if !policy.network().wants_name(workload, name) {
                continue;
            }
            for &(addr, ttl) in addrs {
                let names = self
                    .state
                    .names
                    .names_for(&container_id, addr, now)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                self.requests.push(Request::Enforce(Enforce::Address {
                    workload,
                    names,
                    addr,
                    ttl_secs: ttl,
                }));
            }
        }
    }

    /// Whether a parsed answer answers a query the container is waiting on (see `net::pending`).
    fn answers_a_query(
        &mut self,
        container_id: &str,
        record: &DnsRecord,
        answer: &dns::DnsAnswer,
        now: u64,
    ) -> Result<(), Rejection> {
        // Captures made before the kernel recorded the ends: nothing to match against.
        let ends = record.ends.ok_or(Rejection::Unsolicited)?;
        let exchange = Exchange {
            tcp: record.tcp,
            ends,
            id: answer.query.id,
            questions: answer.query.questions.clone(),
        };
        self.state
            .dns_queries
            .answered(container_id, &exchange, record.ifindex, now)
    }

    /// Decides, for every cgroup of every known container, whether the kernel must enforce its
    /// workload's egress allowlist; asks for the changes. Called when metadata arrives and when
    /// the policy changes.
    pub(super) fn update_enforcement(&mut self) {
        let policy = self.detector.policy().clone();
        for (cgroup_id, path) in self.state.containers.container_cgroups() {
            let wanted = self
                .state
                .container(cgroup_id)
                .and_then(|entry| enforced_workload(policy.network(), &ContainerFacts::of(entry)));
            if self.state.enforced.get(&cgroup_id).copied() == wanted {
                continue;
            }
            match wanted {
                Some(workload) => self.state.enforced.insert(cgroup_id, workload),
                None => self.state.enforced.remove(&cgroup_id),
            };
            self.requests.push(Request::Enforce(Enforce::Cgroup {
                cgroup_id,
                path,
                workload: wanted,
            }));
        }
    }

    /// A removed cgroup stops being enforced (the kernel detaches with the cgroup; the daemon
    /// drops its link and map entry).
    pub(super) fn cgroup_gone(&mut self, cgroup_id: u64) {
        if self.state.enforced.remove(&cgroup_id).is_some() {
            self.requests.push(Request::Enforce(Enforce::Cgroup {
                cgroup_id,
                path: String::new(),
                workload: None,
            }));
        }
    }

    pub(super) fn emit_net(&mut self, net: NetRecord, sink: &mut dyn LineSink) {
        let cgroup_id = self.state.task_container_cgroup(&net.task);
        // Only containers are judged; a record whose container left before its metadata came
        // has nothing to be judged against.
        let Some(entry) = self.state.container(cgroup_id) else {
            return;
        };
        let Some(protocol) = net.protocol else {
            return;
        };
        let policy = self.detector.policy().clone();
        let container = ContainerFacts::of(entry);
        let workload = workload(policy.network(), &container);
        let (kind, activity) = activity(&net, protocol);
        let names: Vec<&str> = match activity {
            Activity::Flow(flow) => {
                self.state
                    .names
                    .names_for(container.id, flow.peer, net.task.ktime_ns)
            }
            Activity::Listen { .. } => Vec::new(),
        };
        let image = self.state.procs.image_at(net.task.pid, net.task.ktime_ns);
        let actor = Actor {
            exe: image.map_or(&[][..], |e| &e.exe),
            args: image.map_or(&[][..], |e| &e.args),
            container: Some(container),
        };
        let facts = NetFacts {
            record: &net,
            protocol,
            workload,
            activity,
            names: &names,
        };
        let verdicts: Vec<_> = self
            .detector
            .on_network(&self.config.net_env, &facts, &actor)
            .into_iter()
            .collect();
        let name = names.first().map(|name| (*name).to_owned());
        let container_id = container.id.to_owned();
        let gate = verdicts.first().map(|first| {
            let what = match activity {
                Activity::Flow(flow) => format!(
                    "{} {}",
                    protocol.as_str(),
                    SocketText(flow.peer, flow.peer_port)
                ),
                Activity::Listen { port, .. } => format!("{} {port}", protocol.as_str()),
            };
            let key = (container_id, first.rule.as_str(), kind, what.into_bytes());
            let passed = self.repeat_gate(key.clone(), net.task.ktime_ns, 0);
            (key, passed)
        });
        let mut texts = TextFields::default();
        let process = self.process_at(&net.task, &mut texts);
        let workload_name = policy.network().workload_name(workload).to_owned();
        let network = render::network_json(&net, protocol, kind, name, workload_name);
        let line = crate::output::EventLine {
            process: Some(process),
            container: self.container_json(cgroup_id),
            network: Some(network),
            escaped: texts.into_escaped(),
            ..self.line(net.task.ktime_ns, kind)
        };
        match gate {
            // Held back: printed with its count when the window closes (see `repeats`).
            Some((key, None)) => self.repeats.hold_line(&key, line, verdicts),
            Some((_, Some(repeats))) => self.emit_line(line, verdicts, true, repeats, sink),
            None => self.emit_line(line, verdicts, true, 0, sink),
        }
    }
}
