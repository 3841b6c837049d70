#!/bin/sh
# Regenerates prometheusrule.yaml (Prometheus operator) from sealwatch-rules.yaml (plain rules
# file), the one source of the alert rules. A unit test (daemon/src/metrics/deploy_tests.rs)
# fails when the two differ, so run this after every change of the rules:
#   sh deploy/prometheus/generate.sh
set -eu
here=$(dirname "$0")
{
    cat <<'HEADER'
# GENERATED from sealwatch-rules.yaml by generate.sh: edit that file, then run
# `sh deploy/prometheus/generate.sh`. A unit test fails when the two differ.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: sealwatch
  labels:
    app.kubernetes.io/name: sealwatch
    app.kubernetes.io/component: alerting-rules
    # kube-prometheus-stack selects rules by its Helm release's name; set yours with a patch
    # (deploy/kubernetes/examples/prometheus-release).
    release: kube-prometheus-stack
spec:
HEADER
    # Everything from `groups:` on, indented under spec.
    sed -n '/^groups:/,$p' "$here/sealwatch-rules.yaml" | sed 's/^\(.\)/  \1/'
} > "$here/prometheusrule.yaml.tmp"
mv "$here/prometheusrule.yaml.tmp" "$here/prometheusrule.yaml"
