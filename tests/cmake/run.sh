#!/bin/sh
# make test-cmake: a CMake project uses cas.h both ways in, from a clean temp folder:
#   1. `make install PREFIX=<tmp>` then find_package(cas CONFIG) (CMAKE_PREFIX_PATH);
#   2. add_subdirectory() of this source tree (what FetchContent does);
#   3. CMakeLists.txt's own build + `cmake --install`, then find_package(cas CONFIG).
# Each builds a program linked with cas::cas and one with cas::headers, and runs both.
# Then `make uninstall` must leave no file behind.
set -eu
cd "$(dirname "$0")/../.."
repo=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cas-cmake-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
make --no-print-directory install PREFIX="$tmp/prefix" > "$tmp/install.log"
# 3. CMakeLists.txt's own build and `cmake --install` (a static libcas), then find_package
if ! { cmake -S . -B "$tmp/own" > "$tmp/own.log" 2>&1 && cmake --build "$tmp/own" > "$tmp/own.build.log" 2>&1 &&
        cmake --install "$tmp/own" --prefix "$tmp/cmake-prefix" > /dev/null; }; then
  cat "$tmp/own.log" "$tmp/own.build.log" 2>/dev/null
  exit 1
fi
for way in installed subdirectory cmake-install; do
  case $way in
    installed) arg="-DCMAKE_PREFIX_PATH=$tmp/prefix" ;;
    subdirectory) arg="-DCAS_SOURCE_DIR=$repo" ;;
    *) arg="-DCMAKE_PREFIX_PATH=$tmp/cmake-prefix" ;;
  esac
  cmake -S tests/cmake/consumer -B "$tmp/$way" "$arg" > "$tmp/$way.log" 2>&1 || { cat "$tmp/$way.log"; exit 1; }
  cmake --build "$tmp/$way" > "$tmp/$way.build.log" 2>&1 || { cat "$tmp/$way.build.log"; exit 1; }
  printf '%-14s ' "$way:"; "$tmp/$way/with_library"
  printf '%-14s ' "$way:"; "$tmp/$way/header_only"
done
grep -h "optional backends" "$tmp/subdirectory.log" | sed 's/^-- /subdirectory:  /'
# the man page renders; uninstall takes away exactly what install put
man -l "$tmp/prefix/share/man/man1/cas.1" 2>/dev/null | grep -q "cas - read, write" || [ ! -x /usr/bin/man ] || {
  echo "cas.1 does not render"; exit 1; }
make --no-print-directory uninstall PREFIX="$tmp/prefix" > /dev/null
left=$(find "$tmp/prefix" ! -type d | wc -l)
[ "$left" -eq 0 ] || { echo "uninstall left:"; find "$tmp/prefix" ! -type d; exit 1; }
echo "install, uninstall: nothing left behind"
