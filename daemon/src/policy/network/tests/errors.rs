//! Invalid `network:` sections: each error names the place (`p.yaml:line:column`) and the reason.

use serde::de::DeserializeSeed;

use super::super::{compile, KnownSets, NetworkSeed};
use super::{section, web};
use crate::policy::tests::{assert_err_at, parse_err};

/// `web` with one egress entry to `peer` (quoted): the peer is at line 7, column 16.
fn egress_to(peer: &str) -> String {
    web(&format!("      egress:\n        - to: [\"{peer}\"]\n"))
}

/// `web` with one egress entry whose single port is `port` (as written): at line 8, column 19.
fn egress_port(port: &str) -> String {
    web(&format!(
        "      egress:\n        - to: [10.0.0.1]\n          ports: [{port}]\n"
    ))
}

#[test]
fn unknown_keys_list_the_known_ones() {
    assert_err_at(
        "version: 1\nnetwork_: {}\n",
        2,
        1,
        "unknown field `network_`; expected one of: version, rules, network",
    );
    assert_err_at(
        &section("  setz: {}\n"),
        3,
        3,
        "network: unknown field `setz`; expected one of: sets, default, workloads",
    );
    assert_err_at(
        &section("  default:\n    match: {image: a}\n"),
        4,
        5,
        "network.default: unknown field `match`; expected one of: action, egress, ingress, \
         listen",
    );
    assert_err_at(
        &web("      egres: []\n"),
        6,
        7,
        "network.workloads[0]: unknown field `egres`; expected one of: name, match, action, \
         egress, ingress, listen",
    );
    assert_err_at(
        &web("      egress:\n        - to: [10.0.0.1]\n          port: 80\n"),
        8,
        11,
        "network.workloads[0].egress[0]: unknown field `port`; expected one of: to, ports, \
         protocol",
    );
    assert_err_at(
        &web("      listen:\n        - ports: [80]\n          from: [10.0.0.1]\n"),
        8,
        11,
        "network.workloads[0].listen[0]: unknown field `from`; expected one of: ports, protocol",
    );
}

#[test]
fn to_and_from_belong_to_their_direction() {
    assert_err_at(
        &web("      ingress:\n        - to: [10.0.0.1]\n"),
        7,
        11,
        "network.workloads[0].ingress[0]: unknown field `to`; expected one of: from, ports, \
         protocol",
    );
    assert_err_at(
        &web("      egress:\n        - from: [10.0.0.1]\n"),
        7,
        11,
        "network.workloads[0].egress[0]: unknown field `from`; expected one of: to, ports, \
         protocol",
    );
}

#[test]
fn duplicate_keys_are_reported_at_the_second() {
    assert_err_at(
        &section("  sets: {}\n  sets: {}\n"),
        4,
        3,
        "network: duplicate field `sets`",
    );
    assert_err_at(
        &web("      name: again\n"),
        6,
        7,
        "network.workloads[0]: duplicate field `name`",
    );
    assert_err_at(
        &web("      egress:\n        - to: [10.0.0.1]\n          to: [10.0.0.2]\n"),
        8,
        11,
        "network.workloads[0].egress[0]: duplicate field `to`",
    );
}

#[test]
fn wrong_shapes() {
    assert_err_at(
        "version: 1\nnetwork: [x]\n",
        2,
        10,
        "network: invalid type: sequence, expected the network policy",
    );
    assert_err_at(
        &section("  workloads: {}\n"),
        3,
        14,
        "network.workloads: invalid type: map, expected a list of workloads",
    );
    assert_err_at(
        &web("      egress: {to: [10.0.0.1]}\n"),
        6,
        15,
        "network.workloads[0].egress: invalid type: map, expected a list of egress entries",
    );
    assert_err_at(
        &web("      egress:\n        - to: 10.0.0.1\n"),
        7,
        15,
        "network.workloads[0].egress[0].to: invalid type: string \"10.0.0.1\", expected a list \
         of peers",
    );
    assert_err_at(
        &web("      egress:\n        - to: [10.0.0.1]\n          ports: 80\n"),
        8,
        18,
        "network.workloads[0].egress[0].ports: invalid type: integer `80`, expected a list of \
         ports and ranges",
    );
}

