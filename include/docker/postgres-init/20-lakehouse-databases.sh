#!/usr/bin/env bash
# Creates the lakehouse databases on lakehouse-postgres. The official entrypoint runs this only on the first
# start (empty data directory), after the PostGIS image's own 10_postgis.sh. Local development only.
#   iceberg_catalog  Iceberg JDBC catalog (Spark writes, PyIceberg reads)
#   analytics        PostgreSQL serving copy of the gold layer (schema set up by 30-analytics.sql)
#   metabase         Metabase's application database, owned by its own role
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v metabase_user="$METABASE_DB_USER" -v metabase_password="$METABASE_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'metabase_user', :'metabase_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'metabase_user')\gexec

SELECT 'CREATE DATABASE iceberg_catalog'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'iceberg_catalog')\gexec

SELECT 'CREATE DATABASE analytics'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'analytics')\gexec

SELECT format('CREATE DATABASE metabase OWNER %I', :'metabase_user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'metabase')\gexec
SQL
