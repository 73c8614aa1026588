"""The container engine where Docker cannot run: podman's Docker API behind the filtered proxy, and the images.

Used by the tests and ``make images ENGINE=podman``. podman serves the Docker API on a socket in the project's work
dir (``.artifacts/podman/``), Debian's haproxy filters it with the compose proxy's rules, and the Spark image is
built from ``spark/Dockerfile`` on the offline base of ``devtools/podman/spark_base.sh`` with the local jars.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools.local_stack import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = ROOT / "devtools" / "podman" / "containers.conf"
PROXY_CONFIG = ROOT / "include" / "docker" / "docker-proxy" / "haproxy.cfg"
WORK = ROOT / ".artifacts" / "podman"
SPARK_CONTEXT = ROOT / "spark"
API_CONTEXT = ROOT / "include"
SPARK_REPO = "localhost/lakehouse-spark"
API_REPO = "localhost/lakehouse-api"


def podman_env() -> dict[str, str]:
    """The environment podman needs here: the project's containers.conf (runc, ulimits the machine grants)."""
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the podman CLI with the project's configuration; output captured as text."""
    return subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, check=check, timeout=timeout
    )


@contextmanager
def podman_service(log_path: Path | None = None) -> Iterator[Path]:
    """``podman system service`` on a socket of its own under ``.artifacts/podman/``; yield the socket path.

    One socket per process, so concurrent test sessions on the machine do not stop each other's engine.
    """
    if shutil.which("podman") is None:
        raise RuntimeError("podman is not installed: run devtools/setup.sh (it installs podman, runc and haproxy)")
    WORK.mkdir(parents=True, exist_ok=True)
    sock = WORK / f"podman-{os.getpid()}.sock"
    sock.unlink(missing_ok=True)
    log = open(log_path or os.devnull, "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"], env=podman_env(), stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while not _pings(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not come up on {sock} (see {log_path})")
            time.sleep(0.2)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        sock.unlink(missing_ok=True)


def _pings(sock: Path) -> bool:
    import socket

    if not sock.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.")
        except OSError:
            return False


@contextmanager
def docker_proxy(sock: Path, log_path: Path | None = None) -> Iterator[str]:
    """The compose proxy's filter (include/docker/docker-proxy/haproxy.cfg) run by Debian's haproxy on ``sock``.

    Yields its ``tcp://127.0.0.1:<port>`` URL, the ``docker_url`` DockerOperator uses.
    """
    if shutil.which("haproxy") is None:
        raise RuntimeError("haproxy is not installed: run devtools/setup.sh")
    port = free_port()
    env = {**os.environ, "SOCKET_PATH": str(sock), "BIND_CONFIG": f"127.0.0.1:{port}"}
    log = open(log_path or os.devnull, "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(PROXY_CONFIG)], env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, timeout=15)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def spark_base_image() -> str:
    """The offline Spark base image (built or re-imported by devtools/podman/spark_base.sh when its key changed)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "devtools" / "podman" / "spark_base.sh")],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building the Spark base image failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


def _tree_digest(digest, root: Path, paths: list[Path]) -> None:
    """Feed every file under ``paths`` (relative name and bytes) into ``digest``, in a stable order."""
    files = sorted(
        f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file() and "__pycache__" not in f.parts
    )
    for f in files:
        digest.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")


def local_jars(jars_dir: Path | None = None) -> Path:
    """The local runner's jars copied as plain files (``.jars/`` holds symlinks), the ``local-jars`` build context."""
    source = Path(jars_dir or os.environ.get("LAKEHOUSE_JARS_DIR", ROOT / ".jars"))
    target = WORK / "local-jars"
    target.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in source.glob("*.jar")}
    if not wanted:
        raise FileNotFoundError(f"no jars in {source}: run devtools/setup.sh first")
    for stale in set(p.name for p in target.glob("*.jar")) - set(wanted):
        (target / stale).unlink()
    for name, path in wanted.items():
        dest = target / name
        if not dest.exists() or dest.stat().st_size != path.resolve().stat().st_size:
            shutil.copyfile(path.resolve(), dest)
    return target


def build_spark_image(base: str | None = None) -> tuple[str, float]:
    """Build ``spark/Dockerfile`` on the offline base with the local jars; reuse the image when nothing changed.

    The tag is a key over the build context, the base image's id and the jars, so an unchanged tree costs no build.
    Callers that need it at once (the two test workers) take turns on a lock file: the second waits for the first's
    build and then reuses its image instead of building the same one beside it.

    Returns:
        The image reference and the seconds the build took (0 when the cached image was reused).
    """
    base = base or spark_base_image()
    jars = local_jars()
    digest = hashlib.sha256(podman("image", "inspect", "--format", "{{.Id}}", base).stdout.encode())
    _tree_digest(digest, SPARK_CONTEXT, [SPARK_CONTEXT / n for n in ("Dockerfile", "jars.sha256", "requirements.txt")])
    _tree_digest(digest, SPARK_CONTEXT, [SPARK_CONTEXT / "conf", SPARK_CONTEXT / "lakehouse_jobs"])
    _tree_digest(digest, jars, [jars])
    image = f"{SPARK_REPO}:{digest.hexdigest()[:16]}"
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "spark-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or when a killed holder's process ends
        if podman("image", "exists", image, check=False).returncode == 0:
            return image, 0.0
        args = ["--build-arg", f"SPARK_BASE={base}", "--build-arg", "JARS_SOURCE=local"]
        args += ["--build-context", f"local-jars={jars}"]
        seconds = _build(image, SPARK_CONTEXT, SPARK_CONTEXT / "Dockerfile", *args)
        _drop_older_tags(image)
    return image, seconds


def _drop_older_tags(keep: str) -> None:
    """Untag the Spark images of earlier keys (``latest`` stays), so that every edit does not keep 1.5 GB more."""
    tags = podman("images", "--format", "{{.Repository}}:{{.Tag}}", SPARK_REPO).stdout.split()
    for tag in tags:
        if tag != keep and not tag.endswith(":latest"):
            podman("rmi", tag, check=False)


def build_api_image(base: str | None = None) -> tuple[str, float]:
    """Build include/api/Dockerfile on the offline base (its Python 3.11); pip reaches the index with the host's CAs.

    Returns:
        The image reference and the seconds the build took.
    """
    base = base or spark_base_image()
    image = f"{API_REPO}:latest"
    ca = "/etc/ssl/certs/ca-certificates.crt"
    # The table declarations (include/tables.py reads spark/lakehouse_jobs/tables.toml) come from the Spark context.
    args = ["--build-arg", f"PYTHON_BASE={base}", "--volume", f"{ca}:{ca}:ro"]
    args += ["--build-context", f"spark={SPARK_CONTEXT}"]
    return image, _build(image, API_CONTEXT, API_CONTEXT / "api" / "Dockerfile", *args)


def _build(image: str, context: Path, dockerfile: Path, *args: str) -> float:
    start = time.monotonic()
    proc = podman("build", "--quiet", "--file", str(dockerfile), *args, "--tag", image, str(context), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"podman build of {image} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.monotonic() - start


def main(argv: list[str]) -> int:
    """``python -m devtools.podman_stack images``: build the Spark and API images with podman, tagged ``latest``."""
    if argv != ["images"]:
        print("usage: python -m devtools.podman_stack images", file=sys.stderr)
        return 2
    base = spark_base_image()
    spark, seconds = build_spark_image(base)
    podman("tag", spark, f"{SPARK_REPO}:latest")
    print(f"{SPARK_REPO}:latest = {spark} (built in {seconds:.0f} s)" if seconds else f"{SPARK_REPO}:latest = {spark}")
    api, seconds = build_api_image(base)
    print(f"{api} (built in {seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
