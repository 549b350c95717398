#!/bin/sh
# Real Metaflow on S3 (a local radosgw) against `cas`: Metaflow writes, cas
# reads every artifact; cas migrates and writes, Metaflow's client reads. Not
# part of CI: it needs Metaflow's source (e.g. fetched from github.com/Netflix/metaflow).
#
#   MF=/path/to/metaflow sh python/tools/check_real_metaflow_s3.sh
#
# Starts its own S3 server (tests/s3/s3server.sh) unless CAS_TEST_S3_ENDPOINT
# and the AWS keys name one. Needs python3-boto3, python3-numpy, `make` first.
set -eu
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
: "${MF:?set MF to a Metaflow source tree}"
CAS="$REPO/build/cas"
WORK=$(mktemp -d)
if [ -z "${CAS_TEST_S3_ENDPOINT:-}" ]; then
  sh "$REPO/tests/s3/s3server.sh" start "$WORK/s3"
  trap 'sh "$REPO/tests/s3/s3server.sh" stop "$WORK/s3"' EXIT
  # shellcheck disable=SC1091
  . "$WORK/s3/env"
fi
BUCKET=mfreal$$
ROOT="s3://$BUCKET/metaflow"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 USERNAME=${USERNAME:-cas_s3_check}
export METAFLOW_DEFAULT_DATASTORE=s3 METAFLOW_DATASTORE_SYSROOT_S3="$ROOT" METAFLOW_DEFAULT_METADATA=local
export METAFLOW_S3_ENDPOINT_URL="$CAS_TEST_S3_ENDPOINT" METAFLOW_HOME="$WORK/mfhome"
$PY -c "import boto3,os; boto3.client('s3', endpoint_url=os.environ['METAFLOW_S3_ENDPOINT_URL']).create_bucket(Bucket='$BUCKET')"
cp "$HERE/casflow.py" "$HERE/cas_h_probe.py" "$WORK/"
cd "$WORK"

echo "== stock Metaflow ($(cd "$MF" && $PY -c 'import metaflow.metaflow_version as v; print(v.get_version())' 2>/dev/null || echo '?')) runs CasFlow on $ROOT"
PYTHONPATH="$MF" timeout 900 $PY casflow.py run 2>&1 | grep -E "total|Done|rror|xception" | sed 's/^[-0-9 :.]*\[[^]]*\] /  /'

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

echo "== digests of every unpickled artifact, as read by Metaflow's client"
PYTHONPATH="$MF" $PY "$HERE/mf_readall.py" | tee before.txt
echo "== cas migrate --to v2, then back to v1 (Metaflow releases read v1)"
$CAS migrate --to v2 --quiet CasFlow
PYTHONPATH="$MF:$REPO/python" METAFLOW_CAS_H=1 $PY "$HERE/mf_readall.py" | sed 's/^/  v2, Metaflow + extension: /'
$CAS migrate --to v1 --quiet CasFlow
PYTHONPATH="$MF" $PY "$HERE/mf_readall.py" | tee after.txt
grep -v reader before.txt > b.txt; grep -v reader after.txt > a.txt
cmp -s a.txt b.txt && echo "  same digests before and after the round trip" || { echo "  DIGESTS DIFFER"; exit 1; }

echo "== cas put into the flow; Metaflow's own S3 datastore loads it"
KEY=$(printf 'written by cas' | $CAS put --flow CasFlow)
PYTHONPATH="$MF" $PY - "$KEY" "$ROOT" <<'PYEOF'
import sys
from metaflow.datastore import FlowDataStore
from metaflow.plugins.datastores.s3_storage import S3Storage
key, root = sys.argv[1], sys.argv[2]
fds = FlowDataStore("CasFlow", None, storage_impl=S3Storage, ds_root=root)
got = dict(fds.ca_store.load_blobs([key]))
assert got[key] == b"written by cas", got
print("  Metaflow's ca_store.load_blobs read the blob cas put: %r" % got[key])
PYEOF
echo "work directory: $WORK"
