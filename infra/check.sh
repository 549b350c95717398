#!/bin/sh
# infra/check.sh: offline checks of infra/ (what CI can run; nothing reaches a cloud).
#   - shellcheck on every infra/*.sh
#   - cloud-init's own schema validation of infra/cloud-init.yaml
#   - the runner embedded in cloud-init.yaml equals infra/cas-bench-run.sh, and its
#     package list covers every package infra/debian-deps.sh installs
#   - bench-vm.sh parses its options (--help, --dry-run for Azure and --host)
# Needs shellcheck, cloud-init and python3-yaml (cloud-init depends on it): all in
# infra/debian-deps.sh.
set -eu
cd "$(dirname "$0")"
fail=0
step() { printf '%-58s ' "$1"; }
ok() { echo ok; }
bad() {
    echo "FAIL"
    fail=1
}

for tool in shellcheck cloud-init python3; do
    command -v "$tool" > /dev/null || {
        echo "infra/check.sh: $tool is not installed (sudo infra/debian-deps.sh)" >&2
        exit 2
    }
done

step "shellcheck infra/*.sh"
if shellcheck -x ./*.sh; then ok; else bad; fi

step "cloud-init schema --config-file infra/cloud-init.yaml"
if out=$(cloud-init schema --config-file cloud-init.yaml 2>&1); then ok; else
    bad
    echo "$out"
fi

step "cloud-init.yaml: embedded runner, package list"
if python3 - << 'EOF'; then ok; else bad; fi
import re, sys, yaml
doc = yaml.safe_load(open("cloud-init.yaml"))
files = {f["path"]: f["content"] for f in doc.get("write_files", [])}
runner = files.get("/usr/local/sbin/cas-bench-run")
problems = []
if runner != open("cas-bench-run.sh").read():
    problems.append("the runner in cloud-init.yaml differs from infra/cas-bench-run.sh")
lists = re.findall(r'^(base|optional|s3|tools)="([^"]*)"', open("debian-deps.sh").read(), re.M)
want = set(w for _, body in lists for w in body.split())
if len(lists) != 4 or not want:
    problems.append("debian-deps.sh's package lists (base, optional, s3, tools) were not found")
missing = sorted(want - set(doc.get("packages", [])))
if missing:
    problems.append("cloud-init.yaml lacks packages of debian-deps.sh: " + " ".join(missing))
if not any("cas-bench-run --wait" in str(c) for c in doc.get("runcmd", [])):
    problems.append("runcmd does not start cas-bench-run --wait")
for p in problems:
    print("\n  " + p, end="")
sys.exit(1 if problems else 0)
EOF

step "bench-vm.sh --help / --dry-run (Azure, --host)"
if ./bench-vm.sh --help > /dev/null &&
    ./bench-vm.sh --dry-run --ssh-key /dev/null > /dev/null 2>&1 &&
    ./bench-vm.sh --dry-run --host bench@192.0.2.1 > /dev/null 2>&1 &&
    ! ./bench-vm.sh --no-such-option > /dev/null 2>&1; then ok; else bad; fi

step "sh -n infra/cas-bench-run.sh; bash -n infra/bench-vm.sh"
if sh -n cas-bench-run.sh && bash -n bench-vm.sh; then ok; else bad; fi

if [ "$fail" = 0 ]; then echo "infra/check.sh: all checks pass"; else echo "infra/check.sh: FAILED"; fi
exit "$fail"
