#!/usr/bin/env bash
# One-shot set-up of a development/CI machine without Docker: system packages, local services,
# the virtualenv with pinned packages, and the jars Spark needs. Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
JARS=${LAKEHOUSE_JARS_DIR:-$ROOT/.jars}
PY=${PYTHON:-python3.11}

log() { printf '[setup] %s\n' "$*"; }

# --- system packages -------------------------------------------------------------------------
need=()
command -v aria2c >/dev/null || need+=(aria2)
[ -e /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
[ -e /usr/share/java/mariadb-java-client.jar ] || need+=(libmariadb-java)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v psql >/dev/null || need+=(postgresql-client)
# PostGIS for the trips domain's point columns in the analytics database (the compose image ships it).
[ -e /usr/share/postgresql/15/extension/postgis.control ] || need+=(postgresql-15-postgis-3)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- local services --------------------------------------------------------------------------
bash "$ROOT/devtools/services.sh"

# --- virtualenv ------------------------------------------------------------------------------
stamp="$VENV/.requirements.sha256"
want=$(cat requirements-dev.txt requirements.txt include/api/requirements.txt spark/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "creating virtualenv $VENV"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -qq -r requirements-dev.txt
  "$VENV/bin/pip" install -qq --no-deps -e spark/
  echo "$want" >"$stamp"
fi

# --- jars (see DESIGN.md: which jar comes from which package) -------------------------------
mkdir -p "$JARS"
dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
if [ ! -s "$JARS/iceberg-spark-runtime-3.5_2.12-1.9.2.jar" ]; then
  log "fetching the Iceberg runtime jar (PyPI snowpark-connect-deps-iceberg==1.0.1)"
  "$VENV/bin/pip" download -qq --no-deps -d "$dl" snowpark-connect-deps-iceberg==1.0.1
  unzip -q -j -o "$dl"/snowpark_connect_deps_iceberg-1.0.1-*.whl \
    'snowpark_connect_deps_iceberg/jars/iceberg-spark-runtime-3.5_2.12-1.9.2.jar' -d "$JARS"
fi
if [ ! -s "$JARS/hadoop-aws-3.3.1.jar" ] || [ ! -s "$JARS/aws-java-sdk-bundle-1.11.901.jar" ]; then
  log "fetching hadoop-aws and the AWS SDK bundle (PyPI sdist sagemaker-pyspark==1.4.5)"
  # An sdist: pip prepares its metadata (in an isolated build environment) before saving it.
  "$VENV/bin/pip" download -qq --no-deps --no-binary :all: -d "$dl" sagemaker-pyspark==1.4.5
  tar -xzf "$dl"/sagemaker_pyspark-1.4.5.tar.gz -C "$dl" --wildcards \
    '*/deps/jars/hadoop-aws-3.3.1.jar' '*/deps/jars/aws-java-sdk-bundle-1.11.901.jar'
  cp "$dl"/sagemaker_pyspark-1.4.5/deps/jars/*.jar "$JARS/"
fi
ln -sf /usr/share/java/postgresql.jar "$JARS/postgresql.jar"
ln -sf /usr/share/java/mariadb-java-client.jar "$JARS/mariadb-java-client.jar"
# The Spark image installs the same jars (spark/jars.sha256): the local runner must run the very same bytes. The
# JDBC drivers are Debian's here, so only the jars present under the image's names are compared.
grep -v '^#' spark/jars.sha256 | while read -r sum path; do
  [ ! -e "$JARS/${path##*/}" ] || echo "$sum  $JARS/${path##*/}" | sha256sum --check --quiet -
done

# --- the container engine for the tests: podman, haproxy and the offline Spark base image -------------------
bash "$ROOT/devtools/podman/setup.sh"

# --- dbt in its own virtualenv (as in the Astro image), and its manifest for Cosmos ----------------
bash "$ROOT/devtools/dbt_setup.sh"

# --- the class-data archive of the local Spark JVMs (devtools/spark_cds.py): remade when the JDK or a jar changes --
# About a minute when it is made; the tests and `make run` use it when it is current, and run without it otherwise.
if ! PYSPARK_PYTHON="$VENV/bin/python" SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/python" -m devtools.spark_cds build; then
  log "WARNING: the Spark class-data archive could not be made; local Spark jobs start without it (slower)"
fi

# --- environment file for the other scripts ---------------------------------------------------
jar_list=$(ls "$JARS"/*.jar | sort | paste -sd, -)
cat >"$ROOT/.env.local" <<ENV
export SPARK_EXTRA_JARS="$jar_list"
export PYSPARK_PYTHON="$VENV/bin/python"
export PYTHONPATH="$ROOT\${PYTHONPATH:+:\$PYTHONPATH}"
export DBT_EXECUTABLE="$ROOT/.venv-dbt/bin/dbt"
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
ENV
log "ready: venv $VENV, jars in $JARS"
