#!/usr/bin/env bash
# Makes sure the services the test suite needs are installed, running and configured:
#   Redis      127.0.0.1:6379 (+ redis-server, redis-cli, redis-sentinel binaries)
#   PostgreSQL 127.0.0.1:5432, database `test`, user `postgres` (and role `root`), trust auth on 127.0.0.1
#   MariaDB    127.0.0.1:3306, user `root` with an empty password, database `test`
#   Chromium   only when TESSERA_NEED_CHROMIUM=1
# Idempotent: a service that already answers is left alone. Debian/Ubuntu only (apt-get).
# Prints one line per service saying what it did.
# Usage: scripts/ensure-services.sh [redis] [postgres] [mariadb] [chromium]   (no arguments: all)
set -euo pipefail

READY_TIMEOUT="${TESSERA_SERVICE_TIMEOUT:-60}" # seconds per service

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "ensure-services: not root and no sudo" >&2; exit 1; }
  SUDO=(sudo)
fi

log() { echo "ensure-services: $*"; }
# report SERVICE ADDRESS [ACTION...]: one summary line; no actions means it was already running.
report() {
  local service="$1" address="$2"
  shift 2
  if [ "$#" -eq 0 ]; then
    log "$service: already running on $address"
  else
    local IFS=','
    log "$service: ${*} on $address" | sed 's/,/, /g'
  fi
}
die() { echo "ensure-services: ERROR: $*" >&2; exit 1; }

# Runs a command as another OS user (postgres, mysql).
as_user() {
  local user="$1"
  shift
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else sudo -u "$user" -- "$@"; fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get); install it by hand"
  if [ "$APT_UPDATED" -eq 0 ]; then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    APT_UPDATED=1
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

# poll SECONDS CMD...: runs CMD until it succeeds (status 0) or SECONDS pass (status 1).
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# wait_ready NAME CMD...: polls CMD for READY_TIMEOUT seconds, then fails naming the service.
wait_ready() {
  local name="$1"
  shift
  poll "$READY_TIMEOUT" "$@" || die "$name did not become ready within ${READY_TIMEOUT}s (check: $*)"
}

# ---------------------------------------------------------------------------------------------- Redis

redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

ensure_redis() {
  local did=()
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
    did+=("installed ${missing[*]}")
  fi
  # After an install, the Debian package may have started its own instance: give it a moment.
  if ! redis_ok && ! { [ "${#missing[@]}" -gt 0 ] && poll 3 redis_ok; }; then
    "${SUDO[@]}" mkdir -p /var/lib/redis /var/log/redis
    "${SUDO[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    did+=(started)
  fi
  wait_ready "Redis on 127.0.0.1:6379 (redis-cli ping)" redis_ok
  report redis 127.0.0.1:6379 "${did[@]}"
}

# ------------------------------------------------------------------------------------------ PostgreSQL

pg_ok() { psql -h 127.0.0.1 -p 5432 -U postgres -d test -w -Atqc 'select 1' 2>/dev/null | grep -qx 1; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }

pg_version() {
  # Newest installed server version, e.g. 15.
  ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  if command -v psql >/dev/null && pg_ok; then
    report postgresql 127.0.0.1:5432
    return
  fi
  local did=()
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(pg_version)" ]; then
    apt_install postgresql
    did+=("installed postgresql")
  fi
  local version
  version="$(pg_version)"
  if [ ! -d "/etc/postgresql/$version/main" ]; then
    "${SUDO[@]}" pg_createcluster "$version" main >&2
    did+=("created cluster $version/main")
  fi
  if ! pg_up && ! "${SUDO[@]}" pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
      die "could not start PostgreSQL cluster $version/main (see /var/log/postgresql/)"
    did+=(started)
  fi
  wait_ready "PostgreSQL on 127.0.0.1:5432 (pg_isready)" pg_up
  if ! pg_ok; then
    configure_postgres "$version"
    did+=(configured)
  fi
  pg_ok || die "PostgreSQL is up but database 'test' is not reachable as user postgres on 127.0.0.1 (trust auth)"
  report postgresql 127.0.0.1:5432 "${did[@]}"
}

