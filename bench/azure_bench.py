#!/usr/bin/env python3
"""`make bench`, Azure part: cas.h against the Azure SDK's Python path on the same emulator.

The server is azurite on loopback (tests/azure/azurite.sh, started here unless
CAS_TEST_AZURE_ENDPOINT names a running one), the same for both sides, so its
own speed cancels out of every ratio; sides are interleaved round by round and
the medians of per-round ratios are shown (bench/s3.py's method and helpers).

  1. A task's artifacts: the 140 blobs of bench/s3.py (~25 MB decoded), v1 as
     Metaflow writes them. cas: Store.get_many (requests in flight over
     libcurl's multi interface, decoded on two threads). Against the Azure SDK
     (azure-storage-blob, what Metaflow's Azure datastore uses) download_blob +
     gzip, one by one and on a 16-thread pool.
  2. One large float32 artifact (256 MiB by default), v2 and v1, decoded as it
     streams: `cas get` to /dev/null (peak RSS measured) against the SDK
     reading it whole and decoding it (what a Python reader of a whole artifact
     does), the SDK streaming its chunks through zlib / lz4.frame (bounded
     memory, as `cas get`), and a bare `curl` GET of the same blob (a SAS URL)
     to /dev/null.
  3. 64 x 1 MiB float32 put as v1: Store.put_many against gzip + the SDK's
     upload_blob with the metadata, on a 16-thread pool.
"""
import argparse
import concurrent.futures
import datetime
import gzip
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import s3 as common  # noqa: E402  (bench/s3.py: payloads, interleaving, RSS)

ROOT, CAS, log = common.ROOT, common.CAS, common.log
META = "metaflow_user_attributes"


def start_server():
    if os.environ.get("CAS_TEST_AZURE_ENDPOINT"):
        return None
    d = tempfile.mkdtemp(prefix="cas-bench-azure-")
    subprocess.check_call(["sh", os.path.join(ROOT, "tests", "azure", "azurite.sh"), "start", d])
    common.load_env(os.path.join(d, "env"))
    return d


def stop_server(d):
    if d:
        subprocess.call(["sh", os.path.join(ROOT, "tests", "azure", "azurite.sh"), "stop", d])


def bench_task(st, cc, prefix, rounds):
    blobs = common.task_payloads()
    keys = st.put_many("BenchTask", blobs, version=1)
    names = ["%s/BenchTask/data/%s/%s" % (prefix, k[:2], k) for k in keys]

    def py_one(name):
        return gzip.decompress(cc.get_blob_client(name).download_blob().readall())

    pool = concurrent.futures.ThreadPoolExecutor(16)
    sides = {"cas": lambda: st.get_many("BenchTask", keys), "sdk_seq": lambda: [py_one(n) for n in names],
             "sdk_pool": lambda: list(pool.map(py_one, names))}
    for fn in sides.values():  # warm: connections, allocator, imports
        assert [hashlib.sha1(b).hexdigest() for b in fn()] == keys
    res = common.interleave(sides, rounds)
    pool.shutdown()
    return {"blobs": len(blobs), "bytes": sum(len(b) for b in blobs), "rounds": res,
            "median_s": {k: statistics.median(r[k] for r in res) for k in sides},
            "ratio": {k: common.median_ratio(res, k, "cas") for k in sides if k != "cas"}}


def bench_big(cc, container, prefix, gib, rounds, version):
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas
    n, key, name, cas_cmd, put_s = common.put_big(gib, version, "azure://%s/%s" % (container, prefix), prefix)
    blob = cc.get_blob_client(name)
    sas = generate_blob_sas(os.environ["AZURE_STORAGE_ACCOUNT"], container, name,
                            account_key=os.environ["AZURE_STORAGE_KEY"], permission=BlobSasPermissions(read=True),
                            expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=2))
    curl_cmd = ["curl", "-sf", "-o", "/dev/null", "%s/%s/%s?%s" % (os.environ["CAS_TEST_AZURE_ENDPOINT"], container,
                                                                   name, sas)]
    res = common.time_big(cas_cmd, curl_cmd, lambda: blob.download_blob().chunks(),
                          lambda: blob.download_blob().readall(), n, version, rounds)
    res.update(stored=blob.get_blob_properties().size, put_s=put_s)
    return res


