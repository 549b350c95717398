#!/usr/bin/env python3
"""`make bench`: cas.h against Metaflow's paths and the raw libraries, in one run.

Every number in the table is a ratio of two things timed in this run,
interleaved round by round (medians of per-round ratios), never an absolute
time compared with another day's. Writes bench/results/results.md,
results.json and chart.svg.

  /usr/bin/python3 bench/run.py                 the full run (what `make bench` does)
  /usr/bin/python3 bench/run.py --rounds 3      quicker, noisier
  /usr/bin/python3 bench/run.py --stream-only --stream-gib 4   only the streaming RSS check
"""
import argparse
import gc
import gzip
import hashlib
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import payloads  # noqa: E402
import report  # noqa: E402

BUILD = os.path.join(ROOT, "build")
BDIR = os.path.join(BUILD, "bench")
BENCH_C = os.path.join(BDIR, "bench_c")
CAS = os.path.join(BUILD, "cas")
LIBS = ["-lz", "-llz4", "-lisal", "-ldeflate", "-lcurl", "-lexpat", "-lcrypto", "-lpthread"]

try:
    import lz4.frame as lz4frame
except ImportError:  # python3-lz4 is in infra/debian-deps.sh
    lz4frame = None


def log(*a):
    print(*a, flush=True)


# ---- building ------------------------------------------------------------------------------

def build_bench_c():
    src = os.path.join(HERE, "bench_c.c")
    lib = os.path.join(BUILD, "libcas.a")
    if not os.path.exists(lib):
        sys.exit("bench: %s is missing: run `make` first (make bench does)" % lib)
    os.makedirs(BDIR, exist_ok=True)
    deps = [src, lib, os.path.join(ROOT, "cas.h"), os.path.join(ROOT, "cas_codecs.h")]
    if os.path.exists(BENCH_C) and all(os.path.getmtime(BENCH_C) >= os.path.getmtime(d) for d in deps):
        return
    cmd = [os.environ.get("CC", "cc"), "-O2", "-Wall", "-Wextra", "-o", BENCH_C, src, lib] + LIBS
    log("  " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd))
    subprocess.check_call(cmd)


# ---- Python's paths: (a) Metaflow today, (b) PR #3090, (c) the ctypes binding -------------

def a_save(blob):
    """Metaflow's ContentAddressedStore: sha1 key, then _pack_v1 (gzip level 3 into BytesIO)."""
    key = hashlib.sha1(blob).hexdigest()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=3) as f:
        f.write(blob)
    return key, buf.getvalue()


def a_load(packed):
    """Metaflow's _unpack_v1."""
    with gzip.GzipFile(fileobj=io.BytesIO(packed), mode="rb") as f:
        return f.read()


def b_save(blob):
    """PR #3090: sha1 key, then lz4.frame.compress with python-lz4's defaults."""
    return hashlib.sha1(blob).hexdigest(), lz4frame.compress(blob)


def b_load(packed):
    return lz4frame.decompress(packed)


def load_binding():
    """The ctypes binding (python/cas_h) if it is there: a save+load callable factory, or a reason."""
    pydir = os.path.join(ROOT, "python")
    if not os.path.exists(os.path.join(pydir, "cas_h", "__init__.py")):
        return None, "python/cas_h is not there yet"
    sys.path.insert(0, pydir)
    os.environ.setdefault("CAS_H_LIBRARY", os.path.join(BUILD, "libcas.so"))
    try:
        import cas_h  # noqa: F401
    except Exception as e:  # the binding is someone else's work in progress
        return None, "import cas_h failed: %s" % e
    import binding_paths

    return binding_paths.make(cas_h)


