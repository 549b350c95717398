#!/usr/bin/env python3
"""`make bench` (part): a Metaflow task's artifacts saved and loaded through the
extension's real save_blobs / load_blobs, against Metaflow's own paths, all on the
stand-in store (python/tests/mf_standin.py: files + JSON sidecars, as Metaflow's
local storage), on tmpfs.

Sides, each a ContentAddressedStore class in this process:
  metaflow_gzip  Metaflow 2.19's code: hashlib SHA-1 + Python gzip level 3
  pr3090         Metaflow PR #3090's code: hashlib SHA-1 + python-lz4 (cas_version 2)
  ext_v1/ext_v2  the cas_h extension installed on copies of those classes
Rows: each PR #3090 payload alone (save_blobs([it]) into an empty store;
load_blobs([its key])), then the whole task: the five payloads plus 30 small system
artifacts (decoded from the bundled fixture stores: _foreach_stack, _graph_info,
names, flags...), in one save_blobs and one load_blobs.

Every figure is a ratio of two sides timed in this run, interleaved run by run (per
op, run i of every side in an order shuffled per run, then run i + 1; the same number
of stores per sample on every side), the median of per-round ratios. Allocator state: the whole run
has MALLOC_MMAP_THRESHOLD_ and MALLOC_TOP_PAD_ set (this script re-executes itself
with them), so that neither side pays this machine's fresh-page faults (see
PERF-NOTES) for what the other side left behind; both sides get the same heap.

Targets (issue 11): ext_v2 >= 1.0x pr3090 on every payload's save and load, and on
the whole task >= 1.5x pr3090 and >= 15x metaflow_gzip (save + load). Writes
bench/results/task.md and prints PASS/FAIL per target; exit 1 on a FAIL with --check.

  /usr/bin/python3 bench/task.py [--rounds 9] [--target-ms 40] [--check]
"""
import argparse
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TOP_PAD_": str(256 << 20)}
if any(os.environ.get(k) != v for k, v in ENV.items()):
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, **ENV))

sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
os.environ.setdefault("CAS_H_LIBRARY", os.path.join(ROOT, "build", "libcas.so"))
import payloads  # noqa: E402
import report  # noqa: E402
import cas_h  # noqa: E402
from metaflow_extensions.cas_h import cas_store  # noqa: E402
from tests import mf_standin  # noqa: E402

PAYLOADS = ["config_233", "metrics_52k", "emb_800k", "weights_8m", "random_5m"]


class ExtV1(mf_standin.ContentAddressedStore):
    pass


class ExtV2(mf_standin.StandInStoreV2):
    pass


cas_store.install(1, cls=ExtV1, data_exception=mf_standin.DataException)
cas_store.install(2, cls=ExtV2, data_exception=mf_standin.DataException)
SIDES = {"metaflow_gzip": mf_standin.ContentAddressedStore, "pr3090": mf_standin.StandInStoreV2,
         "ext_v1": ExtV1, "ext_v2": ExtV2}


class Side:
    """One side's save and load of one set of blobs, each timed k times per sample."""

    def __init__(self, cls, blobs, tmp):
        self.cls, self.blobs, self.tmp = cls, blobs, tmp
        self.n = 0
        self.written = []
        src = self.fresh()
        self.keys = [r.key for r in src.save_blobs(list(blobs))]
        self.src = src
        got = dict(src.load_blobs(self.keys))
        if [got[k] for k in self.keys] != list(blobs):
            raise AssertionError("%s does not load back what it saved" % cls.__name__)

    def fresh(self):
        self.n += 1
        backend = mf_standin.LocalBackend(os.path.join(self.tmp, "%s-%d" % (self.cls.__name__, self.n)))
        return self.cls(backend.path_join("BenchFlow", "data"), backend)

    def save(self, k):
        return sum(self.save_once(self.fresh()) for _ in range(k)) / k

    def save_once(self, store):
        """One save_blobs into an empty store (every blob is written), in ns."""
        t0 = time.perf_counter_ns()
        store.save_blobs(iter(self.blobs), len_hint=len(self.blobs))
        t = time.perf_counter_ns() - t0
        self.written.append(store)  # removed by clean(), between rounds
        return t

    def clean(self):
        """Removes the stores saves wrote. Not right after a save: the kernel's work
        for a removal goes on after rmtree returns, and would land on the next timed
        block."""
        for st in self.written:
            shutil.rmtree(st._storage_impl.datastore_root)
        self.written = []

    def load(self, k):
        return sum(self.load_once() for _ in range(k)) / k

    def load_once(self, _store=None):
        """One load_blobs of every key, in ns."""
        t0 = time.perf_counter_ns()
        for _ in self.src.load_blobs(self.keys):
            pass
        return time.perf_counter_ns() - t0


def calibrate(fn, target_s):
    k = 1
    while True:
        t0 = time.perf_counter()
        fn(k)
        t = time.perf_counter() - t0
        if t >= target_s * 0.5 or k >= 4096:
            return k
        k = min(4096, max(k * 2, int(k * target_s / max(t, 1e-6)) + 1))


