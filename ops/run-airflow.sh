#!/usr/bin/env bash
# Start a local Airflow for chanwatch: API server, scheduler and DAG processor, on SQLite, loopback only.
# The Makefile (`make airflow`) sets AIRFLOW_HOME and the rest; the tests start it the same way.
# The scheduler's log server would bind every interface, so it is skipped: the API server reads the
# task logs from the local log folder. Ctrl-C stops all three.
set -euo pipefail
PORT="${CHANWATCH_AIRFLOW_PORT:-8080}"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:${PORT}/execution/"
# Local, loopback-only use: every visitor is an admin, no password to look up.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS:-True}"
# One signing key for all three processes (generated per start; nothing to keep secret across restarts).
export AIRFLOW__API_AUTH__JWT_SECRET="${AIRFLOW__API_AUTH__JWT_SECRET:-$(python -c 'import secrets; print(secrets.token_hex(32))')}"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
airflow api-server --host 127.0.0.1 --port "$PORT" & pids+=($!)
airflow scheduler --skip-serve-logs & pids+=($!)
airflow dag-processor & pids+=($!)
echo "chanwatch Airflow: http://127.0.0.1:${PORT} (Ctrl-C to stop)"
wait -n "${pids[@]}"
