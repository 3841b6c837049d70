//! The shipped artefacts as users run them: the container image `deploy/image/build.sh` makes,
//! and the DaemonSet as `kubectl kustomize` renders an overlay. [`PodRun::from_rendered`] turns
//! the rendered pod into a `podman run` command line field by field (security context, volumes,
//! env, args, ports, memory limit), so that nothing of it is copied by hand into the test; what
//! podman cannot do as a kubelet would is said where it is done, and listed in
//! [`PodRun::notes`].

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use tempfile::TempDir;

use crate::cmd;
use crate::runtime::PODMAN_RUN_FLAGS;

/// The tag the test builds the image under: `localhost/sealwatch:shipped-test`.
pub const IMAGE_TAG: &str = "shipped-test";
/// How long the image build may take (a static release build from scratch in a fresh clone).
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Builds the image with the shipped script; returns its name.
pub fn build_image() -> Result<String> {
    let repo = crate::repo_root();
    let mut build = Command::new("sh");
    build
        .arg(repo.join("deploy/image/build.sh"))
        .arg(IMAGE_TAG)
        .current_dir(repo);
    cmd::run_ok(&mut build, BUILD_TIMEOUT)
        .context("building the image with deploy/image/build.sh")?;
    Ok(format!("localhost/sealwatch:{IMAGE_TAG}"))
}

/// The documents `kubectl kustomize deploy/kubernetes/overlays/<overlay>` renders.
pub fn render(overlay: &str) -> Result<Vec<Value>> {
    let dir = crate::repo_root()
        .join("deploy/kubernetes/overlays")
        .join(overlay);
    let yaml = cmd::ok("kubectl", &["kustomize".as_ref(), dir.as_os_str()])
        .with_context(|| format!("rendering {}", dir.display()))?;
    serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|doc| Value::deserialize(doc).context("parsing the rendered YAML"))
        .collect()
}

/// The one document of `kind` called `name`.
pub fn document<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    let mut found = docs
        .iter()
        .filter(|doc| doc["kind"] == kind && doc["metadata"]["name"] == name);
    let doc = found
        .next()
        .with_context(|| format!("no {kind} {name} in the rendered manifests"))?;
    ensure!(
        found.next().is_none(),
        "two {kind} {name} in the rendered manifests"
    );
    Ok(doc)
}

/// A rendered pod, as a `podman run`.
pub struct PodRun {
    /// `podman run` with every flag, the image and the container's args.
    pub command: Command,
    /// The container name podman runs it under.
    pub name: String,
    /// Where each container port is published on the host's loopback, by port name.
    pub ports: BTreeMap<String, SocketAddr>,
    /// How each rendered field was carried over, one line each (for the report).
    pub notes: Vec<String>,
    /// The probes' paths by kind (`readinessProbe`, `livenessProbe`) and the port name they ask.
    pub probes: BTreeMap<String, (String, String)>,
    /// ConfigMap and emptyDir contents; kept until the run is dropped.
    _dirs: Vec<TempDir>,
}

/// What the test changes in a ConfigMap's file before it is mounted (what a user edits:
/// `policy.yaml`): `(config map, key, content) -> content`.
pub type ConfigEdit<'a> = &'a dyn Fn(&str, &str, &str) -> String;

