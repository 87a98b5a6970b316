"""Prints deploy/k8s/components/monitoring/prometheusrule.yaml: the groups of
deploy/prometheus/rules.yaml wrapped in a PrometheusRule. .ci/deploy-files
diffs its output against the file, so the two never drift apart."""
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


class Dumper(yaml.SafeDumper):
    pass


def string(dumper, value):
    # Multi-line expressions stay readable: block style, as in rules.yaml.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, string)

groups = yaml.safe_load((ROOT / "deploy/prometheus/rules.yaml").read_text())["groups"]
rule = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {
        "name": "wowchat-users",
        "labels": {
            "app.kubernetes.io/name": "wowchat-users",
            "app.kubernetes.io/component": "monitoring",
        },
    },
    "spec": {"groups": groups},
}
print("# GENERATED from deploy/prometheus/rules.yaml (the same groups), by")
print("#   python3 .ci/prometheus-rule.py > deploy/k8s/components/monitoring/prometheusrule.yaml")
print("# .ci/deploy-files fails when this file differs from what that prints.")
print(yaml.dump(rule, Dumper=Dumper, sort_keys=False, width=1000), end="")