#[test]
fn unknown_set_lists_the_known_ones() {
    assert_err_at(
        &egress_to("set:nope"),
        7,
        16,
        "network.workloads[0].egress[0].to[0]: unknown set `nope`; known sets: loopback, \
         cloud-metadata, kubernetes-api, cluster",
    );
    // Sets defined after their use are known, and listed.
    let text = web(
        "      egress:\n        - to: [\"set:db\", \"set:dbs\"]\n  sets:\n    db: [10.0.0.1]\n",
    );
    assert_err_at(
        &text,
        7,
        26,
        "network.workloads[0].egress[0].to[1]: unknown set `dbs`; known sets: loopback, \
         cloud-metadata, kubernetes-api, cluster, db",
    );
    assert_err_at(
        &egress_to("set:"),
        7,
        16,
        "network.workloads[0].egress[0].to[0]: `set:` names no set",
    );
    // An empty `sets:` defines none.
    assert_err_at(
        &web("      egress: [{to: [\"set:db\"]}]\n  sets:\n"),
        6,
        22,
        "network.workloads[0].egress[0].to[0]: unknown set `db`",
    );
    // In ingress and in the default too.
    assert_err_at(
        &section("  default:\n    ingress: [{from: [\"set:Cluster\"]}]\n"),
        4,
        23,
        "network.default.ingress[0].from[0]: unknown set `Cluster`",
    );
}

#[test]
fn unknown_set_is_refused_even_when_not_read_ahead() {
    // Were the set names not read ahead (`declared_sets` gives `None` on text it cannot read),
    // resolving still refuses the reference, without a location.
    let text = "workloads:\n  - {name: web, match: {image: a}, egress: [{to: [\"set:db\"]}]}\n";
    let seed = NetworkSeed {
        known: KnownSets(None),
    };
    let file = seed
        .deserialize(serde_yaml_ng::Deserializer::from_str(text))
        .unwrap();
    let error = compile(file).unwrap_err();
    assert_eq!(
        error,
        "unknown set `db`; known sets: loopback, cloud-metadata, kubernetes-api, cluster"
    );
}

#[test]
fn invalid_networks_and_addresses() {
    let cases = [
        (
            "10.0.0.0/33",
            "invalid CIDR `10.0.0.0/33`; expected ADDRESS/PREFIX-LENGTH",
        ),
        ("10.0.0.0/", "invalid CIDR `10.0.0.0/`"),
        ("fd00::/129", "invalid CIDR `fd00::/129`"),
        ("db/16", "invalid CIDR `db/16`"),
        (
            "10.1.0.0/8",
            "CIDR `10.1.0.0/8` has host bits set; did you mean `10.0.0.0/8`?",
        ),
        (
            "fd00::1/64",
            "CIDR `fd00::1/64` has host bits set; did you mean `fd00::/64`?",
        ),
        ("10.0.0.256", "invalid address `10.0.0.256`"),
        ("1.2.3", "invalid address `1.2.3`"),
        ("fd00::zz", "invalid address `fd00::zz`"),
        ("10.0.0.1:80", "invalid address `10.0.0.1:80`"),
    ];
    for (peer, reason) in cases {
        assert_err_at(
            &egress_to(peer),
            7,
            16,
            &format!("network.workloads[0].egress[0].to[0]: {reason}"),
        );
    }
}

#[test]
fn invalid_host_names() {
    let cases = [
        ("a..example.com", "empty label"),
        (".example.com", "empty label"),
        (
            "*.*.example.com",
            "`*` is allowed only as the whole first label",
        ),
        (
            "api*.example.com",
            "`*` is allowed only as the whole first label",
        ),
        ("*", "`*` is allowed only as the whole first label"),
        ("*.", "`*` is allowed only as the whole first label"),
        (
            "ex ample.com",
            "a name has letters, digits, `-`, `_` and dots only",
        ),
        (
            "exämple.com",
            "a name has letters, digits, `-`, `_` and dots only",
        ),
        ("-api.example.com", "a label cannot start or end with `-`"),
        ("api.example.123", "a name cannot end in a numeric label"),
    ];
    for (name, why) in cases {
        let shown = parse_err(&egress_to(name));
        let prefix = format!(
            "p.yaml:7:16: network.workloads[0].egress[0].to[0]: invalid host name `{name}`: "
        );
        assert!(shown.starts_with(&prefix), "{shown:?} wanted {prefix:?}");
        assert!(shown.contains(why), "{shown:?} wanted {why:?}");
    }
    let long_label = format!("{}.example.com", "a".repeat(64));
    assert!(parse_err(&egress_to(&long_label)).contains("longer than 63 characters"));
    let long_name = format!("{}com", "abcdefghi.".repeat(26));
    assert!(parse_err(&egress_to(&long_name)).contains("longer than 253 characters"));
}

