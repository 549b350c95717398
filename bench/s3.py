#!/usr/bin/env python3
"""`make bench`, S3 part: cas.h against Python's S3 paths on the same local server.

The server is Ceph's radosgw on loopback (tests/s3/s3server.sh, started here
unless CAS_TEST_S3_ENDPOINT names a running one). Every figure is a ratio of
two things timed in this run, interleaved round by round (medians of per-round
ratios); the server is the same for both sides, so its own speed cancels out.

  1. A task's artifacts: 140 blobs of mixed size (system artifacts of a few
     bytes, metrics and configs, arrays up to 4 MB; ~25 MB decoded), v1 as
     Metaflow writes them. cas: Store.get_many (one C call, requests in flight
     over libcurl's multi interface, decoded on two threads). Against boto3
     get_object + Python's gzip, one by one and with a 16-thread pool, and
     Metaflow's own S3 path (FlowDataStore(...).ca_store.load_blobs) where a
     Metaflow source tree is given (METAFLOW_SRC).
  2. One 1 GiB artifact (float32, v1 = gzip), decoded as it streams: `cas get`
     to /dev/null (peak RSS measured) against boto3 streaming the body through
     zlib (the same bounded-memory consumer), boto3 reading it whole into bytes
     and gunzipping (what a plain Python reader does), and a bare `curl` GET of
     the same object to /dev/null (libcurl with nothing after it).
  3. 64 x 1 MiB float32 put as v1: Store.put_many against gzip + boto3
     put_object on a 16-thread pool.

Allocator state: the Python sides read with the same chunk sizes every round
and keep no buffer between rounds. The target's Python path reads the object
to bytes and decompresses it, as a Python reader of a whole artifact does; on
this machine that pays fresh memory for 2 GiB (PERF-NOTES: ~230 MB/s first
touch), which `cas get`, streaming, does not. So the streaming Python reader
(bounded memory, like `cas get`) is shown beside it, as information.
"""
import argparse
import concurrent.futures
import gzip
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
CAS = os.path.join(ROOT, "build", "cas")


def log(*a):
    print(*a, flush=True)


def start_server():
    if os.environ.get("CAS_TEST_S3_ENDPOINT"):
        return None
    d = tempfile.mkdtemp(prefix="cas-bench-s3-")
    # two 1 GiB objects and more
    env = dict(os.environ, CAS_TEST_S3_BYTES=os.environ.get("CAS_TEST_S3_BYTES", str(10 << 30)))
    subprocess.check_call(["sh", os.path.join(ROOT, "tests", "s3", "s3server.sh"), "start", d], env=env)
    load_env(os.path.join(d, "env"))
    return d


def load_env(path):
    """A test server's env file (lines `export NAME=value`, the value maybe quoted) into os.environ."""
    with open(path) as f:
        for line in f:
            k, v = line.strip()[len("export "):].split("=", 1)
            os.environ[k] = v.strip("'\"")


def stop_server(d):
    if d:
        subprocess.call(["sh", os.path.join(ROOT, "tests", "s3", "s3server.sh"), "stop", d])


