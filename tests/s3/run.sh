#!/bin/sh
# make test-s3: starts a real S3 server (tests/s3/s3server.sh: Ceph radosgw on
# loopback, free ports, a fresh cluster in a temp folder), runs the S3 tests
# against it, and stops it again, whatever happens.
#   tests/s3/run.sh [unittest arguments, e.g. TestFaults]
set -eu
cd "$(dirname "$0")/../.."
dir=$(mktemp -d "${TMPDIR:-/tmp}/cas-s3-XXXXXX")
trap 'tests/s3/s3server.sh stop "$dir"' EXIT
trap 'exit 130' INT TERM
tests/s3/s3server.sh start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
"${PYTHON:-/usr/bin/python3}" tests/test_s3.py "$@"
