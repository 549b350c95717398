#!/usr/bin/env python3
"""Real Metaflow on an object store, stock against the cas_h extension (issue 24).

  MF=/path/to/metaflow /usr/bin/python3 bench/metaflow_cloud.py s3|azure [--fan 10] [--rounds 3]

Needs Metaflow's source (MF, e.g. fetched from github.com/Netflix/metaflow; not
part of CI), `make`, and for s3 python3-boto3, for azure python3-azure. Starts its
own server (tests/s3/s3server.sh: radosgw on loopback; tests/azure/azurite.sh:
azurite, with Metaflow and cas.h both authenticating as a managed identity through
python/tools/imds_standin.py, as Metaflow's DefaultAzureCredential does in Azure).

A run is written by Metaflow's own TaskDataStore (stock, the extension off): a
start task with the five PR #3090 payloads (bench/payloads.py, without the 64 MiB
text) and 28 small system artifacts, --fan foreach tasks with the system artifacts,
an 800 KB array and a 52 KB dict of their own, a join and an end task that carry
the payloads on. Then, interleaved round by round (the order of the sides shuffled
per round), each side in the same process, with the same heap settings:

  load   every artifact of every task, task by task, as the client's Task.data
         does: FlowDataStore -> get_task_datastore (data.json, DONE) ->
         TaskDataStore.load_artifacts -> ContentAddressedStore.load_blobs
  save   one task's 33 artifacts (5 payloads + 28 system), save_artifacts into a
         flow no blob of which exists yet

  sides  stock: Metaflow's own code; ext: cas_store.install(1) on Metaflow's
         ContentAddressedStore and storage (cas_version 1, as stock writes; reads
         rehashed); ext_nocache: the same without the extension's in-memory cache of
         small blobs (CAS_H_CACHE_MB=0), which a run's tasks share (stock Metaflow's
         client keeps such a cache on disk; FlowDataStore alone has none)
  floor  the same objects through a bare client with 16 threads, nothing decoded:
         per task its data.json then its blobs (load); the 33 packed blobs PUT (save)

Each side's artifacts are checked equal (pickled again, hashed) before timing.
Prints medians per side and the median of per-round ratios; writes
bench/results/metaflow_<store>.md.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TOP_PAD_": str(256 << 20)}
if any(os.environ.get(k) != v for k, v in ENV.items()):
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, **ENV))

PAYLOADS = ["config_233", "metrics_52k", "emb_800k", "weights_8m", "random_5m"]
FLOW = "CloudBenchFlow"
RUN = "1"


def start_server(kind, work):
    """The server's environment for Metaflow, cas.h and the bare client; stop()."""
    if kind == "s3":
        subprocess.run(["sh", os.path.join(ROOT, "tests/s3/s3server.sh"), "start", work + "/srv"], check=True,
                       stdout=subprocess.DEVNULL)
        env = _source(work + "/srv/env")
        os.environ.update(env)
        os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                          METAFLOW_DEFAULT_DATASTORE="s3", METAFLOW_DATASTORE_SYSROOT_S3="s3://mfbench/metaflow",
                          METAFLOW_S3_ENDPOINT_URL=env["CAS_TEST_S3_ENDPOINT"])
        import boto3
        boto3.client("s3", endpoint_url=env["CAS_TEST_S3_ENDPOINT"]).create_bucket(Bucket="mfbench")
        return lambda: subprocess.run(["sh", os.path.join(ROOT, "tests/s3/s3server.sh"), "stop", work + "/srv"],
                                      stdout=subprocess.DEVNULL)
    subprocess.run(["sh", os.path.join(ROOT, "tests/azure/azurite.sh"), "start", work + "/srv"], check=True,
                   stdout=subprocess.DEVNULL)
    env = _source(work + "/srv/env")
    os.environ.update(env)
    imds = subprocess.Popen([sys.executable, os.path.join(ROOT, "python/tools/imds_standin.py")],
                            stdout=subprocess.PIPE, text=True)
    port = imds.stdout.readline().strip()
    from azure.storage.blob import BlobServiceClient
    BlobServiceClient(account_url=env["CAS_TEST_AZURE_OAUTH_ENDPOINT"], connection_verify=env["CAS_TEST_AZURE_CA"],
                      credential={"account_name": env["AZURE_STORAGE_ACCOUNT"],
                                  "account_key": env["AZURE_STORAGE_KEY"]}).create_container("mfbench")
    for k in ("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT"):  # a managed identity's tokens only, as Metaflow
        os.environ.pop(k, None)
    os.environ.update(METAFLOW_DEFAULT_DATASTORE="azure", METAFLOW_DATASTORE_SYSROOT_AZURE="mfbench/metaflow",
                      METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=env["CAS_TEST_AZURE_OAUTH_ENDPOINT"],
                      AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:%s" % port,
                      REQUESTS_CA_BUNDLE=env["CAS_TEST_AZURE_CA"])

    def stop():
        imds.kill()
        subprocess.run(["sh", os.path.join(ROOT, "tests/azure/azurite.sh"), "stop", work + "/srv"],
                       stdout=subprocess.DEVNULL)
    return stop


