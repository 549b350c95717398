#!/bin/sh
# Installs everything cas.h builds, tests and benchmarks with, from Debian's
# packages only (Debian 12 "bookworm" or later). Run as root or with sudo.
# libcurl + expat: the object-store backends (cas_cloud.h); radosgw and the ceph
# daemons: the real S3 server the tests start on loopback (tests/s3/s3server.sh);
# python3-boto3: the tests' and the benchmark's S3 client.
# python3-numpy, python3-pandas: the pickle-preview tests pickle arrays and frames with them.
# python3-venv, python3-pip, python3-setuptools: `pip install ./python` in a fresh venv, offline (a test).
# cmake: a CMake project consuming cas.h (make test-cmake); man-db: the man page renders.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential clang llvm libclang-rt-dev make pkg-config ca-certificates \
  zlib1g-dev liblz4-dev libxxhash-dev libisal-dev libdeflate-dev libssl-dev \
  libcurl4-openssl-dev libexpat1-dev \
  python3 python3-lz4 python3-numpy python3-pandas python3-boto3 python3-venv python3-pip python3-setuptools \
  radosgw ceph-mon ceph-osd ceph-common uuid-runtime procps curl \
  valgrind xxhash shellcheck cloud-init cmake man-db