#[test]
fn host_names_are_for_egress_only() {
    assert_err_at(
        &web("      ingress:\n        - from: [api.example.com]\n"),
        7,
        18,
        "network.workloads[0].ingress[0].from[0]: host name `api.example.com` in `from`: names \
         are allowed in `egress.to` only",
    );
    assert_err_at(
        &section("  sets:\n    db: [db.example.com]\n"),
        4,
        10,
        "network.sets.db[0]: host name `db.example.com` in a set: sets hold CIDRs and addresses \
         only",
    );
}

#[test]
fn invalid_ports() {
    let cases = [
        ("0", "port 0 is not a port; ports are 1-65535"),
        ("65536", "port 65536 is out of range; ports are 1-65535"),
        ("-1", "port -1 is out of range; ports are 1-65535"),
        (
            "\"90-80\"",
            "invalid port range `90-80`: the first port is greater than the last",
        ),
        (
            "\"80-\"",
            "invalid port range `80-`; write a range as \"lo-hi\"",
        ),
        ("\"-80\"", "invalid port range `-80`"),
        (
            "\"80\"",
            "invalid port range `80`; write a range as \"lo-hi\" (e.g. \"8000-8100\") and a \
             single port as a number",
        ),
        ("\"a-b\"", "invalid port range `a-b`"),
        ("\"1-2-3\"", "invalid port range `1-2-3`"),
        ("\" 1-2\"", "invalid port range ` 1-2`"),
        ("\"0-10\"", "in port range `0-10`: port 0 is not a port"),
        (
            "\"1-70000\"",
            "in port range `1-70000`: port 70000 is out of range",
        ),
        (
            "1.5",
            "invalid type: floating point `1.5`, expected a port 1-65535 or a range \"lo-hi\"",
        ),
        ("true", "invalid type: boolean `true`"),
    ];
    for (port, reason) in cases {
        assert_err_at(
            &egress_port(port),
            8,
            19,
            &format!("network.workloads[0].egress[0].ports[0]: {reason}"),
        );
    }
    assert_err_at(
        &web("      egress:\n        - to: [10.0.0.1]\n          ports: []\n"),
        8,
        18,
        "network.workloads[0].egress[0].ports: `ports` is empty; list at least one port, or omit \
         `ports` to allow any",
    );
    assert_err_at(
        &web("      listen:\n        - ports: [80, 0]\n"),
        7,
        23,
        "network.workloads[0].listen[0].ports[1]: port 0 is not a port",
    );
}

#[test]
fn protocol_and_action_name_the_allowed_values() {
    assert_err_at(
        &web("      egress:\n        - to: [10.0.0.1]\n          protocol: tcp6\n"),
        8,
        21,
        "network.workloads[0].egress[0].protocol: unknown protocol `tcp6`; expected one of: tcp, \
         udp, any",
    );
    assert_err_at(
        &web("      listen:\n        - {ports: [80], protocol: TCP}\n"),
        7,
        35,
        "network.workloads[0].listen[0].protocol: unknown protocol `TCP`",
    );
    assert_err_at(
        &web("      action: deny\n"),
        6,
        15,
        "network.workloads[0].action: unknown action `deny`; expected one of: alert, block",
    );
    assert_err_at(
        &section("  default:\n    action: [block]\n"),
        4,
        13,
        "network.default.action: invalid type: sequence, expected an action, alert or block",
    );
}

#[test]
fn entries_need_their_peers_and_listen_its_ports() {
    assert_err_at(
        &web("      egress:\n        - ports: [80]\n"),
        7,
        11,
        "network.workloads[0].egress[0]: egress entry has no `to`: list the peers it allows",
    );
    assert_err_at(
        &web("      ingress:\n        - protocol: tcp\n"),
        7,
        11,
        "network.workloads[0].ingress[0]: ingress entry has no `from`: list the peers it accepts",
    );
    assert_err_at(
        &web("      egress:\n        - to: []\n"),
        7,
        15,
        "network.workloads[0].egress[0].to: `to` is empty; list at least one peer",
    );
    assert_err_at(
        &web("      ingress:\n        - from:\n"),
        7,
        16,
        "network.workloads[0].ingress[0].from: `from` is empty; list at least one peer",
    );
    assert_err_at(
        &web("      listen:\n        - protocol: tcp\n"),
        7,
        11,
        "network.workloads[0].listen[0]: listen entry has no `ports`: list the ports the \
         workload may listen on",
    );
}