impl PodRun {
    /// The pod of DaemonSet `daemonset` in `docs`, its container `container` running `image`
    /// on a node called `node`.
    pub fn from_rendered(
        docs: &[Value],
        daemonset: &str,
        container: &str,
        image: &str,
        node: &str,
        edit: ConfigEdit<'_>,
    ) -> Result<PodRun> {
        let ds = document(docs, "DaemonSet", daemonset)?;
        let pod = &ds["spec"]["template"]["spec"];
        let spec = pod["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == container))
            .with_context(|| format!("no container {container} in DaemonSet {daemonset}"))?;
        let name = crate::unique_name("sw-shipped-daemon");
        let mut run = PodRun {
            command: Command::new("podman"),
            name: name.clone(),
            ports: BTreeMap::new(),
            notes: Vec::new(),
            probes: BTreeMap::new(),
            _dirs: Vec::new(),
        };
        let mut args: Vec<String> = vec!["run".into(), "--rm".into(), "--name".into(), name];
        // This machine's podman needs runc and pinned rlimits (tests/src/runtime.rs); its pod
        // network is podman's bridge. The rest comes from the rendered pod.
        args.extend(
            PODMAN_RUN_FLAGS
                .iter()
                .filter(|flag| **flag != "--network=none")
                .map(|flag| (*flag).to_owned()),
        );
        run.note("this machine: --runtime runc and rlimits nofile/nproc 1024 (raising them is refused here); pod network: podman's bridge");
        run.pod_level(pod, &mut args)?;
        run.security_context(&spec["securityContext"], &mut args)?;
        run.resources(&spec["resources"], &mut args)?;
        run.env(&spec["env"], node, &mut args)?;
        run.volumes(docs, pod, spec, edit, &mut args)?;
        run.ports_and_probes(spec, &mut args)?;
        ensure!(
            spec["command"].is_null(),
            "the rendered container sets `command`: the test runs the image's entrypoint"
        );
        let rendered_image = spec["image"].as_str().unwrap_or_default();
        run.note(&format!(
            "image: {rendered_image:?} as rendered, run as {image} (built by deploy/image/build.sh; a cluster sets it with kustomize `images:`)"
        ));
        args.push(image.to_owned());
        for arg in spec["args"].as_array().into_iter().flatten() {
            args.push(
                arg.as_str()
                    .context("a rendered container arg is not a string")?
                    .to_owned(),
            );
        }
        run.note(&format!("args: {:?}", spec["args"]));
        run.command.args(&args);
        Ok(run)
    }

    /// Starts the pod (`podman run`, attached: its stdout is the daemon's event stream) and
    /// waits until the daemon is ready.
    pub fn start(&mut self) -> Result<crate::daemon::Daemon> {
        let command = std::mem::replace(&mut self.command, Command::new("false"));
        crate::daemon::Daemon::start_command(command)
    }

    fn note(&mut self, text: &str) {
        self.notes.push(text.to_owned());
    }

    fn pod_level(&mut self, pod: &Value, args: &mut Vec<String>) -> Result<()> {
        if pod["hostPID"] == true {
            args.push("--pid=host".into());
            self.note("hostPID: true -> --pid=host");
        }
        for field in ["hostNetwork", "hostIPC"] {
            ensure!(
                pod[field].is_null() || pod[field] == false,
                "the rendered pod sets {field}: not carried over by this test"
            );
        }
        if let Some(grace) = pod["terminationGracePeriodSeconds"].as_u64() {
            args.push(format!("--stop-timeout={grace}"));
            self.note(&format!(
                "terminationGracePeriodSeconds: {grace} -> --stop-timeout={grace}"
            ));
        }
        self.note("priorityClassName, tolerations, serviceAccountName: scheduling and API access, nothing podman runs");
        Ok(())
    }

    fn security_context(&mut self, sc: &Value, args: &mut Vec<String>) -> Result<()> {
        ensure!(
            sc.is_object(),
            "the rendered container has no securityContext"
        );
        if sc["privileged"] == true {
            args.push("--privileged".into());
        }
        if sc["allowPrivilegeEscalation"] == false {
            args.extend(["--security-opt".into(), "no-new-privileges".into()]);
        }
        if sc["readOnlyRootFilesystem"] == true {
            // A kubelet adds no tmpfs; podman would add /tmp, /var/tmp and /run.
            args.extend(["--read-only".into(), "--read-only-tmpfs=false".into()]);
        }
        let user = sc["runAsUser"].as_u64();
        let group = sc["runAsGroup"].as_u64();
        if let Some(user) = user {
            args.push(format!("--user={user}:{}", group.unwrap_or(user)));
        }
        for cap in sc["capabilities"]["drop"].as_array().into_iter().flatten() {
            args.push(format!("--cap-drop={}", capability(cap)?));
        }
        for cap in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            args.push(format!("--cap-add={}", capability(cap)?));
        }
        match sc["seccompProfile"]["type"].as_str() {
            // PLATFORM.md: podman 4.3's default profile refuses bpf() even with CAP_BPF, where
            // containerd 1.7+'s RuntimeDefault allows it with CAP_BPF/CAP_PERFMON.
            Some("RuntimeDefault") => {
                args.extend(["--security-opt".into(), "seccomp=unconfined".into()]);
                self.note("seccompProfile RuntimeDefault -> seccomp=unconfined: podman 4.3's default profile refuses bpf() even with CAP_BPF; containerd 1.7+'s RuntimeDefault allows it with CAP_BPF/CAP_PERFMON");
            }
            Some("Unconfined") | None => {
                args.extend(["--security-opt".into(), "seccomp=unconfined".into()]);
            }
            Some(other) => bail!("seccompProfile {other} is not carried over by this test"),
        }
        match sc["appArmorProfile"]["type"].as_str() {
            Some("Unconfined") if apparmor_enabled() => {
                args.extend(["--security-opt".into(), "apparmor=unconfined".into()]);
            }
            Some("Unconfined") => {
                self.note("appArmorProfile Unconfined: AppArmor is not enabled on this machine, nothing to lift");
            }
            None => {}
            Some(other) => bail!("appArmorProfile {other} is not carried over by this test"),
        }
        self.note(&format!("securityContext: {sc}"));
        Ok(())
    }

