//! Loading and attaching the registered programs (`families`), one pass per kind of hook, in the
//! order start-up needs: `tp_btf` while the kernel BTF is parsed, syscall tracepoints once tracefs
//! is mounted, then the cgroup hooks. A required program that fails stops start-up; an optional
//! one logs its family's `degraded` warning and is recorded as an [`AttachFailure`].
use aya::{
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, ProgramError, TracePoint,
    },
    Btf, Ebpf,
};

use super::{
    enforce::Enforcement,
    families::{self, enforce, Attach, Family, Need, Program},
    loader::{AttachFailure, SensorError},
};

/// The log target these lines had when the loader held this code: log filters keep working.
const LOG_TARGET: &str = "sealwatch::sensors::loader";

/// A failed step (`load` or `attach`) of one program.
type Attached = Result<(), (&'static str, ProgramError)>;

/// Every registered program must be in the object: a missing one is a build that does not match
/// this daemon, refused before anything is attached.
pub fn check_present(ebpf: &Ebpf) -> Result<(), SensorError> {
    match families::programs().find(|(_, program)| ebpf.program(program.name).is_none()) {
        Some((_, program)) => Err(SensorError::Missing(program.name)),
        None => Ok(()),
    }
}

/// The `tp_btf` programs, against the kernel BTF the loader parsed once.
pub fn tp_btf(
    ebpf: &mut Ebpf,
    btf: &Btf,
    failures: &mut Vec<AttachFailure>,
) -> Result<(), SensorError> {
    for (family, program) in families::programs() {
        let Attach::TpBtf { event } = program.attach else {
            continue;
        };
        let attached = (|| -> Attached {
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(program.name)
                .ok_or(("load", ProgramError::NotLoaded))?
                .try_into()
                .map_err(|e| ("load", e))?;
            prog.load(event, btf).map_err(|e| ("load", e))?;
            prog.attach().map_err(|e| ("attach", e))?;
            Ok(())
        })();
        settle(family, program, attached, failures)?;
    }
    Ok(())
}

/// The classic tracepoints (attached by id, read from tracefs: mounted by then).
pub fn tracepoints(ebpf: &mut Ebpf, failures: &mut Vec<AttachFailure>) -> Result<(), SensorError> {
    for (family, program) in families::programs() {
        let Attach::TracePoint { category, event } = program.attach else {
            continue;
        };
        let attached = (|| -> Attached {
            let prog: &mut TracePoint = ebpf
                .program_mut(program.name)
                .ok_or(("load", ProgramError::NotLoaded))?
                .try_into()
                .map_err(|e| ("load", e))?;
            prog.load().map_err(|e| ("load", e))?;
            prog.attach(category, event).map_err(|e| ("attach", e))?;
            Ok(())
        })();
        settle(family, program, attached, failures)?;
    }
    Ok(())
}

/// The `cgroup_skb` programs on the root of the cgroup v2 tree.
pub fn root_cgroup_skb(
    ebpf: &mut Ebpf,
    failures: &mut Vec<AttachFailure>,
) -> Result<(), SensorError> {
    for (family, program) in families::programs() {
        let direction = match program.attach {
            Attach::RootCgroupSkbIngress => CgroupSkbAttachType::Ingress,
            Attach::RootCgroupSkbEgress => CgroupSkbAttachType::Egress,
            _ => continue,
        };
        if let Err(err) = attach_root_skb(ebpf, program.name, direction) {
            settle_hook(family, program.name, program.need, err, failures)?;
        }
    }
    Ok(())
}

/// The enforcement hooks (`cgroup_sock_addr`), loaded now and attached per container later. They
/// load together or not at all: a failure is recorded once, for the group.
pub fn enforcement(
    ebpf: &mut Ebpf,
    failures: &mut Vec<AttachFailure>,
) -> Result<Option<Enforcement>, SensorError> {
    match Enforcement::load(ebpf) {
        Ok(enforcement) => Ok(Some(enforcement)),
        Err(err) => {
            let family = &enforce::FAMILY;
            let need = if family.programs.iter().any(|p| p.need == Need::Required) {
                Need::Required
            } else {
                Need::Optional
            };
            settle_hook(family, enforce::GROUP, need, err.to_string(), failures)?;
            Ok(None)
        }
    }
}

/// The outcome of a tracepoint program, by its need.
fn settle(
    family: &'static Family,
    program: &'static Program,
    attached: Attached,
    failures: &mut Vec<AttachFailure>,
) -> Result<(), SensorError> {
    let sensor = family.sensor;
    match (attached, program.need) {
        (Ok(()), _) => {
            tracing::debug!(target: LOG_TARGET, sensor, program = program.name, "attached");
            Ok(())
        }
        (Err((step, source)), Need::Required) => Err(SensorError::Program {
            sensor,
            program: program.name,
            step,
            source: Box::new(source),
        }),
        (Err((_, err)), Need::Optional) => {
            tracing::warn!(
                target: LOG_TARGET,
                sensor,
                program = program.name,
                error = %err,
                "{}",
                family.degraded
            );
            failures.push(AttachFailure {
                sensor,
                program: program.name,
                error: err.to_string(),
            });
            Ok(())
        }
    }
}

/// The outcome of a failed cgroup hook (or group of hooks), by its need.
fn settle_hook(
    family: &'static Family,
    program: &'static str,
    need: Need,
    err: String,
    failures: &mut Vec<AttachFailure>,
) -> Result<(), SensorError> {
    let sensor = family.sensor;
    if need == Need::Required {
        return Err(SensorError::Hook {
            sensor,
            program,
            reason: err,
        });
    }
    tracing::warn!(target: LOG_TARGET, %err, "{}", family.degraded);
    failures.push(AttachFailure {
        sensor,
        program,
        error: err,
    });
    Ok(())
}

/// Loads `name` and attaches it to `direction` on the root of the cgroup v2 tree, where it sees
/// the packets of every container's sockets.
fn attach_root_skb(
    ebpf: &mut Ebpf,
    name: &str,
    direction: CgroupSkbAttachType,
) -> Result<(), String> {
    let root = crate::container::cgroup2_mount().map_err(|e| e.to_string())?;
    let cgroup =
        std::fs::File::open(&root).map_err(|e| format!("opening {}: {e}", root.display()))?;
    let program: &mut CgroupSkb = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("the object has no {name} program"))?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())?;
    program.load().map_err(|e| e.to_string())?;
    // Through a BPF link the kernel attaches as ALLOW_MULTI and refuses any flag (see enforce).
    program
        .attach(&cgroup, direction, CgroupAttachMode::Single)
        .map_err(|e| format!("attaching to {}: {e}", root.display()))?;
    Ok(())
}
