"""Turns one run's measurements (run.py's results dict) into the target table,
the context tables, Markdown and a hand-written SVG chart (no matplotlib)."""
import statistics
from html import escape

MiB = 1 << 20


def machine_state():
    """The machine state a figure was taken in (PERF-NOTES: a freshly booted machine
    is not a warm one): uptime, load, transparent huge pages, a memory monitor."""
    import os
    import platform
    up = float(open("/proc/uptime").read().split()[0])
    try:
        thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        thp = "?"
    try:
        kdamond = any(open("/proc/%s/comm" % p).read().startswith("kdamond")
                      for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        kdamond = False
    return "%s (up %.0f min), load %s, THP %s, kdamond %s, %s, kernel %s, %d CPUs" % (
        "fresh boot" if up < 1800 else "warm", up / 60, " ".join(open("/proc/loadavg").read().split()[:3]), thp,
        "running" if kdamond else "not running", memory_state(), platform.release(), os.cpu_count())


def memory_state():
    """The page cache and free memory now (from /proc/meminfo), MiB."""
    info = {}
    for line in open("/proc/meminfo"):
        k, v = line.split(":", 1)
        info[k] = int(v.split()[0]) >> 10
    return "page cache %d MiB, free %d MiB of %d" % (info.get("Cached", 0), info.get("MemFree", 0),
                                                     info.get("MemTotal", 0))


def make_cold(idle=20):
    """The memory of a freshly booted machine, as near as a running one gets: the page
    cache dropped and memory compacted (as root), then `idle` seconds, in which the
    guest hands the freed memory back to its host (free page reporting), so that it
    is faulted in again on first use. Says what it did."""
    import os
    import time
    before = memory_state()
    if os.geteuid() != 0:
        return "not cold: dropping the page cache needs root (%s)" % before
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:  # a container's read-only /proc/sys
        return "not cold: the page cache could not be dropped (%s; %s)" % (e.strerror, before)
    try:
        with open("/proc/sys/vm/compact_memory", "w") as f:
            f.write("1\n")
    except OSError:
        pass
    time.sleep(idle)
    return "cold: page cache dropped and memory compacted, then %d s idle (before: %s; after: %s)" % (
        idle, before, memory_state())


def first_touch_mb_s(mib=64):
    """How fast this process faults in new anonymous memory, MB/s (PERF-NOTES: ~230 on
    a freshly booted machine; on a warm one fast for memory freed a moment ago, slow
    again once its host has taken it back)."""
    import ctypes
    import mmap
    import time
    m = mmap.mmap(-1, mib << 20)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    t0 = time.perf_counter()
    ctypes.memset(addr, 1, mib << 20)
    took = time.perf_counter() - t0
    m.close()  # the ctypes view above was a temporary, gone by now (else close would refuse)
    return "%.0f MB/s (%d MiB)" % ((mib << 20) / 1e6 / took, mib)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def per_round(res, payload, fn):
    """Median over rounds of fn(round) - a paired value: both sides timed in the same round."""
    p = res["payloads"].get(payload)
    if not p:
        return None
    vals = []
    for r in p["rounds"]:
        try:
            vals.append(fn(r))
        except (KeyError, ZeroDivisionError, TypeError):
            pass
    return med(vals)


def t(res, payload, op):
    """Median time of op (ns)."""
    return per_round(res, payload, lambda r: r[op])


def fmt_t(ns):
    if ns is None:
        return "n/a"
    if ns < 1e3:
        return "%.0f ns" % ns
    if ns < 1e6:
        return "%.1f µs" % (ns / 1e3)
    if ns < 1e9:
        return "%.1f ms" % (ns / 1e6)
    return "%.2f s" % (ns / 1e9)


def fmt_gbs(n, ns):
    if ns is None or not ns:
        return "n/a"
    g = n / ns  # bytes per ns = GB/s
    return "%.2f GB/s" % g if g < 10 else "%.1f GB/s" % g


def fmt_tg(res, payload, op):
    ns = t(res, payload, op)
    if ns is None:
        return "n/a"
    n = res["payloads"][payload]["n"]
    if n < 100000:
        return fmt_t(ns)
    return "%s (%s)" % (fmt_t(ns), fmt_gbs(n, ns))


class Row:
    def __init__(self, rid, check, value, target, cmp, unit, cand, base, limits, note=""):
        self.rid, self.check, self.value, self.target, self.cmp = rid, check, value, target, cmp
        self.unit, self.cand, self.base, self.limits, self.note = unit, cand, base, limits, note
        if value is None:
            self.result = "n/a"
        elif cmp == ">=":
            self.result = "PASS" if value >= target else "FAIL"
        else:
            self.result = "PASS" if value <= target else "FAIL"

    def measured(self):
        if self.value is None:
            return "n/a"
        if self.unit == "x":
            return "%.2f×" % self.value
        if self.unit == "GB/s":
            return "%.2f GB/s" % self.value
        if self.unit == "%":
            return "%+.1f %%" % self.value
        if self.unit == "MiB":
            return "%.1f MiB" % self.value
        return "%g" % self.value

    def target_text(self):
        c = "≥" if self.cmp == ">=" else "≤"
        if self.unit == "x":
            return "%s %g×" % (c, self.target)
        if self.unit == "%":
            return "%s %+g %%" % (c, self.target)
        return "%s %g %s" % (c, self.target, self.unit)

    def score(self):
        """measured / target oriented so that >= 1 passes (for the chart)."""
        if self.value is None:
            return None
        if self.unit == "%":
            # sizes: compare (1 + value) against (1 + target)
            return (1 + self.target / 100.0) / (1 + self.value / 100.0)
        if self.cmp == ">=":
            return self.value / self.target
        return self.target / self.value if self.value else None


def build(res):
    rows = []
    W, T, R, X = "weights_8m", "text_64m", "random_5m", "config_233"
    P = res["payloads"]

    def n(p):
        return P[p]["n"] if p in P else 0

    # -- save 8 MB, SHA-1, v2
    if W in P:
        lim = "SHA-1 alone %s; LZ4F 64K alone %s; both on one core %s" % (
            fmt_tg(res, W, "sha1"), fmt_tg(res, W, "lz4f_c"), fmt_tg(res, W, "cas_v2_t1"))
        cand = "cas_pack v2 SHA-1 %s" % fmt_tg(res, W, "cas_v2")
        rows.append(Row("save-v2-b", "save 8 MB weights, SHA-1 key, v2: vs PR #3090 (sha1 + lz4.frame)",
                        per_round(res, W, lambda r: r["py_b_save"] / r["cas_v2"]), 1.5, ">=", "x", cand,
                        "(b) %s" % fmt_tg(res, W, "py_b_save"), lim))
        rows.append(Row("save-v2-a", "save 8 MB weights, SHA-1 key, v2: vs Metaflow (sha1 + GzipFile L3)",
                        per_round(res, W, lambda r: r["py_a_save"] / r["cas_v2"]), 30, ">=", "x", cand,
                        "(a) %s" % fmt_tg(res, W, "py_a_save"), lim))
        par = per_round(res, W, lambda r: 2 * r["sha1"] / r["sha1_par2"])
        rows.append(Row("save-v2-sha1", "save 8 MB weights, SHA-1 key, v2: throughput vs SHA-1 alone",
                        per_round(res, W, lambda r: r["sha1"] / r["cas_v2"]), 0.9, ">=", "x", cand,
                        "SHA-1 (EVP) %s" % fmt_tg(res, W, "sha1"),
                        "LZ4F 64K alone %s; cas_pack on 1 thread %s; 2 threads hashing give %.2f× one now" % (
                            fmt_tg(res, W, "lz4f_c"), fmt_tg(res, W, "cas_v2_t1"), par or 0)))
        x = t(res, W, "cas_v2_xxh3")
        rows.append(Row("save-v2-xxh3", "save 8 MB weights, XXH3-128 key, v2: throughput",
                        n(W) / x if x else None, 2.5, ">=", "GB/s",
                        "cas_pack v2 XXH3 %s" % fmt_tg(res, W, "cas_v2_xxh3"),
                        "(absolute)", "XXH3 alone %s; LZ4F 64K alone %s; with 4 MiB blocks %s; memcpy %s" % (
                            fmt_tg(res, W, "xxh3"), fmt_tg(res, W, "lz4f_c"), fmt_tg(res, W, "cas_v2_xxh3_b4m"),
                            fmt_tg(res, W, "memcpy"))))
    # -- write v1 vs zlib level 3, speed and size
    for p, lbl, tgt, stgt in ((W, "float 8 MB", 10, 2), (R, "random 5 MB", 10, 2), (T, "text 64 MiB", 2, 5)):
        if p not in P:
            continue
        rows.append(Row("v1-speed-" + p, "write v1 (gzip), %s: vs zlib level 3" % lbl,
                        per_round(res, p, lambda r: r["zlib3"] / r["cas_v1"]), tgt, ">=", "x",
                        "cas_pack v1 SHA-1 %s" % fmt_tg(res, p, "cas_v1"), "zlib L3 %s" % fmt_tg(res, p, "zlib3"),
                        "SHA-1 alone %s; memcpy %s" % (fmt_tg(res, p, "sha1"), fmt_tg(res, p, "memcpy"))))
    for p, lbl, tgt, stgt in ((W, "float 8 MB", 10, 2), (R, "random 5 MB", 10, 2), (T, "text 64 MiB", 2, 5)):
        if p not in P:
            continue
        s = P[p]["sizes"]
        rows.append(Row("v1-size-" + p, "write v1 (gzip), %s: output size vs zlib level 3" % lbl,
                        100.0 * (s["v1"] / s["zlib3"] - 1), stgt, "<=", "%",
                        "cas v1 %d B (%.1f %%)" % (s["v1"], 100.0 * s["v1"] / n(p)),
                        "zlib L3 %d B (%.1f %%)" % (s["zlib3"], 100.0 * s["zlib3"] / n(p)),
                        ("cas v1 at level 7: %d B; " % P[p]["out_len"]["cas_v1_l7"]
                         if P[p]["out_len"].get("cas_v1_l7") else "") + "lz4 v2: %d B" % s["v2"]))
    # -- read
    for p, lbl in ((W, "8 MB weights"), (T, "64 MiB text")):
        if p not in P:
            continue
        rows.append(Row("read-v1-" + p, "read v1, %s (the blob Python wrote): vs Python's gzip" % lbl,
                        per_round(res, p, lambda r: r["py_a_load"] / r["read_v1_zlib"]), 1.3, ">=", "x",
                        "cas_reader_unpack %s" % fmt_tg(res, p, "read_v1_zlib"),
                        "GzipFile.read %s" % fmt_tg(res, p, "py_a_load"),
                        "libdeflate alone %s; zlib inflate %s" % (fmt_tg(res, p, "libdeflate_d"),
                                                                  fmt_tg(res, p, "zlib_d"))))
    for p, lbl in ((W, "8 MB weights"), (T, "64 MiB text")):
        if p not in P:
            continue
        rows.append(Row("read-v2-" + p, "read v2, %s, into a preallocated buffer: vs raw LZ4F_decompress" % lbl,
                        per_round(res, p, lambda r: r["lz4f_d"] / r["read_v2_into"]), 0.9, ">=", "x",
                        "cas_reader_unpack_into %s" % fmt_tg(res, p, "read_v2_into"),
                        "LZ4F_decompress %s" % fmt_tg(res, p, "lz4f_d"),
                        "memcpy %s; allocating cas_reader_unpack %s" % (fmt_tg(res, p, "memcpy"),
                                                                        fmt_tg(res, p, "read_v2"))))
    # -- tiny
    if X in P:
        base = "(a) save %s + load %s" % (fmt_t(t(res, X, "py_a_save")), fmt_t(t(res, X, "py_a_load")))
        rows.append(Row("tiny-c", "233 B save + load, per operation, from C: vs Metaflow (a)",
                        per_round(res, X, lambda r: (r["py_a_save"] + r["py_a_load"]) / r["rt_v1"]), 20, ">=", "x",
                        "cas v1 pack + unpack %s" % fmt_t(t(res, X, "rt_v1")), base,
                        "v2 round trip %s; SHA-1 alone %s; (b) %s" % (
                            fmt_t(t(res, X, "rt_v2")), fmt_t(t(res, X, "sha1")),
                            fmt_t(per_round(res, X, lambda r: r["py_b_save"] + r["py_b_load"])))))
        has_bind = any("bind_rt_v1" in r for r in P[X]["rounds"])
        rows.append(Row("tiny-py", "233 B save + load, per operation, through the ctypes binding: vs (a)",
                        per_round(res, X, lambda r: (r["py_a_save"] + r["py_a_load"]) / r["bind_rt_v1"])
                        if has_bind else None, 5, ">=", "x",
                        "cas_h v1 save + load %s" % fmt_t(t(res, X, "bind_rt_v1")) if has_bind
                        else "binding: %s" % res.get("binding"), base,
                        "cas_h v2 %s" % fmt_t(t(res, X, "bind_rt_v2")) if has_bind else ""))
    # -- batch
    b = res.get("batch")
    if b:
        sc = med([r["batch_t1"] / r["batch_t2"] for r in b["rounds"]])
        t1, t2 = med([r["batch_t1"] for r in b["rounds"]]), med([r["batch_t2"] for r in b["rounds"]])
        tot = b["count"] * b["size"]
        b2 = res.get("batch_v2")
        sc2 = med([r["batch_t1"] / r["batch_t2"] for r in b2["rounds"]]) if b2 else None
        par = per_round(res, W, lambda r: 2 * r["sha1"] / r["sha1_par2"])
        rows.append(Row("batch", "batch put 64 × 1 MiB float32, v1: 2 threads vs 1 (store on %s)" % b["fs"], sc,
                        1.8, ">=", "x", "threads=2 %s (%s)" % (fmt_t(t2), fmt_gbs(tot, t2)),
                        "threads=1 %s (%s)" % (fmt_t(t1), fmt_gbs(tot, t1)),
                        "the machine's own 2-thread scaling (SHA-1 ×2): %.2f×; v2 batch: %.2f×" % (par or 0, sc2 or 0)))
    # -- streaming RSS
    s = res.get("stream")
    if s:
        gib = s["bytes"] >> 30
        for fmt in ("v1", "v2"):
            st = [x for x in s["steps"] if x["format"] == fmt]
            get = next(x for x in st if x["step"] == "get")
            put = next(x for x in st if x["step"] == "put")
            ver = next(x for x in st if x["step"] == "get --verify")
            api = next(x for x in st if x["step"] == "cas_stream_read")
            rows.append(Row("rss-" + fmt,
                            "stream-decode the %d GiB float32 artifact, %s: peak RSS of `cas get`" % (gib, fmt),
                            get["rss_kib"] / 1024.0, 32, "<=", "MiB",
                            "cas get %.1f s (%s)" % (get["wall_s"], fmt_gbs(s["bytes"], get["wall_s"] * 1e9)),
                            "blob %d MiB on %s" % (put["stored"] >> 20, s["fs"]),
                            "--verify %.1f MiB; cas_stream_read %.1f MiB; streaming put %.1f MiB, %.1f s" % (
                                ver["rss_kib"] / 1024.0, api["rss_kib"] / 1024.0, put["rss_kib"] / 1024.0,
                                put["wall_s"])))
    return rows


# ---- context tables ------------------------------------------------------------------------

SAVE_COLS = [("(a) Metaflow", "py_a_save"), ("(b) PR #3090", "py_b_save"), ("cas v1", "cas_v1"),
             ("cas v2 SHA-1", "cas_v2"), ("cas v2 XXH3", "cas_v2_xxh3"), ("SHA-1", "sha1"), ("XXH3", "xxh3"),
             ("LZ4F 64K", "lz4f_c"), ("zlib L3", "zlib3"), ("memcpy", "memcpy")]
LOAD_COLS = [("(a) Metaflow", "py_a_load"), ("(b) PR #3090", "py_b_load"), ("cas v1", "read_v1_zlib"),
             ("cas v2", "read_v2"), ("cas v2 into", "read_v2_into"), ("zlib inflate", "zlib_d"),
             ("libdeflate", "libdeflate_d"), ("LZ4F_decompress", "lz4f_d"), ("memcpy", "memcpy")]
KNOB_COLS = [("cas v2, 1 thread", "cas_v2_t1"), ("cas v2, 4 MiB blocks", "cas_v2_b4m"),
             ("cas v2 XXH3, 1 thread", "cas_v2_xxh3_t1"), ("cas v2 XXH3, 4 MiB blocks", "cas_v2_xxh3_b4m"),
             ("cas v1, 1 thread", "cas_v1_t1"), ("LZ4F 4 MiB blocks", "lz4f_c4m"),
             ("cas v1 level 7", "cas_v1_l7"), ("cas_hash SHA-1", "cas_hash_sha1"),
             ("cas_hash XXH3", "cas_hash_xxh3"), ("2 × SHA-1 on 2 threads", "sha1_par2")]


def context_tables(res):
    import payloads

    out = []
    for title, cols in (("Save (key + blob), median time per artifact (GB/s of input)", SAVE_COLS),
                        ("Load (blob to bytes), median time per artifact (GB/s of output)", LOAD_COLS),
                        ("Knobs (same run)", KNOB_COLS)):
        head = ["payload"] + [c for c, _ in cols]
        body = []
        for p in payloads.ORDER:
            if p not in res["payloads"]:
                continue
            cells = [fmt_tg(res, p, op) for _, op in cols]
            if all(c == "n/a" for c in cells):
                continue
            body.append([payloads.LABELS[p]] + cells)
        out.append((title, head, body))
    out += extension_tables(res)
    head = ["payload", "bytes", "zlib L3 (gzip)", "Python gzip L3", "cas v1", "cas v1 level 7", "python-lz4", "cas v2"]
    body = []
    for p in payloads.ORDER:
        if p not in res["payloads"]:
            continue
        d = res["payloads"][p]
        s, n = d["sizes"], d["n"]

        def pc(x):
            return "%d (%.1f %%)" % (x, 100.0 * x / n) if x else "n/a"

        body.append([payloads.LABELS[p], str(n), pc(s["zlib3"]), pc(s.get("py_a")), pc(s["v1"]),
                     pc(d["out_len"].get("cas_v1_l7")), pc(s.get("py_b")), pc(s["v2"])])
    out.append(("Stored size (bytes, % of input)", head, body))
    if res.get("stream"):
        s = res["stream"]
        head = ["step", "format", "wall", "throughput", "peak RSS"]
        body = [[x["step"], x["format"], "%.2f s" % x["wall_s"], fmt_gbs(s["bytes"], x["wall_s"] * 1e9),
                 "%.1f MiB" % (x["rss_kib"] / 1024.0)] for x in s["steps"]]
        out.append(("Streaming %d GiB float32 (%s), whole processes" % (s["bytes"] >> 30, s["fs"]), head, body))
    return out


def extension_tables(res):
    """The Metaflow extension's save and load (Python through ctypes) against
    (a) and (b): the PR #3090 payloads, ratios paired within each round."""
    import payloads

    out = []
    for what, title in (("save", "Save through the Metaflow extension (Python + ctypes): key + blob"),
                        ("load", "Load through the Metaflow extension (Python + ctypes): blob to bytes")):
        ext1, ext2 = "bind_ext_%s_v1" % what, "bind_ext_%s_v2" % what
        a, b = "py_a_" + what, "py_b_" + what
        head = ["payload", "(a) Metaflow", "(b) PR #3090", "extension v1", "extension v2",
                "v1 vs (a)", "v2 vs (a)", "v2 vs (b)"]
        body = []
        for p in payloads.ORDER:
            if p not in res["payloads"] or t(res, p, ext1) is None:
                continue

            def ratio(base, cand):
                x = per_round(res, p, lambda r: r[base] / r[cand])
                return "%.2f×" % x if x is not None else "n/a"

            body.append([payloads.LABELS[p], fmt_tg(res, p, a), fmt_tg(res, p, b), fmt_tg(res, p, ext1),
                         fmt_tg(res, p, ext2), ratio(a, ext1), ratio(a, ext2), ratio(b, ext2)])
        if body:
            out.append((title, head, body))
    return out


def md_table(head, body):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in body:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines)


