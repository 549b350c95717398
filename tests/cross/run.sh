#!/bin/sh
# make test-cross: starts both servers (radosgw and azurite, as tests/s3/run.sh and
# tests/azure/run.sh do), runs the tests that need the two at once (tests/test_cross.py:
# cas cp from one object store to the other), and stops both, whatever happens.
#   tests/cross/run.sh [unittest arguments]
set -eu
cd "$(dirname "$0")/../.."
s3=$(mktemp -d "${TMPDIR:-/tmp}/cas-s3-XXXXXX")
az=$(mktemp -d "${TMPDIR:-/tmp}/cas-azure-XXXXXX")
trap 'tests/azure/azurite.sh stop "$az"; tests/s3/s3server.sh stop "$s3"' EXIT
trap 'exit 130' INT TERM
tests/s3/s3server.sh start "$s3"
tests/azure/azurite.sh start "$az"
# shellcheck disable=SC1091
. "$s3/env"
# shellcheck disable=SC1091
. "$az/env"
"${PYTHON:-/usr/bin/python3}" tests/test_cross.py "$@"
