#!/bin/sh
# Installs everything cas.h builds, tests and benchmarks with, from Debian's
# packages only (Debian 12 "bookworm" or later). Run as root or with sudo.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential clang llvm libclang-rt-dev make pkg-config ca-certificates \
  zlib1g-dev liblz4-dev libxxhash-dev libisal-dev libdeflate-dev libssl-dev \
  python3 python3-lz4 python3-numpy \
  valgrind xxhash shellcheck cloud-init