def summary(rows):
    judged = [r for r in rows if r.result in ("PASS", "FAIL")]
    return "%d of %d targets pass" % (sum(r.result == "PASS" for r in judged), len(judged))


def header(res):
    m = res["machine"]
    par = per_round(res, "weights_8m", lambda r: 2 * r["sha1"] / r["sha1_par2"])
    pk = ", ".join("%s %s" % kv for kv in sorted(m["packages"].items()))
    return [
        "Run %s on %s: %s, %d cores, %.0f GiB, SHA-NI %s, AVX-512 %s, Linux %s, Python %s." % (
            res["date"], m["host"], m["cpu"], m["cores"], m["mem_gib"], "yes" if m["sha_ni"] else "no",
            "yes" if m["avx512"] else "no", m["kernel"], m["python"]),
        "Commit %s; %d interleaved rounds per payload; whole run %.0f s. Other processes used %.0f %% of the "
        "machine's CPU during the run (steal %.1f %%): ratios hold up under that, absolute times do not." % (
            res["commit"], res["rounds"], res["wall_s"], res["load"]["others_pct"], res["load"]["steal_pct"]),
        "Libraries: %s." % pk,
    ] + ([("Two threads hashing at once ran %.2f× the work of one (2.00 = two free cores; "
           "the overlap and batch targets cannot beat this)." % par)] if par else [])


