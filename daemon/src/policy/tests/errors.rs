//! Invalid policies: each error names the place (`p.yaml:line:column`, 1-based) and the reason.

use super::{assert_err_at, parse_err, Policy, INVALID_EXAMPLE};

/// `version: 1` then `rules:` with `body` under it, so the body starts on line 3.
fn rules(body: &str) -> String {
    format!("version: 1\nrules:\n{body}")
}

/// A `root-in-container` rule whose `exceptions:` list is `body`; the body starts on line 5.
fn exceptions(body: &str) -> String {
    rules(&format!("  root-in-container:\n    exceptions:\n{body}"))
}

#[test]
fn invalid_example_reports_the_typo_at_its_key() {
    let error = Policy::parse(INVALID_EXAMPLE, "invalid.yaml").unwrap_err();
    let expected = "invalid.yaml:7:9: rules.root-in-container.exceptions[0]: unknown field \
                    `contianer_name`; expected one of: image, container_name, pod_namespace, \
                    exe, args, reason";
    assert_eq!(error.to_string(), expected);
}

#[test]
fn empty_policy() {
    for text in ["", "\n\n", "# only a comment\n", "{}\n"] {
        let shown = parse_err(text);
        assert_eq!(
            shown,
            "p.yaml: policy is empty; it must contain at least `version: 1`"
        );
    }
}

#[test]
fn missing_version() {
    assert_err_at(
        "# comment\nrules:\n  drift-exec: {}\n",
        2,
        1,
        "missing `version`: the policy must start with `version: 1`",
    );
}

#[test]
fn unsupported_version_names_the_supported_one() {
    assert_err_at(
        "version: 2\n",
        1,
        10,
        "version: unsupported policy version 2; this sealwatch supports version 1 only",
    );
    assert_err_at(
        "version: one\n",
        1,
        10,
        "version: invalid type: string \"one\"",
    );
    assert_err_at(
        "version: -1\n",
        1,
        10,
        "version: invalid type: integer `-1`, expected the policy format version, `1`",
    );
}

#[test]
fn not_a_mapping() {
    assert_err_at(
        "- version: 1\n",
        1,
        1,
        "invalid type: sequence, expected a sealwatch policy",
    );
    assert_err_at(
        "version: 1\nrules: [x]\n",
        2,
        8,
        "rules: invalid type: sequence",
    );
}

#[test]
fn unknown_top_level_key() {
    assert_err_at(
        "version: 1\nrulez: {}\n",
        2,
        1,
        "unknown field `rulez`; expected one of: version, rules",
    );
}

#[test]
fn unknown_rule_id_lists_the_known_ones() {
    let text = rules("  drift-exec: {}\n  root-in-contaner:\n    enabled: false\n");
    assert_err_at(
        &text,
        4,
        3,
        "rules: unknown rule `root-in-contaner`; expected one of: root-in-container, \
         image-file-modified, drift-exec, new-executable, host-file-modified, container-exec, \
         interactive-session-in-container, node-interactive-login, unexpected-connection, \
         unexpected-listener",
    );
}

#[test]
fn unknown_rule_setting() {
    let text = rules("  drift-exec:\n    enable: false\n");
    assert_err_at(
        &text,
        4,
        5,
        "rules.drift-exec: unknown field `enable`; expected one of: enabled, severity, exceptions",
    );
}

#[test]
fn duplicates_are_reported_at_the_second_key() {
    assert_err_at(
        "version: 1\nversion: 1\n",
        2,
        1,
        "duplicate field `version`",
    );
    let text = rules("  drift-exec: {}\n  drift-exec:\n    enabled: false\n");
    assert_err_at(&text, 4, 3, "rules: duplicate rule `drift-exec`");
    let text = rules("  drift-exec:\n    severity: low\n    severity: high\n");
    assert_err_at(&text, 5, 5, "rules.drift-exec: duplicate field `severity`");
    let text = exceptions("      - exe: /a\n        exe: /b\n        reason: r\n");
    assert_err_at(
        &text,
        6,
        9,
        "rules.root-in-container.exceptions[0]: duplicate field `exe`",
    );
}

