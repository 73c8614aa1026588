#!/usr/bin/env bash
# Start the local stand-ins for the compose services when they are not running:
# PostgreSQL 15 (Iceberg catalog, analytics) and MariaDB (the MySQL-protocol stand-in for TiDB).
# The S3 stand-in (moto) is started per run by the test harness / run script on a free port.
set -euo pipefail
log() { printf '[services] %s\n' "$*"; }

wait_for() { # name, command
  for _ in $(seq 1 60); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$1 did not come up"; return 1
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  log "starting PostgreSQL"
  cluster=$(ls /etc/postgresql | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$cluster" main start
  wait_for PostgreSQL "pg_isready -h 127.0.0.1 -p 5432 -q"
fi
if ! mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
  log "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB "mariadb-admin -h 127.0.0.1 -uroot ping"
fi
log "PostgreSQL and MariaDB are up"
