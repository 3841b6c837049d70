//! The DaemonSet as shipped: the image `deploy/image/build.sh` builds, run by podman exactly as
//! the containerd overlay renders the pod (`kubectl kustomize`: security context, capabilities,
//! read-only root, `hostPID`, volumes, env, args, ports; see `sealwatch_tests::shipped`), watching
//! containerd containers that a kubelet would have started (namespace `k8s.io`, CRI annotations
//! of a pod). The same detections as the host tests, from inside the pod: an image file
//! modified by open, `rm`, `mv` and `chmod`; a dropped binary run; a script written in the
//! container and run with `sh`; the exec that entered the container; a connection the policy
//! blocks. Every line carries the pod. (Issue "The shipped DaemonSet and unit are the product".)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use sealwatch_tests::daemon::Daemon;
use sealwatch_tests::events::{check_fields, violation_rule, wait_in_container};
use sealwatch_tests::image::FIXTURE_FILES;
use sealwatch_tests::net_workload::{at, nc, net_for, run, NetPolicy, PORT_OK};
use sealwatch_tests::runtime::{Container, PodIdentity, RunOptions, Runtime};
use sealwatch_tests::shipped::{self, PodRun, RemoveOnDrop};
use sealwatch_tests::{cmd, unique_name};

/// The node name the pod is given (`spec.nodeName`).
const NODE: &str = "sw-shipped-node";
/// A port the policy does not allow.
const PORT_DENIED: u16 = 8081;
/// Where the capture component records, on the node.
const CAPTURE_DIR: &str = "/var/lib/sealwatch/capture";

/// `GET path` on `addr` within `timeout`; the status code.
fn http_status(addr: SocketAddr, path: &str, timeout: Duration) -> Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: sealwatch\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no HTTP status in {answer:?}"))
}

/// The path the probe of `kind` asks, and where it reaches the pod.
fn probe_target<'a>(run: &'a PodRun, kind: &str) -> Result<(&'a str, SocketAddr)> {
    let (path, port) = run
        .probes
        .get(kind)
        .with_context(|| format!("the rendered container has no {kind}"))?;
    let addr = run.ports.get(port).with_context(|| {
        format!("{kind} asks port {port}, which the container does not declare")
    })?;
    Ok((path, *addr))
}

/// Waits until the probe of `kind` answers 200, as the kubelet would ask it.
fn probe_passes(run: &PodRun, kind: &str) -> Result<()> {
    let (path, addr) = probe_target(run, kind)?;
    let passed = cmd::poll_until(Duration::from_secs(30), || {
        http_status(addr, path, Duration::from_secs(2)).is_ok_and(|code| code == 200)
    });
    ensure!(passed, "{kind} GET {path} on {addr} never answered 200");
    Ok(())
}

/// The probe of `kind`, asked once as the kubelet does (1 s timeout), answers 200.
fn probe_answers_now(run: &PodRun, kind: &str) -> Result<()> {
    let (path, addr) = probe_target(run, kind)?;
    let code = http_status(addr, path, Duration::from_secs(1))
        .with_context(|| format!("{kind} GET {path} on {addr}"))?;
    ensure!(code == 200, "{kind} GET {path} on {addr} answered {code}");
    Ok(())
}

/// A line of `c` breaking `rule` that satisfies `matches`, with the container's runtime and
/// pod (`null` outside Kubernetes) on it.
fn wait_rule(
    daemon: &mut Daemon,
    c: &Container,
    pod: Option<&PodIdentity>,
    rule: &str,
    what: &str,
    mut matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    let ev = wait_in_container(
        daemon,
        c,
        &format!("{rule} for {what}"),
        |_| true,
        |ev| violation_rule(ev) == Some(rule) && matches(ev),
    )?;
    let pod = pod.map_or(
        Value::Null,
        |pod| json!({"name": pod.name, "namespace": pod.namespace, "uid": pod.uid}),
    );
    check_fields(
        &ev,
        &[
            ("/container/runtime", json!(c.runtime.as_str())),
            ("/container/pod", pod),
        ],
    )?;
    Ok(ev)
}

fn is_file(ev: &Value, path: &str, op: &str) -> bool {
    ev["file"]["path"] == path && ev["file"]["op"] == op
}