def markdown(res, rows):
    out = ["# cas.h benchmark results", "", "Generated by `make bench` (bench/run.py); do not edit by hand.", ""]
    out += [" ".join(header(res)), ""]
    out += ["## Targets (%s)" % summary(rows), "",
            "Measured = median over rounds of the ratio of the two sides timed in the same round. "
            "Throughput is GB/s = 10^9 bytes per second of uncompressed data.", ""]
    out.append(md_table(["check", "measured", "target", "result", "cas.h", "baseline", "limits, same run"],
                        [[r.check, r.measured(), r.target_text(), "**%s**" % r.result, r.cand, r.base, r.limits]
                         for r in rows]))
    out += ["", "![chart](chart.svg)", ""]
    for title, head, body in context_tables(res):
        out += ["## " + title, "", md_table(head, body), ""]
    out += ["## Method", "",
            "- Every path starts from the same bytes in memory (the pickled artifact) and ends with a key and a "
            "blob (save) or the bytes (load); no file I/O except in the batch and streaming rows.",
            "- (a) is Metaflow's `ContentAddressedStore` path: `hashlib.sha1(blob).hexdigest()` and "
            "`gzip.GzipFile(fileobj=BytesIO(), mode='wb', compresslevel=3)`; load `GzipFile(...).read()`. "
            "(b) is PR #3090's: `sha1` + `lz4.frame.compress` / `lz4.frame.decompress` (python3-lz4, defaults).",
            "- The raw libraries are called from C in the same process as cas.h's paths: OpenSSL EVP SHA-1, "
            "XXH3-128, `LZ4F_compressFrame` (python-lz4's settings: 64 KiB linked blocks, content size), "
            "`LZ4F_decompress` into a preallocated buffer, zlib `deflate` level 3 with a gzip wrapper "
            "(what CPython's gzip runs), zlib `inflate`, libdeflate, `memcpy`.",
            "- cas.h's v1 reads decode the very blob Python's gzip wrote; v2 reads decode cas_pack's blob "
            "(byte-identical in layout to python-lz4's: 64 KiB linked blocks).",
            "- Each sample repeats an operation until it lasts ~25 ms and divides; buffers are touched before "
            "timing, and every C sample starts with a VZEROUPPER: ISA-L returns with the upper vector state dirty, "
            "which slows legacy-SSE code after it on the same thread ~4x (XXH3 as xxhash.h compiles at -O2; "
            "`bench/probes.py upper` shows it), so no operation is charged for the one before it. "
            "A C process and this Python process alternate round by round (order flipped every round, "
            "operations rotated inside a round), so drift on this shared machine hits both sides alike.",
            "- Batch: `cas_store_put_batch` of 64 distinct 1 MiB blobs into a fresh store each time (removed "
            "untimed), threads=1 and threads=2 alternating.",
            "- Streaming: `bench_c gen-f32` pipes the float32 stream into `cas put --v1/--v2` (stdin, "
            "`cas_store_put_fd`), then separate processes `cas get KEY > /dev/null`, `cas get --verify` and a "
            "`cas_stream_open` loop decode it; peak RSS is the child's `ru_maxrss` from `wait4`, taken by a "
            "small C launcher (a child forked from Python would inherit Python's RSS high-water mark); the "
            "launcher's own floor is ~1.2 MiB (`bench_c rss F /bin/true`).",
            ""]
    return "\n".join(out)