class PyOps:
    """Python operations on one payload, each calibrated to ~target seconds per sample."""

    def __init__(self, name, data, ops, target_s, binding):
        self.data = data
        self.fns = {}
        key, self.a_blob = a_save(data)
        assert a_load(self.a_blob) == data
        if lz4frame:
            self.b_blob = b_save(data)[1]
            assert b_load(self.b_blob) == data
        for op in ops:
            if op == "py_a_save":
                self.fns[op] = lambda: a_save(data)
            elif op == "py_a_load":
                self.fns[op] = lambda: a_load(self.a_blob)
            elif op == "py_b_save" and lz4frame:
                self.fns[op] = lambda: b_save(data)
            elif op == "py_b_load" and lz4frame:
                self.fns[op] = lambda: b_load(self.b_blob)
            elif op == "py_sha1":
                self.fns[op] = lambda: hashlib.sha1(data).hexdigest()
            elif op.startswith("bind_") and binding:
                fn = binding.get(op[5:], data)
                if fn:
                    self.fns[op] = fn
        self.k = {op: self._calibrate(fn, target_s) for op, fn in self.fns.items()}

    @staticmethod
    def _calibrate(fn, target_s):
        k = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            t = time.perf_counter() - t0
            if t >= target_s * 0.5 or k >= 1 << 22:
                return k
            k = k * 16 if t < 1e-6 else int(k * target_s / t) + 1

    def round(self, rnd):
        out = {}
        ops = list(self.fns)
        gc.collect()
        gc.disable()
        try:
            for j in range(len(ops)):
                op = ops[(j + rnd) % len(ops)]
                fn, k = self.fns[op], self.k[op]
                t0 = time.perf_counter_ns()
                for _ in range(k):
                    fn()
                out[op] = (time.perf_counter_ns() - t0) / k
        finally:
            gc.enable()
        return out