def measure(blobs, rounds, target_s, tmp):
    """Per round and op, every side runs the op k times (the slowest side's
    calibrated count, so that each pays the same per-store set-up and clean-up),
    interleaved run by run: run i of every side, in an order shuffled per run
    (seeded), then run i + 1. The sides' figures are thus taken in the same
    moments: this machine's slow spells (its file system's deferred work, its
    host) fall on every side alike instead of on whichever side ran then. The
    stores saves wrote are removed between rounds (Side.clean)."""
    sides = {name: Side(cls, blobs, tmp) for name, cls in SIDES.items()}
    ks = {op: min(calibrate(getattr(side, op), target_s) for side in sides.values()) for op in ("save", "load")}
    for side in sides.values():
        side.clean()
    order = random.Random(1729)
    rows = []
    for r in range(rounds):
        rec = {}
        gc.collect()
        gc.disable()
        try:
            for op in order.sample(["save", "load"], 2):
                k = ks[op]
                stores = {name: [side.fresh() if op == "save" else None for _ in range(k)]
                          for name, side in sides.items()}
                total = dict.fromkeys(sides, 0)
                for i in range(k):
                    for name in order.sample(list(sides), len(sides)):
                        total[name] += getattr(sides[name], op + "_once")(stores[name][i])
                for name in sides:
                    rec[(name, op)] = total[name] / k
        finally:
            gc.enable()
            for side in sides.values():
                side.clean()
        rows.append(rec)
    return rows


def ratio(rows, base, side, op):
    """How many times faster `side` is than `base` (median of per-round ratios)."""
    return statistics.median(r[(base, op)] / r[(side, op)] for r in rows)


def median_us(rows, side, op):
    return statistics.median(r[(side, op)] for r in rows) / 1000.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--target-ms", type=float, default=40.0)
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    print("machine: %s" % report.machine_state(), flush=True)
    pdir = os.path.join(ROOT, "build", "bench", "payloads")
    paths = payloads.ensure(pdir, log=lambda *a: None)
    data = {}
    for name in PAYLOADS:
        with open(paths[name], "rb") as f:
            data[name] = f.read()
    small = payloads.system_artifacts(cas_h)
    tmp = tempfile.mkdtemp(prefix="cas-bench-task-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    results, lines, fails = {}, [], []
    try:
        sets = [(name, [data[name]]) for name in PAYLOADS]
        sets.append(("task (5 payloads + 30 system artifacts)", [data[n] for n in PAYLOADS] + small))
        for label, blobs in sets:
            rows = measure(blobs, args.rounds, args.target_ms / 1000.0, tmp)
            results[label] = rows
            print("%s: measured" % label, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lines.append("# The extension's save_blobs / load_blobs on a task (bench/task.py)\n")
    lines.append("Stand-in store on tmpfs; %d rounds interleaved; medians of per-round ratios (x = times faster "
                 "than the side named); malloc state: MALLOC_MMAP_THRESHOLD_=1 GiB, MALLOC_TOP_PAD_=256 MiB for "
                 "the whole run. libcas: %s. Machine: %s (the figures depend on it: PERF-NOTES, \"A fresh "
                 "machine is not a warm one\"); blob files in the page cache (tmpfs).\n"
                 % (args.rounds, cas_h.library_path, report.machine_state()))
    lines.append("| blobs | op | ext_v2 vs pr3090 | ext_v2 vs metaflow_gzip | ext_v1 vs metaflow_gzip | "
                 "pr3090 | ext_v2 | metaflow_gzip | ext_v1 |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for label, rows in results.items():
        for op in ("save", "load"):
            r_pr = ratio(rows, "pr3090", "ext_v2", op)
            lines.append("| %s | %s | %.2fx | %.1fx | %.1fx | %.1f us | %.1f us | %.1f us | %.1f us |" % (
                label, op, r_pr, ratio(rows, "metaflow_gzip", "ext_v2", op), ratio(rows, "metaflow_gzip", "ext_v1", op),
                median_us(rows, "pr3090", op), median_us(rows, "ext_v2", op), median_us(rows, "metaflow_gzip", op),
                median_us(rows, "ext_v1", op)))
    lines.append("")
    checks = []
    for label, rows in results.items():
        whole = label.startswith("task")
        for op in ("save", "load"):
            checks.append(("%s %s: ext_v2 >= %.1fx pr3090" % (label, op, 1.5 if whole else 1.0),
                           ratio(rows, "pr3090", "ext_v2", op), 1.5 if whole else 1.0))
            if whole:
                checks.append(("%s %s: ext_v2 >= 15x metaflow_gzip" % (label, op),
                               ratio(rows, "metaflow_gzip", "ext_v2", op), 15.0))
    for what, got, want in checks:
        ok = got >= want
        if not ok:
            fails.append(what)
        lines.append("- %s %s (%.2fx)" % ("PASS" if ok else "FAIL", what, got))
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "task.md"), "w") as f:
        f.write(text)
    print(text)
    if fails and args.check:
        sys.exit(1)


if __name__ == "__main__":
    main()