def task_payloads(seed=7):
    """A task's artifacts, sizes as in the fixtures' runs: many tiny system
    artifacts, some configs and metrics, a few arrays."""
    import numpy as np
    rng = np.random.default_rng(seed)
    out = []
    for i in range(40):  # _foreach_stack, _graph_info, _task_ok, parameters...
        out.append(b"\x80\x04\x95" + rng.integers(0, 255, int(rng.integers(4, 600)), dtype=np.uint8).tobytes())
    for i in range(80):  # configs, metrics, small frames
        n = int(rng.integers(1 << 10, 120 << 10))
        out.append(json.dumps({"metric_%d" % k: float(rng.random()) for k in range(n // 24)}).encode()[:n])
    for i in range(20):  # arrays
        n = int(rng.integers(64 << 10, 4 << 20)) // 4
        out.append(rng.standard_normal(n).astype(np.float32).tobytes())
    return out


def median_ratio(rounds, a, b):
    return statistics.median(r[a] / r[b] for r in rounds)


def interleave(sides, rounds, label=None):
    """Times every side once a round, the order rotated each round: a list of {side: seconds}."""
    res = []
    for r in range(rounds):
        row = {}
        order = list(sides)
        order = order[r % len(order):] + order[:r % len(order)]
        for name in order:
            t = time.perf_counter()
            sides[name]()
            row[name] = time.perf_counter() - t
        res.append(row)
        if label:
            log("    %s round %d: %s" % (label, r + 1, ", ".join("%s %.2f s" % (k, row[k]) for k in sides)))
    return res


def bench_task(st, s3, bucket, prefix, rounds):
    import cas_h  # noqa: F401
    blobs = task_payloads()
    keys = st.put_many("BenchTask", blobs, version=1)
    total = sum(len(b) for b in blobs)
    names = ["%s/BenchTask/data/%s/%s" % (prefix, k[:2], k) for k in keys]

    def py_one(name):
        body = s3.get_object(Bucket=bucket, Key=name)["Body"].read()
        return gzip.decompress(body)

    def py_seq():
        return [py_one(n) for n in names]

    pool = concurrent.futures.ThreadPoolExecutor(16)

    def py_pool():
        return list(pool.map(py_one, names))

    def cas_many():
        return st.get_many("BenchTask", keys)

    sides = {"cas": cas_many, "boto3_seq": py_seq, "boto3_pool": py_pool}
    mf = metaflow_loader(bucket, prefix, keys)
    if mf:
        sides["metaflow"] = mf
    for fn in sides.values():  # warm: connections, allocator, imports
        got = fn()
        assert [hashlib.sha1(b).hexdigest() for b in got] == keys
    res = interleave(sides, rounds)
    pool.shutdown()
    return {"blobs": len(blobs), "bytes": total, "rounds": res,
            "median_s": {k: statistics.median(r[k] for r in res) for k in sides},
            "ratio": {k: median_ratio(res, k, "cas") for k in sides if k != "cas"}}


def metaflow_loader(bucket, prefix, keys):
    """Metaflow's own load path, if a Metaflow source tree is on hand (METAFLOW_SRC)."""
    src = os.environ.get("METAFLOW_SRC")
    if not src:
        return None
    sys.path.insert(0, src)
    os.environ.setdefault("USERNAME", "bench")
    os.environ["METAFLOW_S3_ENDPOINT_URL"] = os.environ["CAS_TEST_S3_ENDPOINT"]
    try:
        from metaflow.datastore import FlowDataStore
        from metaflow.plugins.datastores.s3_storage import S3Storage
    except Exception as e:
        log("  Metaflow not importable from %s: %s" % (src, e))
        return None
    fds = FlowDataStore("BenchTask", None, storage_impl=S3Storage, ds_root="s3://%s/%s" % (bucket, prefix))

    def load():
        got = dict(fds.ca_store.load_blobs(keys))
        return [got[k] for k in keys]
    return load


def own_rss(cmd, env):
    """Peak RSS of one command, measured in a child of its own."""
    code = ("import resource,subprocess,sys,json;p=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL);"
            "print(json.dumps([p.returncode,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", code] + cmd, env=env, capture_output=True, text=True)
    rc, kib = json.loads(out.stdout)
    if rc:
        raise RuntimeError("%s failed" % cmd[0])
    return kib


def big_payload(gib):
    import numpy as np
    n = int(gib * (1 << 30))
    path = os.path.join(tempfile.gettempdir(), "cas-bench-big-%d.f32" % n)
    if not os.path.exists(path) or os.path.getsize(path) != n:
        rng = np.random.default_rng(3)
        with open(path, "wb") as f:  # a smooth float32 series: weights-like, gzip keeps ~81 %
            for i in range(0, n, 64 << 20):
                k = min(64 << 20, n - i) // 4
                f.write((np.cumsum(rng.standard_normal(k)) * 1e-3).astype(np.float32).tobytes())
    return path, n


def put_big(gib, version, root, prefix):
    """The large artifact, put once with `cas put`: (bytes, key, blob name, cas get command, put seconds)."""
    path, n = big_payload(gib)
    flow = "BenchBigV%d" % version
    t = time.perf_counter()
    out = subprocess.run([CAS, "put", "--flow", flow, "--v%d" % version, "--root", root, path], capture_output=True,
                         check=True)
    put_s = time.perf_counter() - t
    key = out.stdout.decode().strip()
    name = "%s/%s/data/%s/%s" % (prefix, flow, key[:2], key)
    return n, key, name, [CAS, "get", "--flow", flow, key, "--root", root], put_s


def time_big(cas_cmd, curl_cmd, chunks, whole, n, version, rounds):
    """One large artifact, interleaved: `cas get` (as configured, and in forced ranged GETs),
    a bare curl GET, and the Python paths: chunks() through a streaming decoder, whole()
    to bytes and then decoded. Figures as the report rows read them."""
    import lz4.frame
    env = dict(os.environ)

    def py_stream():
        d = zlib.decompressobj(31) if version == 1 else lz4.frame.LZ4FrameDecompressor()
        total = sum(len(d.decompress(chunk)) for chunk in chunks())
        if version == 1:
            total += len(d.flush())
        assert total == n

    def py_bytes():
        body = whole()
        data = gzip.decompress(body) if version == 1 else lz4.frame.decompress(body)
        assert len(data) == n

    def run(cmd, with_env=None):
        subprocess.run(cmd, env=with_env or env, stdout=subprocess.DEVNULL, check=True)

    ranged = dict(env, CAS_S3_RANGED_MIN=str(32 << 20))  # ranged GETs: loopback is read in one GET by default
    sides = {"cas_get": lambda: run(cas_cmd), "cas_get_ranged": lambda: run(cas_cmd, ranged),
             "curl": lambda: run(curl_cmd), "py_stream": py_stream, "py_bytes": py_bytes}
    res = interleave(sides, rounds, "v%d" % version)
    return {"version": version, "bytes": n, "rounds": res, "cas_rss_kib": own_rss(cas_cmd, env),
            "median_s": {k: statistics.median(r[k] for r in res) for k in sides},
            "ratio": {k: median_ratio(res, k, "cas_get") for k in sides if k != "cas_get"},
            "vs_curl_throughput": median_ratio(res, "curl", "cas_get"),
            "ranged_vs_curl_throughput": median_ratio(res, "curl", "cas_get_ranged")}


def bench_big(s3, bucket, prefix, gib, rounds, version):
    n, key, name, cas_cmd, put_s = put_big(gib, version, "s3://%s/%s" % (bucket, prefix), prefix)
    curl_cmd = ["curl", "-sf", "-o", "/dev/null", "--aws-sigv4", "aws:amz:us-east-1:s3", "-u",
                "%s:%s" % (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]),
                "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                "%s/%s/%s" % (os.environ["CAS_TEST_S3_ENDPOINT"], bucket, name)]
    res = time_big(cas_cmd, curl_cmd, lambda: s3.get_object(Bucket=bucket, Key=name)["Body"].iter_chunks(1 << 20),
                   lambda: s3.get_object(Bucket=bucket, Key=name)["Body"].read(), n, version, rounds)
    res.update(stored=s3.head_object(Bucket=bucket, Key=name)["ContentLength"], put_s=put_s)
    return res


def bench_put(st, upload, prefix, rounds):
    """64 x 1 MiB float32 through cas_h's put_many against SHA-1 + gzip + the store's
    own SDK on a 16-thread pool; upload(name, blob, sidecar_json) is that SDK's put."""
    import numpy as np
    rng = np.random.default_rng(11)
    res = []
    for r in range(rounds):
        # fresh bytes each round: both sides upload every blob (no dedup)
        items = [(np.cumsum(rng.standard_normal(1 << 18)) * 1e-3).astype(np.float32).tobytes() for _ in range(64)]
        pool = concurrent.futures.ThreadPoolExecutor(16)
        row = {}

        def py_put(b):
            key = hashlib.sha1(b).hexdigest()
            upload("%s/PyPut/data/%s/%s" % (prefix, key[:2], key), gzip.compress(b, compresslevel=3),
                   '{"cas_raw": false, "cas_version": 1}')
            return key

        for side in (["cas", "py"] if r % 2 == 0 else ["py", "cas"]):
            t = time.perf_counter()
            keys = st.put_many("CasPut", items, version=1) if side == "cas" else list(pool.map(py_put, items))
            row[side] = time.perf_counter() - t
            assert keys == [hashlib.sha1(b).hexdigest() for b in items]
        pool.shutdown()
        res.append(row)
    return {"rounds": res, "median_s": {k: statistics.median(r[k] for r in res) for k in ("cas", "py")},
            "ratio": median_ratio(res, "py", "cas")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--big-gib", type=float, default=1.0)
    ap.add_argument("--big-rounds", type=int, default=3)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    server = start_server()
    try:
        import boto3
        import cas_h
        os.environ.setdefault("METAFLOW_S3_ENDPOINT_URL", os.environ["CAS_TEST_S3_ENDPOINT"])
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        s3 = boto3.client("s3", endpoint_url=os.environ["CAS_TEST_S3_ENDPOINT"], region_name="us-east-1")
        bucket, prefix = "casbench", "mf"
        try:
            s3.create_bucket(Bucket=bucket)
        except Exception:
            pass
        res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        with cas_h.Store("s3://%s/%s" % (bucket, prefix)) as st:
            log("S3 benchmark against %s" % os.environ["CAS_TEST_S3_ENDPOINT"])
            t = time.time()
            res["task"] = bench_task(st, s3, bucket, prefix, args.rounds)
            log("  task get     %5.1f s: %s" % (time.time() - t,
                                                {k: round(v, 3) for k, v in res["task"]["median_s"].items()}))
            t = time.time()
            res["put"] = bench_put(st, lambda name, blob, meta: s3.put_object(
                Bucket=bucket, Key=name, Body=blob, Metadata={"metaflow-user-attributes": meta}), prefix, args.rounds)
            log("  64 x 1 MiB   %5.1f s: %s" % (time.time() - t,
                                                {k: round(v, 3) for k, v in res["put"]["median_s"].items()}))
        if not args.skip_big:
            for v in (2, 1):
                t = time.time()
                res["big_v%d" % v] = bench_big(s3, bucket, prefix, args.big_gib, args.big_rounds, v)
                log("  1 GiB v%d     %5.1f s: %s"
                    % (v, time.time() - t, {k: round(x, 2) for k, x in res["big_v%d" % v]["median_s"].items()}))
        write_results(args.out, "s3", "S3 benchmark (%s)" % res["date"], res, report_rows(res))
        return 0
    finally:
        stop_server(server)


def write_results(out, stem, title, res, rows):
    """<out>/<stem>.json (every round) and <stem>.md (the table), and the table to stdout."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, stem + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(out, stem + ".md"), "w") as f:
        f.write("# %s\n\n| check | measured | target | result |\n|---|---|---|---|\n" % title)
        for check, value, target, result in rows:
            f.write("| %s | %s | %s | %s |\n" % (check, value, target, "**%s**" % result if result else ""))
    log("")
    for r in rows:
        log("  %-78s %12s  %-8s %s" % r)


def report_rows(res):
    """(check, measured, target, result): the issue's targets, and the other baselines as information."""
    rows = []

    def row(check, value, fmt, target=None, ok=None):
        rows.append((check, fmt % value, target or "(info)", "" if target is None else "PASS" if ok else "FAIL"))

    t = res["task"]
    what = "task get (%d blobs, %.0f MB, v1)" % (t["blobs"], t["bytes"] / 1e6)
    if "metaflow" in t["ratio"]:
        row(what + ": vs Metaflow's own S3 path (ca_store.load_blobs)", t["ratio"]["metaflow"], "%.1f×", "≥ 10×",
            t["ratio"]["metaflow"] >= 10)
    row(what + ": vs boto3 get_object + gzip, one by one", t["ratio"]["boto3_seq"], "%.1f×", "≥ 10×",
        t["ratio"]["boto3_seq"] >= 10)
    row(what + ": vs boto3 + gzip on a 16-thread pool", t["ratio"]["boto3_pool"], "%.2f×")
    p = res["put"]
    row("put 64 × 1 MiB float32, v1: vs gzip + boto3 put_object on a 16-thread pool", p["ratio"], "%.1f×", "≥ 3×",
        p["ratio"] >= 3)
    for v in (2, 1):
        b = res.get("big_v%d" % v)
        if not b:
            continue
        what = "1 GiB float32 artifact, v%d (%s, %.0f MB stored), `cas get`" % (v, "LZ4" if v == 2 else "gzip",
                                                                                b["stored"] / 1e6)
        row(what + ": vs the Python path, boto3 read + %s to bytes" % ("lz4.frame" if v == 2 else "gzip"),
            b["ratio"]["py_bytes"], "%.2f×", "≥ 3×", b["ratio"]["py_bytes"] >= 3)
        row(what + ": vs boto3 streaming through %s (bounded memory)" % ("lz4.frame" if v == 2 else "zlib"),
            b["ratio"]["py_stream"], "%.2f×")
        row(what + ": throughput vs a bare curl GET to /dev/null", b["vs_curl_throughput"], "%.2f×", "≥ 0.8×",
            b["vs_curl_throughput"] >= 0.8)
        row(what + ", in ranged GETs (CAS_S3_RANGED_MIN=32 MiB): throughput vs the same curl GET",
            b["ranged_vs_curl_throughput"],
            "%.2f×")
        row(what + ": peak RSS", b["cas_rss_kib"] / 1024.0, "%.1f MiB", "≤ 32 MiB", b["cas_rss_kib"] <= 32 * 1024)
    return rows


if __name__ == "__main__":
    sys.exit(main())
