//! The pipeline's counters reach the exposition with bounded labels, loss metrics agree with the
//! `loss` lines, and the HTTP answers are right (also over a real socket).
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::{sync::Arc, time::Duration};

use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{http, namespaces::NAMESPACE_CAP, Metrics, PipelineView};
use crate::{
    container::{ContainerMeta, PodMeta},
    event::{model::ExeOrigin, ExecRecord, KernelEvent, Task},
    output::EventLine,
    pipeline::{DropCounts, Input, Pipeline, PipelineConfig},
    policy::Policy,
};

fn pipeline() -> Pipeline {
    Pipeline::new(
        PipelineConfig {
            node: "node-1".into(),
            ..PipelineConfig::for_tests()
        },
        Arc::new(Policy::embedded_default()),
    )
}

fn publish(metrics: &Metrics, p: &Pipeline) {
    metrics.publish(&PipelineView {
        stats: p.stats(),
        processes: p.process_count(),
        containers: p.container_count(),
        held: p.held_count(),
    });
}

fn container_id(n: usize) -> String {
    format!("{n:064x}")
}

/// A podman container with cgroup id `1000 + n` in pod namespace `namespace`, known with metadata.
fn add_container(p: &mut Pipeline, out: &mut Vec<EventLine>, n: usize, namespace: Option<&str>) {
    let id = container_id(n);
    p.handle(
        Input::CgroupSnapshot {
            cgroups: vec![(1000 + n as u64, format!("/machine.slice/libpod-{id}.scope"))],
        },
        out,
    );
    p.handle(
        Input::Metadata {
            container_id: id,
            meta: Some(ContainerMeta {
                name: Some(format!("c{n}")),
                image: Some("localhost/img:1".into()),
                pod: namespace.map(|ns| PodMeta {
                    name: Some("pod".into()),
                    namespace: Some(ns.into()),
                    uid: None,
                }),
            }),
        },
        out,
    );
}

/// An exec as root in the container added with `n`: a root-in-container violation.
fn root_exec(n: usize, ktime_ns: u64) -> Input {
    Input::Kernel(KernelEvent::Exec(ExecRecord {
        task: Task {
            ktime_ns,
            pid: 4000 + n as u32,
            tid: 4000 + n as u32,
            uid: 0,
            gid: 0,
            cgroup_id: 1000 + n as u64,
            mnt_ns: 1,
            pid_ns: 1,
            comm: b"true".to_vec(),
        },
        ppid: 1,
        exe: b"/bin/true".to_vec(),
        exe_ino: 1,
        exe_dev: 1,
        cwd: b"/".to_vec(),
        filename: b"/bin/true".to_vec(),
        interp: b"/bin/true".to_vec(),
        args: vec![b"/bin/true".to_vec()],
        // From the image: no drift, only root-in-container.
        exe_origin: ExeOrigin {
            overlay: true,
            lower: true,
            ..ExeOrigin::default()
        },
        ..ExecRecord::default()
    }))
}

/// The value of the sample line that starts with `series` (name and labels exactly as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.parse().ok()
    })
}

