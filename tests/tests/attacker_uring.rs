//! The attacker submits through io_uring what it would otherwise do with syscalls: no syscall
//! tracepoint sees an open, rename, unlink, link or connect made that way. The container runs
//! without a seccomp filter, as a Kubernetes pod without a profile does (podman's default
//! profile refuses io_uring). Each operation is checked to have happened, then its line is
//! asked for; the control is the same change made with a plain syscall. (Issue "An attacker
//! inside a container cannot switch sealwatch off", point 5.)

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use sealwatch_tests::daemon::Daemon;
use sealwatch_tests::events::{check_fields, is_exec_of, violation_rule, wait_in_container};
use sealwatch_tests::image::{FIXTURE_FILES, URING_PROBE};
use sealwatch_tests::net_workload::{
    at, nc, net_for, run, start_daemon, NetPolicy, PORT_BAD, PORT_OK,
};
use sealwatch_tests::runtime::{Container, RunOptions, Runtime};
use sealwatch_tests::unique_name;

const IMAGE_RULE: &str = "image-file-modified";

fn daemon_and_container(host_network: bool) -> Result<(Daemon, Container)> {
    let options = RunOptions {
        seccomp_unconfined: true,
        host_network,
        ..RunOptions::default()
    };
    sealwatch_tests::attack::daemon_and_container(Runtime::Podman, "sw-uring", &options)
}

fn uring(c: &Container, args: &[&str]) -> Result<()> {
    let mut argv = vec![URING_PROBE];
    argv.extend_from_slice(args);
    let out = c.exec(&argv)?;
    ensure!(out.trim() == "ok", "{argv:?}: {out}");
    Ok(())
}

fn wait_image_change(daemon: &mut Daemon, c: &Container, path: &str, op: &str) -> Result<Value> {
    let ev = wait_in_container(
        daemon,
        c,
        &format!("{IMAGE_RULE} ({op}) for {path}"),
        |_| true,
        |ev| {
            violation_rule(ev) == Some(IMAGE_RULE)
                && ev["file"]["path"] == path
                && ev["file"]["op"] == op
        },
    )?;
    check_fields(&ev, &[("/file/layer", json!("lower"))])?;
    Ok(ev)
}

/// An append, an unlink, a rename and a hard link of image files, each through io_uring, are
/// each the `image-file-modified` of the file they touched, by the probe.
#[test]
fn file_changes_through_io_uring_are_judged() -> Result<()> {
    let (mut daemon, c) = daemon_and_container(false)?;
    let [plain, appended, unlinked, renamed, linked] = [
        FIXTURE_FILES[0],
        FIXTURE_FILES[1],
        FIXTURE_FILES[2],
        FIXTURE_FILES[3],
        FIXTURE_FILES[4],
    ];
    let marker = unique_name("sw-uring");
    // The control: the same append with a syscall.
    c.exec(&["sh", "-c", &format!("echo {marker} >> {plain}")])?;
    wait_image_change(&mut daemon, &c, plain, "open_write")?;

    uring(&c, &["append", appended, &marker])?;
    uring(&c, &["unlink", unlinked])?;
    uring(&c, &["rename", renamed, &format!("/tmp/{marker}-renamed")])?;
    uring(&c, &["link", linked, &format!("/tmp/{marker}-linked")])?;
    let state = c.exec(&[
        "sh",
        "-c",
        &format!(
            "grep -c {marker} {appended}; test -e {unlinked} || echo gone; \
             test -e {renamed} || echo moved; stat -c %h {linked}"
        ),
    ])?;
    ensure!(
        state.lines().collect::<Vec<_>>() == ["1", "gone", "moved", "2"],
        "the io_uring changes did not all happen: {state}"
    );
    for (path, op) in [
        (appended, "open_write"),
        (unlinked, "unlink"),
        (renamed, "rename"),
        (linked, "link"),
    ] {
        let ev = wait_image_change(&mut daemon, &c, path, op)?;
        check_fields(&ev, &[("/process/exe", json!(URING_PROBE))])?;
    }
    daemon.stop()?;
    Ok(())
}

