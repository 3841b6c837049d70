//! Real containers from podman, Docker and containerd (`ctr`), all from the busybox test image.
//!
//! - podman: always `--runtime runc` (crun refuses the hybrid cgroup layout here), rlimits pinned
//!   with `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024` (raising them is refused here),
//!   `--network=none` (`--network=host` with [`RunOptions::host_network`]).
//! - Docker: dockerd is started on demand (see [`crate::services`]); `--network=none` (or
//!   `--network=host`).
//! - containerd: `ctr` on `/run/containerd/containerd.sock`, namespace `default`. containerd takes
//!   any string as a container id; the harness generates 64 lowercase hex characters, like the ids
//!   of the other runtimes and of Kubernetes, and records the test's name as label
//!   [`NAME_LABEL`]. `ctr run` gives no network by default (a fresh netns with loopback only).
//!
//! Every [`Container`] is removed when dropped, also when the test panics or returns an error.

use std::io::Read;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::cmd;
use crate::image;

/// The containerd label holding the harness's name of a `ctr` container.
pub const NAME_LABEL: &str = "io.sealwatch.test.name";

/// podman's flags for every test container: runc (crun refuses this hybrid cgroup layout), low
/// rlimits (raising them is refused here), no network.
pub const PODMAN_RUN_FLAGS: &[&str] = &[
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--network=none",
];
const REMOVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A container runtime; [`Runtime::as_str`] is the value of `container.runtime` in events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Podman,
    Docker,
    Containerd,
    /// containerd as a kubelet drives it: namespace `k8s.io`, and the CRI annotations
    /// (`io.kubernetes.cri.*`) of the pod in [`RunOptions::pod`] on every container.
    ContainerdCri,
}

/// The pod a [`Runtime::ContainerdCri`] container belongs to, as its CRI annotations say.
#[derive(Clone, Debug)]
pub struct PodIdentity {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Options for starting a container beyond image and command.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run the container's processes as this uid (`--user`); not supported for containerd.
    pub user: Option<u32>,
    /// Bind mounts as `HOST_DIR:CONTAINER_DIR` (`-v`); not supported for containerd.
    pub volumes: Vec<String>,
    /// Share the host's network namespace (`--network=host`; `ctr run --net-host`) instead of
    /// having no network: the network tests' peers are in a [`crate::netns::TestNet`] the host
    /// reaches.
    pub host_network: bool,
    /// No seccomp filter (`--security-opt seccomp=unconfined`), as a Kubernetes pod without a
    /// profile runs: podman's and Docker's default profiles refuse io_uring.
    pub seccomp_unconfined: bool,
    /// The pod of a [`Runtime::ContainerdCri`] container (required there, refused elsewhere).
    pub pod: Option<PodIdentity>,
}

/// A running container. Removed (forcefully) on drop.
#[derive(Debug)]
pub struct Container {
    /// The full id: 64 lowercase hex characters.
    pub id: String,
    /// The name given at creation (for containerd: the [`NAME_LABEL`] label).
    pub name: String,
    pub runtime: Runtime,
    removed: bool,
}

/// A container that ran to completion with `--rm` (it no longer exists).
#[derive(Debug)]
pub struct Finished {
    pub id: String,
    pub name: String,
    pub runtime: Runtime,
    /// Its stdout.
    pub stdout: String,
}

