#!/bin/sh
# Replays every input under tests/fuzz/regressions/<target>/ one by one through
# its target built with -DFUZZ_STRICT (the FUZZ_KNOWN_* tolerances off) and
# says which still fail: an open bug, or one that came back. Exit status 1 if any.
#   sh tests/fuzz/check_regressions.sh [TARGET...]
cd "$(dirname "$0")/../.." || exit 2
out=${TMPDIR:-/tmp}/cas-fuzz-strict
mkdir -p "$out"
targets=${*:-$(ls tests/fuzz/regressions)}
bad=0
for t in $targets; do
  [ -d tests/fuzz/regressions/$t ] || continue
  clang -std=c99 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -DCAS_USE_ISAL \
    -DCAS_USE_LIBDEFLATE -DCAS_USE_OPENSSL -DCAS_FUZZ_REPLAY -DFUZZ_STRICT -o "$out/strict_$t" \
    tests/fuzz/fuzz_$t.c -lz -llz4 -lpthread -lm -lisal -ldeflate -lcurl -lexpat -lcrypto || exit 2
  for f in tests/fuzz/regressions/$t/*; do
    if "$out/strict_$t" "$f" > "$out/log" 2>&1; then
      echo "fixed   $f"
    else
      echo "FAILS   $f: $(grep -m1 -E 'invariant broken|ERROR: AddressSanitizer|runtime error' "$out/log" | cut -c1-150)"
      bad=1
    fi
  done
done
exit $bad