/// An open submitted through io_uring into one of the ring's fixed-file slots puts the file in
/// no descriptor table, and the write through the slot is no syscall: the open for appending is
/// judged on the file it opened all the same, whether the program names the slot or lets the
/// kernel allocate one. The control is the io_uring open into an ordinary descriptor.
#[test]
fn opens_into_fixed_file_slots_are_judged() -> Result<()> {
    let (mut daemon, c) = daemon_and_container(false)?;
    let [plain, named_slot, allocated_slot] =
        [FIXTURE_FILES[0], FIXTURE_FILES[1], FIXTURE_FILES[2]];
    let marker = unique_name("sw-uring-fixed");
    uring(&c, &["append", plain, &marker])?;
    wait_image_change(&mut daemon, &c, plain, "open_write")?;

    uring(&c, &["fixed-append", named_slot, &marker])?;
    uring(&c, &["fixed-alloc-append", allocated_slot, &marker])?;
    let state = c.exec(&[
        "sh",
        "-c",
        &format!("grep -c {marker} {named_slot} {allocated_slot}"),
    ])?;
    ensure!(
        state.lines().all(|line| line.ends_with(":1")) && state.lines().count() == 2,
        "the appends through fixed-file slots did not both happen: {state}"
    );
    for path in [named_slot, allocated_slot] {
        let ev = wait_image_change(&mut daemon, &c, path, "open_write")?;
        check_fields(&ev, &[("/process/exe", json!(URING_PROBE))])?;
    }
    daemon.stop()?;
    Ok(())
}

/// A connect submitted through io_uring is a `connect` line with its peer, like the syscall's.
#[test]
fn a_connect_through_io_uring_is_seen() -> Result<()> {
    let net = net_for(Runtime::Podman)?;
    let _server = net.tcp_server(PORT_OK)?;
    let (mut daemon, c) = daemon_and_container(true)?;
    let peer = net.peer_v4().to_string();
    uring(&c, &["connect", &peer, &PORT_OK.to_string()])?;
    let ev = wait_in_container(
        &mut daemon,
        &c,
        &format!("the io_uring connect to {peer}:{PORT_OK}"),
        |_| true,
        |ev| ev["kind"] == "connect" && ev["network"]["dst"] == peer.as_str(),
    )?;
    check_fields(
        &ev,
        &[
            ("/network/dport", json!(PORT_OK)),
            ("/network/result", json!("success")),
            ("/process/exe", json!(URING_PROBE)),
        ],
    )?;
    daemon.stop()?;
    Ok(())
}

/// A connect through io_uring that the workload's policy blocks is denied in the kernel (the
/// cgroup hooks see it like the syscall's) and its line says `blocked`, like the syscall's
/// (the control: the plain `nc` to the same peer, blocked the same way). The block programs'
/// mark is taken by the io_uring record, not left for the thread's next connect.
#[test]
fn a_connect_through_io_uring_that_the_policy_blocks_is_blocked() -> Result<()> {
    let net = net_for(Runtime::Podman)?;
    let _allowed = net.tcp_server(PORT_OK)?;
    let denied = net.tcp_server(PORT_BAD)?;
    let name = unique_name("sw-uring-block");
    let policy = NetPolicy::new("uring", &name)
        .block()
        .egress(&[&net.peer_v4()], &[PORT_OK], "tcp")
        .write()?;
    let mut daemon = start_daemon(policy.path())?;
    let options = RunOptions {
        seccomp_unconfined: true,
        host_network: true,
        ..RunOptions::default()
    };
    let c = Runtime::Podman.run_detached_with(&name, &options, &["sleep", "300"])?;
    wait_in_container(
        &mut daemon,
        &c,
        "the exec of `sleep 300`",
        |_| true,
        |ev| is_exec_of(ev, &["sleep", "300"]),
    )?;
    let peer = net.peer_v4();
    let blocked_line = |daemon: &mut Daemon, exe: &str| {
        wait_in_container(
            daemon,
            &c,
            &format!("the blocked connect to {peer}:{PORT_BAD} by {exe}"),
            |_| true,
            |ev| {
                ev["kind"] == "connect"
                    && ev["network"]["dport"] == PORT_BAD
                    && ev["process"]["exe"] == exe
            },
        )
    };
    // Control: the syscall.
    run(&c, &nc(at(peer, PORT_BAD)))?.denied()?;
    let ev = blocked_line(&mut daemon, "/bin/busybox")?;
    check_fields(&ev, &[("/network/result", json!("blocked"))])?;

    let out = c.exec_output(&[
        URING_PROBE,
        "connect",
        &peer.to_string(),
        &PORT_BAD.to_string(),
    ])?;
    let said = String::from_utf8_lossy(&out.stdout);
    ensure!(
        said.contains("Operation not permitted"),
        "the io_uring connect was not denied: {said}"
    );
    let ev = blocked_line(&mut daemon, URING_PROBE)?;
    check_fields(
        &ev,
        &[
            ("/network/result", json!("blocked")),
            ("/violation/rule", json!("unexpected-connection")),
        ],
    )?;
    ensure!(
        denied.seen().is_empty(),
        "the denied peer saw a connection: {:?}",
        denied.seen()
    );
    daemon.stop()?;
    Ok(())
}
