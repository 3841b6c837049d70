//! Network events: connections, accepts and listeners of containers judged against their
//! workload's allowlist, DNS answers learned per container, and what the kernel must enforce.

use super::{
    events::container_facts,
    hold::{Held, Waiting},
    Enforce, Pipeline, Request,
};
use crate::{
    detect::network::{judge, Activity},
    event::{DnsRecord, NetOp, NetRecord, Task},
    net::{dns, Direction, Flow, SocketText},
    output::{ContainerJson, EventLine, LineSink, NetworkJson, TextFields, SCHEMA},
    policy::{NetAction, RuleId, WorkloadId, WorkloadSubject},
    state::CgroupLookup,
};

impl Pipeline {
    /// A connection, accept or listener: it waits for its container's metadata (the workload is
    /// chosen by image, name and namespace).
    pub(super) fn net(&mut self, net: NetRecord, sink: &mut dyn LineSink) {
        if net.protocol.is_none() {
            return;
        }
        let held = Held {
            cgroup_id: self.task_container_cgroup(&net.task),
            ktime_ns: net.task.ktime_ns,
            what: Waiting::Net(net),
        };
        self.hold_or_emit(held, sink);
    }

    /// A DNS answer a container received: remembered for the names of its later connections,
    /// and, for a blocking workload that allows the name, added to the kernel's allowlist.
    pub(super) fn dns(&mut self, record: DnsRecord) {
        let cgroup_id = self.task_container_cgroup(&record.task);
        let CgroupLookup::Container(entry) = self.containers.lookup(cgroup_id) else {
            return;
        };
        let container_id = entry.info.id.clone();
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
        self.stats.dns_answers += 1;
        let now = record.task.ktime_ns;
        self.names.learn(&container_id, &answer, now);
        let Some(workload) = self.enforced.get(&cgroup_id).copied() else {
            return;
        };
        let policy = self.detector.policy().clone();
        for (name, addrs) in &answer.names {
            if !policy.network().wants_name(workload, name) {
                continue;
            }
            for &(addr, ttl) in addrs {
                let names = self
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

    /// The cgroup that stands for the task's container: its own, or, for a process that joined
    /// a container's namespaces from outside (nsenter), the container's.
    fn task_container_cgroup(&self, task: &Task) -> u64 {
        match self.containers.lookup(task.cgroup_id) {
            CgroupLookup::Container(_) => task.cgroup_id,
            _ => self
                .pidns_container
                .get(&task.pid_ns)
                .copied()
                .unwrap_or(task.cgroup_id),
        }
    }

    /// The workload of the container of `cgroup_id` under the current policy.
    fn workload_of(&self, container: &ContainerJson) -> WorkloadId {
        self.detector.policy().network().select(&WorkloadSubject {
            image: container.image.as_deref(),
            container_name: container.name.as_deref(),
            pod_namespace: container.pod.as_ref().and_then(|p| p.namespace.as_deref()),
        })
    }

    /// Decides, for every cgroup of every known container, whether the kernel must enforce its
    /// workload's egress allowlist; asks for the changes. Called when metadata arrives and when
    /// the policy changes.
    pub(super) fn update_enforcement(&mut self) {
        for (cgroup_id, path) in self.containers.container_cgroups() {
            let wanted = self.container_json(cgroup_id).and_then(|container| {
                let workload = self.workload_of(&container);
                let block = self.detector.policy().network().action(workload) == NetAction::Block;
                block.then_some(workload)
            });
            if self.enforced.get(&cgroup_id).copied() == wanted {
                continue;
            }
            match wanted {
                Some(workload) => self.enforced.insert(cgroup_id, workload),
                None => self.enforced.remove(&cgroup_id),
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
        if self.enforced.remove(&cgroup_id).is_some() {
            self.requests.push(Request::Enforce(Enforce::Cgroup {
                cgroup_id,
                path: String::new(),
                workload: None,
            }));
        }
    }

    pub(super) fn emit_net(&mut self, net: NetRecord, sink: &mut dyn LineSink) {
        let cgroup_id = self.task_container_cgroup(&net.task);
        // Only containers are judged; a record whose container left before its metadata came
        // has nothing to be judged against.
        let Some(container) = self.container_json(cgroup_id) else {
            return;
        };
        let Some(protocol) = net.protocol else {
            return;
        };
        let mut texts = TextFields::default();
        let process = self.process_at(&net.task, &mut texts);
        let workload = self.workload_of(&container);
        let (kind, activity) = match net.op {
            NetOp::Connect | NetOp::Send => (
                "connect",
                Activity::Flow(flow(&net, protocol, Direction::Egress)),
            ),
            NetOp::Accept => (
                "accept",
                Activity::Flow(flow(&net, protocol, Direction::Ingress)),
            ),
            NetOp::Listen | NetOp::Bind => (
                "listen",
                Activity::Listen {
                    protocol,
                    port: net.local_port,
                },
            ),
        };
        let names: Vec<String> = match activity {
            Activity::Flow(flow) => self
                .names
                .names_for(&container.id, flow.peer, net.task.ktime_ns)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            Activity::Listen { .. } => Vec::new(),
        };
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let policy = self.detector.policy().clone();
        let workload_name = policy.network().workload_name(workload).to_owned();
        let mut candidate = judge(
            policy.network(),
            &self.config.net_env,
            workload,
            &activity,
            &name_refs,
        );
        if net.blocked && candidate.is_none() {
            // The kernel's allowlist lagged the policy (a DNS answer learned too late): the
            // block still happened and must not go unreported.
            candidate = Some((
                RuleId::UnexpectedConnection,
                format!(
                    "{} connection to {} was blocked in the kernel although workload \
                     `{workload_name}` allows it (the allowlist was not updated in time)",
                    protocol.as_str(),
                    SocketText(net.peer, net.peer_port)
                ),
            ));
        }
        let action = if net.blocked { "blocked" } else { "alert" };
        let facts = container_facts(&container);
        let verdicts: Vec<_> = candidate
            .and_then(|(rule, message)| {
                self.detector.on_network(
                    rule,
                    message,
                    action,
                    &process.exe,
                    &process.args,
                    Some(&facts),
                )
            })
            .into_iter()
            .collect();
        let mut repeats = 0;
        if let Some(first) = verdicts.first() {
            let what = match activity {
                Activity::Flow(flow) => format!(
                    "{} {}",
                    protocol.as_str(),
                    SocketText(flow.peer, flow.peer_port)
                ),
                Activity::Listen { port, .. } => format!("{} {port}", protocol.as_str()),
            };
            let key = (
                container.id.clone(),
                first.rule.as_str(),
                kind,
                what.into_bytes(),
            );
            match self.repeat_gate(key, net.task.ktime_ns, 0) {
                Some(held_back) => repeats = held_back,
                None => return,
            }
        }
        let (result, errno) = result_of(&net);
        let network = network_json(
            &net,
            protocol,
            kind,
            result,
            errno,
            names.into_iter().next(),
            workload_name,
        );
        let line = EventLine {
            schema: SCHEMA,
            time: self.config.clock.wall(net.task.ktime_ns),
            node: self.config.node.clone(),
            kind,
            process: Some(process),
            container: Some(container),
            file: None,
            network: Some(network),
            session: None,
            violation: None,
            loss: None,
            escaped: texts.into_escaped(),
        };
        self.emit_line(line, verdicts, true, repeats, sink);
    }
}

fn flow(net: &NetRecord, protocol: crate::net::Protocol, direction: Direction) -> Flow {
    Flow {
        protocol,
        direction,
        peer: net.peer,
        peer_port: net.peer_port,
        local: net.local,
        local_port: net.local_port,
    }
}

const EINPROGRESS: i32 = 115;
const ECONNREFUSED: i32 = 111;
const ENETUNREACH: i32 = 101;
const EHOSTUNREACH: i32 = 113;
const ETIMEDOUT: i32 = 110;

/// The `result` and `errno` fields.
fn result_of(net: &NetRecord) -> (&'static str, Option<u32>) {
    if net.blocked {
        return ("blocked", Some(net.ret.unsigned_abs()));
    }
    if net.ret >= 0 {
        return ("success", None);
    }
    let errno = net.ret.saturating_neg();
    let result = match errno {
        EINPROGRESS => return ("in-progress", None),
        ECONNREFUSED => "refused",
        ENETUNREACH | EHOSTUNREACH => "unreachable",
        ETIMEDOUT => "timed-out",
        _ => "failed",
    };
    (result, Some(errno.unsigned_abs()))
}

fn network_json(
    net: &NetRecord,
    protocol: crate::net::Protocol,
    kind: &str,
    result: &'static str,
    errno: Option<u32>,
    name: Option<String>,
    workload: String,
) -> NetworkJson {
    let (direction, src, sport, dst, dport) = match kind {
        "accept" => (
            Some("ingress"),
            net.peer,
            net.peer_port,
            Some(net.local),
            Some(net.local_port),
        ),
        "listen" => (None, net.local, net.local_port, None, None),
        _ => (
            Some("egress"),
            net.local,
            net.local_port,
            Some(net.peer),
            Some(net.peer_port),
        ),
    };
    NetworkJson {
        protocol: protocol.as_str(),
        family: if net.ipv6 { "ipv6" } else { "ipv4" },
        direction,
        src,
        sport,
        dst,
        dport,
        result,
        errno,
        name,
        workload,
    }
}