def _source(path):
    out = {}
    for line in open(path):
        if line.startswith("export ") and "=" in line:
            k, v = line[7:].strip().split("=", 1)
            out[k] = v.strip("'\"")
    return out


class Bare:
    """The floor: the store's own client, 16 threads, no decoding."""

    def __init__(self, kind):
        self.kind = kind
        self.pool = concurrent.futures.ThreadPoolExecutor(16)
        if kind == "s3":
            import boto3
            import botocore.config
            self.s3 = boto3.client("s3", endpoint_url=os.environ["CAS_TEST_S3_ENDPOINT"],
                                   config=botocore.config.Config(max_pool_connections=32))
            self.bucket, self.prefix = "mfbench", "metaflow/"
        else:
            from azure.identity import ManagedIdentityCredential
            from azure.storage.blob import BlobServiceClient
            svc = BlobServiceClient(os.environ["METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT"],
                                    credential=ManagedIdentityCredential(),
                                    connection_verify=os.environ["REQUESTS_CA_BUNDLE"])
            self.cont = svc.get_container_client("mfbench")
            self.prefix = "metaflow/"

    def get(self, name):
        if self.kind == "s3":
            return self.s3.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        return self.cont.get_blob_client(self.prefix + name).download_blob().readall()

    def put(self, name, data):
        if self.kind == "s3":
            self.s3.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data, Metadata={
                "metaflow-user-attributes": '{"cas_raw": false, "cas_version": 1}'})
        else:
            self.cont.get_blob_client(self.prefix + name).upload_blob(data, overwrite=True, metadata={
                "metaflow_user_attributes": '{"cas_raw": false, "cas_version": 1}'})

    def many(self, fn, items):
        return list(self.pool.map(fn, items))


