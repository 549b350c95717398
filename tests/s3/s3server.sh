#!/bin/sh
# A real S3 server for the tests: a single-node Ceph cluster (one monitor, one
# memstore OSD, no cephx) and its S3 gateway radosgw, on loopback, on free ports.
#
#   tests/s3/s3server.sh start DIR   start it; writes DIR/env (source it) and DIR/pids
#   tests/s3/s3server.sh stop DIR    stop it and remove DIR
#
# DIR/env exports CAS_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION and CAS_TEST_S3_ADMIN (a radosgw-admin command line for this cluster).
# Every step has a timeout; a failed first boot (seen now and then: the OSD's
# "wrong fsid") is retried from scratch with a new fsid, up to three times.
# Packages: radosgw ceph-mon ceph-osd ceph-common (infra/debian-deps.sh).
set -eu

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# A TCP port nobody listens on, from the kernel's ephemeral range.
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls the command every 0.25 s.
wait_for() {
  limit=$1; what=$2; shift 2
  t=0
  while ! "$@" >/dev/null 2>&1; do
    t=$((t + 1))
    if [ "$t" -ge $((limit * 4)) ]; then
      echo "s3server: timed out after ${limit}s waiting for $what" >&2
      return 1
    fi
    sleep 0.25
  done
}

stop_all() {
  [ -f "$dir/pids" ] || return 0
  # radosgw first, the OSD next (a memstore OSD writes its contents out on the
  # way down: wait for it), the monitor last
  for p in $(tac "$dir/pids"); do kill "$p" 2>/dev/null || true; done
  for p in $(cat "$dir/pids"); do
    i=0
    while kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != Z ]; do
      i=$((i + 1))
      if [ $i -ge 100 ]; then kill -9 "$p" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  done
  rm -f "$dir/pids"
}

boot() {
  rm -rf "$dir/c"
  mkdir -p "$dir/c/mon" "$dir/c/osd" "$dir/c/run" "$dir/c/log" "$dir/c/rgw"
  c="$dir/c"
  fsid=$(uuidgen)
  monport=$(free_port)
  rgwport=$(free_port)
  cat > "$c/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$monport
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms bind msgr2 = false
ms bind ipv4 = true
public addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $c/run
admin socket = $c/run/\$name.asok
log file = $c/log/\$name.log
mon data = $c/mon
osd data = $c/osd
osd objectstore = memstore
memstore device bytes = ${CAS_TEST_S3_BYTES:-6442450944}
osd max object size = 1073741824
mon max pg per osd = 1000
rgw frontends = beast endpoint=127.0.0.1:$rgwport
rgw data = $c/rgw
rgw dns name = localhost
rgw thread pool size = 64
keyring = $c/keyring
EOF
  ceph-authtool --create-keyring "$c/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --add a "v1:127.0.0.1:$monport" --fsid "$fsid" "$c/monmap" >/dev/null
  ceph-mon -c "$c/ceph.conf" --mkfs -i a --monmap "$c/monmap" --keyring "$c/keyring" >/dev/null 2>&1
  ceph-mon -c "$c/ceph.conf" -i a -f >"$c/log/mon.out" 2>&1 &
  echo $! >> "$dir/pids"
  export CEPH_CONF="$c/ceph.conf"
  wait_for 30 "the monitor" timeout 5 ceph -c "$c/ceph.conf" mon stat || return 1
  osd=$(timeout 20 ceph -c "$c/ceph.conf" osd create) || return 1
  ceph-osd -c "$c/ceph.conf" -i "$osd" --mkfs >"$c/log/osd-mkfs.out" 2>&1 || return 1
  ceph-osd -c "$c/ceph.conf" -i "$osd" -f >"$c/log/osd.out" 2>&1 &
  echo $! >> "$dir/pids"
  wait_for 40 "the OSD to come up" sh -c "timeout 5 ceph -c '$c/ceph.conf' osd stat | grep -q '1 up'" || return 1
  radosgw -c "$c/ceph.conf" -n client.rgw.a -f >"$c/log/rgw.out" 2>&1 &
  echo $! >> "$dir/pids"
  wait_for 60 "radosgw to answer on port $rgwport" curl -sf -o /dev/null "http://127.0.0.1:$rgwport/" || return 1
  ak=CASTEST$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
  sk=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
  wait_for 30 "the S3 user" timeout 10 radosgw-admin -c "$c/ceph.conf" user create --uid=cas-test \
    --display-name=cas-test --access-key="$ak" --secret="$sk" || return 1
  cat > "$dir/env" <<EOF
export CAS_TEST_S3_ENDPOINT=http://127.0.0.1:$rgwport
export AWS_ACCESS_KEY_ID=$ak
export AWS_SECRET_ACCESS_KEY=$sk
export AWS_REGION=us-east-1
export CAS_TEST_S3_ADMIN="radosgw-admin -c $c/ceph.conf"
EOF
}

case "$cmd" in
start)
  mkdir -p "$dir"
  for try in 1 2 3; do
    if boot; then
      echo "s3server: radosgw ready at $(sed -n 's/^export CAS_TEST_S3_ENDPOINT=//p' "$dir/env") (try $try)"
      exit 0
    fi
    echo "s3server: boot $try failed; logs:" >&2
    tail -n 5 "$dir"/c/log/*.out >&2 2>/dev/null || true
    stop_all
  done
  exit 1
  ;;
stop)
  stop_all
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
