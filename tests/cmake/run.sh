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
# pkg-config: a program linked with libcas.so, and one linked with libcas.a and what
# cas.pc says a static libcas needs first-hand (Requires.private modules, Libs.private;
# `pkg-config --static` would add those modules' own private libraries too, and Debian
# does not install the -dev packages libcurl's list names, so that is left out here)
pc() { PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config "$@"; }
app=tests/cmake/consumer/with_library.c
# shellcheck disable=SC2046 # flag lists
cc -o "$tmp/pc-shared" "$app" $(pc --cflags --libs cas) -Wl,-rpath,"$tmp/prefix/lib"
printf '%-14s ' "pkg-config:"; "$tmp/pc-shared"
requires=$(pc --print-requires-private cas | awk '{ print $1 }')
# shellcheck disable=SC2046,SC2086
cc -o "$tmp/pc-static" "$app" $(pc --cflags cas) "$tmp/prefix/lib/libcas.a" ${requires:+$(pc --libs $requires)} \
  $(sed -n 's/^Libs.private: //p' "$tmp/prefix/lib/pkgconfig/cas.pc")
printf '%-14s ' "libcas.a:"; "$tmp/pc-static"
if ldd "$tmp/pc-static" | grep -q libcas; then echo "the static program loads libcas.so"; exit 1; fi
pc --static --libs cas > /dev/null
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
# every subcommand's help, with the --json field names scripts rely on
man -l "$tmp/prefix/share/man/man1/cas.1" 2>/dev/null | grep -q '"system_tags"' || [ ! -x /usr/bin/man ] || {
  echo "cas.1 lacks the subcommands' help (the --json fields)"; exit 1; }
make --no-print-directory uninstall PREFIX="$tmp/prefix" > /dev/null
left=$(find "$tmp/prefix" ! -type d | wc -l)
[ "$left" -eq 0 ] || { echo "uninstall left:"; find "$tmp/prefix" ! -type d; exit 1; }
echo "install, uninstall: nothing left behind"
