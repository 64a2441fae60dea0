#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks: initdb + pg_ctl in a directory of its
# own, listening only on a Unix socket in that directory (no TCP port, so parallel clusters never
# collide), password authentication (scram-sha-256) for user "qsearch".
#
#   tests/support/pg_cluster.sh start DIR [OWNER_PID] [--durable]   prints the base URL
#   tests/support/pg_cluster.sh createdb DIR NAME                    prints NAME's URL
#   tests/support/pg_cluster.sh stop DIR                             stops it, removes DIR
#
# The URL is postgresql://qsearch:<password, percent-encoded>@/<db>?host=DIR (db "studies" for
# start). The password has the characters a URL must escape ('@', ':', '/', '%', ' ') so every
# test goes through percent-decoding. PostgreSQL refuses to run as root: as root the server runs
# as $QSEARCH_PG_OS_USER, else user "qsearch-pg" (scripts/setup.sh creates it), else "nobody",
# through runuser. With OWNER_PID a watchdog stops the cluster and removes DIR once that process
# is gone (a test killed before its teardown leaves nothing running). Without --durable the
# server skips fsync (tests); benchmarks pass --durable (PostgreSQL's defaults).
# Exit status 77: the PostgreSQL server binaries are not installed (tests skip).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  sed -n '2,17p' "$0" >&2
  exit 2
fi

# $QSEARCH_PG_BINDIR: the directory of initdb/pg_ctl/createdb (default: Debian's newest).
bindir=${QSEARCH_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)}
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg_cluster: PostgreSQL server binaries not found (${bindir:-/usr/lib/postgresql/*/bin}/initdb); run scripts/setup.sh (Debian package postgresql)" >&2
  exit 77
fi

db_user=qsearch
password='qs p@ss:w/rd%'
encoded='qs%20p%40ss%3Aw%2Frd%25'

os_user=""
if [ "$(id -u)" = 0 ]; then
  if [ -n "${QSEARCH_PG_OS_USER:-}" ]; then
    os_user=$QSEARCH_PG_OS_USER
  elif id qsearch-pg >/dev/null 2>&1; then
    os_user=qsearch-pg
  else
    os_user=nobody
  fi
fi
as_user() {
  if [ -n "$os_user" ]; then runuser -u "$os_user" -- "$@"; else "$@"; fi
}

url_of() { echo "postgresql://$db_user:$encoded@/$1?host=$dir"; }

case "$cmd" in
  start)
    owner=""
    durable=0
    for a in "${@:3}"; do
      if [ "$a" = --durable ]; then durable=1; else owner=$a; fi
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chmod 755 "$dir"
    if [ -n "$os_user" ]; then chown "$os_user" "$dir"; fi
    printf '%s' "$password" >"$dir/pwfile"
    if [ -n "$os_user" ]; then chown "$os_user" "$dir/pwfile"; fi
    if ! as_user "$bindir/initdb" -D "$dir/data" -U "$db_user" --pwfile="$dir/pwfile" \
        --auth=scram-sha-256 -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1; then
      echo "pg_cluster: initdb failed:" >&2
      tail -5 "$dir/initdb.log" >&2
      exit 1
    fi
    rm -f "$dir/pwfile"
    opts="-k $dir -c listen_addresses='' -c max_connections=200"
    if [ "$durable" = 0 ]; then
      opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    if ! as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 -o "$opts" \
        start >/dev/null 2>&1; then
      echo "pg_cluster: the server did not start:" >&2
      tail -5 "$dir/server.log" >&2
      exit 1
    fi
    PGPASSWORD=$password "$bindir/createdb" -h "$dir" -U "$db_user" studies
    if [ -n "$owner" ]; then
      # The watchdog: detached, its output nowhere, so callers reading our stdout see EOF.
      nohup bash -c "while kill -0 $owner 2>/dev/null && [ -d '$dir/data' ]; do sleep 2; done
        if [ -d '$dir/data' ]; then
          $(declare -f as_user); os_user='$os_user'
          as_user '$bindir/pg_ctl' -D '$dir/data' -m immediate stop
          rm -rf '$dir'
        fi" >/dev/null 2>&1 </dev/null &
      disown || true
    fi
    url_of studies
    ;;
  createdb)
    name=${3:?createdb needs a database name}
    dir=$(cd "$dir" && pwd)
    PGPASSWORD=$password "$bindir/createdb" -h "$dir" -U "$db_user" "$name"
    url_of "$name"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
        as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "pg_cluster: unknown command '$cmd' (start, createdb, stop)" >&2
    exit 2
    ;;
esac
