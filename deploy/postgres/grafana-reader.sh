#!/usr/bin/env bash
# Run once by the postgres image when it initialises an empty data directory (mounted into
# /docker-entrypoint-initdb.d by docker-compose.yml): a login that can read the ledger and change
# nothing, for Grafana's PostgreSQL datasource. The tables do not exist yet (`orfeas migrate`
# creates them later, as POSTGRES_USER), so SELECT is granted through default privileges.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set reader="${GRAFANA_READER_USER:-grafana_reader}" \
  --set password="${GRAFANA_READER_PASSWORD:?GRAFANA_READER_PASSWORD is not set}" \
  --set owner="$POSTGRES_USER" --set db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"reader" LOGIN PASSWORD :'password';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
-- Dashboards must not hold the ledger's locks or run for minutes.
ALTER ROLE :"reader" SET statement_timeout = '30s';
GRANT CONNECT ON DATABASE :"db" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
