//! The attacker runs code that is not in the image without executing a file of the container's
//! own: through the image's interpreters with options in front of the script, through a
//! symlink, by sourcing it, and through the image's dynamic loader. Each attack is checked to
//! have run (its marker printed) before its `drift-exec` line is asked for; the controls show
//! that data an image program reads, and the loader running an image program, are not drift.
//! (Issue "An attacker inside a container cannot switch sealwatch off", point 4; hard links of
//! point 2.)

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use sealwatch_tests::attack::daemon_and_container as daemon_and_container_of;
use sealwatch_tests::daemon::Daemon;
use sealwatch_tests::events::{check_fields, container_id, violation_rule, wait_in_container};
use sealwatch_tests::image::{FIXTURE_FILES, PERL};
use sealwatch_tests::runtime::{Container, RunOptions, Runtime};
use sealwatch_tests::unique_name;

const DRIFT_RULE: &str = "drift-exec";
const NEW_EXE_RULE: &str = "new-executable";
const IMAGE_RULE: &str = "image-file-modified";
const BUSYBOX: &str = "/bin/busybox";
/// The image's dynamic loader (the host's, copied with perl).
const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

fn daemon_and_container() -> Result<(Daemon, Container)> {
    daemon_and_container_of(Runtime::Podman, "sw-code", &RunOptions::default())
}

fn sh(c: &Container, script: &str) -> Result<String> {
    c.exec(&["sh", "-c", script])
}

/// Waits for the `drift-exec` file line of `c` about `path` loaded as code by `op`.
fn wait_code_drift(daemon: &mut Daemon, c: &Container, path: &str, op: &str) -> Result<Value> {
    wait_in_container(
        daemon,
        c,
        &format!("{DRIFT_RULE} ({op}) for {path} in container {}", c.name),
        |_| true,
        |ev| {
            violation_rule(ev) == Some(DRIFT_RULE)
                && ev["kind"] == "file"
                && ev["file"]["path"] == path
                && ev["file"]["op"] == op
        },
    )
}

/// The lines of `c` that break `rule` about `path`.
fn hits<'a>(events: &'a [Value], c: &Container, rule: &str, path: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| container_id(e) == Some(c.id.as_str()))
        .filter(|e| violation_rule(e) == Some(rule) && e["file"]["path"] == path)
        .collect()
}

/// Scripts written in the container (no exec bit: nothing is exec'd but the image's own
/// interpreters) and run with options before them, through a symlink, by sourcing, and by perl.
/// Each prints its marker and is one `drift-exec` line naming it, by the interpreter that ran
/// it. The data file the shell and perl read on request is not a script.
#[test]
fn scripts_are_found_whatever_the_interpreters_options() -> Result<()> {
    let (mut daemon, c) = daemon_and_container()?;
    let marker = unique_name("sw-code-ran");
    let script = |n: &str| format!("/tmp/{marker}-{n}.sh");
    let runs: Vec<(Vec<String>, String)> = vec![
        // The control: the script as the first word.
        (vec!["sh".into(), script("plain")], script("plain")),
        (vec!["sh".into(), "-e".into(), script("e")], script("e")),
        (
            vec!["sh".into(), "-o".into(), "errexit".into(), script("o")],
            script("o"),
        ),
        (
            vec!["busybox".into(), "sh".into(), "-eu".into(), script("bb")],
            script("bb"),
        ),
        // A symlink the container made: the kernel opens the file it names.
        (
            vec!["sh".into(), format!("/tmp/{marker}-link")],
            script("linked"),
        ),
        // Sourced by inline code.
        (
            vec!["sh".into(), "-c".into(), format!(". {}", script("sourced"))],
            script("sourced"),
        ),
    ];
    let data = format!("/tmp/{marker}-data");
    let perl_script = format!("/tmp/{marker}.pl");
    sh(
        &c,
        &format!(
            "for n in plain e o bb linked sourced; do echo 'echo {marker}' > /tmp/{marker}-$n.sh; done; \
             ln -s {linked} /tmp/{marker}-link; echo {marker} > {data}; \
             echo 'print \"{marker}\\n\";' > {perl_script}",
            linked = script("linked")
        ),
    )?;
    for (argv, _) in &runs {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = c.exec(&argv)?;
        ensure!(
            out.trim() == marker,
            "{argv:?} did not run its script: {out:?}"
        );
    }
    let perl_out = c.exec(&[PERL, "-w", &perl_script])?;
    ensure!(
        perl_out.trim() == marker,
        "perl did not run {perl_script}: {perl_out:?}"
    );
    // Controls: image interpreters reading a data file on request.
    let read = sh(&c, &format!("read line < {data}; echo $line"))?;
    ensure!(
        read.trim() == marker,
        "the shell did not read {data}: {read:?}"
    );
    let perl_read = c.exec(&[PERL, "-e", "open(F, $ARGV[0]) or die; print <F>", &data])?;
    ensure!(
        perl_read.trim() == marker,
        "perl did not read {data}: {perl_read:?}"
    );

    for (argv, path) in &runs {
        let ev = wait_code_drift(&mut daemon, &c, path, "script_read")?;
        check_fields(
            &ev,
            &[
                ("/process/exe", json!(BUSYBOX)),
                ("/file/layer", json!("upper")),
                ("/violation/severity", json!("critical")),
            ],
        )?;
        let message = ev["violation"]["message"].as_str().unwrap_or_default();
        ensure!(
            message.contains(path.as_str()),
            "{argv:?}: the message does not name {path}: {ev}"
        );
    }
    let ev = wait_code_drift(&mut daemon, &c, &perl_script, "script_read")?;
    check_fields(&ev, &[("/process/exe", json!(PERL))])?;

    let stopped = daemon.stop()?;
    for (_, path) in &runs {
        let n = hits(&stopped.events, &c, DRIFT_RULE, path).len();
        ensure!(n == 1, "{path}: {n} {DRIFT_RULE} lines, expected one");
    }
    let data_hits = hits(&stopped.events, &c, DRIFT_RULE, &data);
    ensure!(
        data_hits.is_empty(),
        "data read on request is not a script: {data_hits:#?}"
    );
    Ok(())
}

