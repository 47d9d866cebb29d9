"""The Kubernetes manifests (and the compose file's listeners) agree with the code and with
each other: settings that exist, selectors that select, ports and volumes where the
settings point. No cluster here: what kubectl and the kubelet would match is matched here."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.config import CONFIG_ENV, parse_connectors_config
from streams.ledger.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATION: dict[str, Any] = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
DOCS: list[dict[str, Any]] = [
    doc
    for resource in KUSTOMIZATION["resources"]
    for doc in yaml.safe_load_all((DEPLOY / resource).read_text())
    if doc
]
GENERATED: dict[str, dict[str, Path]] = {
    gen["name"]: {key: DEPLOY / source for key, source in (f.split("=", 1) for f in gen["files"])}
    for gen in KUSTOMIZATION["configMapGenerator"]
}
WORKLOADS = [d for d in DOCS if d["kind"] in ("Deployment", "StatefulSet")]
SERVICES = [d for d in DOCS if d["kind"] == "Service"]
CONFIGMAPS = {d["metadata"]["name"]: d["data"] for d in DOCS if d["kind"] == "ConfigMap"}
STOCKFLOW = [w for w in WORKLOADS if w["metadata"]["name"] != "stockflow-prometheus"]


def _settings_variables() -> set[str]:
    """Every STOCKFLOW_* variable the code reads."""
    source = (ROOT / "streams" / "kernel" / "settings.py").read_text()
    names = re.findall(r'_env(?:_int|_float|_flag)?\(\s*"([A-Z0-9_]+)"', source)
    secrets = re.findall(r'_env_secret\(\s*"([A-Z0-9_]+)"', source)  # X or X_FILE
    names += secrets + [f"{n}_FILE" for n in secrets]
    return {f"STOCKFLOW_{n}" for n in names} | {CONFIG_ENV}


def _name(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["name"])


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"])


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = _pod(workload)["spec"]["containers"]
    assert len(containers) == 1, _name(workload)
    return dict(containers[0])


def _env(workload: dict[str, Any]) -> dict[str, str]:
    """The container's environment: its ConfigMaps' data, then its own entries."""
    container = _container(workload)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(CONFIGMAPS[source["configMapRef"]["name"]])
    env.update({e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e})
    return env


def _mount_for(workload: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volume mount holding ``path`` (the deepest one)."""
    mounts = [
        m
        for m in _container(workload).get("volumeMounts", [])
        if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    return max(mounts, key=lambda m: len(m["mountPath"]), default=None)


def _volume(workload: dict[str, Any], name: str) -> dict[str, Any]:
    for volume in _pod(workload)["spec"].get("volumes", []):
        if volume["name"] == name:
            return dict(volume)
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        if claim["metadata"]["name"] == name:
            return {"name": name, "volumeClaimTemplate": claim}
    raise AssertionError(f"{_name(workload)}: no volume {name!r}")


def _workload(name: str) -> dict[str, Any]:
    return next(w for w in WORKLOADS if _name(w) == name)


def test_every_manifest_and_generated_file_exists_and_parses() -> None:
    """Given the kustomization, when its resources and generator files are read, then each
    exists and parses, and the pipeline's three services and their Prometheus are there."""
    for files in GENERATED.values():
        for path in files.values():
            assert path.is_file(), path
            yaml.safe_load(path.read_text())
    kinds = {(d["kind"], _name(d)) for d in DOCS}
    assert {
        ("StatefulSet", "stockflow-worker"),
        ("Deployment", "stockflow-sink"),
        ("Deployment", "stockflow-connectors"),
        ("Deployment", "stockflow-prometheus"),
    } <= kinds


def test_every_stockflow_variable_given_is_a_setting_the_code_reads() -> None:
    """Given the environment of every stockflow container (ConfigMap and own entries) and of
    every compose service, when compared with the settings, then none is misspelled."""
    known = _settings_variables()
    given = {name for w in STOCKFLOW for name in _env(w) if name.startswith("STOCKFLOW_")}
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service in compose["services"].values():
        given |= {n for n in service.get("environment", {}) if n.startswith("STOCKFLOW_")}
    assert given - known == set()


def test_selectors_select_their_pods_and_service_ports_name_container_ports() -> None:
    """Given every workload and Service, when matched as Kubernetes does, then each workload's
    selector matches its pod labels, each Service selects exactly one workload's pods and
    its target port is a named port of that pod, and that port is the one the process
    listens on (its STOCKFLOW_*_PORT)."""
    for workload in WORKLOADS:
        labels = _pod(workload)["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in SERVICES:
        selector = service["spec"]["selector"].items()
        selected = [w for w in WORKLOADS if selector <= _pod(w)["metadata"]["labels"].items()]
        assert len(selected) == 1, _name(service)
        container = _container(selected[0])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (_name(service), port)
    listening = {
        "stockflow-worker": "STOCKFLOW_WORKER_WEB_PORT",
        "stockflow-sink": "STOCKFLOW_SINK_METRICS_PORT",
        "stockflow-connectors": "STOCKFLOW_CONNECTORS_PORT",
    }
    for name, variable in listening.items():
        workload = _workload(name)
        env = _env(workload)
        assert [p["containerPort"] for p in _container(workload)["ports"]] == [int(env[variable])]
        bind = variable.replace("_PORT", "_BIND")
        assert env[bind] == "0.0.0.0", f"{name} must listen beyond its pod's loopback"


def test_workers_are_a_statefulset_with_stable_urls_and_their_own_state_volumes() -> None:
    """Given the worker StatefulSet, then its governing Service is headless and selects it,
    each worker advertises <pod name>.<that service>, static membership is off (a replay
    with it on was seen decided twice), and STOCKFLOW_STATE_DIR is the mount of a
    volumeClaimTemplate: one RocksDB volume per worker, kept across restarts."""
    worker = _workload("stockflow-worker")
    governing = next(s for s in SERVICES if _name(s) == worker["spec"]["serviceName"])
    assert governing["spec"].get("clusterIP") == "None"
    assert governing["spec"]["selector"].items() <= _pod(worker)["metadata"]["labels"].items()
    env = _env(worker)
    assert env["STOCKFLOW_WORKER_URL"] == f"http://{{host}}.{_name(governing)}:{{port}}"
    assert env["STOCKFLOW_STATIC_MEMBERSHIP"] == "0"
    mount = _mount_for(worker, env["STOCKFLOW_STATE_DIR"])
    assert mount is not None and mount["mountPath"] == env["STOCKFLOW_STATE_DIR"]
    assert "volumeClaimTemplate" in _volume(worker, mount["name"])


def test_every_service_keeps_its_state_and_reads_its_files_where_the_settings_point() -> None:
    """Given the stockflow workloads, then STOCKFLOW_STATE_DIR is a mounted volume in each
    (a claim where the state must survive: the workers' and the connectors'), and every
    configuration file a setting names is a key of the ConfigMap mounted over its folder."""
    for workload in STOCKFLOW:
        env = _env(workload)
        state = _mount_for(workload, env["STOCKFLOW_STATE_DIR"])
        assert state is not None, _name(workload)
        volume = _volume(workload, state["name"])
        if _name(workload) in ("stockflow-worker", "stockflow-connectors"):
            assert "volumeClaimTemplate" in volume or "persistentVolumeClaim" in volume
        if "persistentVolumeClaim" in volume:
            claims = {_name(d) for d in DOCS if d["kind"] == "PersistentVolumeClaim"}
            assert volume["persistentVolumeClaim"]["claimName"] in claims, _name(workload)
        for variable in ("STOCKFLOW_CONFIG", CONFIG_ENV):
            if variable not in env:
                continue
            path = env[variable]
            mount = _mount_for(workload, path)
            assert mount is not None, (_name(workload), variable)
            config_map = _volume(workload, mount["name"])["configMap"]["name"]
            key = path.removeprefix(mount["mountPath"].rstrip("/") + "/")
            assert key in GENERATED[config_map], (_name(workload), variable, key)
    assert CONFIG_ENV in _env(_workload("stockflow-connectors"))


def test_the_shipped_configuration_files_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the ledger and connectors files the ConfigMap carries, and the secrets the
    kustomization tells the operator to create, when loaded, then both validate, and every
    secret the connectors file reads is one the connectors' Secret provides."""
    files = GENERATED["stockflow-files"]
    assert load_config(files["channels.yaml"]).channels
    raw = yaml.safe_load(files["connectors.yaml"].read_text())
    wanted = set(re.findall(r"env:([A-Z0-9_]+)", files["connectors.yaml"].read_text()))
    documented = set(
        re.findall(r"--from-literal=([A-Z0-9_]+)=", (DEPLOY / "kustomization.yaml").read_text())
    )
    assert wanted and wanted <= documented
    for name in wanted:
        monkeypatch.setenv(name, "x")
    assert {c.name for c in parse_connectors_config(raw).channels} == {"shopify", "woocommerce"}
    connectors = _container(_workload("stockflow-connectors"))
    assert any("secretRef" in s for s in connectors["envFrom"])


def test_prometheus_scrapes_every_stockflow_pod_and_nothing_else() -> None:
    """Given the scrape configuration, when its keep rules are applied to each pod template's
    labels and port names, then the worker, sink and connectors pods are each kept once with
    their own job, Prometheus' own pod is not, and its Deployment reads the file from the
    ConfigMap it is generated into."""
    scrape = yaml.safe_load(GENERATED["stockflow-prometheus"]["prometheus.yml"].read_text())
    (job,) = scrape["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"

    def kept(workload: dict[str, Any]) -> list[str]:
        labels = _pod(workload)["metadata"]["labels"]
        jobs = []
        for port in _container(workload).get("ports", []):
            meta = {"__meta_kubernetes_pod_container_port_name": port["name"]}
            for key, value in labels.items():
                clean = re.sub(r"[^a-zA-Z0-9_]", "_", key)
                meta[f"__meta_kubernetes_pod_label_{clean}"] = value
            target = dict(meta)
            for rule in job["relabel_configs"]:
                value = ";".join(target.get(s, "") for s in rule["source_labels"])
                match = re.fullmatch(rule.get("regex", "(.*)"), value)
                if rule.get("action", "replace") == "keep":
                    if match is None:
                        break
                elif match is not None:
                    replacement = rule.get("replacement", "$1")
                    target[rule["target_label"]] = re.sub(
                        r"\$(\d+)", lambda m, g=match: g.group(int(m.group(1))), replacement
                    )
            else:
                jobs.append(target["job"])
        return jobs

    assert {_name(w): kept(w) for w in WORKLOADS} == {
        "stockflow-worker": ["stockflow-worker"],
        "stockflow-sink": ["stockflow-sink"],
        "stockflow-connectors": ["stockflow-connectors"],
        "stockflow-prometheus": [],
    }
    prometheus = _workload("stockflow-prometheus")
    config_arg = next(a for a in _container(prometheus)["args"] if a.startswith("--config.file="))
    config_path = config_arg.split("=", 1)[1]
    mount = _mount_for(prometheus, config_path)
    assert mount is not None
    assert _volume(prometheus, mount["name"])["configMap"]["name"] == "stockflow-prometheus"
    assert os.path.basename(config_path) in GENERATED["stockflow-prometheus"]


def test_compose_services_listen_beyond_loopback_and_workers_advertise_their_address() -> None:
    """Given compose.yaml, then the worker, the sink and the connectors bind every interface
    of their container (Prometheus and the other workers reach them), and the worker
    replicas, sharing one environment, advertise a URL made of each one's own address."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    env = {n: s.get("environment", {}) for n, s in compose["services"].items()}
    assert env["worker"]["STOCKFLOW_WORKER_WEB_BIND"] == "0.0.0.0"
    assert env["sink"]["STOCKFLOW_SINK_METRICS_BIND"] == "0.0.0.0"
    assert env["connectors"]["STOCKFLOW_CONNECTORS_BIND"] == "0.0.0.0"
    assert env["worker"]["STOCKFLOW_WORKER_URL"] == "http://{ip}:{port}"
    assert env["connectors"][CONFIG_ENV] == "/etc/stockflow/connectors.yaml"
    assert any(
        v.startswith("./connectors.yaml:/etc/stockflow/connectors.yaml")
        for v in compose["services"]["connectors"]["volumes"]
    )


def _created_secrets() -> dict[str, set[str]]:
    """Secret name -> keys, of the Secrets the kustomization makes or tells the operator to
    make (`kubectl create secret generic NAME --from-file=KEY=...` in its header)."""
    secrets: dict[str, set[str]] = {
        _name(d): set(d.get("data", {})) | set(d.get("stringData", {}))
        for d in DOCS
        if d["kind"] == "Secret"
    }
    for gen in KUSTOMIZATION.get("secretGenerator", []):
        secrets[gen["name"]] = {f.split("=", 1)[0] for f in gen.get("files", [])}
    header = " ".join(
        line.lstrip("# ").rstrip("\\ ")
        for line in (DEPLOY / "kustomization.yaml").read_text().splitlines()
        if line.startswith("#")
    )
    for name, options in re.findall(
        r"kubectl create secret generic ([\w.-]+)((?: --[^ ]+)+)", header
    ):
        keys = set(re.findall(r"--from-(?:file|literal)=([\w.-]+)=", options))
        secrets.setdefault(name, set()).update(keys)
    return secrets


def test_prometheus_reads_its_token_from_a_secret_mounted_where_the_config_points() -> None:
    """Given the scrape configuration and Prometheus' Deployment, then the scrape job sends
    a bearer token from a credentials_file, that file is a key of a Secret volume mounted at
    its folder, and the Secret is one the kustomization makes or its header tells the
    operator to create, with that key."""
    scrape = yaml.safe_load(GENERATED["stockflow-prometheus"]["prometheus.yml"].read_text())
    (job,) = scrape["scrape_configs"]
    assert job["authorization"].get("type", "Bearer") == "Bearer"
    token_path = job["authorization"]["credentials_file"]
    prometheus = _workload("stockflow-prometheus")
    mount = _mount_for(prometheus, token_path)
    assert mount is not None, f"nothing mounted at {token_path}"
    secret = _volume(prometheus, mount["name"]).get("secret")
    assert secret is not None, f"{token_path} is not in a Secret volume"
    key = token_path[len(mount["mountPath"]) :].strip("/")
    if mount.get("subPath"):
        key = mount["subPath"]
    items = {i["path"]: i["key"] for i in secret.get("items", [])}
    key = items.get(key, key) if items else key
    created = _created_secrets()
    assert secret["secretName"] in created, f"{secret['secretName']} is neither made nor documented"
    assert key in created[secret["secretName"]], (key, created[secret["secretName"]])
    assert not secret.get("optional", False)
    # the config folder and the token folder do not nest (a mount point inside a ConfigMap's
    # read-only volume cannot be created)
    paths = [m["mountPath"].rstrip("/") + "/" for m in _container(prometheus)["volumeMounts"]]
    assert not [(a, b) for a in paths for b in paths if a != b and b.startswith(a)]


def test_compose_prometheus_token_is_an_operator_file_mounted_where_the_config_points() -> None:
    """Given compose.yaml and the Prometheus configuration it mounts, then every
    credentials_file is a bind mount of the prometheus service whose source the operator
    creates (in a folder git ignores, not a file of the repository), and the worker and
    connectors jobs send it."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in scrape["scrape_configs"]}
    assert "credentials_file" in jobs["stockflow-worker"]["authorization"]
    assert "credentials_file" in jobs["stockflow-connectors"]["authorization"]
    binds = {}
    for volume in compose["services"]["prometheus"]["volumes"]:
        if isinstance(volume, dict):
            binds[volume["target"]] = (volume["type"], volume["source"])
        else:
            source, target = volume.split(":")[:2]
            binds[target] = ("bind", source)
    for job in jobs.values():
        if "authorization" not in job:
            continue
        kind, source = binds[job["authorization"]["credentials_file"]]
        assert kind == "bind"
        default = re.sub(r"^\$\{[A-Z0-9_]+:?-(.*)\}$", r"\1", source)
        assert not (DEPLOY / default).exists(), f"{default} is committed"
        ignored = (ROOT / ".gitignore").read_text().splitlines()
        folder = (DEPLOY / default).resolve().parent.relative_to(ROOT).as_posix() + "/"
        assert folder in ignored, f"{folder} is not in .gitignore"
