#!/bin/sh
# make test-azure: starts azurite (tests/azure/azurite.sh, on loopback, a free
# port, in memory), runs the Azure tests against it, and stops it again,
# whatever happens.
#   tests/azure/run.sh [unittest arguments, e.g. TestFaults]
set -eu
cd "$(dirname "$0")/../.."
dir=$(mktemp -d "${TMPDIR:-/tmp}/cas-azure-XXXXXX")
trap 'tests/azure/azurite.sh stop "$dir"' EXIT
trap 'exit 130' INT TERM
tests/azure/azurite.sh start "$dir"
# shellcheck disable=SC1091
. "$dir/env"
"${PYTHON:-/usr/bin/python3}" tests/test_azure.py "$@"
