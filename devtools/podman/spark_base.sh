#!/usr/bin/env bash
# The offline stand-in for the official Spark image: Debian bookworm made with debootstrap (no registry can be
# reached here, so nothing can be pulled), with Spark laid out under /opt/spark from the pyspark wheel in .venv
# (bin, sbin, jars, python) like the official image, a `spark` user (uid 185) and tini. Imported into podman with
# root as its user (unlike the official image), so that the API image can be built on it too; the Spark Dockerfile
# switches to `spark` itself.
#
# Cached by a key over everything that goes into it (this script, suite, mirror, packages, the pyspark and py4j
# files with their hashes from the wheels' RECORD): an image with that key is reused as is; else the rootfs
# tarball under .cache/ is re-imported; else it is built (about a minute). Prints the image reference on stdout;
# logs go to stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
CACHE=${LAKEHOUSE_CACHE_DIR:-$ROOT/.cache}/podman
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=openjdk-17-jre-headless,python3,python3-pip,tini,procps,ca-certificates
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/devtools/podman/containers.conf}

log() { printf '[spark-base] %s\n' "$*" >&2; }

site=$("$VENV/bin/python" -c 'import pyspark, os; print(os.path.dirname(os.path.dirname(pyspark.__file__)))')
key=$(
  {
    sha256sum "$0" | cut -d' ' -f1
    echo "$SUITE $MIRROR $PACKAGES"
    # Only the packages' own files: the RECORD lines of the venv's bin/ scripts change with the venv's path.
    grep -hE '^(pyspark|py4j)/' "$site"/pyspark-*.dist-info/RECORD "$site"/py4j-*.dist-info/RECORD
  } | sha256sum | cut -c1-16
)
image=localhost/lakehouse-spark-base:$key
tarball=$CACHE/spark-base-$key.tar

if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

mkdir -p "$CACHE"
if [ ! -s "$tarball" ]; then
  start=$(date +%s)
  rootfs=$CACHE/rootfs-$key
  rm -rf "$rootfs"
  log "debootstrap $SUITE ($PACKAGES) from $MIRROR"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }

  log "laying out Spark $("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)') under /opt/spark"
  spark=$rootfs/opt/spark
  mkdir -p "$spark/python/lib" "$spark/work-dir" "$spark/conf"
  cp -a "$site/pyspark/bin" "$site/pyspark/sbin" "$site/pyspark/jars" "$spark/"
  # The Python side without the jars and scripts copied above; py4j as the source zip the official image ships.
  tar -C "$site" --exclude='pyspark/jars' --exclude='pyspark/bin' --exclude='pyspark/sbin' \
    --exclude='__pycache__' -cf - pyspark | tar -C "$spark/python" -xf -
  py4j=$(basename "$site"/py4j-*.dist-info .dist-info)
  (cd "$site" && "$VENV/bin/python" -m zipfile -c "$spark/python/lib/${py4j}-src.zip" py4j)

  # The official image's user and layout; pip may install into the system Python (no EXTERNALLY-MANAGED).
  chroot "$rootfs" useradd --system --uid 185 --gid 0 --home-dir /opt/spark --no-create-home spark
  chown -R 185:0 "$spark/work-dir"
  rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

  tar -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
  log "rootfs built in $(($(date +%s) - start)) s"
fi

log "importing $tarball as $image"
podman import \
  --change 'ENV SPARK_HOME=/opt/spark' \
  --change 'ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64' \
  --change 'ENV PATH=/opt/spark/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'WORKDIR /opt/spark/work-dir' \
  --quiet "$tarball" "$image" >/dev/null
# Earlier keys' tarballs are dead weight once a new one exists.
find "$CACHE" -maxdepth 1 -name 'spark-base-*.tar' ! -name "$(basename "$tarball")" -delete
echo "$image"