    fn resources(&mut self, resources: &Value, args: &mut Vec<String>) -> Result<()> {
        if let Some(memory) = resources["limits"]["memory"].as_str() {
            args.push(format!("--memory={}", podman_bytes(memory)?));
            self.note(&format!("limits.memory {memory} -> --memory"));
        }
        ensure!(
            resources["limits"]["cpu"].is_null(),
            "a CPU limit is not carried over by this test"
        );
        Ok(())
    }

    fn env(&mut self, env: &Value, node: &str, args: &mut Vec<String>) -> Result<()> {
        for var in env.as_array().into_iter().flatten() {
            let name = var["name"]
                .as_str()
                .context("an env entry without a name")?;
            let value = if let Some(value) = var["value"].as_str() {
                value.to_owned()
            } else if var["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName" {
                self.note(&format!("env {name}: spec.nodeName -> {node:?}"));
                node.to_owned()
            } else {
                bail!("env {name}: {var} is not carried over by this test");
            };
            args.push(format!("--env={name}={value}"));
        }
        Ok(())
    }

    fn volumes(
        &mut self,
        docs: &[Value],
        pod: &Value,
        spec: &Value,
        edit: ConfigEdit<'_>,
        args: &mut Vec<String>,
    ) -> Result<()> {
        let volumes: BTreeMap<&str, &Value> = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| Some((v["name"].as_str()?, v)))
            .collect();
        for mount in spec["volumeMounts"].as_array().into_iter().flatten() {
            let name = mount["name"]
                .as_str()
                .context("a volumeMount without a name")?;
            let at = mount["mountPath"]
                .as_str()
                .with_context(|| format!("volumeMount {name} without a mountPath"))?;
            ensure!(
                mount["subPath"].is_null() && mount["mountPropagation"].is_null(),
                "volumeMount {name}: subPath and mountPropagation are not carried over"
            );
            let ro = if mount["readOnly"] == true { ":ro" } else { "" };
            let volume = volumes
                .get(name)
                .with_context(|| format!("volumeMount {name} has no volume"))?;
            if let Some(host) = volume["hostPath"]["path"].as_str() {
                // A kubelet fails the pod when a `Directory` hostPath is missing, and creates a
                // `DirectoryOrCreate` one; so does this.
                match volume["hostPath"]["type"].as_str() {
                    Some("Directory") => ensure!(
                        Path::new(host).is_dir(),
                        "hostPath {host} (volume {name}) is not a directory on this node"
                    ),
                    Some("DirectoryOrCreate") => std::fs::create_dir_all(host)
                        .with_context(|| format!("creating hostPath {host}"))?,
                    _ => {}
                }
                args.push(format!("--volume={host}:{at}{ro}"));
                self.note(&format!("volume {name}: hostPath {host} -> {at}{ro}"));
            } else if let Some(map) = volume["configMap"]["name"].as_str() {
                let dir = self.config_map_dir(docs, map, edit)?;
                args.push(format!("--volume={}:{at}{ro}", dir.display()));
                self.note(&format!(
                    "volume {name}: ConfigMap {map} (its data as files) -> {at}{ro}"
                ));
            } else if volume["emptyDir"].is_object() {
                if volume["emptyDir"]["medium"] == "Memory" {
                    let size = volume["emptyDir"]["sizeLimit"].as_str().unwrap_or("64Mi");
                    args.push(format!("--tmpfs={at}:rw,size={}", podman_bytes(size)?));
                    self.note(&format!(
                        "volume {name}: emptyDir in memory ({size}) -> tmpfs {at}"
                    ));
                } else {
                    let dir = tempfile::tempdir().context("creating an emptyDir")?;
                    args.push(format!("--volume={}:{at}{ro}", dir.path().display()));
                    self._dirs.push(dir);
                    self.note(&format!("volume {name}: emptyDir -> {at}"));
                }
            } else {
                bail!("volume {name}: {volume} is not carried over by this test");
            }
        }
        Ok(())
    }

