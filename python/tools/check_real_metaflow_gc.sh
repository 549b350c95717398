#!/bin/sh
# Issue 25's end check, with real Metaflow: stock Metaflow runs GcFlow three times
# (seeds 1, 2, 3) on a local, S3 (radosgw) or Azure (azurite) datastore; `cas prune
# --keep-last 1` and `cas gc --unreferenced --grace 0` then remove the two older runs
# and what only they named. After that, fsck is clean with nothing unreferenced, gc
# has freed the two older runs' own arrays and kept the shared blob, and stock
# Metaflow's client reads every artifact of the remaining run with the digest it had
# before. Not part of CI: it needs Metaflow's source (e.g. fetched from
# github.com/Netflix/metaflow), python3-numpy, and `make` first.
#
#   MF=/path/to/metaflow sh python/tools/check_real_metaflow_gc.sh local|s3|azure
set -eu
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
: "${MF:?set MF to a Metaflow source tree}"
STORE=${1:?local, s3 or azure}
CAS="$REPO/build/cas"
WORK=$(mktemp -d)
# shellcheck source=python/tools/mf_store_env.sh
. "$HERE/mf_store_env.sh"
cp "$HERE/gcflow.py" "$WORK/"
cd "$WORK"
export PYTHONPATH="$MF"

echo "== stock Metaflow ($($PY -c 'import metaflow.metaflow_version as v; print(v.get_version())' 2>/dev/null || echo '?')) runs GcFlow 3 times on $ROOT"
for seed in 1 2 3; do
  timeout 900 $PY gcflow.py run --seed $seed 2>&1 | grep -E "Done|rror|xception" | sed 's/^[-0-9 :.]*\[[^]]*\] /  /'
done

# every artifact of one run through Metaflow's client, stock: "RUN COUNT DIGEST", or FAILED
readrun() {
  $PY - "$1" <<'PYEOF'
import hashlib, pickle, sys
from metaflow import Run, namespace
namespace(None)
n, values = 0, {}
try:
    for step in Run("GcFlow/" + sys.argv[1]):
        for task in step:
            for art in task.artifacts:
                values[task.pathspec.split("/", 2)[2], art.id] = hashlib.sha1(pickle.dumps(art.data, protocol=4)).hexdigest()
                n += 1
except Exception as e:
    print("%s FAILED after %d artifacts: %s" % (sys.argv[1], n, type(e).__name__))
    sys.exit(0)
print("%s %d %s" % (sys.argv[1], n, hashlib.sha1(repr(sorted(values.items())).encode()).hexdigest()[:16]))
PYEOF
}
RUNS=$($CAS ls --root "$ROOT" --json GcFlow | $PY -c 'import json,sys; print(" ".join(json.loads(l)["run"] for l in sys.stdin))')
KEEP=${RUNS%% *}
# shellcheck disable=SC2086  # run ids: digits, split on purpose
set -- $RUNS
[ $# -eq 3 ] || { echo "  expected 3 runs, found: $RUNS"; exit 1; }
BEFORE=$(readrun "$KEEP")
echo "  runs, newest first: $RUNS; the kept run read by stock Metaflow: $BEFORE"
OWN=$(for r in $RUNS; do $CAS ls --root "$ROOT" --json "GcFlow/$r/start/$($CAS ls --root "$ROOT" --json "GcFlow/$r/start" | $PY -c 'import json,sys; print(json.loads(sys.stdin.readline())["task"])')" |
  $PY -c 'import json,sys; print(" ".join(r["key"] for r in map(json.loads, sys.stdin) if r["name"] in ("own", "shared")))'; done)
echo "  the runs' 'own' and 'shared' blobs: $(echo "$OWN" | wc -w) references"

echo "== cas prune GcFlow --keep-last 1, then cas gc --unreferenced --grace 0"
$CAS prune --root "$ROOT" GcFlow --keep-last 1 | sed 's/^/  /'
$CAS gc --root "$ROOT" --unreferenced --grace 0 --json GcFlow > gc.json
tail -1 gc.json | sed 's/^/  /'
$CAS fsck --root "$ROOT" --json GcFlow > fsck.json || { cat fsck.json; echo "  FSCK FAILED"; exit 1; }
tail -1 fsck.json | sed 's/^/  fsck: /'

echo "== what is left"
$PY - "$KEEP" "$OWN" <<'PYEOF'
import json, sys
keep, own = sys.argv[1], sys.argv[2].split()
gc = [json.loads(l) for l in open("gc.json")]
fsck = json.loads(open("fsck.json").read().splitlines()[-1])
removed = {r["key"] for r in gc if r.get("removed")}
assert fsck["unreferenced"] == 0 and fsck["problems"] == 0, fsck
# own keys come newest run first, each run's pair in artifact order; the kept run's are kept
kept_run_keys = set(own[:2])
assert not (removed & kept_run_keys), "gc removed a blob the kept run names"
gone = set(own[2:]) - kept_run_keys
assert gone and gone <= removed, ("the older runs' own arrays were not all freed", gone - removed)
print("  gc removed %d blobs (%d bytes), among them the 2 older runs' own arrays; the shared one is kept"
      % (len(removed), sum(r["bytes"] for r in gc if r.get("removed"))))
PYEOF
AFTER=$(readrun "$KEEP")
echo "  the kept run read by stock Metaflow: $AFTER"
[ "$AFTER" = "$BEFORE" ] || { echo "  THE KEPT RUN CHANGED"; exit 1; }
for r in $RUNS; do
  [ "$r" = "$KEEP" ] || echo "  pruned run, read by stock Metaflow: $(readrun "$r")"
done
echo "work directory: $WORK"