/// A program copied into the container with `cat` (no exec bit, so no `new-executable`) and run
/// through the image's dynamic loader: the exec is the loader's, an image file; the loader then
/// maps the dropped file executable, and that is `drift-exec` (`op: map_exec`). The control: the
/// loader running the image's own perl is no violation.
#[test]
fn a_program_run_through_the_images_loader_is_drift() -> Result<()> {
    let (mut daemon, c) = daemon_and_container()?;
    let marker = unique_name("sw-code-loader");
    let dropped = format!("/tmp/{marker}");
    sh(&c, &format!("cat {PERL} > {dropped}"))?;
    let print = format!("print \"{marker}\\n\"");
    let control = c.exec(&[LOADER, PERL, "-e", &print])?;
    ensure!(
        control.trim() == marker,
        "the loader did not run the image's perl: {control:?}"
    );
    let out = c.exec(&[LOADER, &dropped, "-e", &print])?;
    ensure!(
        out.trim() == marker,
        "the loader did not run {dropped}: {out:?}"
    );

    let ev = wait_code_drift(&mut daemon, &c, &dropped, "map_exec")?;
    check_fields(
        &ev,
        &[
            ("/file/layer", json!("upper")),
            ("/violation/severity", json!("critical")),
        ],
    )?;
    let stopped = daemon.stop()?;
    let image_perl = hits(&stopped.events, &c, DRIFT_RULE, PERL);
    ensure!(
        image_perl.is_empty(),
        "the image's perl is not drift: {image_perl:#?}"
    );
    let new_exe = hits(&stopped.events, &c, NEW_EXE_RULE, &dropped);
    ensure!(
        new_exe.is_empty(),
        "{dropped} never had an exec bit: {new_exe:#?}"
    );
    Ok(())
}

/// `ln IMAGE_FILE /tmp/x` gives an image file a second name: `image-file-modified` (`op: link`)
/// about the image file; a write through the new name is an `image-file-modified` too.
#[test]
fn a_hard_link_to_an_image_file_is_a_modification() -> Result<()> {
    let (mut daemon, c) = daemon_and_container()?;
    let image_file = FIXTURE_FILES[4];
    let alias = format!("/tmp/{}", unique_name("sw-code-hardlink"));
    sh(&c, &format!("ln {image_file} {alias}"))?;
    let links = sh(&c, &format!("stat -c %h {alias}"))?;
    ensure!(links.trim() == "2", "{alias} is not a hard link: {links:?}");
    let ev = wait_in_container(
        &mut daemon,
        &c,
        &format!("{IMAGE_RULE} (link) for {image_file}"),
        |_| true,
        |ev| {
            violation_rule(ev) == Some(IMAGE_RULE)
                && ev["file"]["path"] == image_file
                && ev["file"]["op"] == "link"
        },
    )?;
    check_fields(&ev, &[("/file/layer", json!("lower"))])?;
    // A write through the new name changes the image file: overlayfs gives both names the
    // inode that carries the image file's lower layer.
    let marker = unique_name("sw-code-through-link");
    sh(&c, &format!("echo {marker} >> {alias}"))?;
    let content = c.exec(&["cat", image_file])?;
    ensure!(
        content.contains(&marker),
        "the write through {alias} did not reach {image_file}"
    );
    let ev = wait_in_container(
        &mut daemon,
        &c,
        &format!("{IMAGE_RULE} (open_write) through {alias}"),
        |_| true,
        |ev| violation_rule(ev) == Some(IMAGE_RULE) && ev["file"]["op"] == "open_write",
    )?;
    check_fields(&ev, &[("/file/layer", json!("lower"))])?;
    daemon.stop()?;
    Ok(())
}