configure_postgres() {
  local version="$1"
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  local marker='# tessera: trust local TCP connections (test machine)'
  if ! "${SUDO[@]}" grep -qF "$marker" "$hba"; then
    # pg_hba.conf is first-match: put the trust lines at the top.
    local tmp
    tmp="$(mktemp)"
    {
      echo "$marker"
      echo 'host all all 127.0.0.1/32 trust'
      echo 'host all all ::1/128 trust'
      "${SUDO[@]}" cat "$hba"
    } >"$tmp"
    "${SUDO[@]}" install -o postgres -g postgres -m 640 "$tmp" "$hba"
    rm -f "$tmp"
    as_user postgres psql -Atqc 'select pg_reload_conf()' >/dev/null
  fi
  # The reload is asynchronous: wait until trust auth is in effect before creating anything.
  wait_ready "PostgreSQL trust auth on 127.0.0.1" psql -h 127.0.0.1 -U postgres -d postgres -w -Atqc 'select 1'
  local q=(psql -h 127.0.0.1 -U postgres -d postgres -w -v ON_ERROR_STOP=1 -Atq)
  if [ "$("${q[@]}" -c "select 1 from pg_roles where rolname = 'root'")" != 1 ]; then
    "${q[@]}" -c 'create role root superuser login'
  fi
  if [ "$("${q[@]}" -c "select 1 from pg_database where datname = 'test'")" != 1 ]; then
    "${q[@]}" -c 'create database test'
  fi
}

# --------------------------------------------------------------------------------------------- MariaDB

MYSQL_TCP=(-h 127.0.0.1 -P 3306 --protocol=TCP -u root --password=)
mariadb_client() { if command -v mariadb >/dev/null; then echo mariadb; else echo mysql; fi; }
mariadb_ok() { "$(mariadb_client)" "${MYSQL_TCP[@]}" -D test -e 'select 1' >/dev/null 2>&1; }
mariadb_up() {
  local out
  out="$(mysqladmin -h 127.0.0.1 -P 3306 --protocol=TCP --connect-timeout=2 ping 2>&1)" && return 0
  # Answered but refused us (no such user/host yet): the server is up, configure_mariadb does the rest.
  grep -qE 'Access denied|is not allowed to connect' <<<"$out"
}
mariadb_daemon() { if [ -x /usr/sbin/mariadbd ]; then echo /usr/sbin/mariadbd; else echo /usr/sbin/mysqld; fi; }

ensure_mariadb() {
  if command -v mysqladmin >/dev/null && mariadb_ok; then
    report mariadb 127.0.0.1:3306
    return
  fi
  local did=()
  if [ ! -x /usr/sbin/mariadbd ] && [ ! -x /usr/sbin/mysqld ]; then
    apt_install mariadb-server
    did+=("installed mariadb-server")
  fi
  if ! mariadb_up; then
    if [ ! -d /var/lib/mysql/mysql ]; then
      "${SUDO[@]}" mariadb-install-db --user=mysql --datadir=/var/lib/mysql >&2
      did+=("initialised /var/lib/mysql")
    fi
    "${SUDO[@]}" install -d -o mysql -g mysql /run/mysqld
    "${SUDO[@]}" start-stop-daemon --start --oknodo --background --exec "$(mariadb_daemon)" -- --user=mysql
    did+=(started)
  fi
  wait_ready "MariaDB on 127.0.0.1:3306 (mysqladmin ping)" mariadb_up
  if ! mariadb_ok; then
    configure_mariadb
    did+=(configured)
  fi
  mariadb_ok || die "MariaDB is up but database 'test' is not reachable as root with an empty password over TCP"
  report mariadb 127.0.0.1:3306 "${did[@]}"
}

configure_mariadb() {
  # A fresh Debian install authenticates root@localhost by unix socket only; the OS root gets in that way.
  # Depending on name resolution a TCP login from 127.0.0.1 matches root@localhost or root@127.0.0.1,
  # so both accept an empty password (root@localhost keeps unix_socket too).
  "${SUDO[@]}" "$(mariadb_client)" -u root <<'SQL'
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
FLUSH PRIVILEGES;
SQL
}

# -------------------------------------------------------------------------------------------- Chromium

ensure_chromium() {
  if [ "${TESSERA_NEED_CHROMIUM:-}" != 1 ]; then
    log "chromium: skipped (set TESSERA_NEED_CHROMIUM=1 to install)"
  elif command -v chromium >/dev/null; then
    log "chromium: already installed ($(command -v chromium))"
  else
    apt_install chromium
    log "chromium: installed ($(command -v chromium))"
  fi
}

# Arguments pick services (redis postgres mariadb chromium); none means all of them.
[ "$#" -gt 0 ] || set -- redis postgres mariadb chromium
for service in "$@"; do
  case "$service" in
    redis | postgres | mariadb | chromium) "ensure_$service" ;;
    *) die "unknown service '$service' (expected: redis postgres mariadb chromium)" ;;
  esac
done
