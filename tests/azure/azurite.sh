#!/bin/sh
# Azure Blob Storage for the tests: Microsoft's emulator azurite (from npm), on
# loopback, on a free port, in memory.
#
#   tests/azure/azurite.sh install      npm install azurite into $CAS_TOOLS (default
#                                       ~/.cache/cas.h), once; infra/debian-deps.sh runs it
#   tests/azure/azurite.sh start DIR    start it; writes DIR/env (source it) and DIR/pids
#   tests/azure/azurite.sh stop DIR     stop it and remove DIR
#
# azurite 3.35.0 is the last to run on Node 20 (3.36 needs Node 21); Debian 12's own
# nodejs is 18, on which it also runs. Two instances start: one on plain HTTP (the
# fault proxy sits in front of it), and one on HTTPS with a self-signed certificate
# and `--oauth basic`, which checks bearer tokens' issuer, audience and lifetime (not
# their signature): Microsoft Entra ID tokens only go over TLS. DIR/env exports
# CAS_TEST_AZURE_ENDPOINT (http://127.0.0.1:PORT/devstoreaccount1),
# CAS_TEST_AZURE_OAUTH_ENDPOINT (https://...), CAS_TEST_AZURE_CA (the certificate),
# AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (the emulator's development account).
set -eu
VERSION=3.35.0
tools=${CAS_TOOLS:-${HOME:-/root}/.cache/cas.h}/azurite-$VERSION
main=$tools/node_modules/azurite/dist/src/blob/main.js
cmd=${1:-}
dir=${2:-}

case "$cmd" in
install)
  [ -f "$main" ] && exit 0
  command -v npm >/dev/null || { echo "azurite.sh: needs node and npm (Debian: nodejs npm)" >&2; exit 1; }
  mkdir -p "$tools"
  (cd "$tools" && npm install --no-audit --no-fund --loglevel=error "azurite@$VERSION")
  [ -f "$main" ] || { echo "azurite.sh: npm did not install $main" >&2; exit 1; }
  ;;
start)
  [ -n "$dir" ] || { echo "usage: $0 start DIR" >&2; exit 2; }
  [ -f "$main" ] || "$0" install
  mkdir -p "$dir"
  : > "$dir/pids"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" > /dev/null 2>&1
  # launch NAME SCHEME [azurite options]: sets $port once it listens
  launch() {
    name=$1 scheme=$2; shift 2
    tries=0
    while :; do
      port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      node "$main" --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence --disableTelemetry \
        --skipApiVersionCheck "$@" > "$dir/$name.log" 2>&1 &
      pid=$!
      echo $pid >> "$dir/pids"
      t=0
      while [ $t -lt 120 ] && kill -0 $pid 2>/dev/null; do
        if grep -q "successfully listens on $scheme://127.0.0.1:$port" "$dir/$name.log" 2>/dev/null; then return 0; fi
        t=$((t + 1)); sleep 0.25
      done
      kill $pid 2>/dev/null || true
      tries=$((tries + 1))
      if [ $tries -ge 3 ]; then echo "azurite.sh: azurite ($name) did not start; its log:" >&2; cat "$dir/$name.log" >&2; exit 1; fi
    done
  }
  launch plain http
  plain=$port
  launch oauth https --oauth basic --cert "$dir/cert.pem" --key "$dir/key.pem"
  cat > "$dir/env" <<ENV
export CAS_TEST_AZURE_ENDPOINT=http://127.0.0.1:$plain/devstoreaccount1
export CAS_TEST_AZURE_OAUTH_ENDPOINT=https://127.0.0.1:$port/devstoreaccount1
export CAS_TEST_AZURE_CA=$dir/cert.pem
export AZURE_STORAGE_ACCOUNT=devstoreaccount1
export AZURE_STORAGE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
ENV
  ;;
stop)
  [ -n "$dir" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
  if [ -f "$dir/pids" ]; then
    while read -r p; do kill "$p" 2>/dev/null || true; done < "$dir/pids"
    while read -r p; do
      i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
      kill -9 "$p" 2>/dev/null || true
    done < "$dir/pids"
  fi
  rm -rf "$dir"
  ;;
*) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
