#!/usr/bin/env bash
# bench-vm.sh: run cas.h's `make bench` on a machine like the one the seed
# figures came from (Azure Standard_D2s_v5: 2 vCPU, 8 GiB, Debian 12) and copy
# the results back.
#
#   infra/bench-vm.sh                       Azure: create a VM in a fresh resource
#                                           group (cloud-init installs the packages),
#                                           upload the working tree, wait for
#                                           cloud-init to finish the run, copy the
#                                           results back, delete the group
#   infra/bench-vm.sh --host user@host      any Debian 12 host reachable by ssh
#                                           (passwordless sudo for the packages)
#
# Options:
#   --host USER@HOST     use this host instead of creating a VM
#   --out DIR            where the results land (default bench/results-remote/<name>-<stamp>)
#   --location LOC       Azure region (default: $AZ_LOCATION, else westeurope)
#   --size SIZE          VM size (default Standard_D2s_v5)
#   --image URN          image (default Debian:debian-12:12:latest)
#   --group NAME         resource group to create and delete (default cas-bench-<stamp>)
#   --ssh-key FILE       public key for the VM's admin user (default ~/.ssh/id_ed25519.pub
#                        or ~/.ssh/id_rsa.pub)
#   --repo-url URL       let the VM clone URL (--ref REF) instead of uploading the tree
#   --stream-gib N       also run the streaming RSS check once at N GiB (e.g. 4)
#   --no-deps            --host only: do not apt-get install the packages
#   --keep               do not delete the Azure resource group at the end
#   --dry-run            print what would run, touch nothing
#   -h, --help           this text
#
# Needs: az (logged in: `az login`), ssh, scp, tar, git. Nothing is left on Azure
# unless --keep: the whole resource group goes, VM, disk, NIC and IP with it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

HOST=""
OUT=""
LOCATION=${AZ_LOCATION:-westeurope}
SIZE=Standard_D2s_v5
IMAGE=Debian:debian-12:12:latest
GROUP="cas-bench-$STAMP"
VM_NAME=cas-bench
ADMIN=azureuser
SSH_KEY=""
REPO_URL=""
REF=""
STREAM_GIB=""
DEPS=1
KEEP=0
DRY=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() {
    echo "bench-vm: $*" >&2
    exit 1
}
need_arg() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
}

while [ $# -gt 0 ]; do
    case $1 in
    --host) need_arg "$@"; HOST=$2; shift 2 ;;
    --out) need_arg "$@"; OUT=$2; shift 2 ;;
    --location) need_arg "$@"; LOCATION=$2; shift 2 ;;
    --size) need_arg "$@"; SIZE=$2; shift 2 ;;
    --image) need_arg "$@"; IMAGE=$2; shift 2 ;;
    --group) need_arg "$@"; GROUP=$2; shift 2 ;;
    --ssh-key) need_arg "$@"; SSH_KEY=$2; shift 2 ;;
    --repo-url) need_arg "$@"; REPO_URL=$2; shift 2 ;;
    --ref) need_arg "$@"; REF=$2; shift 2 ;;
    --stream-gib) need_arg "$@"; STREAM_GIB=$2; shift 2 ;;
    --no-deps) DEPS=0; shift ;;
    --keep) KEEP=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done
if [ -n "$STREAM_GIB" ]; then
    case $STREAM_GIB in *[!0-9]*) die "--stream-gib takes a whole number of GiB" ;; esac
fi

TMP=$(mktemp -d)
KNOWN="$TMP/known_hosts"
SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new -o "UserKnownHostsFile=$KNOWN")
CREATED_GROUP=0

