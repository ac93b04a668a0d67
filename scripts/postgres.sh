#!/usr/bin/env bash
# Installs (Debian's package) and starts a local PostgreSQL for the metastore conformance suite,
# creates the test database, and prints the connection string. Safe to run again.
set -euo pipefail
# Only the connection string may reach stdout (the caller captures it): everything the package
# manager and cluster tools print goes to stderr.
exec 3>&1 1>&2

# Runs a command that may leave a daemon behind (the package's post-install script, the cluster
# start) with every descriptor above stderr closed. A PostgreSQL server that inherited fd 3, the
# caller's `$(...)` pipe, would hold it open for its whole life, and the caller would wait forever.
detached() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec "$@"
  )
}
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt-get update -qq
  detached env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
cluster=$(pg_lsclusters --no-header | head -1)
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  pg_createcluster "$version" main >/dev/null
  cluster=$(pg_lsclusters --no-header | head -1)
fi
read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
  detached pg_ctlcluster "$version" "$name" start
fi
su postgres -c "psql -q -p $port -c \"ALTER USER postgres PASSWORD 'emberscope'\"" >/dev/null
# The list is read whole before it is searched: `grep -q` leaving early would make `psql` fail
# on a closed pipe (pipefail), and a long list of databases look absent.
databases=$(su postgres -c "psql -p $port -lqt" | cut -d'|' -f1)
if ! grep -qw emberscope_test <<<"$databases"; then
  su postgres -c "createdb -p $port emberscope_test"
fi
conn="host=127.0.0.1 port=$port user=postgres password=emberscope dbname=emberscope_test"
# Fail here, with the server's own words, rather than in the Rust tests.
PGCONNECT_TIMEOUT=10 psql "$conn" -qAtc "select 1" >/dev/null
echo "$conn" >&3