impl Runtime {
    /// The runtime's name as the event schema spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
            Runtime::Containerd | Runtime::ContainerdCri => "containerd",
        }
    }

    /// The test image's name as this runtime reports it (and as events should carry it).
    pub fn image(self) -> &'static str {
        match self {
            Runtime::Podman => image::PODMAN_IMAGE,
            Runtime::Docker => image::DOCKER_IMAGE,
            Runtime::Containerd | Runtime::ContainerdCri => image::CONTAINERD_IMAGE,
        }
    }

    /// The containerd namespace of a `ctr` runtime (unused by the others).
    pub fn ctr_namespace(self) -> &'static str {
        match self {
            Runtime::ContainerdCri => image::CONTAINERD_CRI_NAMESPACE,
            _ => image::CONTAINERD_NAMESPACE,
        }
    }

    /// `ctr` arguments in this runtime's namespace.
    pub fn ctr_args<'a>(self, args: &[&'a str]) -> Vec<&'a str> {
        image::ctr_args_in(self.ctr_namespace(), args)
    }

    /// Checks root, starts the runtime's services if needed and imports the test image.
    pub fn ensure_ready(self) -> Result<()> {
        crate::require_root()?;
        match self {
            Runtime::Podman => image::ensure_podman(),
            Runtime::Docker => image::ensure_docker(),
            Runtime::Containerd => image::ensure_containerd(),
            Runtime::ContainerdCri => image::ensure_containerd_cri(),
        }
        .with_context(|| format!("preparing {}", self.as_str()))?;
        static SWEPT: [OnceLock<()>; 4] = [const { OnceLock::new() }; 4];
        SWEPT[self as usize].get_or_init(|| {
            if let Err(e) = crate::leftovers::sweep(self) {
                eprintln!(
                    "warning: sweeping leftover {} containers: {e:#}",
                    self.as_str()
                );
            }
        });
        Ok(())
    }

    /// Starts `cmd` in a new detached container called `name` (see [`crate::unique_name`]).
    pub fn run_detached(self, name: &str, cmd: &[&str]) -> Result<Container> {
        self.run_detached_with(name, &RunOptions::default(), cmd)
    }

    /// [`Runtime::run_detached`] with options.
    pub fn run_detached_with(
        self,
        name: &str,
        opts: &RunOptions,
        cmd: &[&str],
    ) -> Result<Container> {
        self.ensure_ready()?;
        let id = match self {
            Runtime::Podman | Runtime::Docker => {
                let mut args = vec!["run".to_owned(), "-d".to_owned()];
                args.extend(self.create_flags(name, opts)?);
                args.push(self.image().to_owned());
                args.extend(cmd.iter().map(|s| (*s).to_owned()));
                cmd::ok(self.as_str(), &args)?;
                self.inspect_id(name)?
            }
            Runtime::Containerd | Runtime::ContainerdCri => {
                let id = random_id()?;
                let label = format!("{NAME_LABEL}={name}");
                let flags = self.create_flags(name, opts)?;
                let mut args = vec!["run", "-d", "--null-io", "--label", &label];
                args.extend(flags.iter().map(String::as_str));
                args.extend([self.image(), id.as_str()]);
                args.extend_from_slice(cmd);
                let result = cmd::ok("ctr", &self.ctr_args(&args));
                if let Err(e) = result {
                    remove_quietly(self, &id);
                    return Err(e);
                }
                id
            }
        };
        check_id(&id)?;
        Ok(Container {
            id,
            name: name.to_owned(),
            runtime: self,
            removed: false,
        })
    }

    /// Runs `cmd` in a new container called `name` with `--rm` to completion; requires exit 0.
    /// The full id is captured (`--cidfile`) before the container disappears.
    pub fn run_rm(self, name: &str, cmd: &[&str]) -> Result<Finished> {
        self.run_rm_with(name, &RunOptions::default(), cmd)
    }

    /// [`Runtime::run_rm`] with options.
    pub fn run_rm_with(self, name: &str, opts: &RunOptions, cmd: &[&str]) -> Result<Finished> {
        self.ensure_ready()?;
        let (id, result) = match self {
            Runtime::Podman | Runtime::Docker => {
                let cidfile = tempfile::tempdir().context("creating a tempdir")?;
                let cidfile = cidfile.path().join("cid");
                let mut args = vec!["run".to_owned(), "--rm".to_owned(), "--cidfile".to_owned()];
                args.push(
                    cidfile
                        .to_str()
                        .context("tempdir path is not UTF-8")?
                        .to_owned(),
                );
                args.extend(self.create_flags(name, opts)?);
                args.push(self.image().to_owned());
                args.extend(cmd.iter().map(|s| (*s).to_owned()));
                let result = cmd::ok(self.as_str(), &args);
                let id = std::fs::read_to_string(&cidfile)
                    .with_context(|| format!("reading the --cidfile of container {name}"));
                (id.map(|id| id.trim().to_owned()), result)
            }
            Runtime::Containerd | Runtime::ContainerdCri => {
                let id = random_id()?;
                let label = format!("{NAME_LABEL}={name}");
                let flags = self.create_flags(name, opts)?;
                let mut args = vec!["run", "--rm", "--label", &label];
                args.extend(flags.iter().map(String::as_str));
                args.extend([self.image(), id.as_str()]);
                args.extend_from_slice(cmd);
                let result = cmd::ok("ctr", &self.ctr_args(&args));
                (Ok(id), result)
            }
        };
        if result.is_err() {
            // `--rm` may not have happened when the run failed or timed out.
            remove_quietly(self, id.as_deref().unwrap_or(name));
        }
        let stdout = result.with_context(|| format!("{} container {name}", self.as_str()))?;
        let id = id?;
        check_id(&id)?;
        Ok(Finished {
            id,
            name: name.to_owned(),
            runtime: self,
            stdout,
        })
    }

    /// Flags shared by `run -d` and `run --rm`.
    fn create_flags(self, name: &str, opts: &RunOptions) -> Result<Vec<String>> {
        let mut flags: Vec<String> = Vec::new();
        match self {
            Runtime::Podman => {
                flags.extend(
                    PODMAN_RUN_FLAGS
                        .iter()
                        .filter(|flag| !(opts.host_network && **flag == "--network=none"))
                        .map(|s| (*s).to_owned()),
                );
                if opts.host_network {
                    flags.push("--network=host".to_owned());
                }
                flags.extend(["--name".to_owned(), name.to_owned()]);
            }
            Runtime::Docker => {
                let network = if opts.host_network {
                    "--network=host"
                } else {
                    "--network=none"
                };
                flags.extend([network.to_owned(), "--name".to_owned(), name.to_owned()]);
            }
            Runtime::Containerd | Runtime::ContainerdCri => {
                if opts.host_network {
                    flags.push("--net-host".to_owned());
                }
            }
        }
        match (self, &opts.pod) {
            (Runtime::ContainerdCri, Some(pod)) => {
                // What containerd's CRI plugin writes into a container's OCI spec.
                for (key, value) in [
                    ("io.kubernetes.cri.container-type", "container"),
                    ("io.kubernetes.cri.container-name", name),
                    ("io.kubernetes.cri.image-name", self.image()),
                    ("io.kubernetes.cri.sandbox-name", &pod.name),
                    ("io.kubernetes.cri.sandbox-namespace", &pod.namespace),
                    ("io.kubernetes.cri.sandbox-uid", &pod.uid),
                ] {
                    flags.extend(["--annotation".to_owned(), format!("{key}={value}")]);
                }
            }
            (Runtime::ContainerdCri, None) => bail!("a CRI container needs RunOptions::pod"),
            (_, Some(_)) => bail!("only Runtime::ContainerdCri containers belong to a pod"),
            (_, None) => {}
        }
        if opts.seccomp_unconfined {
            ensure!(
                !matches!(self, Runtime::Containerd | Runtime::ContainerdCri),
                "the harness lifts seccomp with podman or docker only"
            );
            flags.extend(["--security-opt".to_owned(), "seccomp=unconfined".to_owned()]);
        }
        if let Some(uid) = opts.user {
            ensure!(
                !matches!(self, Runtime::Containerd | Runtime::ContainerdCri),
                "ctr run cannot set the user; use podman or docker"
            );
            flags.extend(["--user".to_owned(), uid.to_string()]);
        }
        if !opts.volumes.is_empty() {
            ensure!(
                !matches!(self, Runtime::Containerd | Runtime::ContainerdCri),
                "the harness mounts volumes with podman or docker only"
            );
            for volume in &opts.volumes {
                flags.extend(["-v".to_owned(), volume.clone()]);
            }
        }
        Ok(flags)
    }

    fn inspect_id(self, name: &str) -> Result<String> {
        cmd::ok(self.as_str(), &["inspect", "--format", "{{.Id}}", name])
            .with_context(|| format!("reading the id of {} container {name}", self.as_str()))
    }
}

