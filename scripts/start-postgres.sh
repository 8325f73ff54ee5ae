#!/usr/bin/env bash
# Starts a local PostgreSQL for the tests (installing it from apt if it is
# missing) with a role `outpost` (password `outpost`, allowed to create
# databases), and prints the URL the tests read from
# OUTPOST_TEST_DATABASE_URL. Safe to run again.
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "installing PostgreSQL from apt..." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
  pg_createcluster "$version" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
as_postgres() { (cd / && su postgres -c "$1"); }
for _ in $(seq 1 50); do
  as_postgres "psql -p $port -tAc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
if [ "$(as_postgres "psql -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'outpost'\"")" != "1" ]; then
  as_postgres "psql -p $port -c \"CREATE ROLE outpost LOGIN CREATEDB PASSWORD 'outpost'\"" >&2
fi
echo "postgres://outpost:outpost@127.0.0.1:$port/postgres"
