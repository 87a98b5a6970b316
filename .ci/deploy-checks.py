"""What the Kubernetes schemas and checkov cannot see in the rendered
overlays (.ci/deploy-files renders them into OUT and calls this with OUT
and their names). Exits non-zero with every finding listed."""
import pathlib
import re
import subprocess
import sys
from urllib.parse import urlparse

import yaml

OUT, NAMES = pathlib.Path(sys.argv[1]), sys.argv[2:]
ROOT = pathlib.Path(__file__).resolve().parent.parent
problems = []


def fail(render, message):
    problems.append(f"{render}: {message}")


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def pod_spec(obj):
    if obj["kind"] in ("Deployment", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_render(name, docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind.get("Deployment", {})
    hpas = by_kind.get("HorizontalPodAutoscaler", {})

    # Labels: every object part of wowchat-users at the image's version;
    # every object but the namespace and the policies names its deployable
    # and component, on the pod templates too.
    versions = set()
    for d in docs:
        labels = d["metadata"].get("labels", {})
        what = f"{d['kind']}/{d['metadata']['name']}"
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != "wowchat":
            fail(name, f"{what} is not in the namespace wowchat")
        if labels.get("app.kubernetes.io/part-of") != "wowchat-users":
            fail(name, f"{what} lacks app.kubernetes.io/part-of=wowchat-users")
        versions.add(labels.get("app.kubernetes.io/version"))
        if d["kind"] not in ("Namespace", "NetworkPolicy"):
            for key in ("app.kubernetes.io/name", "app.kubernetes.io/component"):
                if key not in labels:
                    fail(name, f"{what} lacks {key}")
        spec = pod_spec(d)
        if spec is not None:
            template = d["spec"]["template"]["metadata"]["labels"]
            for key in ("app.kubernetes.io/name", "app.kubernetes.io/component",
                        "app.kubernetes.io/part-of", "app.kubernetes.io/version"):
                if template.get(key) != labels.get(key):
                    fail(name, f"{what}: its pods' {key} differs from its own")
            for c in spec.get("initContainers", []) + spec["containers"]:
                tag = c["image"].rpartition(":")[2]
                versions.add(tag)
    if len(versions) != 1:
        fail(name, f"app.kubernetes.io/version and the image tags disagree: {sorted(map(str, versions))}")

    # An autoscaled Deployment has no replicas field (a re-apply would
    # reset what the autoscaler chose).
    for hpa in hpas.values():
        target = hpa["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            fail(name, f"HorizontalPodAutoscaler/{hpa['metadata']['name']} scales a Deployment not here: {target}")
        elif "replicas" in deployments[target]["spec"]:
            fail(name, f"Deployment/{target} sets replicas although an autoscaler owns the count")

    # The overlays' promises.
    if name == "dev":
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
            if by_kind.get(kind):
                fail(name, f"dev has a {kind}")
        for d in deployments.values():
            if d["spec"].get("replicas") != 1:
                fail(name, f"Deployment/{d['metadata']['name']} runs {d['spec'].get('replicas')} replicas, not 1")
    if name.startswith("prod"):
        for target in ("wowchat-users", "wowchat-gateway"):
            if not any(h["spec"]["scaleTargetRef"]["name"] == target for h in hpas.values()):
                fail(name, f"no HorizontalPodAutoscaler for {target}")
        budgets = by_kind.get("PodDisruptionBudget", {}).values()
        for d in deployments.values():
            selector = d["spec"]["selector"]["matchLabels"]
            if not any(b["spec"]["selector"]["matchLabels"] == selector for b in budgets):
                fail(name, f"Deployment/{d['metadata']['name']} has no PodDisruptionBudget")
            if not d["spec"]["template"]["spec"].get("topologySpreadConstraints"):
                fail(name, f"Deployment/{d['metadata']['name']} has no topologySpreadConstraints")
        for target in ("wowchat-users", "wowchat-gateway", "wowchat-mailer"):
            env = env_of(deployments[target]["spec"]["template"]["spec"]["containers"][0])
            if env.get("WOWCHAT_ENVIRONMENT") != "production":
                fail(name, f"Deployment/{target} lacks WOWCHAT_ENVIRONMENT=production")

    # The service never migrates (the Job does, as the schema owner); the
    # runtime URLs are the DML-only role's.
    job = by_kind.get("Job", {}).get("wowchat-users-migrate")
    if job is None:
        fail(name, "no migrate Job")
    else:
        c = job["spec"]["template"]["spec"]["containers"][0]
        if c.get("args") != ["migrate"] or "command" in c:
            fail(name, "the migrate Job does not run `wowchat-users migrate`")
    for d in deployments.values():
        if d["metadata"]["name"] in ("wowchat-users", "wowchat-relay"):
            c = d["spec"]["template"]["spec"]["containers"][0]
            if env_of(c).get("WOWCHAT_MIGRATE_ON_START") != "false":
                fail(name, f"Deployment/{d['metadata']['name']} would migrate at start")
            for e in c.get("env", []):
                if e["name"] == "WOWCHAT_DATABASE_URL" and \
                        e["valueFrom"]["secretKeyRef"]["key"] != "database-url":
                    fail(name, f"Deployment/{d['metadata']['name']} connects as another role than database-url's")

    # Shutdown: the grace period outlasts the delay and the drain, with
    # 5 s to spare; the gateway's readiness is /readyz, its liveness /healthz.
    for target, prefix in (("wowchat-users", "WOWCHAT_"), ("wowchat-gateway", "WOWCHAT_GATEWAY_")):
        spec = deployments[target]["spec"]["template"]["spec"]
        env = env_of(spec["containers"][0])
        delay = int(env.get(f"{prefix}SHUTDOWN_DELAY_SECS") or 5)
        drain = int(env.get(f"{prefix}SHUTDOWN_DRAIN_SECS") or 20)
        if spec.get("terminationGracePeriodSeconds", 30) < delay + drain + 5:
            fail(name, f"Deployment/{target}: grace period under {delay} + {drain} + 5 s")
    gateway = deployments["wowchat-gateway"]["spec"]["template"]["spec"]["containers"][0]
    if gateway["readinessProbe"]["httpGet"]["path"] != "/readyz" or \
            gateway["livenessProbe"]["httpGet"]["path"] != "/healthz":
        fail(name, "the gateway's readiness is not /readyz or its liveness not /healthz")

    # The gateway's upstream is a headless Service here, on its gRPC port.
    upstream = urlparse(env_of(gateway)["WOWCHAT_GATEWAY_UPSTREAM"])
    service, namespace = upstream.hostname.split(".")[:2]
    s = by_kind.get("Service", {}).get(service)
    if s is None or s["metadata"]["namespace"] != namespace or s["spec"].get("clusterIP") != "None":
        fail(name, f"the gateway's upstream {upstream.hostname} is no headless Service here")
    elif upstream.port not in [p["port"] for p in s["spec"]["ports"]]:
        fail(name, f"the gateway's upstream port {upstream.port} is not on {service}")

    # The ServiceMonitor scrapes a named container port of every deployable.
    for monitor in by_kind.get("ServiceMonitor", {}).values():
        selector = monitor["spec"]["selector"]["matchLabels"]
        scraped = set()
        for s in by_kind.get("Service", {}).values():
            if not matches(selector, s["metadata"].get("labels", {})):
                continue
            for endpoint in monitor["spec"]["endpoints"]:
                port = next((p for p in s["spec"]["ports"] if p["name"] == endpoint["port"]), None)
                if port is None:
                    fail(name, f"Service/{s['metadata']['name']} has no port {endpoint['port']}")
                    continue
                for d in deployments.values():
                    template = d["spec"]["template"]
                    if not matches(s["spec"]["selector"], template["metadata"]["labels"]):
                        continue
                    names = {p.get("name"): p["containerPort"]
                             for c in template["spec"]["containers"] for p in c.get("ports", [])}
                    if port["targetPort"] not in names or names[port["targetPort"]] != port["port"]:
                        fail(name, f"Service/{s['metadata']['name']} targets no container port {port['targetPort']}")
                    scraped.add(d["metadata"]["name"])
        missing = set(deployments) - scraped
        if missing:
            fail(name, f"the ServiceMonitor scrapes none of {sorted(missing)}")
    if name.startswith("prod") and not by_kind.get("ServiceMonitor"):
        fail(name, "no ServiceMonitor")
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules.yaml").read_text())["groups"]
    for rule in by_kind.get("PrometheusRule", {}).values():
        if rule["spec"]["groups"] != rules:
            fail(name, "the PrometheusRule's groups differ from deploy/prometheus/rules.yaml")


for name in NAMES:
    check_render(name, [d for d in yaml.safe_load_all((OUT / f"{name}.yaml").read_text()) if d])

# The alerts name only metrics the code records, and each has a runbook entry.
sources = subprocess.run(["git", "grep", "-h", "-o", "-E", r'"(grpc|http|wowchat)_[a-z_]+"', "--", "crates"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
known = {s.strip('"') for s in sources.split()}
runbook = (ROOT / "docs/runbook.md").read_text()
anchors = {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
           for h in re.findall(r"^#+ (.*)$", runbook, re.M)}
alerts = 0
for group in yaml.safe_load((ROOT / "deploy/prometheus/rules.yaml").read_text())["groups"]:
    for rule in group["rules"]:
        alerts += 1
        for metric in re.findall(r"\b((?:grpc|http|wowchat)_[a-z_]+)", rule["expr"]):
            if re.sub(r"_(bucket|count|sum)$", "", metric) not in known:
                problems.append(f"rules.yaml: {rule['alert']} uses {metric}, which nothing records")
        anchor = rule["annotations"].get("runbook_url", "").partition("#")[2]
        if anchor not in anchors:
            problems.append(f"rules.yaml: {rule['alert']}'s runbook_url anchor #{anchor} is no heading of docs/runbook.md")
        if not rule["annotations"].get("runbook_url", "").split("#")[0].endswith("docs/runbook.md"):
            problems.append(f"rules.yaml: {rule['alert']}'s runbook_url is not docs/runbook.md")

if problems:
    raise SystemExit("\n".join(problems))
print(f"rendered overlays: {', '.join(NAMES)} hold together; {alerts} alerts, each with a runbook entry")