#[test]
fn pipeline_counters_reach_the_exposition() {
    let metrics = Metrics::new();
    let mut p = pipeline();
    let mut out = Vec::new();
    add_container(&mut p, &mut out, 1, Some("shop"));
    add_container(&mut p, &mut out, 2, None);
    p.handle(root_exec(1, 10), &mut out);
    p.handle(root_exec(2, 20), &mut out);
    p.handle(
        Input::Tick {
            ktime_ns: 30,
            drops: DropCounts::default(),
        },
        &mut out,
    );
    publish(&metrics, &p);
    let text = metrics.encode().unwrap();
    let violation = |ns: &str| {
        sample(
            &text,
            &format!(
                "sealwatch_violations_total{{rule=\"root-in-container\",severity=\"medium\",pod_namespace=\"{ns}\"}}"
            ),
        )
    };
    assert_eq!(violation("shop"), Some(1.0), "{text}");
    assert_eq!(violation(""), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, "sealwatch_events_total{kind=\"exec\"}"),
        Some(2.0)
    );
    assert_eq!(sample(&text, "sealwatch_containers"), Some(2.0));
    assert_eq!(
        sample(&text, "sealwatch_metadata_lookups_pending"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "sealwatch_ready"), Some(0.0));
    assert!(text.contains("sealwatch_build_info{version=\""), "{text}");
    assert!(text.ends_with("# EOF\n"));
    // Series that alerts take increase() of exist before anything happened.
    for series in [
        "sealwatch_kernel_drops_total{lane=\"critical\"}",
        "sealwatch_kernel_drops_total{lane=\"bulk\"}",
        "sealwatch_decode_drops_total",
        "sealwatch_output_drops_total{sink=\"stdout\"}",
        "sealwatch_program_attach_failures_total{sensor=\"process\"}",
        "sealwatch_program_attach_failures_total{sensor=\"network\"}",
        "sealwatch_program_attach_failures_total{sensor=\"enforce\"}",
        "sealwatch_policy_reloads_total{result=\"error\"}",
    ] {
        assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
    }
}

#[test]
fn pod_namespace_labels_are_capped() {
    let metrics = Metrics::new();
    let mut p = pipeline();
    let mut out = Vec::new();
    let extra = 6;
    for n in 0..NAMESPACE_CAP + extra {
        add_container(&mut p, &mut out, n, Some(&format!("ns-{n:03}")));
        p.handle(root_exec(n, 100 + n as u64), &mut out);
        publish(&metrics, &p);
    }
    let text = metrics.encode().unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("sealwatch_violations_total{"))
        .collect();
    assert_eq!(series.len(), NAMESPACE_CAP + 1, "{series:#?}");
    let other = "sealwatch_violations_total{rule=\"root-in-container\",severity=\"medium\",pod_namespace=\"other\"}";
    assert_eq!(sample(&text, other), Some(extra as f64));
}

#[test]
fn loss_metrics_equal_the_sum_of_loss_lines() {
    let metrics = Metrics::new();
    let mut p = pipeline();
    let mut out = Vec::new();
    let totals = [
        (0, 0, 0, 0, 0),
        (5, 1, 0, 0, 0),
        (5, 1, 0, 0, 0),
        (17, 4, 2, 3, 6),
        (40, 4, 2, 9, 6),
    ];
    for (i, (critical, bulk, decode, output, capture)) in totals.into_iter().enumerate() {
        // The OTLP sink drops half as much as stdout, in the same ticks.
        let drops = DropCounts {
            kernel_critical: critical,
            kernel_bulk: bulk,
            decode,
            output,
            output_file: 0,
            output_otlp: output / 2,
            capture,
        };
        p.handle(
            Input::Tick {
                ktime_ns: 1_000 + i as u64,
                drops,
            },
            &mut out,
        );
        publish(&metrics, &p);
        let text = metrics.encode().unwrap();
        let lines: Vec<_> = out.iter().filter_map(|l| l.loss.clone()).collect();
        let sum = |f: fn(&crate::output::LossJson) -> u64| lines.iter().map(f).sum::<u64>() as f64;
        let metric = |s: &str| sample(&text, s).unwrap();
        assert_eq!(
            metric("sealwatch_kernel_drops_total{lane=\"critical\"}"),
            sum(|l| l.kernel_critical)
        );
        assert_eq!(
            metric("sealwatch_kernel_drops_total{lane=\"bulk\"}"),
            sum(|l| l.kernel_bulk)
        );
        assert_eq!(metric("sealwatch_decode_drops_total"), sum(|l| l.decode));
        assert_eq!(
            metric("sealwatch_output_drops_total{sink=\"stdout\"}"),
            sum(|l| l.output_by_sink.unwrap_or_default().stdout)
        );
        if output > 1 {
            assert_eq!(
                metric("sealwatch_output_drops_total{sink=\"otlp\"}"),
                sum(|l| l.output_by_sink.unwrap_or_default().otlp)
            );
        }
        assert_eq!(
            sum(|l| l.output),
            sum(|l| l.output_by_sink.unwrap_or_default().stdout
                + l.output_by_sink.unwrap_or_default().otlp),
            "output is the sum over sinks"
        );
        assert_eq!(
            metric("sealwatch_capture_inputs_lost_total"),
            sum(|l| l.capture)
        );
    }
    // A loss line only when something was lost since the previous tick.
    assert_eq!(out.iter().filter(|l| l.kind == "loss").count(), 3);
}

