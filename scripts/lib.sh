# Shared by scripts/dev, scripts/test and .ci/run: install what is missing, start a throwaway PostgreSQL.
# shellcheck shell=bash

ensure_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    echo "==> installing uv (the lock-file installer) with pip"
    python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
    export PATH="$HOME/.local/bin:$PATH"
  fi
}

sync_env() {
  ensure_uv
  echo "==> installing dependencies from uv.lock"
  # Compiled once here: the machine may forbid writing .pyc at import time, and every run process imports a lot.
  uv sync --frozen --quiet --compile-bytecode
}

pg_bin_dir() {
  if command -v pg_ctl >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v pg_ctl)")"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres_installed() {
  if [ -n "$(pg_bin_dir)" ]; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing PostgreSQL with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  [ -n "$(pg_bin_dir)" ]
}

# Debian's Chromium for the browser tests (Playwright's own browser download is not used: tests launch this one).
ensure_chromium_installed() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Chromium with apt-get (browser tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  [ -x /usr/bin/chromium ]
}

# Starts a private cluster on a free loopback port; exports VRTX_TEST_POSTGRES_URL; stopped on exit.
# PG_FSYNC=on keeps commits durable (the benches: an acknowledgement promises one); tests run without the flushes.
start_throwaway_postgres() {
  local bin port run_as=() fsync="${PG_FSYNC:-off}"
  bin="$(pg_bin_dir)"
  PG_TMP="$(mktemp -d /tmp/vrtx-pg.XXXXXX)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  if [ "$(id -u)" = "0" ]; then
    # PostgreSQL refuses to run as root.
    chown postgres "$PG_TMP"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$bin/initdb" -D "$PG_TMP/data" -U vrtx -A trust -E UTF8 --no-instructions >/dev/null
  "${run_as[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $PG_TMP -c fsync=$fsync -c max_connections=200" start >/dev/null
  PG_STOP=("${run_as[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -m fast stop)
  trap 'stop_throwaway_postgres' EXIT
  # dlt needs a password in the URL even under trust authentication.
  export VRTX_TEST_POSTGRES_URL="postgresql://vrtx:vrtx@127.0.0.1:$port/postgres"
  echo "==> throwaway PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

stop_throwaway_postgres() {
  if [ -n "${PG_TMP:-}" ]; then
    "${PG_STOP[@]}" >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
}
