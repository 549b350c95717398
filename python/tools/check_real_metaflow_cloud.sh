#!/bin/sh
# Real Metaflow on an object store (a local radosgw, or azurite) against `cas`:
# Metaflow writes, cas reads every artifact; cas migrates and writes, Metaflow's
# client reads. Not part of CI: it needs Metaflow's source (e.g. fetched from
# github.com/Netflix/metaflow).
#
#   MF=/path/to/metaflow sh python/tools/check_real_metaflow_cloud.sh s3|azure
#
# s3: starts its own S3 server (tests/s3/s3server.sh) unless CAS_TEST_S3_ENDPOINT
# and the AWS keys name one. azure: starts azurite (tests/azure/azurite.sh) and a
# stand-in for the instance metadata service; Metaflow (DefaultAzureCredential) and
# cas both authenticate as a managed identity, with bearer tokens azurite checks
# over HTTPS. Needs python3-boto3 / python3-azure, python3-numpy, `make` first.
set -eu
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
: "${MF:?set MF to a Metaflow source tree}"
STORE=${1:?s3 or azure}
CAS="$REPO/build/cas"
WORK=$(mktemp -d)
# shellcheck source=python/tools/mf_store_env.sh
. "$HERE/mf_store_env.sh"
cp "$HERE/casflow.py" "$HERE/cas_h_probe.py" "$WORK/"
cd "$WORK"

echo "== stock Metaflow ($(cd "$MF" && $PY -c 'import metaflow.metaflow_version as v; print(v.get_version())' 2>/dev/null || echo '?')) runs CasFlow on $ROOT"
PYTHONPATH="$MF" timeout 900 $PY casflow.py run 2>&1 | grep -E "total|Done|rror|xception" | sed 's/^[-0-9 :.]*\[[^]]*\] /  /'

echo "== the extension, installed by pip in a fresh venv, runs CasFlow (METAFLOW_CAS_H=1, then =1 with v2)"
$PY -m venv --system-site-packages "$WORK/venv"
PIP_NO_INDEX=1 "$WORK/venv/bin/pip" install -q --no-build-isolation "$REPO/python" > "$WORK/pip.log" 2>&1 ||
  { cat "$WORK/pip.log"; exit 1; }
rm -rf "$REPO/python/build" "$REPO/python/cas_h.egg-info"
# each into a root of its own (the blobs of one root are shared by its runs: a v2 run into
# the stock run's root would find most of its blobs there already, as v1), from a folder of
# its own (the local metadata lives in the working directory)
root_of() { echo "${MFROOT}-ext$1"; }
for v in 1 2; do
  mkdir "$WORK/ext$v" && cp casflow.py cas_h_probe.py "$WORK/ext$v/"
  (cd "$WORK/ext$v" && env "$RV=$(root_of $v)" METAFLOW_DATASTORE_SYSROOT_LOCAL="$WORK/ext$v" PYTHONPATH="$MF" METAFLOW_CAS_H=1 METAFLOW_CAS_H_VERSION=$v \
    timeout 900 "$WORK/venv/bin/python" casflow.py run 2>&1) |
    grep -E "cas_h|total|Done|rror|xception" | sed 's/^[-0-9 :.]*\[[^]]*\] /  /'
done

echo "== cas reads every artifact Metaflow wrote (no --root: Metaflow's own settings)"
PYTHONPATH="$MF:$REPO/python" $PY - "$CAS" <<'PYEOF'
import hashlib, subprocess, sys
from metaflow import Flow, namespace
namespace(None)
cas = sys.argv[1]
n = bad = 0
for run in Flow("CasFlow").runs():
    for step in run:
        for task in step:
            ls = subprocess.run([cas, "ls", task.pathspec], capture_output=True, text=True)
            if ls.returncode:
                print("  cas ls %s: %s" % (task.pathspec, ls.stderr.strip())); bad += 1; continue
            for art in task.artifacts:
                out = subprocess.run([cas, "artifact", "%s/%s" % (task.pathspec, art.id), "--verify"], capture_output=True)
                if out.returncode or hashlib.sha1(out.stdout).hexdigest() != art.sha:
                    print("  %s/%s: %s" % (task.pathspec, art.id, out.stderr.decode().strip())); bad += 1
                n += 1
