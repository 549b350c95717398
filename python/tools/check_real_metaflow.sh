#!/bin/sh
# Runs a real flow with real Metaflow, with and without the cas_h extension,
# and reads every artifact back across the combinations. Not part of CI (it
# needs Metaflow's source, e.g. fetched from github.com/Netflix/metaflow):
#
#   MF=/path/to/metaflow MF3090=/path/to/metaflow-pr-3090 sh python/tools/check_real_metaflow.sh
#
# MF: a Metaflow source tree (2.19.38 was used); MF3090: the head of PR #3090
# (optional). Needs python3-numpy and python3-lz4, and `make` run first.
# PIP=1: the extension as a user installs it, `pip install ./python` into a fresh
# venv (--system-site-packages, offline); Metaflow then finds it in site-packages,
# with nothing of this checkout on PYTHONPATH.
set -u
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
EXT=$(cd "$HERE/.." && pwd)
WORK=${WORK:-$(mktemp -d)}
if [ "${PIP:-0}" = 1 ]; then
  if ! { $PY -m venv --system-site-packages "$WORK/venv" &&
          env -u PYTHONPATH "$WORK/venv/bin/pip" install -q --no-build-isolation --no-index "$EXT" \
            > "$WORK/pip.log" 2>&1; }; then
    cat "$WORK/pip.log"
    exit 1
  fi
  PY=$WORK/venv/bin/python
  EXT=$WORK/no-extension-on-the-path  # installed: found in the venv's site-packages
  echo "extension installed by pip into $WORK/venv: $($PY -c 'import cas_h; print(cas_h.library_path)')"
fi
: "${MF:?set MF to a Metaflow source tree}"
MF3090=${MF3090:-}
export USERNAME=${USERNAME:-cas_h_check}

STOCK_PY=/usr/bin/python3  # no venv: no installed extension either
run() { # label, dir, PYTHONPATH, env...; stock runs name no extension path
  label=$1 dir=$2 pp=$3; shift 3
  py=$PY
  case $pp in *"$EXT"*) ;; *) py=$STOCK_PY ;; esac
  echo "== $label ($py)"
  (cd "$dir" && env PYTHONPATH="$pp:$dir" "$@" timeout 900 $py casflow.py run 2>&1 |
     grep -E "cas_h|total|Done|rror|xception" | sed 's/^[-0-9 :.]*\[[^]]*\] /  /')
}
read_all() { # label, dir, PYTHONPATH, env...
  label=$1 dir=$2 pp=$3; shift 3
  py=$PY
  case $pp in *"$EXT"*) ;; *) py=$STOCK_PY ;; esac
  echo "-- read by $label"
  cache=$(mktemp -d)   # a fresh client cache: no reader sees another's decoded blobs
  (cd "$dir" && env PYTHONPATH="$pp" METAFLOW_CLIENT_CACHE_PATH="$cache" "$@" $py "$HERE/mf_readall.py" 2>&1)
  rm -rf "$cache"
}
readers() { # dir
  read_all "stock Metaflow (no extension on PYTHONPATH)" "$1" "$MF"
  read_all "Metaflow + extension, switched off" "$1" "$MF:$EXT"
  read_all "Metaflow + extension, METAFLOW_CAS_H=1" "$1" "$MF:$EXT" METAFLOW_CAS_H=1
  [ -n "$MF3090" ] && read_all "stock Metaflow PR #3090" "$1" "$MF3090"
  (cd "$1" && $PY "$HERE/mf_blobs.py" .metaflow)
}

for d in a b c; do
  mkdir -p "$WORK/$d" && cp "$HERE/casflow.py" "$HERE/cas_h_probe.py" "$WORK/$d/" || exit 1
done

run "A1: extension on, v1 (default)" "$WORK/a" "$MF:$EXT" METAFLOW_CAS_H=1
run "A2: stock Metaflow, same datastore" "$WORK/a" "$MF"
readers "$WORK/a"
run "B: extension on, METAFLOW_CAS_H_VERSION=2" "$WORK/b" "$MF:$EXT" METAFLOW_CAS_H=1 METAFLOW_CAS_H_VERSION=2
readers "$WORK/b"
if [ -n "$MF3090" ]; then
  run "C: stock Metaflow PR #3090 (writes v2 itself)" "$WORK/c" "$MF3090"
  readers "$WORK/c"
fi
echo "work directory: $WORK"