    /// ConfigMap `name`'s data as files in a new directory, each after `edit`.
    fn config_map_dir(
        &mut self,
        docs: &[Value],
        name: &str,
        edit: ConfigEdit<'_>,
    ) -> Result<std::path::PathBuf> {
        let map = document(docs, "ConfigMap", name)?;
        let dir = tempfile::tempdir().context("creating a ConfigMap directory")?;
        for (key, content) in map["data"].as_object().into_iter().flatten() {
            let content = content
                .as_str()
                .with_context(|| format!("ConfigMap {name} key {key} is not a string"))?;
            let path = dir.path().join(key);
            std::fs::write(&path, edit(name, key, content))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let path = dir.path().to_owned();
        self._dirs.push(dir);
        Ok(path)
    }

    fn ports_and_probes(&mut self, spec: &Value, args: &mut Vec<String>) -> Result<()> {
        for port in spec["ports"].as_array().into_iter().flatten() {
            let number = port["containerPort"]
                .as_u64()
                .context("a port without containerPort")?;
            let name = port["name"].as_str().unwrap_or_default().to_owned();
            let host = free_loopback_port()?;
            args.push(format!("--publish={host}:{number}"));
            self.note(&format!(
                "port {name} {number}: published on {host} (Prometheus and the kubelet's probes reach it on the pod's address)"
            ));
            self.ports.insert(name, host);
        }
        for kind in ["readinessProbe", "livenessProbe"] {
            let get = &spec[kind]["httpGet"];
            if let (Some(path), Some(port)) = (get["path"].as_str(), get["port"].as_str()) {
                self.probes
                    .insert(kind.to_owned(), (path.to_owned(), port.to_owned()));
            }
        }
        Ok(())
    }
}

/// `BPF` -> `CAP_BPF`, `ALL` -> `all`.
fn capability(cap: &Value) -> Result<String> {
    let cap = cap.as_str().context("a capability that is not a string")?;
    Ok(match cap {
        "ALL" => "all".to_owned(),
        _ => format!("CAP_{cap}"),
    })
}

/// A Kubernetes quantity (`512Mi`, `1Mi`, `1G`) as podman's byte suffixes.
fn podman_bytes(quantity: &str) -> Result<String> {
    let split = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (number, unit) = quantity.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("quantity {quantity:?}"))?;
    let factor: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => bail!("quantity {quantity:?}: unit {unit:?} not understood"),
    };
    Ok((number * factor).to_string())
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|enabled| enabled.trim() == "Y")
}

/// A loopback address with a port nobody listens on right now.
fn free_loopback_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    listener.local_addr().context("reading a bound address")
}

/// `podman rm --force` of the named container when dropped (the daemon's `podman run --rm` may
/// be killed before it could remove it).
pub struct RemoveOnDrop(pub String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = cmd::run(
            &mut cmd::command(
                "podman",
                &["rm", "--force", "--ignore", "--time", "0", &self.0],
            ),
            Duration::from_secs(30),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_become_bytes() {
        assert_eq!(podman_bytes("512Mi").ok().as_deref(), Some("536870912"));
        assert_eq!(podman_bytes("1Mi").ok().as_deref(), Some("1048576"));
        assert!(podman_bytes("1.5Gi").is_err());
    }
}
