//! A capture on a disk that fills up keeps counting what it cannot write, and resumes by itself
//! when there is room again (issue "The shipped DaemonSet and unit are the product", point 4).
//! The disk is a real 6 MiB tmpfs, filled by a file the test writes until the kernel says
//! ENOSPC, then freed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use sealwatch_tests::capture::{capture_files, fresh_dir, replay};
use sealwatch_tests::daemon::{Daemon, EVENT_TIMEOUT};
use sealwatch_tests::events::is_exec_of;
use sealwatch_tests::{cmd, unique_name};

/// A tmpfs of `size` mounted at `at`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        let options = format!("size={size},mode=0700");
        cmd::ok(
            "mount",
            &[
                "-t".as_ref(),
                "tmpfs".as_ref(),
                "-o".as_ref(),
                options.as_ref(),
                "tmpfs".as_ref(),
                at.as_os_str(),
            ],
        )?;
        Ok(Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = cmd::ok("umount", &["-l".as_ref(), self.0.as_os_str()]);
    }
}

/// Writes zeros to `path` until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let block = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(err) => return Err(err).context("filling the tmpfs"),
        }
    }
    Ok(written)
}

/// `count` execs of `/bin/true <marker>-<i>`.
fn execs(marker: &str, count: usize) -> Result<()> {
    let script =
        format!("i=0; while [ $i -lt {count} ]; do /bin/true {marker}-$i; i=$((i+1)); done");
    let status = Command::new("/bin/sh").args(["-c", &script]).status()?;
    ensure!(status.success(), "the exec burst failed");
    Ok(())
}

#[test]
fn a_full_disk_stalls_the_capture_and_it_resumes_by_itself() -> Result<()> {
    let dir = fresh_dir("sw-fulldisk")?;
    let disk = Tmpfs::mount(&dir.join("disk"), "6m")?;
    let capture = disk.0.join("capture");
    let mut daemon = Daemon::start(&[
        "--capture",
        capture.to_str().context("path is not UTF-8")?,
        "--tail-socket",
        "none",
        "--metrics-addr",
        "none",
    ])?;
    let filler = disk.0.join("filler");
    let filled = fill(&filler)?;
    ensure!(filled > 0, "the tmpfs had no room to fill");

    // Execs while the disk is full: their records cannot be written; the loss lines count them.
    let during = unique_name("sw-full");
    let started = Instant::now();
    let mut lost = 0;
    while lost == 0 {
        execs(&during, 200)?;
        std::thread::sleep(Duration::from_millis(1500));
        lost = daemon
            .events()
            .iter()
            .filter_map(|ev| ev["loss"]["capture"].as_u64())
            .sum::<u64>();
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "no loss line with loss.capture while the capture's disk is full"
        );
    }

    // Room again: the capture resumes by itself (it tries every 5 s), in a new file.
    let files_before = capture_files(&capture)?.len();
    std::fs::remove_file(&filler)?;
    let resumed = cmd::poll_until(Duration::from_secs(30), || {
        daemon
            .stderr_lines()
            .iter()
            .any(|line| line.contains("capture: recording again"))
    });
    ensure!(
        resumed,
        "the capture did not say it records again after the disk was freed"
    );
    let after = ["/bin/echo".to_owned(), unique_name("sw-after-full")];
    Command::new(&after[0]).arg(&after[1]).output()?;
    daemon.wait_for("the exec after the disk was freed", EVENT_TIMEOUT, |ev| {
        is_exec_of(ev, &[after[0].as_str(), after[1].as_str()])
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    let stopped = daemon.stop()?;
    ensure!(
        stopped
            .stderr
            .iter()
            .any(|l| l.contains("capture: writing failed")),
        "the daemon did not log the failed write"
    );
    let files = capture_files(&capture)?;
    ensure!(
        files.len() > files_before,
        "no new capture file after resuming: {files:?}"
    );
    // The replay of the whole directory reaches the exec made after the disk was freed.
    let replayed = replay(&capture, &[])?;
    ensure!(
        replayed.lines.iter().any(|line| line.contains(&after[1])),
        "the replay lacks the exec recorded after the capture resumed"
    );
    ensure!(lost > 0);
    Ok(())
}
