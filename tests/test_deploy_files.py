"""``deploy/``: the files agree with the worker they run (their validators run in ``deploy/check``).

The Dockerfile's ``HEALTHCHECK`` one-liner is run against a real ``HealthServer``: healthy, hung,
and with Redis down (still healthy: liveness). The worker's command lines (the Dockerfile's
``ENTRYPOINT``, the systemd unit's ``ExecStart``) parse with the worker's own options, on the
port the probes and the Service use, and the stop budgets agree."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from workers.app import add_arguments
from workers.health import HealthServer, HealthState

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PORT = 9108


def text(name: str) -> str:
    return (DEPLOY / name).read_text(encoding="utf-8")


def stage(name: str) -> str:
    """The instructions of the Dockerfile's stage ``name``."""
    stages = re.split(r"^FROM ", text("Dockerfile"), flags=re.MULTILINE)
    (found,) = [s for s in stages if re.match(rf"\S+ AS {name}\b", s)]
    return found


def exec_form(instruction: str, body: str) -> list[str]:
    """The JSON array of ``instruction`` (its last occurrence, continuation lines joined)."""
    joined = body.replace("\\\n", " ")
    (*_, last) = re.findall(rf"^{instruction} .*$", joined, flags=re.MULTILINE)
    array = json.loads(last[last.index("[") :])
    assert isinstance(array, list)
    return [str(a) for a in array]


def worker_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture
def probed() -> Iterator[tuple[HealthState, int]]:
    clock = [0.0]
    state = HealthState(clock=lambda: clock[0], max_silence=30.0)
    state.started = True
    server = HealthServer(state, CollectorRegistry(), "127.0.0.1", 0).start()
    yield state, server.port
    server.close()


def healthcheck(port: int) -> int:
    """Run the worker stage's HEALTHCHECK command, aimed at ``port``."""
    assert re.search(r"^\s+CMD \[", stage("worker"), flags=re.MULTILINE), "exec form"
    command = exec_form("HEALTHCHECK", stage("worker"))
    assert command[:2] == ["python", "-c"], "a stdlib one-liner on the image's own Python"
    code = command[-1].replace(f":{PORT}/", f":{port}/")
    assert code != command[-1], "it names the worker's metrics port"
    assert "/healthz" in code, "liveness, not readiness"
    return subprocess.run([sys.executable, "-c", code], check=False).returncode


def test_the_healthcheck_passes_on_a_healthy_worker(probed: tuple[HealthState, int]) -> None:
    _, port = probed
    assert healthcheck(port) == 0


def test_the_healthcheck_passes_while_redis_is_down(probed: tuple[HealthState, int]) -> None:
    state, port = probed
    state.failed("consume", "ConnectionError", redis_down=True)
    state.clock = lambda: 100.0
    state.last_beat = 100.0
    assert not state.ready
    assert healthcheck(port) == 0


def test_the_healthcheck_fails_on_a_hung_worker(probed: tuple[HealthState, int]) -> None:
    state, port = probed
    state.clock = lambda: 100.0  # the loop has not turned for 100 s
    assert healthcheck(port) == 1


def test_the_entrypoint_is_the_worker_in_exec_form() -> None:
    entry = exec_form("ENTRYPOINT", stage("worker"))
    assert entry[:3] == ["python", "-m", "workers"]
    args = worker_args(entry[3:])
    assert (args.metrics_host, args.metrics_port) == ("0.0.0.0", PORT)


def test_the_image_runs_as_a_non_root_user_and_holds_no_secret() -> None:
    dockerfile = text("Dockerfile")
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users and all(not u.startswith(("root", "0")) for u in users)
    for line in re.findall(r"^(?:ENV|ARG) .*$", dockerfile, flags=re.MULTILINE):
        assert not re.search(r"PASSWORD|JWKS|REDIS_URL|SECRET|KEY", line), line


def test_the_systemd_unit_runs_the_worker() -> None:
    unit = text("systemd/sessionsvc-worker.service")
    (exec_start,) = re.findall(r"^ExecStart=(.*)$", unit, flags=re.MULTILINE)
    argv = shlex.split(exec_start)
    assert argv[1:3] == ["-m", "workers"]
    assert worker_args(argv[3:]).metrics_port == PORT
    for setting in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes"):
        assert re.search(rf"^{setting}$", unit, flags=re.MULTILINE), setting


def seconds(pattern: str, name: str) -> int:
    (value,) = re.findall(pattern, text(name), flags=re.MULTILINE)
    return int(value)


def test_the_stop_budgets_agree() -> None:
    k8s = seconds(r"^\s+terminationGracePeriodSeconds: (\d+)$", "k8s/worker-deployment.yaml")
    systemd = seconds(r"^TimeoutStopSec=(\d+)$", "systemd/sessionsvc-worker.service")
    compose = re.search(r"target: worker.*?stop_grace_period: (\d+)s", text("compose.yaml"), re.S)
    assert compose is not None
    assert k8s == systemd == int(compose.group(1))
    pre_stop = re.search(
        r'preStop:.*?"/bin/sleep", "(\d+)"', text("k8s/worker-deployment.yaml"), re.S
    )
    assert pre_stop is not None and int(pre_stop.group(1)) < k8s / 4


def test_the_probes_are_the_workers() -> None:
    deployment = re.sub(r"\s*#.*", "", text("k8s/worker-deployment.yaml"))  # (comments out)
    probes = dict(re.findall(r"^\s+(\w+Probe):\s+httpGet:\s+path: (\S+)", deployment, re.M))
    assert probes == {
        "startupProbe": "/healthz",
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
    }
    assert re.search(rf"containerPort: {PORT}$", deployment, flags=re.MULTILINE)
    # the key ring from a Secret volume, as a file the worker re-reads: never a subPath mount
    assert re.search(r"secretName: sessionsvc-jwks", deployment)
    assert "subPath" not in deployment
    assert "value: /etc/sessionsvc/jwks/access.jwks.json" in deployment


def test_the_identity_providers_reach_the_receiver_only() -> None:
    deployment = re.sub(r"\s*#.*", "", text("k8s/worker-deployment.yaml"))
    assert '"--receiver-port", "8443"' in deployment
    ports = dict(re.findall(r"- name: (\w+)\s+containerPort: (\d+)", deployment))
    assert ports == {"metrics": str(PORT), "receiver": "8443"}  # two listeners
    service = re.sub(r"\s*#.*", "", text("k8s/worker-receiver-service.yaml"))
    assert re.findall(r"targetPort: (\S+)", service) == ["receiver"]
    # the bearer tokens come from a Secret file, not the ConfigMap
    assert "value: /etc/sessionsvc/idps/idps.json" in deployment
    assert "SESSIONSVC_IDPS" not in text("k8s/worker-config.yaml")