impl Container {
    /// Runs `cmd` inside the container (`podman exec`, `docker exec`, `ctr tasks exec`);
    /// requires exit 0 and returns its stdout.
    pub fn exec(&self, cmd: &[&str]) -> Result<String> {
        let out = self.exec_output(cmd)?;
        ensure!(
            out.status.success(),
            "exec {cmd:?} in {} container {} failed with {}: {}",
            self.runtime.as_str(),
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Like [`Container::exec`] but returns the output whatever the exit status.
    pub fn exec_output(&self, cmd: &[&str]) -> Result<Output> {
        let mut command = match self.runtime {
            Runtime::Podman | Runtime::Docker => {
                let mut args = vec!["exec", self.id.as_str()];
                args.extend_from_slice(cmd);
                cmd::command(self.runtime.as_str(), &args)
            }
            Runtime::Containerd | Runtime::ContainerdCri => {
                let exec_id = crate::unique_name("exec");
                let mut args = vec!["tasks", "exec", "--exec-id", &exec_id, self.id.as_str()];
                args.extend_from_slice(cmd);
                cmd::command("ctr", &self.runtime.ctr_args(&args))
            }
        };
        cmd::run(&mut command, cmd::DEFAULT_TIMEOUT)
    }

    /// The host pid of the container's first process.
    pub fn init_pid(&self) -> Result<u32> {
        let text = match self.runtime {
            Runtime::Podman | Runtime::Docker => cmd::ok(
                self.runtime.as_str(),
                &["inspect", "--format", "{{.State.Pid}}", &self.id],
            )?,
            Runtime::Containerd | Runtime::ContainerdCri => {
                let list = cmd::ok("ctr", &self.runtime.ctr_args(&["tasks", "ls"]))?;
                list.lines()
                    .find_map(|line| {
                        let mut cols = line.split_whitespace();
                        (cols.next() == Some(self.id.as_str()))
                            .then(|| cols.next())
                            .flatten()
                    })
                    .with_context(|| format!("no task {} in `ctr tasks ls`:\n{list}", self.id))?
                    .to_owned()
            }
        };
        let pid: u32 = text
            .parse()
            .with_context(|| format!("pid {text:?} of {}", self.name))?;
        ensure!(pid != 0, "container {} is not running", self.name);
        Ok(pid)
    }

    /// Removes the container now (forcefully) and reports failures.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        remove(self.runtime, &self.id)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.removed {
            remove_quietly(self.runtime, &self.id);
        }
    }
}

