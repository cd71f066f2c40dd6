"""deploy/: the compose stack, the Kubernetes manifests, Grafana provisioning and the examples parse, point
at files that exist, and agree with each other and with the settings model on names, ports and addresses."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

from pipeline.config import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def _setting_env_names() -> set[str]:
    """Every FLEETWATCH_* variable the settings model reads."""
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"FLEETWATCH_{field.upper()}")
        annotation = info.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            names.update(f"FLEETWATCH_{field.upper()}__{sub.upper()}" for sub in annotation.model_fields)
    return names


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1].strip("/"))


def test_dockerfile_copies_what_exists() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies missing {src}"
    assert "FLEETWATCH_SQL_DIR=/app/sql" in text and "COPY sql ./sql" in text
    env = dict(re.findall(r"(FLEETWATCH_\w+)=(\S+)", text))
    assert set(env) <= _setting_env_names()
    exposed = {int(p) for p in re.search(r"^EXPOSE (.+)$", text, re.M).group(1).split()}
    assert {_port(env["FLEETWATCH_OTLP_GRPC"]), _port(env["FLEETWATCH_OTLP_HTTP"])} <= exposed


def test_compose_stack_is_consistent() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"clickhouse", "kafka", "fleetwatch", "fleetwatch-worker", "grafana"} <= set(services)
    known = _setting_env_names()
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose.get("volumes", {}), f"{name} uses undeclared volume {source}"
        env = service.get("environment", {})
        for key in env:
            if key.startswith("FLEETWATCH_") and name.startswith("fleetwatch"):
                assert key in known, f"{name}: {key} is not a Fleetwatch setting"
        for dependency in service.get("depends_on", {}):
            assert dependency in services
    # KRaft: the broker is its own controller, no ZooKeeper
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"] and "zookeeper" not in str(services).lower()
    front = services["fleetwatch"]
    env = front["environment"]
    host, port = env["FLEETWATCH_KAFKA_BOOTSTRAP"].split(":")
    assert host == "kafka" and f"PLAINTEXT://:{port}" in kafka_env["KAFKA_LISTENERS"]
    dsn = env["FLEETWATCH_CLICKHOUSE_DSN"]
    assert dsn.startswith("http://") and "@clickhouse:8123/" in dsn, "workers run in server mode"
    published = {p.split(":")[1] for p in front["ports"]}
    assert {str(_port(env["FLEETWATCH_OTLP_GRPC"])), str(_port(env["FLEETWATCH_OTLP_HTTP"]))} == published
    worker_cmd = services["fleetwatch-worker"]["command"]
    assert worker_cmd[worker_cmd.index("--otlp-grpc") + 1] == "" and "ports" not in services["fleetwatch-worker"]
    grafana_env = services["grafana"]["environment"]
    assert grafana_env["FLEETWATCH_CH_HOST"] == "clickhouse"
    assert grafana_env["FLEETWATCH_CH_PORT"] == "8123", "ClickHouse's HTTP port inside the compose network"


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/clickhouse.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource" and source["jsonData"]["protocol"] == "http"
    datasource_text = (DEPLOY / "grafana/provisioning/datasources/clickhouse.yaml").read_text()
    env_refs = set(re.findall(r"\$\{(\w+)\}", datasource_text))
    assert env_refs <= set(compose["services"]["grafana"]["environment"])
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/fleetwatch.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    host_dir = next(host for host, container in mounts.items() if container == path)
    dashboards = sorted((DEPLOY / host_dir).glob("*.json"))
    assert [d.stem for d in dashboards] == ["cancel", "fleet", "gc", "leaks"]
    for dashboard in dashboards:
        text = dashboard.read_text()
        assert "grafana-clickhouse-datasource" in text and "$__timeFilter" in text


def test_kubernetes_manifests_are_consistent() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        path = DEPLOY / "k8s" / resource
        assert path.is_file(), resource
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    secrets = [d for d in yaml.safe_load_all((DEPLOY / "k8s/secret.example.yaml").read_text()) if d]
    by_kind: dict[str, list[dict]] = {}
    for doc in docs + secrets:
        by_kind.setdefault(doc["kind"], []).append(doc)
    (deployment,) = by_kind["Deployment"]
    (service,) = by_kind["Service"]
    (config,) = by_kind["ConfigMap"]
    (secret,) = by_kind["Secret"]
    known = _setting_env_names()
    assert set(config["data"]) <= known and set(secret["stringData"]) <= known
    assert "FLEETWATCH_CLICKHOUSE_DSN" in secret["stringData"], "credentials live in the Secret"
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    refs = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {"configMapRef": config["metadata"]["name"], "secretRef": secret["metadata"]["name"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports and ports[port["targetPort"]] == port["port"]
    assert ports["otlp-grpc"] == _port(config["data"]["FLEETWATCH_OTLP_GRPC"])
    assert ports["otlp-http"] == _port(config["data"]["FLEETWATCH_OTLP_HTTP"])
    assert config["data"]["FLEETWATCH_QUERY_HTTP"] == ""
    assert container["image"] in {i["name"] for i in kustomization["images"]}


def test_node_logs_daemonset_tails_var_log_with_node_checkpoints() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    assert "node-logs.yaml" in kustomization["resources"]
    (daemonset,) = [d for d in yaml.safe_load_all((DEPLOY / "k8s/node-logs.yaml").read_text()) if d]
    assert daemonset["kind"] == "DaemonSet"
    pod = daemonset["spec"]["template"]
    assert daemonset["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["image"] in {i["name"] for i in kustomization["images"]}
    known = _setting_env_names()
    env = {e["name"]: e for e in container["env"]}
    assert set(env) <= known
    globs = json.loads(env["FLEETWATCH_FILES__PATHS"]["value"])
    assert globs and all(g.startswith("/var/log/") for g in globs)
    assert env["FLEETWATCH_FILES__NODE"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["FLEETWATCH_KAFKA_BOOTSTRAP"]["value"] == "" and env["FLEETWATCH_OTLP_HTTP"]["value"] == ""
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/var/log" and mount["readOnly"] is True
    assert volumes[mount["name"]]["hostPath"]["path"] == "/var/log"


def test_examples_parse_and_target_fleetwatch() -> None:
    otelcol = yaml.safe_load((DEPLOY / "examples/otelcol.yaml").read_text())
    pipeline = otelcol["service"]["pipelines"]["logs"]
    assert all(r in otelcol["receivers"] for r in pipeline["receivers"])
    assert all(e in otelcol["exporters"] for e in pipeline["exporters"])
    assert any(r.startswith("filelog") for r in pipeline["receivers"])
    assert _port(otelcol["exporters"]["otlp/fleetwatch"]["endpoint"]) == _port(Settings().otlp.grpc)
    vector = tomllib.loads((DEPLOY / "examples/vector.toml").read_text())
    sink = vector["sinks"]["fleetwatch_kafka"]
    assert sink["type"] == "kafka" and sink["topic"] == Settings().kafka.topic_gctrace
    assert sink["inputs"] == ["envelope"] and "envelope" in vector["transforms"]