#[test]
fn enabled_must_be_true_or_false() {
    let text = rules("  drift-exec:\n    enabled: yes-please\n");
    assert_err_at(
        &text,
        4,
        14,
        "rules.drift-exec.enabled: invalid type: string \"yes-please\", expected `true` or `false`",
    );
}

#[test]
fn severity_names_the_allowed_values() {
    let text = rules("  drift-exec:\n    severity: huge\n");
    assert_err_at(
        &text,
        4,
        15,
        "rules.drift-exec.severity: unknown severity `huge`; expected one of: low, medium, high, \
         critical",
    );
}

#[test]
fn exception_without_reason() {
    let text = exceptions("      - image: \"app:*\"\n");
    assert_err_at(
        &text,
        5,
        9,
        "rules.root-in-container.exceptions[0]: exception has no `reason`: every exception must \
         say why it is allowed",
    );
    let text = exceptions("      - image: \"app:*\"\n        reason: \"  \"\n");
    assert_err_at(
        &text,
        6,
        17,
        "rules.root-in-container.exceptions[0].reason: empty `reason`",
    );
}

#[test]
fn exception_without_matcher() {
    let expected = "exception matches nothing: give at least one of image, container_name, \
                    pod_namespace, exe, args";
    let text = exceptions("      - reason: \"why\"\n");
    assert_err_at(
        &text,
        5,
        9,
        &format!("rules.root-in-container.exceptions[0]: {expected}"),
    );
    // The second exception of the list, in flow style.
    let text = exceptions("      - exe: /x\n        reason: r\n      - {}\n");
    assert_err_at(
        &text,
        7,
        9,
        &format!("rules.root-in-container.exceptions[1]: {expected}"),
    );
}

#[test]
fn unknown_exception_field() {
    let text = exceptions("      - image: a\n        namespace: b\n        reason: r\n");
    assert_err_at(
        &text,
        6,
        9,
        "rules.root-in-container.exceptions[0]: unknown field `namespace`; expected one of: \
         image, container_name, pod_namespace, exe, args, reason",
    );
}

#[test]
fn invalid_glob_is_reported_at_its_value() {
    let text = exceptions("      - reason: r\n        image: \"app:[0-9\"\n");
    assert_err_at(
        &text,
        6,
        16,
        "rules.root-in-container.exceptions[0].image: invalid glob `app:[0-9`: unclosed \
         character class",
    );
    let text = exceptions("      - args: [\"ok\", \"{a,b\"]\n        reason: r\n");
    assert_err_at(
        &text,
        5,
        22,
        "rules.root-in-container.exceptions[0].args[1]: invalid glob `{a,b`: unclosed alternate \
         group",
    );
    let text = exceptions("      - container_name: \"\"\n        reason: r\n");
    assert_err_at(
        &text,
        5,
        25,
        "rules.root-in-container.exceptions[0].container_name: empty glob",
    );
}

#[test]
fn args_must_be_a_non_empty_list() {
    let text = exceptions("      - args: []\n        reason: r\n");
    assert_err_at(
        &text,
        5,
        15,
        "rules.root-in-container.exceptions[0].args: `args` is empty",
    );
    let text = exceptions("      - args: \"*x*\"\n        reason: r\n");
    assert_err_at(
        &text,
        5,
        15,
        "rules.root-in-container.exceptions[0].args: invalid type: string \"*x*\", expected a \
         list of globs",
    );
}

#[test]
fn yaml_syntax_errors_have_a_location() {
    let text = rules("  drift-exec: {enabled: true\n");
    assert_err_at(&text, 4, 1, "did not find expected ',' or '}'");
    assert_err_at(
        "version: 1\nrules:\n\tdrift-exec: {}\n",
        3,
        1,
        "found character that",
    );
}

#[test]
fn several_documents_are_refused() {
    let shown = parse_err("version: 1\n---\nversion: 1\n");
    assert!(shown.starts_with("p.yaml: "), "{shown}");
    assert!(shown.contains("more than one document"), "{shown}");
}

#[test]
fn reason_is_kept_on_one_line() {
    let text = exceptions("      - image: \"bad\\n[\"\n        reason: r\n");
    let shown = parse_err(&text);
    assert!(shown.starts_with("p.yaml:5:16: "), "{shown}");
}
