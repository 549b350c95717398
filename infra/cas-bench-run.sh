#!/bin/sh
# cas-bench-run: on the benchmark machine, unpack (or clone) cas.h, build it,
# run `make bench` and keep the results under $CAS_BENCH_HOME/results/<stamp>
# (default /var/lib/cas-bench), with `latest` pointing at the newest run.
#
#   cas-bench-run SRC.tar.gz       a tarball of the working tree (bench-vm.sh makes one)
#   cas-bench-run GIT-URL          a repository to clone (CAS_BENCH_REF: branch or tag)
#   cas-bench-run --wait           cloud-init's entry: use $CAS_BENCH_REPO_URL if set,
#                                  else wait up to $CAS_BENCH_WAIT_MIN minutes (default 45)
#                                  for $CAS_BENCH_HOME/incoming/src.tar.gz to be uploaded
#
# Environment: CAS_BENCH_DEPS=1 installs the Debian packages first (infra/debian-deps.sh;
# cloud-init has already done it on a VM it built); CAS_BENCH_STREAM_GIB=4 also runs the
# streaming RSS check once at that size after `make bench` (it takes minutes).
# Writes "running", "done" or "failed: <why>" to $CAS_BENCH_HOME/status.
# infra/cloud-init.yaml embeds a copy of this file; infra/check.sh keeps the two equal.
set -eu

HOME_DIR=${CAS_BENCH_HOME:-/var/lib/cas-bench}
STATUS=$HOME_DIR/status

fail() {
    echo "failed: $*" > "$STATUS"
    echo "cas-bench-run: $*" >&2
    exit 1
}

mkdir -p "$HOME_DIR/results" "$HOME_DIR/incoming"
[ $# -ge 1 ] || fail "usage: cas-bench-run SRC.tar.gz | GIT-URL | --wait"
SRC=$1
if [ "$SRC" = "--wait" ]; then
    if [ -n "${CAS_BENCH_REPO_URL:-}" ]; then
        SRC=$CAS_BENCH_REPO_URL
    else
        SRC=$HOME_DIR/incoming/src.tar.gz
        waited=0
        echo "waiting for $SRC" > "$STATUS"
        while [ ! -f "$SRC" ]; do
            [ "$waited" -lt "$((${CAS_BENCH_WAIT_MIN:-45} * 60))" ] || fail "no source uploaded to $SRC"
            sleep 5
            waited=$((waited + 5))
        done
    fi
fi

echo running > "$STATUS"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
WORK=$HOME_DIR/src
OUT=$HOME_DIR/results/$STAMP
rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"
case $SRC in
*.tar.gz | *.tgz) tar -xzf "$SRC" -C "$WORK" || fail "cannot unpack $SRC" ;;
*)
    # shellcheck disable=SC2086 # the optional --branch pair splits on purpose
    git clone --depth 1 ${CAS_BENCH_REF:+--branch "$CAS_BENCH_REF"} "$SRC" "$WORK" || fail "cannot clone $SRC"
    git -C "$WORK" rev-parse --short HEAD > "$WORK/SOURCE_ID"
    ;;
esac
cd "$WORK"
if [ -f SOURCE_ID ]; then
    CAS_BENCH_COMMIT=$(cat SOURCE_ID)
    export CAS_BENCH_COMMIT
fi
if [ "${CAS_BENCH_DEPS:-0}" = 1 ]; then
    sh infra/debian-deps.sh > "$OUT/deps.log" 2>&1 || fail "installing the Debian packages (see $OUT/deps.log)"
fi

{
    echo "source: ${CAS_BENCH_COMMIT:-?} ($SRC)"
    echo "started: $(date -u)"
    lscpu
    free -m
} > "$OUT/machine.txt" 2>&1

start=$(date +%s)
if ! { make -j"$(nproc)" all && make bench; } > "$OUT/bench.log" 2>&1; then
    tail -n 30 "$OUT/bench.log" >&2
    fail "make bench (see $OUT/bench.log)"
fi
echo "make bench: $(($(date +%s) - start)) s" >> "$OUT/machine.txt"
cp bench/results/results.md bench/results/results.json bench/results/chart.svg "$OUT/"

if [ -n "${CAS_BENCH_STREAM_GIB:-}" ]; then
    /usr/bin/python3 bench/run.py --stream-only --stream-gib "$CAS_BENCH_STREAM_GIB" \
        > "$OUT/stream-${CAS_BENCH_STREAM_GIB}gib.txt" 2>&1 || fail "streaming check (see $OUT)"
fi
ln -sfn "$STAMP" "$HOME_DIR/results/latest"
echo "done" > "$STATUS"
echo "cas-bench-run: results in $OUT"
