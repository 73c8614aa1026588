#!/usr/bin/env bash
# The container engine for the tests where Docker cannot run (DESIGN.md, "Containers here"): podman with runc,
# debootstrap for the offline Spark base image, haproxy for the filtered Docker API. Called by devtools/setup.sh
# after the virtualenv exists (the base image takes Spark from its pyspark wheel). Safe to run again: each step
# checks first. The podman API service itself is started by the test harness (devtools/podman_stack.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/devtools/podman/containers.conf}

log() { printf '[setup] %s\n' "$*"; }

need=()
for tool in podman runc debootstrap haproxy; do
  command -v "$tool" >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Fails here, not in the middle of the tests, if the engine cannot run containers on this machine.
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}')
[ "$runtime" = runc ] || { log "podman uses $runtime, not runc: is CONTAINERS_CONF=$CONTAINERS_CONF read?"; exit 1; }

start=$(date +%s)
image=$(bash "$ROOT/devtools/podman/spark_base.sh")
log "Spark base image $image ($(($(date +%s) - start)) s)"
