#!/usr/bin/env bash
# Local dbt without Docker: its own virtualenv (.venv-dbt, the Dockerfile's dbt pins) and the manifest Cosmos renders
# the DAG from (include/dbt/target/manifest.json). Safe to run again: each step is skipped when already up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DBT_VENV=${DBT_VENV:-$ROOT/.venv-dbt}
PY=${PYTHON:-python3.11}
PROJECT=$ROOT/include/dbt
# dbt reads these; nothing here needs the network (the project has no packages, so no `dbt deps`).
export DBT_SEND_ANONYMOUS_USAGE_STATS=false DO_NOT_TRACK=1

log() { printf '[dbt-setup] %s\n' "$*"; }

# --- virtualenv ------------------------------------------------------------------------------
# The Dockerfile holds the pins, so the image and this venv cannot drift apart.
mapfile -t pins < <(grep -oE 'dbt-(core|postgres)==[0-9][0-9A-Za-z.]*' Dockerfile | sort -u)
if [ ${#pins[@]} -ne 2 ]; then
  log "expected pinned dbt-core and dbt-postgres in the Dockerfile, found: ${pins[*]:-none}" >&2
  exit 1
fi
stamp="$DBT_VENV/.pins"
if [ ! -x "$DBT_VENV/bin/dbt" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  log "installing ${pins[*]} into $DBT_VENV"
  [ -x "$DBT_VENV/bin/python" ] || "$PY" -m venv "$DBT_VENV"
  "$DBT_VENV/bin/pip" install -q --upgrade pip
  "$DBT_VENV/bin/pip" install -q "${pins[@]}"
  echo "${pins[*]}" >"$stamp"
fi

# --- manifest --------------------------------------------------------------------------------
# Re-parse only when the project's sources or the dbt pins changed since the last parse.
manifest=$PROJECT/target/manifest.json
parse_stamp=$PROJECT/target/.parsed.sha256
want=$(
  {
    echo "${pins[*]}"
    find "$PROJECT" \( -path "$PROJECT/target" -o -path "$PROJECT/logs" \) -prune -o -type f -print0 \
      | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)
if [ ! -s "$manifest" ] || [ "$(cat "$parse_stamp" 2>/dev/null)" != "$want" ]; then
  log "parsing the dbt project into $manifest"
  "$DBT_VENV/bin/dbt" parse --quiet --project-dir "$PROJECT" --profiles-dir "$PROJECT/profiles" \
    --target-path "$PROJECT/target" --log-path "$PROJECT/logs"
  echo "$want" >"$parse_stamp"
fi
log "ready: $DBT_VENV/bin/dbt, $manifest"