class COps:
    """A bench_c process serving rounds for one payload."""

    def __init__(self, path, ops, target_ms, gz_path):
        self.p = subprocess.Popen([BENCH_C, "ops", path, ",".join(ops), str(target_ms), gz_path],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            sys.exit("bench: bench_c failed on %s (exit %s)" % (path, self.p.returncode))
        self.ready = json.loads(line)

    def round(self):
        self.p.stdin.write("round\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            sys.exit("bench: bench_c died mid-run (exit %s)" % self.p.wait())
        return json.loads(line)

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        self.p.wait()


# What runs on which payload. C op names are bench_c's; py_* run here; bind_* through cas_h.
C_ALL = ["memcpy", "sha1", "xxh3", "lz4f_c", "lz4f_d", "zlib3", "libdeflate_d", "zlib_d", "cas_v1", "cas_v2",
         "cas_v2_xxh3", "read_v1_zlib", "read_v1_own", "read_v2", "read_v2_into"]
# The PR #3090 payloads also go through the Metaflow extension's save and load (Python + ctypes).
PY_PR = ["py_a_save", "py_a_load", "py_b_save", "py_b_load",
         "bind_ext_save_v1", "bind_ext_load_v1", "bind_ext_save_v2", "bind_ext_load_v2"]
PLAN = {
    "config_233": (C_ALL + ["rt_v1", "rt_v2"], PY_PR + ["bind_rt_v1", "bind_rt_v2"]),
    "metrics_52k": (C_ALL + ["rt_v1", "rt_v2"], PY_PR),
    "emb_800k": (C_ALL, PY_PR),
    "weights_8m": (C_ALL + ["sha1_par2", "cas_v2_t1", "cas_v2_b4m", "lz4f_c4m", "cas_v1_l7", "read_v1_zlib_into",
                            "cas_v2_xxh3_b4m", "cas_v2_xxh3_t1", "cas_v1_t1", "cas_hash_sha1", "cas_hash_xxh3"],
                   PY_PR + ["py_sha1"]),
    "random_5m": (C_ALL, PY_PR),
    "text_64m": (C_ALL + ["cas_v2_b4m", "lz4f_c4m"], ["py_a_load", "py_b_save", "py_b_load"]),
}


def run_payload(name, path, rounds, target_ms, binding):
    with open(path, "rb") as f:
        data = f.read()
    c_ops, py_ops = PLAN[name]
    py = PyOps(name, data, py_ops, target_ms / 1000.0, binding)
    gz_path = os.path.join(BDIR, "payloads", name + ".py.gz")
    with open(gz_path, "wb") as f:  # the v1 blob Python wrote: C's v1 reads decode exactly it
        f.write(py.a_blob)
    c = COps(path, c_ops, target_ms, gz_path)
    rows = []
    for r in range(rounds):
        if r % 2 == 0:
            rec = c.round()
            rec.update(py.round(r))
        else:
            rec = py.round(r)
            rec.update(c.round())
        rows.append(rec)
    c.close()
    sizes = dict(c.ready["sizes"])
    sizes["py_a"] = len(py.a_blob)
    if lz4frame:
        sizes["py_b"] = len(py.b_blob)
    return {"n": c.ready["n"], "sizes": sizes, "out_len": {o: v["out_len"] for o, v in c.ready["ops"].items()},
            "k": {**{o: v["k"] for o, v in c.ready["ops"].items()}, **py.k}, "rounds": rows}


# ---- batch put -----------------------------------------------------------------------------

def pick_tmp(need_bytes, prefer_tmpfs=True):
    """A scratch directory: tmpfs (/dev/shm) when it has room, else the default temp dir."""
    cands = (["/dev/shm"] if prefer_tmpfs else []) + [tempfile.gettempdir()]
    for d in cands:
        try:
            st = os.statvfs(d)
            if os.access(d, os.W_OK) and st.f_bavail * st.f_frsize > need_bytes * 1.5:
                return tempfile.mkdtemp(prefix="cas-bench-", dir=d), fs_type(d)
        except OSError:
            continue
    return tempfile.mkdtemp(prefix="cas-bench-"), fs_type(tempfile.gettempdir())


def fs_type(path):
    best, typ = "", "?"
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            mnt = parts[1]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, typ = mnt, parts[2]
    return "%s (%s)" % (typ, best)


def run_batch(rounds, fmt="v1", count=64, size=1 << 20):
    d, fs = pick_tmp(count * size * 2)
    try:
        p = subprocess.Popen([BENCH_C, "batch", d, str(count), str(size), fmt], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        json.loads(p.stdout.readline())
        out = []
        for _ in range(rounds):
            p.stdin.write("round\n")
            p.stdin.flush()
            out.append(json.loads(p.stdout.readline()))
        p.stdin.write("quit\n")
        p.stdin.close()
        p.wait()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return {"fs": fs, "format": fmt, "count": count, "size": size, "rounds": out}


# ---- streaming: 1 GiB through a pipe in, peak RSS of a reader process out -------------------

def run_child(argv, stdin=None, stdout=subprocess.DEVNULL):
    """Runs argv under `bench_c rss` (not forked from this Python process, whose
    RSS the child's high-water mark would inherit); returns (wall seconds, peak
    RSS in KiB, exit code, stdout bytes or None)."""
    fd, rpath = tempfile.mkstemp(prefix="cas-bench-rss-")
    os.close(fd)
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen([BENCH_C, "rss", rpath] + argv, stdin=stdin, stdout=stdout)
        out = p.stdout.read() if stdout == subprocess.PIPE else None
        p.wait()
        wall = time.perf_counter() - t0
        with open(rpath) as f:
            r = json.load(f)
    finally:
        os.unlink(rpath)
    return wall, r["maxrss_kib"], r["exit"], out


def run_stream(gib, keep_note=log):
    total = gib << 30
    d, fs = pick_tmp(total * 2.3, prefer_tmpfs=gib <= 2)
    res = {"bytes": total, "fs": fs, "steps": []}
    try:
        root = os.path.join(d, ".metaflow")
        os.makedirs(root)
        for fmt in ("v1", "v2"):
            flow = "Big" + fmt.upper()
            gen = subprocess.Popen([BENCH_C, "gen-f32", str(total), "7"], stdout=subprocess.PIPE)
            wall, rss, rc, out = run_child([CAS, "put", "--flow", flow, "--root", root, "--" + fmt],
                                           stdin=gen.stdout, stdout=subprocess.PIPE)
            gen.stdout.close()
            gen.wait()
            if rc != 0:
                sys.exit("bench: cas put --%s failed (exit %d)" % (fmt, rc))
            key = out.decode().strip()
            blob = os.path.join(root, flow, "data", key[:2], key)
            stored = os.path.getsize(blob)
            res["steps"].append({"step": "put", "format": fmt, "wall_s": wall, "rss_kib": rss, "key": key,
                                 "stored": stored})
            keep_note("  put %s: %.1f s, %d MiB stored, put RSS %.1f MiB" % (fmt, wall, stored >> 20, rss / 1024))
            for what, argv in (("get", [CAS, "get", "--flow", flow, "--root", root, key]),
                               ("get --verify", [CAS, "get", "--flow", flow, "--root", root, "--verify", key]),
                               ("cas_stream_read", [BENCH_C, "stream", root, flow, key])):
                pipe = subprocess.PIPE if what == "cas_stream_read" else subprocess.DEVNULL
                wall, rss, rc, out = run_child(argv, stdout=pipe)
                if rc != 0:
                    sys.exit("bench: %s %s failed (exit %d)" % (what, fmt, rc))
                if out is not None and int(out) != total:
                    sys.exit("bench: streamed %s bytes, expected %d" % (out.strip(), total))
                res["steps"].append({"step": what, "format": fmt, "wall_s": wall, "rss_kib": rss})
                keep_note("  %s %s: %.2f s, peak RSS %.1f MiB" % (what, fmt, wall, rss / 1024))
            shutil.rmtree(os.path.join(root, flow), ignore_errors=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return res


# ---- machine and load accounting -----------------------------------------------------------

def cpu_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    return sum(v[:8]), idle, steal


def own_cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def machine_info():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        flags = open("/proc/cpuinfo").read()
        sha_ni = " sha_ni" in flags
        avx512 = " avx512f" in flags
    except OSError:
        sha_ni = avx512 = False
    vers = {}
    for pkg in ("zlib1g", "liblz4-1", "libisal2", "libdeflate0", "libssl3", "libxxhash0", "python3-lz4"):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True).stdout
            if v:
                vers[pkg] = v
        except OSError:
            pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "sha_ni": sha_ni, "avx512": avx512,
        "kernel": platform.release(), "python": platform.python_version(), "packages": vers,
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "host": platform.node(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("CAS_BENCH_ROUNDS", "9")),
                    help="interleaved rounds per payload; medians over them (default 9)")
    ap.add_argument("--target-ms", type=float, default=25.0, help="length of one timed sample (default 25 ms)")
    ap.add_argument("--stream-gib", type=int, default=1, help="size of the streamed float32 artifact (default 1)")
    ap.add_argument("--stream-only", action="store_true", help="only the streaming RSS check; writes nothing")
    ap.add_argument("--no-stream", action="store_true", help="skip the streaming RSS check")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    ap.add_argument("--payloads", default=",".join(payloads.ORDER), help="comma-separated subset")
    args = ap.parse_args()

    build_bench_c()
    if not os.path.exists(CAS):
        sys.exit("bench: %s is missing: run `make` first" % CAS)
    if args.stream_only:
        log("streaming %d GiB float32 through `cas put` and `cas get`:" % args.stream_gib)
        r = run_stream(args.stream_gib)
        worst = max(s["rss_kib"] for s in r["steps"] if s["step"] != "put")
        log("peak RSS of the streaming readers: %.1f MiB (%s)" % (worst / 1024, r["fs"]))
        return 0

    t_start = time.time()
    tot0, idle0, steal0 = cpu_stat()
    own0 = own_cpu()
    log("cas.h benchmark: %d rounds per payload, interleaved; ratios are medians of per-round ratios" % args.rounds)
    log("payloads (fixed seeds, cached in build/bench/payloads):")
    paths = payloads.ensure(os.path.join(BDIR, "payloads"), log=log)
    binding, why = load_binding()
    if binding is None:
        log("  ctypes binding: skipped (%s)" % why)
    res = {"machine": machine_info(), "rounds": args.rounds, "payloads": {}, "binding": why}
    for name in args.payloads.split(","):
        t0 = time.time()
        res["payloads"][name] = run_payload(name, paths[name], args.rounds, args.target_ms, binding)
        log("  %-12s %5.1f s" % (name, time.time() - t0))
    t0 = time.time()
    res["batch"] = run_batch(args.rounds, "v1")
    res["batch_v2"] = run_batch(max(3, args.rounds // 2), "v2")
    log("  batch put    %5.1f s  (%s)" % (time.time() - t0, res["batch"]["fs"]))
    if not args.no_stream:
        t0 = time.time()
        res["stream"] = run_stream(args.stream_gib)
        log("  stream       %5.1f s  (%s)" % (time.time() - t0, res["stream"]["fs"]))
    tot1, idle1, steal1 = cpu_stat()
    wall = time.time() - t_start
    hz = os.sysconf("SC_CLK_TCK")
    busy = ((tot1 - tot0) - (idle1 - idle0)) / hz
    own = own_cpu() - own0
    res["wall_s"] = wall
    res["load"] = {
        "others_pct": max(0.0, 100.0 * (busy - own) / (wall * (os.cpu_count() or 1))),
        "steal_pct": 100.0 * (steal1 - steal0) / hz / (wall * (os.cpu_count() or 1)),
    }
    res["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start))
    res["commit"] = os.environ.get("CAS_BENCH_COMMIT") or subprocess.run(
        ["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip() or "?"
    table = report.build(res)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(report.markdown(res, table))
    with open(os.path.join(args.out, "chart.svg"), "w") as f:
        f.write(report.svg(res, table))
    log("")
    log(report.console(res, table))
    log("wrote %s/results.md, results.json, chart.svg (%.0f s)" % (os.path.relpath(args.out, ROOT), wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