#[test]
fn the_shipped_daemonset_detects_in_containerd_pods() -> Result<()> {
    let rt = Runtime::ContainerdCri;
    let net = net_for(rt)?;
    let _allowed = net.tcp_server(PORT_OK)?;
    let denied = net.tcp_server(PORT_DENIED)?;
    let image = shipped::build_image()?;
    // The containerd overlay with the flight recorder on (components/capture): its hostPath
    // is written under the read-only root as shipped.
    let docs = shipped::render("containerd-capture")?;
    let capture = Path::new(CAPTURE_DIR);
    if capture.exists() {
        std::fs::remove_dir_all(capture)
            .with_context(|| format!("clearing {CAPTURE_DIR} of an earlier run"))?;
    }
    let container_name = unique_name("sw-shipped-web");
    let pod = PodIdentity {
        namespace: "shop".to_owned(),
        name: format!("{container_name}-pod"),
        uid: "6f1d2c3b-0000-4000-8000-5ea1c0ffee01".to_owned(),
    };
    // The one edit a user makes: the policy gets a network section for this workload.
    let network = NetPolicy::new("web", &container_name)
        .block()
        .egress(&[&net.peer_v4()], &[PORT_OK], "tcp")
        .yaml();
    let edit = |map: &str, key: &str, content: &str| {
        if map == "sealwatch-policy" && key == "policy.yaml" {
            format!("{content}\n{network}")
        } else {
            content.to_owned()
        }
    };
    let mut run = PodRun::from_rendered(&docs, "sealwatch", "sealwatch", &image, NODE, &edit)?;
    eprintln!(
        "the rendered pod, as podman runs it:\n  {}\n  {}",
        run.notes.join("\n  "),
        cmd::describe(&run.command)
    );
    let _remove = RemoveOnDrop(run.name.clone());
    let mut daemon = run.start()?;
    probe_passes(&run, "readinessProbe")?;
    probe_passes(&run, "livenessProbe")?;

    let options = RunOptions {
        host_network: true,
        pod: Some(pod.clone()),
        ..RunOptions::default()
    };
    let c = rt.run_detached_with(&container_name, &options, &["sleep", "300"])?;
    let dropped = play_and_check(&mut daemon, &c, Some(&pod))?;

    // The policy blocks every peer but the allowed one: the kernel denies the connect.
    let to = at(net.peer_v4(), PORT_DENIED);
    run_denied(&c, to)?;
    let ev = wait_rule(
        &mut daemon,
        &c,
        Some(&pod),
        "unexpected-connection",
        "the blocked connect",
        |ev| ev["network"]["dport"] == PORT_DENIED,
    )?;
    check_fields(&ev, &[("/network/result", json!("blocked"))])?;
    ensure!(
        denied.seen().is_empty(),
        "the denied peer saw a connection: {:?}",
        denied.seen()
    );
    daemon.stop()?;

    // The capture on the node's disk replays the dropped binary's exec.
    let replayed = sealwatch_tests::capture::replay(capture, &[])?;
    ensure!(
        replayed.lines.iter().any(|line| line.contains(&dropped)),
        "the replay of {CAPTURE_DIR} lacks the dropped binary's exec"
    );
    std::fs::remove_dir_all(capture)?;
    Ok(())
}

/// The changes and runs every deployment must catch, played in `c`, each checked to have
/// happened, then each line asked for: an image file modified by open, `rm`, `mv` and `chmod`
/// (judged as image files: the layers are reachable from the pod), a dropped binary run, a
/// script written in the container and run with `sh`, and the exec that entered the container.
/// Returns the dropped binary's path.
fn play_and_check(daemon: &mut Daemon, c: &Container, pod: Option<&PodIdentity>) -> Result<String> {
    let [opened, removed, moved, chmodded, _] = [
        FIXTURE_FILES[0],
        FIXTURE_FILES[1],
        FIXTURE_FILES[2],
        FIXTURE_FILES[3],
        FIXTURE_FILES[4],
    ];
    let marker = unique_name("sw-shipped");
    // busybox runs the applet argv[1] names when argv[0] starts with "busybox".
    let dropped = format!("/tmp/busybox-{marker}");
    let script = format!("/tmp/{marker}.sh");
    c.exec(&["sh", "-c", &format!("echo {marker} >> {opened}")])?;
    c.exec(&["rm", removed])?;
    c.exec(&["mv", moved, &format!("/tmp/{marker}-moved")])?;
    c.exec(&["chmod", "600", chmodded])?;
    c.exec(&["cp", "/bin/busybox", &dropped])?;
    ensure!(
        c.exec(&[&dropped, "echo", &marker])? == marker,
        "the dropped binary did not run"
    );
    c.exec(&["sh", "-c", &format!("echo 'echo {marker}' > {script}")])?;
    ensure!(
        c.exec(&["sh", &script])? == marker,
        "the script did not run"
    );
    let state = c.exec(&[
        "sh",
        "-c",
        &format!(
            "grep -c {marker} {opened}; test -e {removed} || echo gone; \
             test -e {moved} || echo moved; stat -c %a {chmodded}"
        ),
    ])?;
    ensure!(
        state.lines().collect::<Vec<_>>() == ["1", "gone", "moved", "600"],
        "the changes did not all happen: {state}"
    );

    const IMAGE_RULE: &str = "image-file-modified";
    for (path, op) in [
        (opened, "open_write"),
        (removed, "unlink"),
        (moved, "rename"),
        (chmodded, "chmod"),
    ] {
        let ev = wait_rule(daemon, c, pod, IMAGE_RULE, &format!("{op} {path}"), |ev| {
            is_file(ev, path, op)
        })?;
        check_fields(&ev, &[("/file/layer", json!("lower"))])?;
    }
    wait_rule(daemon, c, pod, "drift-exec", "the dropped binary", |ev| {
        ev["process"]["exe"] == dropped.as_str()
    })?;
    wait_rule(daemon, c, pod, "drift-exec", "the script", |ev| {
        is_file(ev, &script, "script_read")
    })?;
    wait_rule(
        daemon,
        c,
        pod,
        "container-exec",
        "an exec into the container",
        |ev| ev["process"]["args"][0] == "rm",
    )?;

    Ok(dropped)
}

