#!/bin/sh
# A newcomer's tour of cas on the bundled Metaflow stores (read-only fixtures;
# the migration runs on a copy in a temp directory).
set -eu
CAS=${CAS:-build/cas}
FIX=${CAS_FIXTURES:-tests/fixtures/metaflow}
V1=$FIX/v1/.metaflow
RUN=$(cat "$V1/FixtureFlow/latest_run")
TASK=FixtureFlow/$RUN/start/1
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "cas ls $TASK --root $V1"
"$CAS" ls "$TASK" --root "$V1"

say "cas artifact $TASK/config --root $V1 --verify | python3 -c 'unpickle and print'"
"$CAS" artifact "$TASK/config" --root "$V1" --verify |
  python3 -c 'import pickle, sys; print(pickle.loads(sys.stdin.buffer.read()))'

say "cas show $TASK/config --root $V1     # the same value, read from the pickle: nothing unpickled"
"$CAS" show "$TASK/config" --root "$V1"

say "cas show $TASK/weights --root $V1 --items 5     # a 1 MB array: only its first values are read"
"$CAS" show "$TASK/weights" --root "$V1" --items 5

say "cas artifact $TASK/weights --root $V1 --verify | wc -c     # 1 MB, streamed"
"$CAS" artifact "$TASK/weights" --root "$V1" --verify | wc -c

say "cas verify --root $V1      # every blob rehashed against its key"
"$CAS" verify --root "$V1" --quiet

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r "$FIX/mixed/.metaflow" "$WORK/"
say "cas verify --root COPY/.metaflow     # a store a v1 run and then a v2 run wrote into"
"$CAS" verify --root "$WORK/.metaflow" --quiet

say "cas migrate --to v2 --root COPY/.metaflow"
"$CAS" migrate --to v2 --root "$WORK/.metaflow" --quiet
BLOB=$(find "$WORK/.metaflow/FixtureFlow/data" -type f ! -name '*_meta' | head -n 1)
say "cas stat COPY/.../$(basename "$BLOB")"
"$CAS" stat "$BLOB"

say "cas migrate --to v1 --root COPY/.metaflow   # back: gzip every Metaflow reads"
"$CAS" migrate --to v1 --root "$WORK/.metaflow" --quiet
"$CAS" verify --root "$WORK/.metaflow" --quiet

say "printf 'hello' | cas put --flow DemoFlow --root COPY/.metaflow --v2"
KEY=$(printf 'hello' | "$CAS" put --flow DemoFlow --root "$WORK/.metaflow" --v2)
echo "$KEY"
say "cas get --flow DemoFlow $KEY --root COPY/.metaflow --verify"
"$CAS" get --flow DemoFlow "$KEY" --root "$WORK/.metaflow" --verify
echo
echo
echo "demo done: every command above is 'cas COMMAND --help' for more."
