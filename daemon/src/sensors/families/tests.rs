//! The registry against itself and against the embedded kernel object.
use std::collections::BTreeSet;

use super::{programs, Attach, FAMILIES};

#[test]
fn program_names_are_unique() {
    let mut seen = BTreeSet::new();
    for (_, program) in programs() {
        assert!(
            seen.insert(program.name),
            "{} is registered twice",
            program.name
        );
    }
}

#[test]
fn syscall_programs_are_named_after_their_tracepoint() {
    for (family, program) in programs() {
        if let Attach::TracePoint { category, event } = program.attach {
            assert_eq!(category, "syscalls", "{}", family.sensor);
            assert_eq!(event, program.name);
        }
    }
}

#[test]
fn every_family_has_programs() {
    for family in FAMILIES {
        assert!(!family.programs.is_empty(), "{}", family.sensor);
        assert!(!family.degraded.is_empty(), "{}", family.sensor);
    }
}

/// The object built from `ebpf/probes` holds exactly the registered programs: a probe nobody
/// attaches, or an entry without a probe, fails here before it fails at start-up.
#[test]
fn the_object_holds_exactly_the_registered_programs() {
    let probes = crate::sensors::loader::PROBES;
    if probes.is_empty() {
        // Built with AYA_BUILD_SKIP=1: there is no object to compare with.
        return;
    }
    let object = match aya_obj::Object::parse(probes) {
        Ok(object) => object,
        Err(err) => panic!("the embedded object does not parse: {err}"),
    };
    let in_object: BTreeSet<&str> = object.programs.keys().map(String::as_str).collect();
    let registered: BTreeSet<&str> = programs().map(|(_, program)| program.name).collect();
    assert_eq!(in_object, registered);
}

/// `Enforcement` loads the enforce family's hooks: a `cgroup_sock_addr` program elsewhere would
/// never load.
#[test]
fn cgroup_sock_addr_programs_are_the_enforce_family() {
    for (family, program) in programs() {
        let in_enforce = std::ptr::eq(family, &super::enforce::FAMILY);
        assert_eq!(
            program.attach == Attach::CgroupSockAddr,
            in_enforce,
            "{}",
            program.name
        );
    }
}
