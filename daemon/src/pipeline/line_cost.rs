//! The daemon's own CPU cost of a connect or accept line, measured in process: the pipeline and
//! the JSON writer, without the kernel, the ring, the pipe or the scheduler. On this noisy VM the
//! connect storm of `cargo xtask bench` moves ±10-20% between runs; this figure moves about
//! ±3%, so it tells whether a change to the hot path helped:
//!
//! `cargo test --release -p sealwatch --lib line_cost -- --nocapture`
//!
//! It asserts nothing about time. In the unit-test run (a debug build) it is one short round
//! that checks the storm's path: every record becomes a well-formed line.
#![expect(
    clippy::unwrap_used,
    reason = "a measurement on fixed input; fails loudly"
)]

use std::{net::IpAddr, sync::Arc, time::Instant};

use super::{Input, Pipeline, PipelineConfig};
use crate::{
    clock::BootClock,
    event::{ExecRecord, KernelEvent, NetOp, NetRecord, Task},
    net::Protocol,
    output::{EventLine, LineSink},
    policy::Policy,
};

const CGROUP: u64 = 4242;
/// The cheapest round is the figure (interruptions only ever add time); a debug build measures
/// nothing worth the wait.
const ROUNDS: u64 = if cfg!(debug_assertions) { 1 } else { 40 };
const LINES_PER_ROUND: u64 = if cfg!(debug_assertions) {
    2_000
} else {
    50_000
};

/// Serialises like the daemon's stdout sink, into a buffer emptied as the pipe would be.
struct Bytes {
    out: Vec<u8>,
    lines: u64,
}

impl LineSink for Bytes {
    fn emit(&mut self, line: &EventLine) {
        line.write_json(&mut self.out);
        self.out.push(b'\n');
        self.lines += 1;
    }
}

fn task(ktime_ns: u64) -> Task {
    super::test_support::task_100(ktime_ns, CGROUP, b"lg")
}

/// The bench container running the connect loop, as the storm sees it.
fn pipeline(sink: &mut Bytes) -> Pipeline {
    let config = PipelineConfig {
        clock: BootClock {
            boot_to_unix_ns: 1_795_000_000_000_000_000,
        },
        ..PipelineConfig::for_tests()
    };
    let mut p = Pipeline::new(config, Arc::new(Policy::embedded_default()));
    p.with_podman_container(
        CGROUP,
        &format!("{:064x}", 7),
        "sealwatch-bench",
        "localhost/sealwatch-test:1",
        sink,
    );
    let args = [
        "/lg",
        "tcp-until",
        "1795408903131624728",
        "1795408906131624728",
    ];
    let exec = ExecRecord {
        task: task(1_000),
        ppid: 99,
        exe: b"/lg".to_vec(),
        cwd: b"/".to_vec(),
        filename: b"/lg".to_vec(),
        args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        pid_level: 1,
        ..ExecRecord::default()
    };
    p.handle(Input::Kernel(KernelEvent::Exec(exec)), sink);
    p
}

#[test]
fn line_cost() {
    let mut sink = Bytes {
        out: Vec::with_capacity(1 << 20),
        lines: 0,
    };
    let mut p = pipeline(&mut sink);
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let mut best_ns = f64::MAX;
    let mut ktime_ns = 2_000_000;
    for _ in 0..ROUNDS {
        sink.lines = 0;
        let start = Instant::now();
        for i in 0..LINES_PER_ROUND {
            ktime_ns += 1_000;
            // The record is built here, as decode builds it (its comm is an allocation).
            let record = NetRecord {
                task: task(ktime_ns),
                op: if i % 2 == 0 {
                    NetOp::Connect
                } else {
                    NetOp::Accept
                },
                ret: 0,
                ipv6: false,
                protocol: Some(Protocol::Tcp),
                local: loopback,
                local_port: 40_000 + (i % 20_000) as u16,
                peer: loopback,
                peer_port: 37_305,
                blocked: false,
            };
            p.handle(Input::Kernel(KernelEvent::Net(record)), &mut sink);
            // About what one turn of the event loop writes to the pipe.
            if sink.out.len() > 256 * 1024 {
                sink.out.clear();
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / sink.lines as f64;
        best_ns = best_ns.min(ns);
        // Every record became a line: the measurement is of the real path.
        assert_eq!(sink.lines, LINES_PER_ROUND);
    }
    let lines: Vec<&[u8]> = sink
        .out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for text in &lines {
        let line: serde_json::Value = serde_json::from_slice(text).unwrap();
        assert!(
            matches!(line["kind"].as_str(), Some("connect" | "accept")),
            "{line}"
        );
        assert_eq!(line["network"]["workload"], "default", "{line}");
        assert_eq!(line["container"]["name"], "sealwatch-bench", "{line}");
    }
    let last = lines.last().unwrap();
    eprintln!(
        "connect/accept line, pipeline and JSON in process: {best_ns:.0} ns \
         (cheapest of {ROUNDS} rounds of {LINES_PER_ROUND} lines, {} bytes each)",
        last.len() + 1
    );
}
