#!/bin/sh
# Installs everything cas.h builds, tests and benchmarks with, from Debian's
# packages only (Debian 12 "bookworm" or later). Run as root or with sudo.
#
#   infra/debian-deps.sh            everything (what the README's set-up runs)
#   infra/debian-deps.sh --minimal  the two libraries cas.h needs (zlib, liblz4) and
#                                   the test tools, none of the optional libraries:
#                                   CI builds and tests this configuration first
#
# The optional libraries, each used by `make` when found (lib/configure.sh): ISA-L,
# libdeflate, OpenSSL (SHA-1; and with libcurl + expat, the S3 backend, cas_cloud.h),
# xxhash.h (XXH3 keys).
# python3-dev: Python.h, for cas_h's speedups (python/cas_h/_speedups.c, the one-blob
# calls as a CPython extension; without it cas_h makes them through ctypes).
# Test tools: clang (sanitizers, fuzz replay), valgrind, python3-lz4 (Metaflow's LZ4
# path), python3-numpy + python3-pandas (the pickle-preview tests), python3-venv +
# python3-pip + python3-setuptools (`pip install ./python` in a fresh venv, offline),
# cmake (a CMake consumer), man-db (the man page renders); with everything, python3-flake8
# and python3-mypy (make test-lint: the Python code against .flake8, cas_h's annotations
# against mypy.ini) and clang-format-14 (make test-format:
# the C code against .clang-format; pinned, as another version formats differently).
# With the object-store backends only: radosgw and the ceph daemons (the real S3 server
# the tests start on loopback, tests/s3/s3server.sh), python3-boto3 (the tests' S3
# client), python3-azure (the Azure SDK: the tests' Azure client), and azurite, the Azure
# emulator, from npm (tests/azure/azurite.sh install; Node.js from Debian when the
# machine has none).
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
base="build-essential clang llvm libclang-rt-dev make pkg-config ca-certificates procps
  zlib1g-dev liblz4-dev
  python3 python3-dev python3-lz4 python3-numpy python3-pandas python3-venv python3-pip python3-setuptools
  valgrind cmake man-db"
optional="libxxhash-dev libisal-dev libdeflate-dev libssl-dev libcurl4-openssl-dev libexpat1-dev"
s3="python3-boto3 python3-azure radosgw ceph-mon ceph-osd ceph-common uuid-runtime curl"
tools="xxhash shellcheck cloud-init python3-flake8 python3-mypy clang-format-14"
case "${1:-}" in
  --minimal) pkgs=$base ;;
  "") pkgs="$base $optional $s3 $tools" ;;
  *) echo "usage: $0 [--minimal]" >&2; exit 2 ;;
esac
$SUDO apt-get update -q
# shellcheck disable=SC2086 # package lists
$SUDO apt-get install -y -q --no-install-recommends $pkgs

# azurite, for the user who runs the tests (not root's cache when run with sudo)
if [ "${1:-}" != "--minimal" ]; then
  command -v npm > /dev/null || $SUDO apt-get install -y -q --no-install-recommends nodejs npm
  sh "$(dirname "$0")/../tests/azure/azurite.sh" install
fi