print("  %d artifacts: %d read by cas with the key Metaflow recorded, %d bad" % (n, n - bad, bad))
sys.exit(1 if bad else 0)
PYEOF
$CAS verify --quiet CasFlow

echo "== digests of every unpickled artifact, as read by Metaflow's client (no client cache shared)"
echo "   stock's run by stock, then the extension's runs (v1: by stock and the extension; v2: by the"
echo "   extension, and by stock, which reads cas_version 2 only with Metaflow PR #3090)"
readall() { # TAG FOLDER ENV... PYTHON
  tag=$1 dir=$2; shift 2
  (cd "$dir" && env METAFLOW_CLIENT_CACHE_PATH="$WORK/cache-$tag" METAFLOW_DATASTORE_SYSROOT_LOCAL="$dir" \
    PYTHONPATH="$MF" "$@" "$HERE/mf_readall.py")
}
readall stock "$WORK" $PY | tee before.txt
readall ext1s "$WORK/ext1" "$RV=$(root_of 1)" $PY | tee ext1_stock.txt
readall ext1e "$WORK/ext1" "$RV=$(root_of 1)" METAFLOW_CAS_H=1 "$WORK/venv/bin/python" | tee ext1.txt
readall ext2e "$WORK/ext2" "$RV=$(root_of 2)" METAFLOW_CAS_H=1 "$WORK/venv/bin/python" | tee ext2.txt
readall ext2s "$WORK/ext2" "$RV=$(root_of 2)" $PY | sed 's/^/  stock on v2: /'
digests() { cat "$@" | grep "artifacts read" | awk '{print $NF}' | sort -u; }
if [ "$(digests before.txt ext1_stock.txt ext1.txt ext2.txt | wc -l)" -ne 1 ] || grep -q FAILED ext*.txt; then
  echo "  RUNS DIFFER"; exit 1
fi
echo "  stock's run, the extension's v1 and v2 runs, read by stock and the extension: one digest, $(digests ext2.txt)"
echo "== cas migrate --to v2, then back to v1 (Metaflow releases read v1)"
$CAS migrate --to v2 --quiet CasFlow
PYTHONPATH="$MF:$REPO/python" METAFLOW_CAS_H=1 $PY "$HERE/mf_readall.py" | sed 's/^/  v2, Metaflow + extension: /'
$CAS migrate --to v1 --quiet CasFlow
PYTHONPATH="$MF" $PY "$HERE/mf_readall.py" | tee after.txt
grep "digest" before.txt | awk '{print $NF}' | sort -u > b.txt; grep "digest" after.txt | awk '{print $NF}' | sort -u > a.txt
if cmp -s a.txt b.txt; then echo "  same digests before and after the round trip"; else echo "  DIGESTS DIFFER"; exit 1; fi

echo "== cas put into the flow; Metaflow's own $STORE datastore loads it"
KEY=$(printf 'written by cas' | $CAS put --flow CasFlow)
PYTHONPATH="$MF" $PY - "$KEY" "$MFROOT" "$IMPL" <<'PYEOF'
import sys
from metaflow.datastore import FlowDataStore
key, root, impl = sys.argv[1], sys.argv[2], sys.argv[3]
exec("from metaflow.plugins.datastores." + impl)
fds = FlowDataStore("CasFlow", None, storage_impl=Impl, ds_root=root)  # noqa: F821
got = dict(fds.ca_store.load_blobs([key]))
assert got[key] == b"written by cas", got
print("  Metaflow's ca_store.load_blobs read the blob cas put: %r" % got[key])
PYEOF
echo "work directory: $WORK"