#[test]
fn workloads_need_a_unique_name_and_a_match() {
    assert_err_at(
        &section("  workloads:\n    - match: {image: a}\n"),
        4,
        7,
        "network.workloads[0]: workload has no `name`: every workload needs a unique name",
    );
    assert_err_at(
        &section("  workloads:\n    - name: web\n      action: block\n"),
        4,
        7,
        "network.workloads[0]: workload `web` has no `match`: say which containers it is for",
    );
    let twice = "  workloads:\n    - name: web\n      match: {image: a}\n    - name: db\n      \
                 match: {image: b}\n    - name: web\n      match: {image: c}\n";
    assert_err_at(
        &section(twice),
        8,
        13,
        "network.workloads[2].name: duplicate workload name `web`; names must be unique",
    );
    assert_err_at(
        &section("  workloads:\n    - name: default\n      match: {image: a}\n"),
        4,
        13,
        "network.workloads[0].name: `default` is the name of the default workload",
    );
    assert_err_at(
        &section("  workloads:\n    - name: \"\"\n      match: {image: a}\n"),
        4,
        13,
        "network.workloads[0].name: empty workload name",
    );
    assert_err_at(
        &section("  workloads:\n    - name: \"my web\"\n      match: {image: a}\n"),
        4,
        13,
        "network.workloads[0].name: invalid workload name `my web`; a name is 1-128 printable \
         ASCII characters without spaces",
    );
    let long = "w".repeat(129);
    assert_err_at(
        &section(&format!(
            "  workloads:\n    - name: {long}\n      match: {{image: a}}\n"
        )),
        4,
        13,
        "network.workloads[0].name: invalid workload name",
    );
}

#[test]
fn match_is_strict() {
    assert_err_at(
        &section("  workloads:\n    - name: web\n      match: {}\n"),
        5,
        14,
        "network.workloads[0].match: `match` is empty: give at least one of image, \
         container_name, pod_namespace",
    );
    assert_err_at(
        &section("  workloads:\n    - name: web\n      match: {image: a, exe: /x}\n"),
        5,
        25,
        "network.workloads[0].match: unknown field `exe`; expected one of: image, \
         container_name, pod_namespace",
    );
    assert_err_at(
        &section("  workloads:\n    - name: web\n      match: {image: \"[x\"}\n"),
        5,
        22,
        "network.workloads[0].match.image: invalid glob `[x`: unclosed character class",
    );
    assert_err_at(
        &section("  workloads:\n    - name: web\n      match: {pod_namespace: \"\"}\n"),
        5,
        30,
        "network.workloads[0].match.pod_namespace: empty glob",
    );
}

#[test]
fn sets_are_strict() {
    assert_err_at(
        &section("  sets:\n    loopback: [10.0.0.1]\n"),
        4,
        5,
        "network.sets: `loopback` is a built-in set and cannot be redefined; built-in sets: \
         loopback, cloud-metadata, kubernetes-api, cluster",
    );
    assert_err_at(
        &section("  sets:\n    db: [10.0.0.1]\n    db: [10.0.0.2]\n"),
        5,
        5,
        "network.sets: duplicate set `db`",
    );
    assert_err_at(
        &section("  sets:\n    \"d b\": [10.0.0.1]\n"),
        4,
        5,
        "network.sets: invalid set name `d b`; a set name has letters, digits, `-`, `_` and `.` \
         only",
    );
    assert_err_at(
        &section("  sets:\n    db: [\"set:loopback\"]\n"),
        4,
        10,
        "network.sets.db[0]: `set:loopback`: a set lists CIDRs and addresses only, not other sets",
    );
    assert_err_at(
        &section("  sets:\n    db: []\n"),
        4,
        9,
        "network.sets.db: the set is empty; list at least one CIDR or address",
    );
    assert_err_at(
        &section("  sets:\n    db: [10.0.0.1/8]\n"),
        4,
        10,
        "network.sets.db[0]: CIDR `10.0.0.1/8` has host bits set",
    );
}

#[test]
fn errors_stay_on_one_line() {
    let shown = parse_err(&egress_to("bad\\nname"));
    assert!(shown.starts_with("p.yaml:7:16: "), "{shown}");
}