#[test]
fn policy_reloads_are_counted_by_result() {
    let metrics = Metrics::new();
    metrics.policy_reloaded(true);
    metrics.policy_reloaded(false);
    metrics.policy_reloaded(false);
    let text = metrics.encode().unwrap();
    assert_eq!(
        sample(&text, "sealwatch_policy_reloads_total{result=\"success\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "sealwatch_policy_reloads_total{result=\"error\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "sealwatch_policy_last_reload_successful"),
        Some(0.0)
    );
}

#[test]
fn endpoints_answer_by_path_and_readiness() {
    let metrics = Metrics::new();
    let status = |method: Method, path: &str| http::respond(&metrics, &method, path).status();
    assert_eq!(status(Method::GET, "/healthz"), StatusCode::OK);
    assert_eq!(
        status(Method::GET, "/readyz"),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(status(Method::GET, "/metrics"), StatusCode::OK);
    assert_eq!(status(Method::GET, "/nope"), StatusCode::NOT_FOUND);
    assert_eq!(
        status(Method::POST, "/metrics"),
        StatusCode::METHOD_NOT_ALLOWED
    );
    metrics.set_ready(true);
    assert_eq!(status(Method::GET, "/readyz"), StatusCode::OK);
    assert_eq!(status(Method::HEAD, "/readyz"), StatusCode::OK);
}

#[tokio::test]
async fn server_answers_over_tcp() {
    let metrics = Arc::new(Metrics::new());
    let listener = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = http::spawn(listener, metrics.clone());
    let get = |path: &'static str| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    };
    assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
    metrics.set_ready(true);
    assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
    let answer = get("/metrics").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(http::OPENMETRICS), "{answer}");
    assert!(answer.contains("sealwatch_ready 1"), "{answer}");
    // A second bind of the same address fails with a message naming it.
    let err = http::bind(addr).await.unwrap_err().to_string();
    assert!(err.contains(&addr.to_string()), "{err}");
    server.abort();
}

#[test]
fn suppressed_repeats_are_exported() {
    let metrics = Metrics::new();
    let p = pipeline();
    publish(&metrics, &p);
    assert!(metrics
        .encode()
        .unwrap()
        .contains("sealwatch_violation_repeats_suppressed_total 0"));
    let stats = crate::pipeline::PipelineStats {
        repeats_suppressed: 12,
        ..p.stats().clone()
    };
    metrics.publish(&PipelineView {
        stats: &stats,
        processes: 0,
        containers: 0,
        held: 0,
    });
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("sealwatch_violation_repeats_suppressed_total 12"),
        "{text}"
    );
}

/// One address holding many idle connections (a pod on the pod network) does not starve the
/// others: the kubelet's probe from another address is still answered, and the idle ones past
/// the per-address bound are closed at once. Real sockets: 127.0.0.2 plays the prober.
#[tokio::test]
async fn idle_connections_from_one_address_do_not_block_the_probes() {
    let metrics = Arc::new(Metrics::new());
    let listener = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = http::spawn(listener, metrics.clone());
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // The ones past the bound are closed by the server: reading them ends at once.
    let mut closed = 0;
    for stream in &mut idle {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await;
        if matches!(read, Ok(Ok(0)) | Ok(Err(_))) {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        16 - http::MAX_PER_PEER,
        "idle connections closed by the bound"
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut probe = socket.connect(addr).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), probe.read_to_string(&mut answer))
        .await
        .expect("the probe was answered while 16 connections from another address were held")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(idle);
    server.abort();
}