def console(res, rows):
    lines = header(res) + [""]
    w = max(len(r.check) for r in rows) if rows else 10
    lines.append("%-*s  %11s  %10s  %s" % (w, "check", "measured", "target", "result"))
    lines.append("-" * (w + 36))
    for r in rows:
        lines.append("%-*s  %11s  %10s  %s" % (w, r.check, r.measured(), r.target_text(), r.result))
        lines.append("%-*s    cas.h: %s | baseline: %s" % (w and 2, "", r.cand, r.base))
    lines.append("-" * (w + 36))
    lines.append(summary(rows))
    for title, head, body in extension_tables(res):
        lines += ["", title + " (median of rounds)"]
        ws = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        for r in [head] + body:
            lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, ws))))
    return "\n".join(lines)


# ---- SVG -----------------------------------------------------------------------------------

def svg(res, rows):
    import math

    W = 1250
    pad_l, bar_h, gap = 440, 18, 6
    y = 0
    parts = []

    def text(x, yy, s, size=12, anchor="start", weight="normal", fill="#222"):
        parts.append('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" font-weight="%s" fill="%s">%s</text>'
                     % (x, yy, size, anchor, weight, fill, escape(s)))

    # panel 1: each target, measured/target on a log axis, 1.0 = the target
    y += 28
    text(20, y, "cas.h vs its targets (%s) - bar = measured / target, log scale; right of the line passes" %
         summary(rows), 16, weight="bold")
    y += 12
    lo, hi = 0.25, 8.0
    x0, x1 = pad_l, W - 260

    def xs(v):
        v = min(max(v, lo), hi)
        return x0 + (x1 - x0) * (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))

    top = y + 8
    for r in rows:
        y += bar_h + gap
        sc = r.score()
        text(pad_l - 8, y - 4, r.check if len(r.check) < 68 else r.check[:66] + "…", 11, "end")
        if sc is None:
            text(x0 + 4, y - 4, "not measured", 11, fill="#888")
            continue
        col = "#2e8b57" if r.result == "PASS" else "#c0392b"
        xa, xb = xs(1.0), xs(sc)
        parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"/>' % (
            min(xa, xb), y - bar_h + 2, max(abs(xb - xa), 1.5), bar_h - 4, col))
        text(x1 + 8, y - 4, "%s (target %s) %s" % (r.measured(), r.target_text(), r.result), 11, fill=col)
    for v in (0.25, 0.5, 1, 2, 4, 8):
        parts.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%s"/>' % (
            xs(v), top, xs(v), y + 4, "#000" if v == 1 else "#ccc", "1.5" if v == 1 else "0.7"))
        text(xs(v), y + 18, "%g×" % v, 10, "middle", fill="#555")
    y += 30

    # panels 2 and 3: throughput of every path on the 8 MB weights, limits beside
    W8 = "weights_8m"
    if W8 in res["payloads"]:
        n = res["payloads"][W8]["n"]
        for title, items in (
                ("Save 8 MB float64 weights: throughput, GB/s (log scale); grey = raw-library limits, same run",
                 [("(a) Metaflow: sha1 + GzipFile L3", "py_a_save", "#999966"),
                  ("(b) PR #3090: sha1 + lz4.frame", "py_b_save", "#999966"),
                  ("cas v1 (gzip, ISA-L) + SHA-1", "cas_v1", "#1f6fb2"),
                  ("cas v2 (LZ4) + SHA-1", "cas_v2", "#1f6fb2"),
                  ("cas v2 (LZ4) + XXH3-128", "cas_v2_xxh3", "#1f6fb2"),
                  ("zlib level 3 alone", "zlib3", "#aaaaaa"), ("SHA-1 alone (OpenSSL)", "sha1", "#aaaaaa"),
                  ("LZ4F_compressFrame 64K alone", "lz4f_c", "#aaaaaa"), ("XXH3-128 alone", "xxh3", "#aaaaaa"),
                  ("memcpy", "memcpy", "#aaaaaa")]),
                ("Load 8 MB float64 weights: throughput, GB/s (log scale)",
                 [("(a) Metaflow: GzipFile.read", "py_a_load", "#999966"),
                  ("(b) PR #3090: lz4.frame.decompress", "py_b_load", "#999966"),
                  ("cas v1 read (Python's gzip blob)", "read_v1_zlib", "#1f6fb2"),
                  ("cas v2 read (allocating)", "read_v2", "#1f6fb2"),
                  ("cas v2 read into a buffer", "read_v2_into", "#1f6fb2"),
                  ("zlib inflate alone", "zlib_d", "#aaaaaa"), ("libdeflate alone", "libdeflate_d", "#aaaaaa"),
                  ("LZ4F_decompress alone", "lz4f_d", "#aaaaaa"), ("memcpy", "memcpy", "#aaaaaa")])):
            y += 24
            text(20, y, title, 14, weight="bold")
            glo, ghi = 0.01, 100.0

            def gx(v):
                v = min(max(v, glo), ghi)
                return x0 + (x1 - x0) * (math.log(v) - math.log(glo)) / (math.log(ghi) - math.log(glo))

            top = y + 8
            for label, op, col in items:
                ns = t(res, W8, op)
                y += bar_h + gap
                text(pad_l - 8, y - 4, label, 11, "end")
                if not ns:
                    continue
                g = n / ns
                parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"/>' % (
                    x0, y - bar_h + 2, gx(g) - x0, bar_h - 4, col))
                text(gx(g) + 6, y - 4, "%.2f GB/s  (%s)" % (g, fmt_t(ns)), 11)
            for v in (0.01, 0.1, 1, 10, 100):
                parts.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ccc" stroke-width="0.7"/>' % (
                    gx(v), top, gx(v), y + 4))
                text(gx(v), y + 18, "%g" % v, 10, "middle", fill="#555")
            y += 30
    y += 10
    m = res["machine"]
    text(20, y, "%s; %d cores; %s; other processes %.0f %% CPU during the run; commit %s" % (
        m["cpu"], m["cores"], res["date"], res["load"]["others_pct"], res["commit"]), 10, fill="#555")
    y += 14
    head = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">\n'
            '<rect width="100%%" height="100%%" fill="#fff"/>\n' % (W, y, W, y))
    return head + "\n".join(parts) + "\n</svg>\n"