def artifacts(data, system):
    """The objects a task saves: name -> object."""
    return dict([("_sys%02d" % i, obj) for i, obj in enumerate(system)] + list(data.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store", choices=("s3", "azure"))
    ap.add_argument("--fan", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mf", default=os.environ.get("MF"))
    args = ap.parse_args()
    if not args.mf:
        sys.exit("bench/metaflow_cloud.py: set MF (or --mf) to a Metaflow source tree")
    sys.path[:0] = [args.mf, os.path.join(ROOT, "python"), HERE]
    os.environ.setdefault("CAS_H_LIBRARY", os.path.join(ROOT, "build", "libcas.so"))
    work = tempfile.mkdtemp(prefix="cas-mfbench-")
    os.environ.update(USERNAME="bench", METAFLOW_DEFAULT_METADATA="local", METAFLOW_HOME=work + "/mfhome")
    os.environ.pop("METAFLOW_CAS_H", None)
    stop = start_server(args.store, work)
    try:
        run(args, work)
    finally:
        stop()
        shutil.rmtree(work, True)


def run(args, work):
    import numpy as np
    import payloads
    sys.argv = sys.argv[:1]
    from metaflow.datastore import FlowDataStore
    from metaflow.metaflow_version import get_version
    if args.store == "s3":
        from metaflow.plugins.datastores.s3_storage import S3Storage as Impl
        root = os.environ["METAFLOW_DATASTORE_SYSROOT_S3"]
    else:
        from metaflow.plugins.datastores.azure_storage import AzureStorage as Impl
        root = os.environ["METAFLOW_DATASTORE_SYSROOT_AZURE"]
    from metaflow_extensions.cas_h import cas_store
    import cas_h

    paths = payloads.ensure(os.path.join(ROOT, "build", "bench", "payloads"), log=lambda *a: None)
    data = {n: pickle.loads(open(paths[n], "rb").read()) for n in PAYLOADS}
    sys.path.insert(0, HERE)
    system = [pickle.loads(b) for b in payloads.system_artifacts(cas_h, 28, keep=_unpickles)]

    # the run, written by stock Metaflow
    cas_store.uninstall()
    fds = FlowDataStore(FLOW, storage_impl=Impl, ds_root=root)
    tasks = [("start", "1", artifacts(data, system))]
    for i in range(args.fan):
        rng = np.random.default_rng(i)
        own = {"emb": rng.random(100_000), "metrics": {"loss_%d" % j: float(rng.random()) for j in range(2000)},
               "index": i}
        tasks.append(("fan", str(2 + i), artifacts(own, system)))
    tasks.append(("join", str(2 + args.fan), artifacts(data, system)))
    tasks.append(("end", str(3 + args.fan), artifacts(data, system)))
    t0 = time.perf_counter()
    for step, tid, arts in tasks:
        write_task(fds, step, tid, arts)
    print("store %s (%s), Metaflow %s; run %s/%s: %d tasks, %d artifacts, written by stock Metaflow in %.1f s" % (
        args.store, root, get_version(), FLOW, RUN, len(tasks), sum(len(a) for _, _, a in tasks),
        time.perf_counter() - t0))
    import report
    state = report.machine_state()
    print("machine: " + state)

    bare = Bare(args.store)
    keys_of = {}  # task -> its data.json's object names and its blob names

    def load_all():
        f = FlowDataStore(FLOW, storage_impl=Impl, ds_root=root)
        out = {}
        for step, tid, _ in tasks:
            tds = f.get_task_datastore(RUN, step, tid, mode="r")
            names = list(tds._objects)
            out[(step, tid)] = dict(tds.load_artifacts(names))
            keys_of[(step, tid)] = [tds._objects[n] for n in names]
        return out

    def floor_load():
        for step, tid, _ in tasks:
            meta = bare.get("%s/%s/%s/%s/0.data.json" % (FLOW, RUN, step, tid))
            keys = sorted(set(json.loads(meta)["objects"].values()))
            bare.many(lambda k: bare.get("%s/data/%s/%s" % (FLOW, k[:2], k)), keys)

    save_arts = artifacts(data, system)
    packed = [cas_h.compress(pickle.dumps(o, protocol=4), 1) for o in save_arts.values()]
    counter = [0]

    def save_one():
        counter[0] += 1
        f = FlowDataStore("%s%d" % (FLOW, counter[0]), storage_impl=Impl, ds_root=root)
        tds = f.get_task_datastore(RUN, "start", "1", attempt=0, mode="w")
        tds.init_task()
        t = time.perf_counter()
        tds.save_artifacts(iter(save_arts.items()))
        return time.perf_counter() - t

    def floor_save():
        counter[0] += 1
        t = time.perf_counter()
        bare.many(lambda ib: bare.put("Floor%d/data/%02x/%d" % (counter[0], ib[0], ib[0]), ib[1]),
                  list(enumerate(packed)))
        return time.perf_counter() - t

    # the same artifacts on both sides, before any timing
    digests = {}
    for side in ("stock", "ext", "ext_nocache"):
        set_side(cas_store, side)
        got = load_all()
        digests[side] = {t: {n: hashlib.sha1(pickle.dumps(o, protocol=4)).hexdigest() for n, o in a.items()}
                         for t, a in got.items()}
        del got
    if digests["stock"] != digests["ext"] or digests["stock"] != digests["ext_nocache"]:
        sys.exit("bench: the extension loaded other artifacts than stock Metaflow")
    n_arts = sum(len(v) for v in digests["stock"].values())
    distinct = len({k for v in keys_of.values() for k in v})
    print("checked: the extension loads the same %d artifacts (%d distinct blobs) as stock Metaflow" % (
        n_arts, distinct))

    sides = ("stock", "ext", "ext_nocache", "floor")
    timing = {(op, s): [] for s in sides for op in ("load", "save")}
    for r in range(args.rounds):
        order = list(sides)
        random.Random(r).shuffle(order)
        for side in order:
            if side == "floor":
                t = time.perf_counter()
                floor_load()
                timing["load", side].append(time.perf_counter() - t)
                timing["save", side].append(floor_save())
                continue
            set_side(cas_store, side)
            t = time.perf_counter()
            load_all()
            timing["load", side].append(time.perf_counter() - t)
            timing["save", side].append(save_one())
        print("  round %d: %s" % (r + 1, ", ".join("%s %s %.2f s" % (op, s, timing[op, s][-1])
                                                   for op in ("load", "save") for s in sides)))
    cas_store.uninstall()

    lines = ["# Real Metaflow on %s: stock vs the cas_h extension (bench/metaflow_cloud.py)" % args.store, "",
             "Metaflow %s; run of %d tasks, %d artifacts, %d distinct blobs; %d rounds interleaved, medians; "
             "machine: %s." % (get_version(), len(tasks), n_arts, distinct, args.rounds, state), "",
             "| op | stock | ext | ext, no blob cache | floor (bare client, 16 threads, no decoding) | ext vs stock "
             "| ext (no cache) vs stock | ext vs floor | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    targets = {("load", "s3"): 10, ("load", "azure"): 5, ("save", "s3"): 3, ("save", "azure"): 3}
    verdicts = []
    for op, what in (("load", "every artifact of every task, task by task"),
                     ("save", "one task's %d artifacts" % len(save_arts))):
        st, ex, nc, fl = (statistics.median(timing[op, s]) for s in sides)
        ratio = statistics.median(a / b for a, b in zip(timing[op, "stock"], timing[op, "ext"]))
        ratio_nc = statistics.median(a / b for a, b in zip(timing[op, "stock"], timing[op, "ext_nocache"]))
        want = targets[op, args.store]
        lines.append("| %s: %s | %.3f s | %.3f s | %.3f s | %.3f s | %.1fx | %.1fx | %.2fx | >= %dx |" % (
            op, what, st, ex, nc, fl, ratio, ratio_nc, fl / ex, want))
        verdicts.append("- %s %s: ext >= %dx stock (%.1fx)" % ("PASS" if ratio >= want else "FAIL", op, want, ratio))
    text = "\n".join(lines + [""] + verdicts) + "\n"
    print(text)
    with open(os.path.join(HERE, "results", "metaflow_%s.md" % args.store), "w") as f:
        f.write(text)


def _unpickles(data):
    """Whether data is a pickle (the project's own fixtures: safe to unpickle)."""
    try:
        pickle.loads(data)
        return True
    except Exception:
        return False


def set_side(cas_store, side):
    """stock: Metaflow's code; ext: the extension; ext_nocache: without its cache of
    small blobs (each side starts with it empty)."""
    from metaflow import metaflow_config
    metaflow_config.CAS_H_CACHE_MB = 0 if side == "ext_nocache" else 64
    if side == "stock":
        cas_store.uninstall()
    else:
        cas_store.install(version=1)


def write_task(fds, step, tid, arts):
    tds = fds.get_task_datastore(RUN, step, tid, attempt=0, mode="w")
    tds.init_task()
    tds.save_artifacts(iter(arts.items()))
    tds.done()


if __name__ == "__main__":
    main()
