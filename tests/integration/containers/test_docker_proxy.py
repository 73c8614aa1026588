"""The filtered Docker API: what compose's docker-proxy allows, reproduced by haproxy in front of podman."""

from __future__ import annotations

import re

import pytest
import requests

from devtools import podman_stack

pytestmark = pytest.mark.integration

# The tecnativa/docker-socket-proxy v0.4.2 sections enabled in docker-compose.override.yml (CONTAINERS, IMAGES,
# PING, VERSION; POST=1 admits every method on them), and requests of the sections left off.
ALLOWED = [
    ("GET", "/_ping"),
    ("GET", "/v1.41/version"),
    ("GET", "/v1.41/containers/json"),
    ("GET", "/images/json"),
    ("DELETE", "/v1.41/containers/no-such-container"),
]
REFUSED = [
    ("GET", "/info"),
    ("GET", "/v1.41/networks"),
    ("POST", "/v1.41/networks/create"),
    ("GET", "/volumes"),
    ("POST", "/build"),
    ("POST", "/v1.41/exec/some-exec/start"),
    ("GET", "/events"),
    ("GET", "/v1.41/system/df"),
    ("GET", "/secrets"),
    ("POST", "/v1.41/swarm/init"),
    ("GET", "/v4.0.0/libpod/info"),
]


def status(url: str, method: str, path: str) -> int:
    return requests.request(method, url.replace("tcp://", "http://") + path, timeout=10).status_code


@pytest.mark.parametrize(("method", "path"), REFUSED)
def test_the_proxy_refuses_what_compose_left_off(docker_url, podman_socket, method, path):
    assert status(docker_url, method, path) == 403


@pytest.mark.parametrize(("method", "path"), ALLOWED)
def test_the_proxy_passes_what_dockeroperator_needs(docker_url, method, path):
    # 404 for the unknown container: the engine answered, the proxy let it through.
    assert status(docker_url, method, path) == (404 if method == "DELETE" else 200)


def test_the_engine_itself_would_answer_the_refused_requests(podman_socket, docker_client):
    # The refusals above are the proxy's: the same requests straight to podman succeed.
    assert docker_client.info()["Containers"] >= 0
    assert docker_client.networks.list()


def seconds(value: str) -> float:
    """An haproxy time (a number in milliseconds unless a unit follows) in seconds."""
    number, unit = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", value).groups()
    return int(number) * {"us": 1e-6, "ms": 1e-3, None: 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def test_the_proxy_outlasts_the_longest_spark_task():
    from include.spark_task import EXECUTION_TIMEOUT

    config = podman_stack.PROXY_CONFIG.read_text()
    timeouts = dict(re.findall(r"^\s*timeout (client|server|tunnel) (\S+)", config, re.M))
    assert set(timeouts) == {"client", "server", "tunnel"}
    for name, value in timeouts.items():
        assert seconds(value) > EXECUTION_TIMEOUT.total_seconds(), (name, value)