cleanup() {
    local rc=$?
    if [ "$CREATED_GROUP" = 1 ]; then
        if [ "$KEEP" = 1 ]; then
            echo "bench-vm: --keep: resource group $GROUP is still there (az group delete -n $GROUP --yes)" >&2
        else
            echo "bench-vm: deleting resource group $GROUP" >&2
            az group delete --name "$GROUP" --yes --no-wait || echo "bench-vm: delete it by hand: az group delete -n $GROUP --yes" >&2
        fi
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run() { # prints the command; runs it unless --dry-run
    echo "+ $*" >&2
    [ "$DRY" = 1 ] || "$@"
}

# The working tree as the developer has it (tracked and untracked, minus what
# .gitignore drops, e.g. build/), and a SOURCE_ID naming the commit.
make_tarball() {
    local tarball=$1 list="$TMP/files"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard > "$list"
    (cd "$REPO" && git describe --always --dirty --abbrev=10 2>/dev/null || echo unknown) > "$TMP/SOURCE_ID"
    tar -cf "$TMP/src.tar" -C "$REPO" --null --files-from "$list" --ignore-failed-read
    tar -rf "$TMP/src.tar" -C "$TMP" SOURCE_ID
    gzip -c "$TMP/src.tar" > "$tarball"
    echo "bench-vm: source $(cat "$TMP/SOURCE_ID"), $(du -k "$tarball" | cut -f1) KiB" >&2
}

wait_ssh() {
    local target=$1 i
    for i in $(seq 1 60); do
        if ssh "${SSH_OPTS[@]}" "$target" true 2>/dev/null; then return 0; fi
        echo "bench-vm: waiting for ssh on $target ($i)" >&2
        sleep 10
    done
    die "no ssh on $target after 10 minutes"
}

fetch_results() { # target remote_cas_bench_home
    local target=$1 base=$2 dir
    # shellcheck disable=SC2029 # $base is expanded here; a literal $HOME in it on the host
    dir=$(ssh "${SSH_OPTS[@]}" "$target" "readlink -f $base/results/latest")
    [ -n "$dir" ] || die "no results on $target under $base"
    mkdir -p "$OUT"
    scp "${SSH_OPTS[@]}" -r "$target:$dir/." "$OUT/"
    echo "bench-vm: results in $OUT" >&2
    if [ -f "$OUT/results.md" ]; then grep -E '^## Targets' "$OUT/results.md" >&2 || true; fi
}

if [ -n "$HOST" ]; then
    # ---- any host reachable by ssh ----------------------------------------------------
    [ -n "$OUT" ] || OUT="$REPO/bench/results-remote/${HOST#*@}-$STAMP"
    if [ "$DRY" = 1 ]; then
        echo "+ tar the working tree of $REPO; scp it and infra/cas-bench-run.sh to $HOST:/tmp/" >&2
        echo "+ ssh $HOST sudo CAS_BENCH_DEPS=$DEPS CAS_BENCH_STREAM_GIB=$STREAM_GIB sh /tmp/cas-bench-run.sh /tmp/cas-bench-src.tar.gz" >&2
        echo "+ scp -r $HOST:/var/lib/cas-bench/results/latest/. $OUT/" >&2
        exit 0
    fi
    make_tarball "$TMP/src.tar.gz"
    wait_ssh "$HOST"
    scp "${SSH_OPTS[@]}" "$TMP/src.tar.gz" "$HOST:/tmp/cas-bench-src.tar.gz"
    scp "${SSH_OPTS[@]}" "$HERE/cas-bench-run.sh" "$HOST:/tmp/cas-bench-run.sh"
    if [ "$DEPS" = 1 ]; then
        base=/var/lib/cas-bench
        # shellcheck disable=SC2029 # expanded here on purpose
        ssh "${SSH_OPTS[@]}" "$HOST" "sudo -n env CAS_BENCH_DEPS=1 CAS_BENCH_STREAM_GIB='$STREAM_GIB' sh /tmp/cas-bench-run.sh /tmp/cas-bench-src.tar.gz"
    else
        # shellcheck disable=SC2016 # the host's $HOME, expanded there
        base='$HOME/cas-bench'
        # shellcheck disable=SC2029
        ssh "${SSH_OPTS[@]}" "$HOST" "env CAS_BENCH_HOME=$base CAS_BENCH_STREAM_GIB='$STREAM_GIB' sh /tmp/cas-bench-run.sh /tmp/cas-bench-src.tar.gz"
    fi
    fetch_results "$HOST" "$base"
    exit 0
fi

# ---- Azure ----------------------------------------------------------------------------
[ -n "$OUT" ] || OUT="$REPO/bench/results-remote/azure-$SIZE-$STAMP"
if [ -z "$SSH_KEY" ]; then
    for k in ~/.ssh/id_ed25519.pub ~/.ssh/id_rsa.pub; do
        if [ -f "$k" ]; then SSH_KEY=$k; break; fi
    done
fi
if [ "$DRY" = 0 ] && { [ -z "$SSH_KEY" ] || [ ! -f "$SSH_KEY" ]; }; then
    die "no ssh public key: pass --ssh-key FILE (ssh-keygen -t ed25519 makes one)"
fi
if [ "$DRY" = 0 ]; then
    command -v az > /dev/null || die "the Azure CLI (az) is not installed"
    az account show > /dev/null 2>&1 || die "az is not logged in: run az login"
fi

# custom data: infra/cloud-init.yaml, with the clone URL and options filled in
CUSTOM="$TMP/cloud-init.yaml"
awk -v url="$REPO_URL" -v ref="$REF" -v gib="$STREAM_GIB" '
    /^      CAS_BENCH_REPO_URL=$/ { print "      CAS_BENCH_REPO_URL=" url; next }
    /^      CAS_BENCH_REF=$/ { print "      CAS_BENCH_REF=" ref; next }
    /^      CAS_BENCH_STREAM_GIB=$/ { print "      CAS_BENCH_STREAM_GIB=" gib; next }
    { print }' "$HERE/cloud-init.yaml" > "$CUSTOM"

run az group create --name "$GROUP" --location "$LOCATION" --output none
CREATED_GROUP=$((1 - DRY))
IP=$(run az vm create --resource-group "$GROUP" --name "$VM_NAME" --image "$IMAGE" --size "$SIZE" \
    --admin-username "$ADMIN" --ssh-key-values "$SSH_KEY" --custom-data "$CUSTOM" \
    --public-ip-sku Standard --query publicIpAddress --output tsv)
[ "$DRY" = 0 ] || IP=192.0.2.1
[ -n "$IP" ] || die "az vm create gave no public IP"
TARGET="$ADMIN@$IP"
echo "bench-vm: VM $VM_NAME at $IP ($SIZE, $IMAGE)" >&2

if [ "$DRY" = 1 ]; then
    echo "+ wait for ssh on $TARGET; scp the working tree to $TARGET:/var/lib/cas-bench/incoming/src.tar.gz" >&2
    echo "+ ssh $TARGET cloud-init status --wait; scp -r $TARGET:/var/lib/cas-bench/results/latest/. $OUT/" >&2
    echo "+ az group delete --name $GROUP --yes --no-wait" >&2
    exit 0
fi

wait_ssh "$TARGET"
if [ -z "$REPO_URL" ]; then
    make_tarball "$TMP/src.tar.gz"
    # into place under a temporary name, then renamed: the runner never sees half a file
    scp "${SSH_OPTS[@]}" "$TMP/src.tar.gz" "$TARGET:/var/lib/cas-bench/incoming/src.tar.gz.part"
    ssh "${SSH_OPTS[@]}" "$TARGET" "mv /var/lib/cas-bench/incoming/src.tar.gz.part /var/lib/cas-bench/incoming/src.tar.gz"
fi
echo "bench-vm: waiting for cloud-init (packages, build, make bench)" >&2
ssh "${SSH_OPTS[@]}" -o ServerAliveInterval=30 "$TARGET" "cloud-init status --wait" || true
status=$(ssh "${SSH_OPTS[@]}" "$TARGET" "cat /var/lib/cas-bench/status" || echo "unknown")
echo "bench-vm: run status: $status" >&2
if [ "$status" != "done" ]; then
    ssh "${SSH_OPTS[@]}" "$TARGET" "tail -n 40 /var/log/cas-bench.log" >&2 || true
    die "the benchmark did not finish ($status)"
fi
fetch_results "$TARGET" /var/lib/cas-bench