fn run_denied(c: &Container, to: SocketAddr) -> Result<()> {
    run(c, &nc(to))?.denied()?;
    Ok(())
}

/// The CRI-O overlay, rendered and run the same way, against podman containers: CRI-O and
/// podman keep containers in the same containers/storage layout at the same node paths
/// (`/var/lib/containers/storage`, `/run/containers/storage`), so the overlay's mounts are
/// exercised for real (per-container state and overlay layers) though no CRI-O runs here; the
/// containers are podman's, so `runtime` is `podman` and there is no pod. While it runs, a
/// container on the pod network holds 16 idle connections to the metrics port, and the
/// kubelet's probes are still answered.
#[test]
fn the_cri_o_overlay_reads_containers_storage_from_the_pod() -> Result<()> {
    let rt = Runtime::Podman;
    rt.ensure_ready()?;
    let image = shipped::build_image()?;
    let docs = shipped::render("cri-o")?;
    let mut run = PodRun::from_rendered(
        &docs,
        "sealwatch",
        "sealwatch",
        &image,
        NODE,
        &|_, _, content| content.to_owned(),
    )?;
    eprintln!(
        "the rendered CRI-O pod, as podman runs it:\n  {}",
        run.notes.join("\n  ")
    );
    let _remove = RemoveOnDrop(run.name.clone());
    let mut daemon = run.start()?;
    probe_passes(&run, "readinessProbe")?;

    // 16 idle connections from another pod on the pod network (podman's bridge).
    let pod_ip = cmd::ok(
        "podman",
        &[
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            &run.name,
        ],
    )?;
    let holder = unique_name("sw-idle-holder");
    let _holder = RemoveOnDrop(holder.clone());
    let hold = format!(
        "i=0; while [ $i -lt 16 ]; do sleep 120 | nc {pod_ip} 9477 & i=$((i+1)); done; wait"
    );
    let mut args: Vec<&str> = vec!["run", "-d", "--rm", "--name", &holder];
    args.extend(
        sealwatch_tests::runtime::PODMAN_RUN_FLAGS
            .iter()
            .filter(|flag| **flag != "--network=none"),
    );
    args.extend([rt.image(), "sh", "-c", &hold]);
    cmd::ok("podman", &args)?;
    // The daemon keeps MAX_PER_PEER (4) of them and closes the rest at once; without that
    // bound the 16 would fill every connection slot and the probes below would fail.
    let held = cmd::poll_until(Duration::from_secs(20), || {
        cmd::ok(
            "podman",
            &[
                "exec",
                &holder,
                "sh",
                "-c",
                "netstat -tn | grep -c ':9477 .*ESTABLISHED'",
            ],
        )
        .is_ok_and(|count| count.trim().parse::<u32>().is_ok_and(|n| n >= 4))
    });
    ensure!(held, "the holder container did not get its connections up");
    // As the kubelet asks: each probe once, answered within a second, three times in a row.
    for _ in 0..3 {
        for kind in ["livenessProbe", "readinessProbe"] {
            probe_answers_now(&run, kind)?;
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    let c = rt.run_detached_with(
        &unique_name("sw-shipped-crio"),
        &RunOptions::default(),
        &["sleep", "300"],
    )?;
    play_and_check(&mut daemon, &c, None)?;
    daemon.stop()?;
    Ok(())
}