/// Forcefully removes container `id_or_name` of `runtime`.
pub fn remove(runtime: Runtime, id_or_name: &str) -> Result<()> {
    match runtime {
        Runtime::Podman => {
            cmd::run_ok(
                &mut cmd::command(
                    "podman",
                    &["rm", "--force", "--ignore", "--time", "0", id_or_name],
                ),
                REMOVE_TIMEOUT,
            )?;
        }
        Runtime::Docker => {
            let out = cmd::run(
                &mut cmd::command("docker", &["rm", "--force", id_or_name]),
                REMOVE_TIMEOUT,
            )?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && !stderr.contains("No such container") {
                bail!("docker rm --force {id_or_name} failed: {}", stderr.trim());
            }
        }
        Runtime::Containerd | Runtime::ContainerdCri => {
            // The task may be gone already (`--rm`, or it exited): only the container must go.
            let _ = cmd::run(
                &mut cmd::command(
                    "ctr",
                    &runtime.ctr_args(&["tasks", "delete", "--force", id_or_name]),
                ),
                REMOVE_TIMEOUT,
            );
            let out = cmd::run(
                &mut cmd::command(
                    "ctr",
                    &runtime.ctr_args(&["containers", "delete", id_or_name]),
                ),
                REMOVE_TIMEOUT,
            )?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && !stderr.contains("not found") {
                bail!(
                    "ctr containers delete {id_or_name} failed: {}",
                    stderr.trim()
                );
            }
        }
    }
    Ok(())
}

/// [`remove`], reporting a failure on stderr instead of failing (for drop and clean-up paths).
pub fn remove_quietly(runtime: Runtime, id_or_name: &str) {
    if let Err(e) = remove(runtime, id_or_name) {
        eprintln!(
            "warning: could not remove {} container {id_or_name}: {e:#}",
            runtime.as_str()
        );
    }
}

fn check_id(id: &str) -> Result<()> {
    ensure!(
        id.len() == 64
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "container id {id:?} is not 64 lowercase hex characters"
    );
    Ok(())
}

/// 64 random lowercase hex characters, for containerd container ids.
fn random_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
