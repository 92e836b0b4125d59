"""The deployment files agree with the code: compose, Kubernetes manifests, Dockerfile and Kafka topics.

Fast and offline: no Docker, no cluster, no network. The project environment has no YAML library, so
YAML is read by a Python that has one: this one if it can, else the deploy-tools venv that
deploy/checks/check_deploy.sh installs under var/, else Debian's python3 with python3-yaml (a dependency
of Debian's docker-compose). The schema-level checks (docker-compose config, hadolint, kubernetes-validate,
yamllint) live in check_deploy.sh; these tests check what no schema knows.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from komponent_contracts.topics import ALL_TOPICS
from komponent_runtime.settings import DatabaseSettings, HttpSettings, KafkaSettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("catalogue", "registration", "billing", "notifications")
ONE_SHOTS = ("init", "seed")
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000

# Variables every service container must get explicitly: the runtime's defaults point at the local
# stack on 127.0.0.1, which inside a container or pod is the wrong place.
REQUIRED_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "HTTP_HOST",
    "HTTP_PORT",
    "SMTP_HOST",
    "SMTP_PORT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "API_KEYS",
}
REQUIRED_ENV_PER_SERVICE = {"notifications": {"BILLING_URL"}}
# A default that only makes sense on a developer's machine: the local stack's addresses and ports, or a
# path relative to the repository (inside the image the working directory is read-only).
LOCAL_DEFAULT = re.compile(r"127\.0\.0\.1|localhost|\bvar/|\b(2525|55432|19092|8001)\b")
# Read without a default, but never from the environment in a deployment.
NOT_FROM_ENV = {"SERVICE_NAME"}  # main("<name>", ...) passes it in code
# Entry points that run as their own compose job rather than inside the service.
JOBS = {"services/catalogue/src/komponent_catalogue/load_seed.py": "seed"}
RUNTIME_SETTINGS = (KafkaSettings, DatabaseSettings, HttpSettings, ServiceSettings)


# --- reading YAML ------------------------------------------------------------------------------------


@cache
def _yaml_python() -> str:
    candidates = [sys.executable, str(ROOT / "var/deploy-tools/venv/bin/python"), "/usr/bin/python3"]
    for python in candidates:
        if (
            Path(python).exists()
            and subprocess.run([python, "-c", "import yaml"], capture_output=True).returncode == 0
        ):
            return python
    pytest.fail(
        "no Python with PyYAML found: run `bash deploy/checks/check_deploy.sh` once (it installs the "
        f"deploy tools into var/deploy-tools), tried {candidates}"
    )


@cache
def load_yaml(path: Path) -> list[Any]:
    code = "import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None], sys.stdout)"
    out = subprocess.run([_yaml_python(), "-c", code, str(path)], capture_output=True, text=True, check=True)
    docs: list[Any] = json.loads(out.stdout)
    return docs


@cache
def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [
            _yaml_python(),
            str(ROOT / "deploy/checks/render_kustomize.py"),
            str(ROOT / "deploy/k8s" / overlay),
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    docs: list[dict[str, Any]] = json.loads(out.stdout)
    return docs


def compose() -> dict[str, Any]:
    spec: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")[0]
    return spec


# --- what the code reads -----------------------------------------------------------------------------


_ENV_LOOKUPS = {("os.environ", "get"), ("os", "getenv")}


@cache
def env_needing_a_value() -> dict[str, set[str]]:
    """Per process (runtime, each service, each job): variables read whose default is missing or local.

    Found in the source by AST, so a new setting anywhere fails these tests until deployment sets it
    (or it gets a default that is right everywhere): `os.environ.get/os.getenv("X", default)`,
    `os.environ["X"]`, and pydantic-settings classes (env_prefix + field, or Field(validation_alias=)).
    """
    found: dict[str, set[str]] = {"runtime": set(), "seed": set(), **{s: set() for s in SERVICES}}
    folders = [("runtime", ROOT / "runtime/src")] + [(s, ROOT / f"services/{s}/src") for s in SERVICES]
    for owner, folder in folders:
        for source in folder.rglob("*.py"):
            if source.name == "testing.py":  # pytest fixtures, never run in a deployment
                continue
            process = JOBS.get(str(source.relative_to(ROOT)), owner)
            for name, default in _env_reads(ast.parse(source.read_text(encoding="utf-8"))):
                if name not in NOT_FROM_ENV and (default is None or LOCAL_DEFAULT.search(default)):
                    found[process].add(name)
    return found


def _env_reads(tree: ast.Module) -> list[tuple[str, str | None]]:
    reads: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if (
                (owner, node.func.attr) in _ENV_LOOKUPS
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                # .get("X") without a default is optional: None is its default.
                default = ast.unparse(node.args[1]) if len(node.args) > 1 else "None"
                reads.append((str(node.args[0].value), default))
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant) and isinstance(node.ctx, ast.Load):
                reads.append((str(node.slice.value), None))
        elif isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "BaseSettings" for b in node.bases):
            reads += _settings_fields(node)
    return reads


def _settings_fields(cls: ast.ClassDef) -> list[tuple[str, str | None]]:
    prefix, fields = "", []
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and any(ast.unparse(t) == "model_config" for t in stmt.targets):
            for kw in getattr(stmt.value, "keywords", []):
                if kw.arg == "env_prefix" and isinstance(kw.value, ast.Constant):
                    prefix = str(kw.value.value)
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            fields.append((stmt.target.id, stmt.value))
    reads: list[tuple[str, str | None]] = []
    for name, value in fields:
        env, default = None, None if value is None else ast.unparse(value)
        if isinstance(value, ast.Call) and ast.unparse(value.func) == "Field":
            keywords = {kw.arg: kw.value for kw in value.keywords}
            alias = keywords.get("validation_alias")
            env = str(alias.value) if isinstance(alias, ast.Constant) else None
            given = value.args[0] if value.args else keywords.get("default")
            default = None if given is None else ast.unparse(given)
        reads.append((env or f"{prefix}{name}".upper(), default))
    return reads


def runtime_env_names() -> set[str]:
    """Every variable the runtime's settings classes read (pydantic-settings: prefix + field, or alias)."""
    names = set()
    for cls in RUNTIME_SETTINGS:
        prefix = cls.model_config.get("env_prefix", "")
        for field_name, field in cls.model_fields.items():
            alias = field.validation_alias
            names.add(alias if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return names


def dockerfile_env() -> set[str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    final_stage = text.rsplit("\nFROM ", 1)[1]
    return {
        m
        for line in final_stage.splitlines()
        if line.startswith("ENV ")
        for m in re.findall(r"([A-Z_]+)=", line)
    }


def assert_env_complete(process: str, env: set[str], where: str) -> None:
    if process in SERVICES:
        missing = (REQUIRED_ENV | REQUIRED_ENV_PER_SERVICE.get(process, set())) - env
        assert not missing, f"{where}: {process} lacks {sorted(missing)}"
    needed = env_needing_a_value()
    unset = needed[process] | (needed["runtime"] if process in SERVICES else set())
    unset -= env | dockerfile_env()
    assert not unset, (
        f"{where}: {process} reads {sorted(unset)}, whose default only suits a developer's machine, "
        "but deployment does not set it: set it in docker-compose.yml and deploy/k8s"
    )
    stale = {v for v in env if v.startswith(("KAFKA_", "PG", "HTTP_", "SERVICE_"))} - runtime_env_names()
    assert not stale, (
        f"{where}: {process} sets {sorted(stale)}, which komponent_runtime.settings does not read"
    )


# --- Kafka topics ------------------------------------------------------------------------------------


def test_topics_yaml_is_generated_from_the_contract() -> None:
    spec = importlib.util.spec_from_file_location("generate_topics", ROOT / "deploy/kafka/generate_topics.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (ROOT / "deploy/kafka/topics.yaml").read_text(encoding="utf-8") == generator.render(), (
        "deploy/kafka/topics.yaml drifted from komponent_contracts.topics: run "
        ".venv/bin/python deploy/kafka/generate_topics.py"
    )


def test_topics_yaml_declares_every_contract_topic_for_production() -> None:
    topics = {d["spec"]["topicName"]: d for d in load_yaml(ROOT / "deploy/kafka/topics.yaml")}
    assert set(topics) == {t.name for t in ALL_TOPICS}
    for t in ALL_TOPICS:
        spec = topics[t.name]["spec"]
        assert spec["partitions"] == t.partitions, t.name
        assert spec["replicas"] == 3, t.name
        assert spec["config"]["min.insync.replicas"] == "2", t.name
        retention = int(spec["config"]["retention.ms"])
        assert retention == (DLQ_RETENTION_MS if t.name.endswith(".dlq") else -1), t.name


# --- docker-compose.yml ------------------------------------------------------------------------------


def test_compose_has_the_platform_and_the_one_shot_jobs() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "postgres", "mailpit", "jaeger", *ONE_SHOTS, *SERVICES}
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["postgres"]["image"] == "postgres:15"
    assert services["init"]["command"] == ["python", "-m", "komponent_runtime.topics"]
    assert services["init"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    seed = services["seed"]
    assert seed["command"][:3] == ["python", "-m", "komponent_catalogue.load_seed"]
    assert seed["environment"]["CATALOGUE_URL"] == "http://catalogue:8000"
    assert_env_complete("seed", set(seed["environment"]), "docker-compose.yml")
    assert all(v.endswith(":ro") for v in seed["volumes"])


def test_compose_every_long_running_service_has_a_health_check() -> None:
    for name, service in compose()["services"].items():
        check = service.get("healthcheck", {})
        if name in ONE_SHOTS:
            assert check.get("disable") is True, f"{name} runs no server: its image health check must be off"
        else:
            assert check.get("test"), f"{name} has no health check"
    for name in SERVICES:
        assert "/health/ready" in " ".join(compose()["services"][name]["healthcheck"]["test"]), name


def test_compose_dependencies_wait_for_health_or_completion() -> None:
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must give conditions"
        for dep, how in depends.items():
            expected = "service_completed_successfully" if dep in ONE_SHOTS else "service_healthy"
            if dep == "jaeger":  # tracing is best effort: spans are exported in the background
                expected = "service_started"
            assert how["condition"] == expected, f"{name} -> {dep}"
    for name in SERVICES:
        assert {"postgres", "kafka", "init"} <= set(services[name]["depends_on"]), name
    assert "mailpit" in services["notifications"]["depends_on"]


def test_compose_services_get_every_variable_the_code_reads() -> None:
    services = compose()["services"]
    for port, name in enumerate(SERVICES, start=8001):
        service = services[name]
        env = service["environment"]
        assert service["command"] == ["python", "-m", f"komponent_{name}"]
        assert service["ports"] == [f"{port}:8000"]
        assert env["OTEL_SERVICE_NAME"] == name
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert (env["PGHOST"], env["SMTP_HOST"]) == ("postgres", "mailpit")
        assert_env_complete(name, set(env), "docker-compose.yml")
    assert services["notifications"]["environment"]["BILLING_URL"] == "http://billing:8000"


def test_compose_api_keys_are_hashes() -> None:
    from komponent_runtime.auth import LOCAL_DEV_KEY, hash_key, parse_api_keys

    for name in SERVICES:
        callers = parse_api_keys(compose()["services"][name]["environment"]["API_KEYS"])
        assert hash_key(LOCAL_DEV_KEY) in callers, "compose documents the local development key"


# --- Kubernetes --------------------------------------------------------------------------------------


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_k8s_deployments_have_probes_resources_and_no_root(overlay: str) -> None:
    docs = render(overlay)
    deployments = _by_kind(docs, "Deployment")
    assert set(deployments) == set(SERVICES)
    config = _by_kind(docs, "ConfigMap")["komponent-config"]["data"]
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (container,) = pod["containers"]
        assert container["command"] == ["python", "-m", f"komponent_{name}"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{name} {bound}"
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        env = {e["name"] for e in container["env"]} | set(config)
        assert_env_complete(name, env, f"deploy/k8s/{overlay}")
        service = _by_kind(docs, "Service")[name]
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"], name


def test_k8s_base_creates_topics_and_production_uses_strimzi_and_sasl() -> None:
    base, production = render("base"), render("overlays/production")
    job = _by_kind(base, "Job")["kafka-topics"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "-m",
        "komponent_runtime.topics",
    ]
    assert not _by_kind(production, "Job"), "production topics are Strimzi KafkaTopics, not the Job"
    assert set(_by_kind(production, "KafkaTopic")) == {t.name for t in ALL_TOPICS}
    config = _by_kind(production, "ConfigMap")["komponent-config"]["data"]
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert config["KAFKA_SSL_CAFILE"].startswith("/etc/kafka-ca/")
    KafkaSettings.model_validate(
        {k.removeprefix("KAFKA_").lower(): v for k, v in config.items() if k.startswith("KAFKA_")}
    )
    assert all(d["spec"]["replicas"] >= 2 for d in _by_kind(production, "Deployment").values())
    assert set(_by_kind(production, "PodDisruptionBudget")) == set(SERVICES)


def test_k8s_secret_example_holds_only_placeholders() -> None:
    (secret,) = load_yaml(ROOT / "deploy/k8s/base/secret.example.yaml")
    assert all("REPLACE-ME" in value for value in secret["stringData"].values())
    names = {
        e["valueFrom"]["secretKeyRef"]["key"]
        for d in _by_kind(render("base"), "Deployment").values()
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert names <= set(secret["stringData"]), "every key the pods read is in the example"


# --- image -------------------------------------------------------------------------------------------


def test_dockerfile_builds_one_non_root_image_for_every_service() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "fetch_einvoice_rules.sh" in text and "EINVOICE_RULES_DIR=/opt/einvoice-rules" in text
    assert "uv sync --frozen --no-dev" in text
    assert "fonts-dejavu-core" in text
    assert re.search(r"^USER 10001", text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/health/live", text, re.M)
    assert "urllib" in text
    assert re.search(r'^CMD \["python", "-m", "komponent_', text, re.M)
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {"var/", ".venv/", ".git"} <= set(ignored)
