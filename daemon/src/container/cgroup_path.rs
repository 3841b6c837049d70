//! Container identity from a cgroup v2 path alone: pure, cheap, usable on the event path and in
//! replay.
//!
//! Shapes recognised (paths relative to the cgroup v2 root):
//! - podman: `…/libpod-<id>[.scope]` (systemd: `/machine.slice/…`, cgroupfs: `/libpod_parent/…`)
//! - Docker: `/docker/<id>` (cgroupfs driver), `…/docker-<id>.scope` (systemd driver)
//! - containerd CRI: `…/cri-containerd-<id>.scope`; `ctr run`: `/<namespace>/<id>`
//! - CRI-O: `…/crio-<id>[.scope]`
//! - Kubernetes cgroupfs driver: `/kubepods[/<qos>]/pod<uid>/<id>`: the bare leaf does not name the
//!   runtime. We call it containerd (the common CRI runtime; CRI-O always prefixes `crio-`), and
//!   the resolver falls back to Docker's files (cri-dockerd) when containerd has no such task.
//!
//! The first (outermost) container component wins and everything below it maps to that container:
//! systemd-in-container and nested runtimes make sub-cgroups, and only the outermost container's
//! metadata is on the host. Conmon's own cgroups (`libpod-conmon-<id>.scope`, `crio-conmon-<id>.scope`)
//! are not containers: their remainder is not a bare id, so they never match.

use super::{CgroupContainer, Runtime};

/// containerd namespaces whose `/<namespace>/<id>` cgroups `ctr run` makes.
///
/// Why a fixed list rather than "any `/<a>/<b>` with a 64-hex leaf": two-component host paths
/// with a hex leaf exist that are not containerd (podman pod cgroups `/libpod_parent/<pod id>`,
/// Docker's `--cgroup-parent=/x` giving `/x/<id>`), and a guess there would send the resolver to
/// the wrong runtime. Other namespaces can be passed to [`parse_cgroup_path_with`].
pub const DEFAULT_CONTAINERD_NAMESPACES: &[&str] = &["default", "k8s.io", "moby", "buildkit"];

/// containerd's own limit on identifier length.
const MAX_CONTAINERD_ID_LEN: usize = 76;

/// [`parse_cgroup_path_with`] with [`DEFAULT_CONTAINERD_NAMESPACES`].
pub fn parse_cgroup_path(path: &str) -> Option<CgroupContainer> {
    parse_cgroup_path_with(path, DEFAULT_CONTAINERD_NAMESPACES)
}

/// The container a cgroup v2 path (relative to the v2 root, starting with '/') belongs to, or
/// `None` for host cgroups. `containerd_namespaces` lists the namespaces accepted for `ctr run`
/// paths `/<namespace>/<id>`.
///
/// A `ctr` id may be any containerd identifier (`[A-Za-z0-9][A-Za-z0-9_.-]*`), not only 64 hex, so
/// the `/<namespace>/<id>` shape is accepted only under a listed namespace; with a non-hex id it
/// must also be exactly two components, so `/default/foo/bar`-like host trees stay unmatched.
pub fn parse_cgroup_path_with<S: AsRef<str>>(
    path: &str,
    containerd_namespaces: &[S],
) -> Option<CgroupContainer> {
    let rel = path.strip_prefix('/')?;
    let rel = rel.strip_suffix('/').unwrap_or(rel);
    if rel.is_empty() {
        return None;
    }
    let comps: Vec<&str> = rel.split('/').collect();
    if comps.iter().any(|c| c.is_empty()) {
        return None;
    }

    let mut pod_uid: Option<String> = None;
    let mut under_kubepods = false;
    for (i, comp) in comps.iter().enumerate() {
        let found = prefixed_id(comp).or_else(|| {
            if !is_hex64(comp) {
                return None;
            }
            let parent = i.checked_sub(1).and_then(|p| comps.get(p)).copied();
            if parent == Some("docker") {
                Some((Runtime::Docker, *comp))
            } else if pod_uid.is_some() {
                Some((Runtime::Containerd, *comp))
            } else {
                None
            }
        });
        if let Some((runtime, id)) = found {
            return Some(CgroupContainer {
                runtime,
                id: id.to_owned(),
                namespace: None,
                pod_uid,
            });
        }
        if i == 1 && is_hex64(comp) && is_listed(comps[0], containerd_namespaces) {
            return Some(ctr_container(comps[0], comp));
        }
        if comp.contains("kubepods") {
            under_kubepods = true;
        }
        if under_kubepods && pod_uid.is_none() {
            pod_uid = kube_pod_uid(comp);
        }
    }

    // `ctr run` with a user-chosen, non-hex id: exactly `/<namespace>/<id>`.
    if let [ns, id] = comps.as_slice() {
        if is_listed(ns, containerd_namespaces) && is_containerd_id(id) {
            return Some(ctr_container(ns, id));
        }
    }
    None
}

fn ctr_container(namespace: &str, id: &str) -> CgroupContainer {
    CgroupContainer {
        runtime: Runtime::Containerd,
        id: id.to_owned(),
        namespace: Some(namespace.to_owned()),
        pod_uid: None,
    }
}

/// Components that name their runtime: `<prefix><64 hex>` with an optional `.scope`.
fn prefixed_id(comp: &str) -> Option<(Runtime, &str)> {
    const PREFIXES: &[(&str, Runtime)] = &[
        ("libpod-", Runtime::Podman),
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
    ];
    let stem = comp.strip_suffix(".scope").unwrap_or(comp);
    PREFIXES.iter().find_map(|(prefix, runtime)| {
        let id = stem.strip_prefix(prefix)?;
        is_hex64(id).then_some((*runtime, id))
    })
}

/// Pod uid from `pod<uid>` (cgroupfs driver) or `kubepods-<qos>-pod<uid with _>.slice` (systemd).
fn kube_pod_uid(comp: &str) -> Option<String> {
    let uid = if let Some(stem) = comp.strip_suffix(".slice") {
        let (head, uid) = stem.rsplit_once("-pod")?;
        if !head.contains("kubepods") {
            return None;
        }
        uid.replace('_', "-")
    } else {
        comp.strip_prefix("pod")?.to_owned()
    };
    // Pod uids are UUIDs; static pods use a 32-hex config hash.
    let valid = !uid.is_empty()
        && uid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
    valid.then_some(uid)
}

fn is_listed<S: AsRef<str>>(ns: &str, namespaces: &[S]) -> bool {
    namespaces.iter().any(|n| n.as_ref() == ns)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_containerd_id(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && s.len() <= MAX_CONTAINERD_ID_LEN
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
#[path = "cgroup_path_tests.rs"]
mod tests;