def report_rows(res):
    rows = []

    def row(check, value, fmt, target=None, ok=None):
        rows.append((check, fmt % value, target or "(info)", "" if target is None else "PASS" if ok else "FAIL"))

    t = res["task"]
    what = "task get (%d blobs, %.0f MB, v1)" % (t["blobs"], t["bytes"] / 1e6)
    row(what + ": vs the Azure SDK download_blob + gzip, one by one", t["ratio"]["sdk_seq"], "%.1f×", "≥ 10×",
        t["ratio"]["sdk_seq"] >= 10)
    row(what + ": vs the Azure SDK + gzip on a 16-thread pool", t["ratio"]["sdk_pool"], "%.2f×")
    p = res["put"]
    row("put 64 × 1 MiB float32, v1: vs gzip + the SDK's upload_blob on a 16-thread pool", p["ratio"], "%.1f×", "≥ 3×",
        p["ratio"] >= 3)
    for v in (2, 1):
        b = res.get("big_v%d" % v)
        if not b:
            continue
        what = "%d MiB float32 artifact, v%d (%s, %.0f MB stored), `cas get`" % (
            b["bytes"] >> 20, v, "LZ4" if v == 2 else "gzip", b["stored"] / 1e6)
        row(what + ": vs the SDK read + %s to bytes" % ("lz4.frame" if v == 2 else "gzip"), b["ratio"]["py_bytes"],
            "%.2f×", "≥ 3×", b["ratio"]["py_bytes"] >= 3)
        row(what + ": vs the SDK streaming through %s (bounded memory)" % ("lz4.frame" if v == 2 else "zlib"),
            b["ratio"]["py_stream"], "%.2f×")
        row(what + ": throughput vs a bare curl GET (SAS URL) to /dev/null", b["vs_curl_throughput"], "%.2f×")
        row(what + ", in ranged GETs (CAS_S3_RANGED_MIN=32 MiB): throughput vs the same curl GET",
            b["ranged_vs_curl_throughput"],
            "%.2f×")
        row(what + ": peak RSS", b["cas_rss_kib"] / 1024.0, "%.1f MiB", "≤ 32 MiB", b["cas_rss_kib"] <= 32 * 1024)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--big-gib", type=float, default=0.25)
    ap.add_argument("--big-rounds", type=int, default=3)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    server = start_server()
    try:
        import cas_h
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient
        ep = os.environ["CAS_TEST_AZURE_ENDPOINT"]
        os.environ["METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT"] = ep
        svc = BlobServiceClient(account_url=ep, credential={"account_name": os.environ["AZURE_STORAGE_ACCOUNT"],
                                                            "account_key": os.environ["AZURE_STORAGE_KEY"]})
        container, prefix = "casbench", "mf"
        try:
            svc.create_container(container)
        except ResourceExistsError:
            pass
        cc = svc.get_container_client(container)
        res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        with cas_h.Store("azure://%s/%s" % (container, prefix)) as st:
            log("Azure benchmark against %s (azurite)" % ep)
            t = time.time()
            res["task"] = bench_task(st, cc, prefix, args.rounds)
            log("  task get     %5.1f s: %s" % (time.time() - t,
                                                {k: round(v, 3) for k, v in res["task"]["median_s"].items()}))
            t = time.time()
            res["put"] = common.bench_put(st, lambda name, blob, meta: cc.upload_blob(
                name, blob, overwrite=True, metadata={META: meta}), prefix, args.rounds)
            log("  64 x 1 MiB   %5.1f s: %s" % (time.time() - t,
                                                {k: round(v, 3) for k, v in res["put"]["median_s"].items()}))
        if not args.skip_big:
            for v in (2, 1):
                t = time.time()
                res["big_v%d" % v] = bench_big(cc, container, prefix, args.big_gib, args.big_rounds, v)
                log("  big v%d       %5.1f s: %s"
                    % (v, time.time() - t, {k: round(x, 2) for k, x in res["big_v%d" % v]["median_s"].items()}))
        common.write_results(args.out, "azure",
                             "Azure benchmark, against azurite 3.35.0 on loopback (%s)" % res["date"],
                             res, report_rows(res))
        return 0
    finally:
        stop_server(server)


if __name__ == "__main__":
    sys.exit(main())
