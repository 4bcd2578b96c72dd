#!/usr/bin/env bash
# Runs a command with two throwaway PostgreSQL clusters on loopback:
#   - a TLS server (certificate for "localhost" only, signed by a CA made
#     here with openssl) whose pg_hba.conf also demands a client
#     certificate for the role "certuser" and TLS for the role "sslonly";
#   - a plain server with TLS off.
# Both run as the `postgres` user, on free ports, with their own socket
# directory, and are stopped (and their files removed) on exit, even on
# failure. The PostgreSQL server package is installed first if missing.
#
# The command sees:
#   DBMUX_TEST_PG_PORT        port of the TLS server (127.0.0.1 / localhost)
#   DBMUX_TEST_PG_PLAIN_PORT  port of the server with TLS off
#   DBMUX_TEST_PG_PASSWORD    password of the superuser role "dbmux"
#   DBMUX_TEST_PG_CERTS       directory with ca.crt, wrong-ca.crt, client.crt, client.key
#   DBMUX_TEST_PG_URL         postgresql://dbmux:...@localhost:PORT/dbmux_test
#   DBMUX_TEST_PG_BIN         the server's bin directory (pg_ctl, psql, ...)
#   DBMUX_TEST_PG_DATA        the TLS server's data directory
set -euo pipefail
. "$(dirname "$0")/pg-lib.sh"

pg_find_bin with-test-postgres
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }

BASE=$(mktemp -d /tmp/dbmux-pg.XXXXXX)
chmod 755 "$BASE"
CERTS="$BASE/certs"
mkdir -p "$CERTS"

PG_NODES="tls plain"
trap pg_cleanup EXIT INT TERM

# --- certificates (made now, never committed) ---
(
  cd "$CERTS"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=dbmux test CA" \
    -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=dbmux wrong CA" \
    -keyout wrong-ca.key -out wrong-ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost\n' > server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=certuser" \
    -keyout client.key -out client.csr 2>/dev/null
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -out client.crt 2>/dev/null
  rm -f ./*.csr ./*.ext ./*.srl
)
install -o postgres -m 600 "$CERTS/server.key" "$BASE/server.key"
install -o postgres -m 644 "$CERTS/server.crt" "$BASE/server.crt"
install -o postgres -m 644 "$CERTS/ca.crt" "$BASE/ca.crt"
chmod 644 "$CERTS"/*.crt
chmod 600 "$CERTS"/*.key

PASSWORD="dbmux-test-$(openssl rand -hex 8)"
TLS_PORT=$(free_port)
PLAIN_PORT=$(free_port)
while [ "$PLAIN_PORT" = "$TLS_PORT" ]; do PLAIN_PORT=$(free_port); done
mkdir -p "$BASE/sock"
chown postgres "$BASE" "$BASE/sock"

init_cluster() { # name port ssl(on|off)
  local name=$1 port=$2 ssl=$3 dir="$BASE/$1"
  as_pg "$BIN/initdb" -D "$dir" -U postgres -A trust --no-sync -E UTF8 >/dev/null
  cat >> "$dir/postgresql.conf" <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$BASE/sock'
max_connections = 150
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
ssl = $ssl
EOF
  if [ "$ssl" = on ]; then
    cat >> "$dir/postgresql.conf" <<EOF
ssl_cert_file = '$BASE/server.crt'
ssl_key_file = '$BASE/server.key'
ssl_ca_file = '$BASE/ca.crt'
EOF
    cat > "$dir/pg_hba.conf" <<EOF
local     all  all                    trust
hostssl   all  certuser  127.0.0.1/32 cert
hostnossl all  sslonly   127.0.0.1/32 reject
host      all  all       127.0.0.1/32 scram-sha-256
EOF
  else
    cat > "$dir/pg_hba.conf" <<EOF
local     all  all                    trust
host      all  all       127.0.0.1/32 scram-sha-256
EOF
  fi
  as_pg "$BIN/pg_ctl" -D "$dir" -l "$BASE/$name.log" -w -t 60 start >/dev/null
  as_pg "$BIN/psql" -q -h "$BASE/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<EOF
CREATE ROLE dbmux LOGIN SUPERUSER PASSWORD '$PASSWORD';
CREATE ROLE sslonly LOGIN PASSWORD '$PASSWORD';
CREATE ROLE certuser LOGIN;
CREATE DATABASE dbmux_test OWNER dbmux;
GRANT ALL ON DATABASE dbmux_test TO sslonly, certuser;
EOF
}

init_cluster tls "$TLS_PORT" on
init_cluster plain "$PLAIN_PORT" off

export DBMUX_TEST_PG_PORT=$TLS_PORT
export DBMUX_TEST_PG_PLAIN_PORT=$PLAIN_PORT
export DBMUX_TEST_PG_PASSWORD=$PASSWORD
export DBMUX_TEST_PG_CERTS=$CERTS
export DBMUX_TEST_PG_URL="postgresql://dbmux:$PASSWORD@localhost:$TLS_PORT/dbmux_test"
export DBMUX_TEST_PG_BIN=$BIN
export DBMUX_TEST_PG_DATA=$BASE/tls
echo "with-test-postgres: TLS server on 127.0.0.1:$TLS_PORT, plain server on 127.0.0.1:$PLAIN_PORT ($("$BIN/postgres" --version))" >&2

"$@"
