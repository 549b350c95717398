"""What the object-store tests (test_s3.py, test_azure.py) share: the `cas` runner,
the fixture stores and their manifests, Metaflow's decoding rules, a stand-in HTTP
server for credential endpoints. Tests only."""
import atexit
import gzip
import hashlib
import http.server
import io
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

import lz4.frame

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "python"))
sys.path.insert(0, os.path.join(HERE, "s3"))
sys.path.insert(0, os.path.join(REPO, "python", "tests"))
import faultproxy  # noqa: E402
import mf_standin  # noqa: E402
CAS = os.environ.get("CAS", os.path.join(REPO, "build", "cas"))
FIX = os.environ.get("CAS_FIXTURES") or os.path.join(REPO, "tests", "fixtures", "metaflow")

TMP = tempfile.mkdtemp(prefix="cas-cloud-test-")
atexit.register(shutil.rmtree, TMP, True)


def sha1(b):
    return hashlib.sha1(b).hexdigest()


def make_env(scrub, defaults, extra):
    """The caller's environment without the variables in scrub, a fresh HOME (no
    ~/.aws, ~/.metaflowconfig of the caller's), defaults, then extra (None removes)."""
    env = {k: v for k, v in os.environ.items() if k not in scrub}
    home = tempfile.mkdtemp(dir=TMP)
    env.update(HOME=home, METAFLOW_HOME=os.path.join(home, ".metaflowconfig"))
    env.update(defaults)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run_cas(args, env, input=None, timeout=300, cwd=None):
    return subprocess.run([CAS] + list(args), capture_output=True, input=input, env=env, timeout=timeout, cwd=cwd,
                          check=False)


def store_files(local_root):
    """A local datastore's blobs and files as Metaflow puts them in an object store:
    (relative name, path, sidecar text or None), the local metadata provider's _meta
    folders and the sidecars themselves left out."""
    for dirpath, dirs, files in os.walk(local_root):
        dirs[:] = [d for d in dirs if d != "_meta"]
        for f in files:
            if f.endswith("_meta"):
                continue
            path = os.path.join(dirpath, f)
            meta = None
            if os.path.exists(path + "_meta"):
                with open(path + "_meta") as m:
                    meta = m.read()
            yield os.path.relpath(path, local_root).replace(os.sep, "/"), path, meta


def python_decode(blob, meta_text):
    """What Metaflow (and PR #3090) reads a blob as, from its metadata."""
    meta = json.loads(meta_text) if meta_text is not None else None
    if meta and meta.get("cas_raw"):
        return blob
    if meta is None or meta["cas_version"] == 1:
        return gzip.GzipFile(fileobj=io.BytesIO(blob)).read()
    return lz4.frame.decompress(blob)


def manifest(store):
    path = os.path.join(FIX, store, "manifest.json")
    if not os.path.exists(path):
        raise AssertionError("fixture manifest not found: %s (set CAS_FIXTURES)" % path)
    with open(path) as f:
        return json.load(f)


def edge_cases():
    with open(os.path.join(FIX, "v1", "edge_cases.json")) as f:
        return json.load(f)


class _StandIn(http.server.ThreadingHTTPServer):
    daemon_threads = True


def machine_address():
    """This machine's address on its network (not loopback), or None: where a secret must
    not go over plain HTTP (a stand-in listening there sees whether it came)."""
    import socket
    for probe in ("192.0.2.1", "10.255.255.255"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((probe, 9))  # no packet is sent: this only picks the route's source address
            ip = s.getsockname()[0]
            if ip and not ip.startswith("127.") and ip != "0.0.0.0":
                return ip
        except OSError:
            pass
        finally:
            s.close()
    return None


def stand_in(handler_fn, host="127.0.0.1"):
    """A local HTTP server whose requests go to handler_fn(method, path, headers, body) -> (status, body);
    host "0.0.0.0" listens on every address."""
    calls = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _do(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            calls.append((self.command, self.path, dict(self.headers), body))
            status, out = handler_fn(self.command, self.path, self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_PUT = do_POST = _do

    srv = _StandIn((host, 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.calls = calls
    return srv


# ---- what every object store is tested for, whatever its client ------------------------------------------


class ObjectStore:
    """An object store as its own client sees it (boto3, the Azure SDK): what the
    shared checks below write with and check against. Subclasses fill in the rest."""
    scheme = None                 # "s3://", "azure://"
    meta_write_keeps_etag = True  # a metadata-only write leaves the ETag (S3's copy does; Azure's does not)
    dot_segments = True           # its client can write a name with "/../" in it (the Azure SDK cannot)

    def __init__(self):
        self._containers, self._fixtures = set(), {}

    def ensure(self, container):
        if container not in self._containers:
            self.create(container)
            self._containers.add(container)
        return container

    def create(self, container):
        raise NotImplementedError

    def put(self, container, name, data, meta=None):
        raise NotImplementedError

    def get(self, container, name):
        """(bytes, the metaflow user-attributes text or None)"""
        raise NotImplementedError

    def etag(self, container, name):
        raise NotImplementedError

    def names(self, container, prefix):
        raise NotImplementedError

    def upload_store(self, local_root, container, prefix):
        """A local datastore as Metaflow lays it out in an object store; returns the count."""
        self.ensure(container)
        n = 0
        for rel, path, meta in store_files(local_root):
            with open(path, "rb") as fh:
                self.put(container, "%s/%s" % (prefix, rel), fh.read(), meta)
            n += 1
        return n

    def fixture_root(self, store):
        """<scheme>fix-<store>/metaflow holding the fixture store <store>, uploaded once."""
        if store not in self._fixtures:
            self.upload_store(os.path.join(FIX, store, ".metaflow"), "fix-" + store, "metaflow")
            self._fixtures[store] = "%sfix-%s/metaflow" % (self.scheme, store)
        return self._fixtures[store]


class FixtureChecks:
    """The real stores Metaflow wrote, uploaded in its layout, read through cas and the
    binding. Mixed into a unittest.TestCase with `objects` (an ObjectStore) and `cas`."""

    def test_every_artifact_of_every_store(self):
        seen = 0
        for store in ("v1", "v2", "mixed"):
            root = self.objects.fixture_root(store)
            for a in manifest(store):
                out = self.cas("artifact", "%s/%s" % (a["pathspec"], a["name"]), "--root", root, "--verify")
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(sha1(out.stdout), a["key"])
                self.assertEqual(len(out.stdout), a["size"])
                seen += 1
        self.assertGreater(seen, 100)

    def test_ls_every_task(self):
        root = self.objects.fixture_root("mixed")
        arts = manifest("mixed")
        for t in sorted({a["pathspec"] for a in arts}):
            out = self.cas("ls", t, "--root", root)
            self.assertEqual(out.returncode, 0, out.stderr)
            for n in {a["name"] for a in arts if a["pathspec"] == t}:
                self.assertIn(n.encode(), out.stdout)
            self.assertNotIn(b"missing", out.stdout)
            self.assertNotIn(b"bad-sidecar", out.stdout)

    def test_browse_every_level(self):
        """cas ls --json and Store.runs/steps/tasks at every level of an uploaded real store
        find every task Metaflow recorded (the manifest), paged as on a local disk; the
        runs come newest first; preview_task previews a task whole."""
        import cas_h
        root = self.objects.fixture_root("mixed")
        want = {a["pathspec"] for a in manifest("mixed")}

        def rows(*spec):
            out = self.cas("ls", "--json", *spec, "--root", root, env=self.env(CAS_S3_LIST_PAGE="2"))
            self.assertEqual(out.returncode, 0, out.stderr)
            return [json.loads(l) for l in out.stdout.splitlines()]

        self.assertEqual([r["flow"] for r in rows()], ["FixtureFlow"])
        runs = rows("FixtureFlow")
        self.assertEqual({r["run"] for r in runs}, {p.split("/")[1] for p in want})
        # no _meta folders in an object store's layout: start times are the objects', no user
        self.assertTrue(all(r["finished"] and r["started"] and r["user"] is None for r in runs), runs)
        self.assertEqual([r["started"] for r in runs], sorted((r["started"] for r in runs), reverse=True))
        got = {t["pathspec"] for r in runs for s in rows(r["pathspec"]) for t in rows(s["pathspec"]) if t["done"]}
        self.assertEqual(got, want)
        self.assertEqual({r["pathspec"] for r in rows("FixtureFlow/latest")},
                         {"%s/%s" % (runs[0]["pathspec"], p.split("/")[2]) for p in want if runs[0]["run"] in p})
        with cas_h.Store(root) as st:
            py = {t.pathspec for r in st.runs("FixtureFlow") for s in st.steps(r.pathspec)
                  for t in st.tasks(s.pathspec) if t.done}
            self.assertEqual(py, want)
            self.assertEqual(st.latest("FixtureFlow").id, runs[0]["run"])
            task = sorted(want)[0]
            previews = st.preview_task(task, items=3)
            self.assertEqual(list(previews), list(st.task(task).artifacts))
            self.assertFalse([n for n, v in previews.items() if "error" in v])

    def test_edge_cases(self):
        root = self.objects.fixture_root("v1")
        for name, e in edge_cases().items():
            out = self.cas("get", "--flow", "EdgeFlow", e["key"], "--root", root, "--verify")
            self.assertEqual(out.returncode, 0, (name, out.stderr))
            self.assertEqual(len(out.stdout), e["size"], name)

    def test_verify_whole_stores(self):
        for store in ("v1", "v2", "mixed"):
            out = self.cas("verify", "--root", self.objects.fixture_root(store))
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(b", 0 bad", out.stdout)

    def test_show_previews_as_locally(self):
        """`cas show` and cas_h.preview give what they give on the local copy."""
        import cas_h
        root = self.objects.fixture_root("mixed")
        local = os.path.join(FIX, "mixed", ".metaflow")
        picked = [a for a in manifest("mixed") if a["name"] in ("config", "metrics", "embeddings", "weights",
                                                                "_foreach_stack", "opaque", "text")]
        self.assertGreater(len(picked), 10)
        with cas_h.Store(root) as st:
            for a in picked:
                spec = "%s/%s" % (a["pathspec"], a["name"])
                want = self.cas("show", spec, "--root", local)
                out = self.cas("show", spec, "--root", root)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout, want.stdout, spec)
                self.assertEqual(cas_h.preview(st, spec) + "\n", want.stdout.decode(), spec)
        out = self.cas("show", "%s/no_such_artifact" % picked[0]["pathspec"], "--root", root)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"has no artifact 'no_such_artifact'", out.stderr)

    def test_binding_batch_and_stream(self):
        import cas_h
        flows = {}
        for a in manifest("v2"):
            flows.setdefault(a["blob"].split("/")[0], {})[a["key"]] = a["size"]
        with cas_h.Store(self.objects.fixture_root("v2"), verify=True) as st:
            for flow, items in flows.items():
                keys = sorted(items)
                for key, data in zip(keys, st.get_many(flow, keys)):
                    self.assertEqual(sha1(data), key)
                    self.assertEqual(len(data), items[key])
            flow, items = next(iter(flows.items()))
            key = max(items, key=items.get)
            with st.open(flow, key) as f:
                self.assertEqual(sha1(b"".join(iter(lambda: f.read(7777), b""))), key)

    def test_missing_blob_and_task(self):
        root = self.objects.fixture_root("v1")
        out = self.cas("get", "--flow", "FixtureFlow", "0" * 40, "--root", root)
        self.assertEqual(out.returncode, 1)
        self.assertIn(("No blob 'FixtureFlow/data/00/%s' in '%s'" % ("0" * 40, root)).encode(), out.stderr)
        out = self.cas("ls", "FixtureFlow/1/start/1", "--root", root)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"no such task", out.stderr)


class WriteChecks:
    """Writing through cas and the binding, read back with the store's own client as
    Metaflow reads (its metadata rules, Python's gzip and lz4). Mixed into a
    unittest.TestCase with `objects`, `cas`, `env` (the environment, with extras),
    `upstream` (the server's host and port) and `env_through(endpoint)` (the
    environment that sends requests to another endpoint: the fault proxy)."""
    C = "casput"

    @classmethod
    def setUpClass(cls):
        cls.objects.ensure(cls.C)

    def root(self, prefix):
        return "%s%s/%s" % (self.objects.scheme, self.objects.ensure(self.C), prefix)

    def test_put_formats_read_by_metaflow_rules(self):
        rnd = random.Random(5)
        for fmt, want in (("--v1", {"cas_raw": False, "cas_version": 1}),
                          ("--v2", {"cas_raw": False, "cas_version": 2}),
                          ("--raw", {"cas_raw": True, "cas_version": 1})):
            data = bytes(rnd.getrandbits(8) for _ in range(50000)) + b"x" * 100000
            out = self.cas("put", "--flow", "PutFlow", fmt, "--root", self.root("mf"), input=data)
            self.assertEqual(out.returncode, 0, out.stderr)
            key = out.stdout.decode().strip()
            self.assertEqual(key, sha1(data))
            blob, meta = self.objects.get(self.C, "mf/PutFlow/data/%s/%s" % (key[:2], key))
            self.assertEqual(meta, json.dumps(want))  # byte for byte as Metaflow's json.dumps
            self.assertEqual(python_decode(blob, meta), data)
            got = self.cas("get", "--flow", "PutFlow", key, "--root", self.root("mf"), "--verify")
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertEqual(got.stdout, data)

    def test_dedup_writes_nothing(self):
        data = b"dedup me " * 1000
        self.cas("put", "--flow", "Dedup", "--root", self.root("mf"), input=data)
        key = sha1(data)
        name = "mf/Dedup/data/%s/%s" % (key[:2], key)
        before = self.objects.etag(self.C, name)
        out = self.cas("put", "--flow", "Dedup", "--v2", "--root", self.root("mf"), input=data)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.objects.etag(self.C, name), before)
        self.assertEqual(self.objects.get(self.C, name)[1], '{"cas_raw": false, "cas_version": 1}')

    def test_migrate_there_and_back(self):
        n = self.objects.upload_store(os.path.join(FIX, "mixed", ".metaflow"), self.C, "migr")
        self.assertGreater(n, 20)
        root = self.root("migr")
        for to, version in (("v2", 2), ("v1", 1), ("v1", 1)):
            out = self.cas("migrate", "--to", to, "--root", root, "--quiet")
            self.assertEqual(out.returncode, 0, out.stderr)
            for name in self.objects.names(self.C, "migr/FixtureFlow/data/"):
                blob, meta = self.objects.get(self.C, name)
                if not json.loads(meta)["cas_raw"]:
                    self.assertEqual(json.loads(meta)["cas_version"], version, name)
                self.assertEqual(sha1(python_decode(blob, meta)), name.rsplit("/", 1)[1])
        self.assertIn(b"0 blobs rewritten", out.stdout)
        out = self.cas("verify", "--root", root)
        self.assertIn(b", 0 bad", out.stdout)
        for a in manifest("mixed"):  # every artifact still reads as Metaflow reads it
            out = self.cas("artifact", "%s/%s" % (a["pathspec"], a["name"]), "--root", root)
            self.assertEqual(sha1(out.stdout), a["key"])

    def test_legacy_and_mismatched_blobs(self):
        data = b"legacy, before Metaflow 2.4" * 50
        key = sha1(data)
        name = "leg/L/data/%s/%s" % (key[:2], key)
        root = self.root("leg")
        self.objects.put(self.C, name, gzip.compress(data))  # no metadata at all
        out = self.cas("get", "--flow", "L", key, "--root", root, "--verify")
        self.assertEqual(out.stdout, data)
        out = self.cas("migrate", "--to", "v1", "--root", root)  # gzip already: left as it is
        self.assertIn(b"0 blobs rewritten", out.stdout)
        self.assertIsNone(self.objects.get(self.C, name)[1])
        out = self.cas("migrate", "--to", "v2", "--root", root)
        self.assertIn(b"1 blobs rewritten", out.stdout)
        blob, meta = self.objects.get(self.C, name)
        self.assertEqual(meta, '{"cas_raw": false, "cas_version": 2}')
        self.assertEqual(lz4.frame.decompress(blob), data)
        # metadata that contradicts the bytes (LZ4 bytes, cas_version 1): reported, then
        # repaired by migrate with a metadata-only write, the bytes untouched
        self.objects.put(self.C, name, blob, '{"cas_raw": false, "cas_version": 1}')
        etag = self.objects.etag(self.C, name)
        out = self.cas("get", "--flow", "L", key, "--root", root)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"metadata says cas_version 1 (gzip) but the bytes are an LZ4 frame", out.stderr)
        out = self.cas("migrate", "--to", "v2", "--root", root)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.objects.get(self.C, name), (blob, '{"cas_raw": false, "cas_version": 2}'))
        self.assertEqual(self.objects.etag(self.C, name) == etag, self.objects.meta_write_keeps_etag)
        self.assertEqual(self.cas("get", "--flow", "L", key, "--root", root, "--verify").stdout, data)

    def gc_store_uploaded(self, tag):
        """test_cli.gc_store's store (three runs, blobs only each names, unreferenced
        ones), uploaded under a fresh prefix: (root, prefix, keys)."""
        import test_cli
        tmp = tempfile.mkdtemp(prefix="cas_%s_" % tag)
        self.addCleanup(shutil.rmtree, tmp)
        local, keys = test_cli.gc_store(tmp)
        prefix = "%s%d" % (tag, random.getrandbits(32))
        self.objects.upload_store(local, self.C, prefix)
        return self.root(prefix), prefix, keys

    def test_fsck_prune_gc_by_references(self):
        """fsck, prune and gc --unreferenced on the object store: after them every artifact of
        the remaining run reads and verifies, the blobs only pruned runs used are gone, the
        raw blob (a code package's kind) is kept."""
        import test_cli
        root, prefix, keys = self.gc_store_uploaded("gc")

        def ok(*args, rc=0):
            out = self.cas(*args, "--root", root)
            self.assertEqual(out.returncode, rc, out.stderr + out.stdout)
            return out

        rows = [json.loads(l) for l in ok("fsck", "--json", "-j", "3").stdout.splitlines()]
        self.assertEqual((rows[-1]["problems"], rows[-1]["unreferenced"]), (0, 3), rows)
        ok("prune", "FixtureFlow", test_cli.RUNS["old"], test_cli.RUNS["mid"])  # (start times: the upload's)
        runs = [json.loads(l)["run"] for l in ok("ls", "--json", "FixtureFlow").stdout.splitlines()]
        self.assertEqual(runs, [test_cli.RUNS["new"]])
        out = ok("gc", "--unreferenced", "--grace", "0", "--json")
        gone = sorted(json.loads(l)["key"] for l in out.stdout.splitlines() if b'"key"' in l)
        self.assertEqual(gone, sorted(keys[w] for w in ("old", "mid", "unreferenced", "young")))
        names = set(self.objects.names(self.C, prefix + "/FixtureFlow/data/"))
        for what, there in (("new", True), ("raw", True), ("old", False), ("mid", False)):
            self.assertEqual("%s/FixtureFlow/data/%s/%s" % (prefix, keys[what][:2], keys[what]) in names, there, what)
        self.assertFalse([n for n in self.objects.names(self.C, prefix + "/FixtureFlow/") if
                          "/%s/" % test_cli.RUNS["old"] in n], "the pruned run's objects")
        ok("fsck")
        for step in ok("ls", "--json", "FixtureFlow/latest").stdout.splitlines():
            for task in ok("ls", "--json", json.loads(step)["pathspec"]).stdout.splitlines():
                task = json.loads(task)
                if not task["done"]:
                    continue
                for art in ok("ls", "--json", task["pathspec"]).stdout.splitlines():
                    art = json.loads(art)
                    got = ok("artifact", "%s/%s" % (task["pathspec"], art["name"]), "--verify")
                    self.assertEqual(sha1(got.stdout), art["key"])

    def test_gc_and_prune_killed_anywhere(self):
        """gc --unreferenced and prune SIGKILLed at points spread over their own length:
        after each kill every artifact the remaining runs name still reads (fsck), and
        the next run of the same command finishes the job."""
        import signal
        import cas_h
        import test_cli
        root, prefix, keys = self.gc_store_uploaded("gck")
        with cas_h.Store(root) as st:  # blobs nothing names, enough that a kill lands mid-sweep
            spare = st.put_many("FixtureFlow", [b"spare %d" % i for i in range(300)])
        env = self.env()

        def killed(args, rnd, took):
            p = subprocess.Popen([CAS] + args + ["--root", root], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0, took))
            hit = p.poll() is None
            if hit:
                p.send_signal(signal.SIGKILL)
            p.wait()
            return hit

        rnd, kills = random.Random(11), 0
        for args in (["prune", "FixtureFlow", test_cli.RUNS["old"], test_cli.RUNS["mid"]],
                     ["gc", "--unreferenced", "--grace", "0"]):
            start = time.monotonic()
            out = self.cas(*(args + ["--dry-run", "--root", root]))
            took = max(time.monotonic() - start, 0.2) * 3  # a real run does more than a dry one
            for _ in range(4):
                kills += killed(args, rnd, took)
                out = self.cas("fsck", "FixtureFlow/" + test_cli.RUNS["new"], "--root", root)
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            out = self.cas(*(args + ["--root", root]))
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertGreater(kills, 0)
        runs = [json.loads(l)["run"]
                for l in self.cas("ls", "--json", "FixtureFlow", "--root", root).stdout.splitlines()]
        self.assertEqual(runs, [test_cli.RUNS["new"]])
        self.assertEqual(self.cas("fsck", "--root", root).returncode, 0)
        names = set(self.objects.names(self.C, prefix + "/FixtureFlow/data/"))
        self.assertFalse({n.rsplit("/", 1)[1] for n in names} & set(spare), "spare blobs left")
        for what, there in (("new", True), ("raw", True), ("old", False), ("mid", False), ("unreferenced", False)):
            self.assertEqual("%s/FixtureFlow/data/%s/%s" % (prefix, keys[what][:2], keys[what]) in names, there, what)

    def test_cp_there_and_back(self):
        """cas cp of a run local -> object store, of the flow back -> local (re-encoded to v1):
        the same artifacts, each verified; a second copy finds everything there."""
        import test_cli
        src = os.path.join(FIX, "mixed", ".metaflow")
        root = self.root("cp%d" % random.getrandbits(32))
        back = tempfile.mkdtemp(prefix="cas_cp_")
        self.addCleanup(shutil.rmtree, back)
        run = json.loads(test_cli.cas("ls", "--json", "FixtureFlow", "--root", src).stdout.splitlines()[0])["run"]
        out = self.cas("cp", src, root, "FixtureFlow/" + run)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.cas("fsck", "--root", root).returncode, 0)
        out = self.cas("cp", src, root, "FixtureFlow/" + run)
        self.assertIn(b"copied FixtureFlow/%s: 0 blobs" % run.encode(), out.stdout)
        out = self.cas("cp", root, back, "FixtureFlow", "--to", "v1")
        self.assertEqual(out.returncode, 0, out.stderr)
        want = test_cli.TestCopy.artifacts(self, src, run)
        got = test_cli.TestCopy.artifacts(self, back, run)
        self.assertEqual({k: v[0] for k, v in got.items()}, {k: v[0] for k, v in want.items()})
        self.assertTrue(all(f in ("v1", "raw") for _, f in got.values()))
        self.assertEqual(test_cli.cas("fsck", "--root", back).returncode, 0)

    def test_readme_commands_as_written(self):
        """The README's example for this store, run line by line as written: Metaflow's
        config.json from its comments (in a fresh HOME), a store at the root it names
        holding MyFlow/12/train/3 with a 'model' artifact, `cas` on the PATH."""
        import test_cli
        which = {"s3://": "from S3", "azure://": "from Azure"}[self.objects.scheme]
        (block,) = test_cli.readme_blocks("# the task's artifacts, " + which)
        config = test_cli.readme_config(block)
        config.pop("METAFLOW_S3_SERVER_SIDE_ENCRYPTION", None)  # optional there; KMS is AWS's
        sysroot = [v for k, v in config.items() if k.startswith("METAFLOW_DATASTORE_SYSROOT_")][0]
        container, prefix = sysroot.split("://")[-1].split("/", 1)
        tmp = tempfile.mkdtemp(prefix="cas_readme_")
        self.addCleanup(shutil.rmtree, tmp)
        local, model = test_cli.readme_store(tmp)
        self.objects.upload_store(local, self.objects.ensure(container), prefix)
        env = self.env()
        os.makedirs(os.path.join(env["HOME"], ".metaflowconfig"), exist_ok=True)
        with open(os.path.join(env["HOME"], ".metaflowconfig", "config.json"), "w") as fh:
            json.dump(config, fh)
        env["PATH"] = os.path.dirname(os.path.abspath(CAS)) + os.pathsep + env.get("PATH", "")
        test_cli.run_readme_block(self, block, tmp, env)
        outs = [f for f in os.listdir(tmp) if f.endswith(".pkl")]
        self.assertEqual(len(outs), 1, outs)
        with open(os.path.join(tmp, outs[0]), "rb") as fh:
            self.assertEqual(fh.read(), model)

    def test_listing_pages(self):
        import cas_h
        rnd = random.Random(9)
        items = [b"%d-%d" % (i, rnd.getrandbits(64)) for i in range(350)]
        with cas_h.Store(self.root("many")) as st:
            keys = st.put_many("Many", items)
            self.assertEqual(st.get_many("Many", keys), items)
        out = self.cas("verify", "--root", self.root("many"), "Many", env=self.env(CAS_S3_LIST_PAGE="40"))  # 9 pages
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"verified 350 blobs: 350 ok", out.stdout)

    def test_hostile_names_in_a_listing_are_skipped(self):
        data = b"fine"
        key = sha1(data)
        out = self.cas("put", "--flow", "H", "--root", self.root("host"), input=data)
        self.assertEqual(out.returncode, 0)
        for bad in ("H/data/zz/../../../etc/passwd", "H/data/ab/ABCDEF", "H/data/%s/%s" % (key[:2], key[:39]),
                    "H/data/00/%s" % key):
            if self.objects.dot_segments or "/../" not in bad:
                self.objects.put(self.C, "host/" + bad, b"junk")
        out = self.cas("verify", "--root", self.root("host"))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"verified 1 blobs", out.stdout)

    def test_large_blob_in_ranges(self):
        """CAS_S3_RANGED_MIN bytes and more are read as ranged GETs, several in flight, each
        checked against the first answer's ETag; the bytes come out in order, through faults
        too. A server on this machine is read in one GET unless the setting is given."""
        data = os.urandom(41 << 20)
        out = self.cas("put", "--flow", "Ranged", "--v2", "--root", self.root("rng"), input=data)
        self.assertEqual(out.returncode, 0, out.stderr)
        key = out.stdout.decode().strip()
        ranged = {"CAS_S3_RANGED_MIN": str(32 << 20)}
        for extra in (ranged, {"CAS_S3_RANGED_MIN": "0"}, dict(ranged, CAS_S3_CONNECTIONS="1")):
            got = self.cas("get", "--flow", "Ranged", key, "--root", self.root("rng"), "--verify",
                           env=self.env(**extra))
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertTrue(got.stdout == data, "wrong bytes with %s" % extra)
        for extra, want_ranges in ((ranged, True), ({}, False)):
            with faultproxy.FaultProxy(self.upstream, rate=0.25 if want_ranges else 0.0,
                                       kinds=("reset", "cut", "error500", "slowdown"), seed=5, record=True,
                                       max_run=3) as p:
                env = self.env_through(p.endpoint)
                env.update(extra)
                got = self.cas("get", "--flow", "Ranged", key, "--root", self.root("rng"), "--verify", env=env)
                ranges = {h["range"] for _, _, h in p.seen if "range" in h}
                faults = sum(p.stats["faults"].values())
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertTrue(got.stdout == data, "wrong bytes through the fault proxy")
            if want_ranges:
                self.assertGreaterEqual(len(ranges), 11, ranges)  # 41 MiB in 4 MiB ranges
                self.assertGreater(faults, 0)
            else:
                self.assertEqual(ranges, set())  # 127.0.0.1: one GET

    def test_corrupt_blob(self):
        data = b"corrupt me " * 100
        key = sha1(data)
        name = "bad/B/data/%s/%s" % (key[:2], key)
        blob = bytearray(gzip.compress(data))
        blob[len(blob) // 2] ^= 0xFF
        self.objects.put(self.C, name, bytes(blob), '{"cas_raw": false, "cas_version": 1}')
        out = self.cas("verify", "--root", self.root("bad"))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"Could not unpack artifact 'B/data/", out.stderr)
        self.objects.put(self.C, name, gzip.compress(data), '{"cas_raw": false, "cas_version": 9}')
        out = self.cas("get", "--flow", "B", key, "--root", self.root("bad"))
        self.assertIn(b"Unknown encoding version 9 for 'B/data/", out.stderr)


def kill_puts(test, root, env, kills_wanted, seed):
    """SIGKILLs `cas put` of an 11 MiB file (3 parts of 5 MiB) at times spread over a
    put's own length (measured first, so a faster machine still kills mid-upload),
    v1 and v2 in turn, a new key each time. Returns (kills, attempts)."""
    rnd = random.Random(seed)
    kills = attempts = 0
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "in")
        with open(path, "wb") as f:
            f.write(os.urandom(11 << 20))  # incompressible: 3 parts in either format
        whole = None
        for i in range(3):  # a fresh server's first large uploads can be slow (radosgw creates its pools)
            with open(path, "r+b") as f:
                f.write(struct.pack("<Q", 1000 + i))
            t = time.time()
            out = run_cas(("put", "--flow", "Kill", "--root", root, path), env)
            test.assertEqual(out.returncode, 0, out.stderr)
            whole = min(whole or 1e9, time.time() - t)
        while kills < kills_wanted and attempts < 3 * kills_wanted:
            attempts += 1
            with open(path, "r+b") as f:
                f.write(struct.pack("<Q", attempts))
            proc = subprocess.Popen([CAS, "put", "--flow", "Kill", "--v2" if attempts % 2 else "--v1", "--root", root,
                                     path], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(rnd.uniform(0.05, 0.8) * whole)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.communicate()
    test.assertGreaterEqual(kills, kills_wanted,
                            "only %d of %d puts were still running when killed" % (kills, attempts))
    return kills, attempts


# ---- the Metaflow extension on an object store --------------------------------------------------------------


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


class StandInStorage(mf_standin.LocalBackend):
    """Metaflow's S3Storage / AzureStorage as ContentAddressedStore sees them
    (TYPE, datastore_root, is_file, save_bytes, load_bytes into temp files), over
    the store's own client (boto3, the Azure SDK): the stock I/O the extension
    replaces, and what reads back what it wrote. Counts its calls. Its paths are
    the local stand-in's."""

    def __init__(self, objects, container, prefix, kind):
        self.objects, self.container, self.prefix, self.TYPE = objects, container, prefix, kind
        objects.ensure(container)
        self.datastore_root = ("s3://%s/%s" if kind == "s3" else "%s/%s") % (container, prefix)
        self.calls = 0

    def _name(self, path):
        return "%s/%s" % (self.prefix, path)

    def is_file(self, paths):
        self.calls += 1
        return [self._name(p) in self.objects.names(self.container, self._name(p)) for p in paths]

    def save_bytes(self, items, overwrite=False, len_hint=0):
        self.calls += 1
        for path, (fileobj, meta) in items:
            self.objects.put(self.container, self._name(path), fileobj.read(), json.dumps(meta))

    def load_bytes(self, paths):
        self.calls += 1
        tmp = tempfile.mkdtemp(dir=TMP)

        def gen():
            for i, path in enumerate(paths):
                if self._name(path) not in self.objects.names(self.container, self._name(path)):
                    yield path, None, None
                    continue
                data, meta = self.objects.get(self.container, self._name(path))
                local = os.path.join(tmp, str(i))
                with open(local, "wb") as f:
                    f.write(data)
                yield path, local, None if meta is None else json.loads(meta)

        class Closing:
            def __enter__(self):
                return gen()

            def __exit__(self, *exc):
                shutil.rmtree(tmp, True)

        return Closing()


class ExtensionChecks:
    """Metaflow's ContentAddressedStore on this object store with the extension on:
    the object I/O goes through cas.h (the stock storage is never called), what it
    writes is what stock Metaflow writes and reads, and what stock Metaflow wrote it
    reads; a configuration cas.h cannot honour keeps the stock I/O, said once.
    The subclass sets OBJECTS, KIND, UNSUPPORTED (an environment cas.h cannot honour)."""
    OBJECTS = KIND = UNSUPPORTED = None

    @classmethod
    def setUpClass(cls):
        from metaflow_extensions.cas_h import cas_store
        cls.mf, cls.ext = mf_standin, cas_store

        class Stock(mf_standin.ContentAddressedStore):
            pass

        class StockV2(mf_standin.StandInStoreV2):
            pass

        class Patched(mf_standin.ContentAddressedStore):
            pass

        cls.Stock, cls.StockV2, cls.Patched = Stock, StockV2, Patched

    def tearDown(self):
        self.ext.uninstall(self.Patched)

    def storage(self, tag):
        return StandInStorage(self.OBJECTS, "ext-%s-%d" % (tag, os.getpid()), "mf", self.KIND)

    def install(self, version=1):
        self.ext.install(version=version, cls=self.Patched, data_exception=self.mf.DataException,
                         storage=[StandInStorage])

    @staticmethod
    def payloads():
        rnd = random.Random(24)
        big = [bytes(rnd.getrandbits(8) for _ in range(300)) * (n * 1000 + 7) for n in (1, 3, 9)]
        small = [b"system artifact %d" % i for i in range(30)]
        return big + small + [small[3], b""]  # a blob twice, an empty one

    def test_save_through_cas_h_read_by_stock(self):
        for version, Reader in ((1, self.Stock), (2, self.StockV2)):
            st = self.storage("save%d" % version)
            self.install(version)
            blobs = self.payloads()
            res = self.Patched("Flow/data", st).save_blobs(iter(blobs), len_hint=len(blobs))
            raw = self.Patched("Flow/data", st).save_blobs([b"a log line\n"], raw=True)
            self.assertEqual(st.calls, 0, "the extension used the stock storage")
            self.assertEqual([r.key for r in res], [sha1(b) for b in blobs])
            self.assertEqual([r.uri for r in res], [None] * len(blobs))
            self.assertEqual(raw[0].uri, st.full_uri("Flow/data/%s/%s" % (raw[0].key[:2], raw[0].key)))
            back = dict(Reader("Flow/data", st).load_blobs([r.key for r in res + raw]))
            self.assertEqual([back[r.key] for r in res], blobs)
            self.assertEqual(back[raw[0].key], b"a log line\n")
            for r, b in zip(res, blobs):
                data, meta = self.OBJECTS.get(st.container, "mf/Flow/data/%s/%s" % (r.key[:2], r.key))
                self.assertEqual(meta, json.dumps({"cas_raw": False, "cas_version": version}))
            data, meta = self.OBJECTS.get(st.container, "mf/Flow/data/%s/%s" % (raw[0].key[:2], raw[0].key))
            self.assertEqual((data, meta), (b"a log line\n", json.dumps({"cas_raw": True, "cas_version": 1})))
            before = len(self.OBJECTS.names(st.container, "mf/"))
            self.Patched("Flow/data", st).save_blobs(iter(blobs))  # all there: nothing new
            self.assertEqual(len(self.OBJECTS.names(st.container, "mf/")), before)

    def test_load_what_stock_wrote(self):
        st = self.storage("load")
        blobs = self.payloads()
        keys = [r.key for r in self.Stock("Flow/data", st).save_blobs(iter(blobs))]
        keys += [r.key for r in self.StockV2("Flow/data", st).save_blobs([b"v2 " * 5000])]
        keys += [r.key for r in self.Stock("Flow/data", st).save_blobs([b"raw bytes"], raw=True)]
        legacy = b"legacy, no metadata" * 99
        self.OBJECTS.put(st.container, "mf/Flow/data/%s/%s" % (sha1(legacy)[:2], sha1(legacy)), gzip.compress(legacy))
        keys.append(sha1(legacy))
        want = dict(self.StockV2("Flow/data", st).load_blobs(keys))
        self.install()
        cache = self.mf.DictBlobCache()
        store = self.Patched("Flow/data", st)
        store.set_blob_cache(cache)
        st.calls = 0
        got = list(store.load_blobs(keys))
        self.assertEqual(st.calls, 0, "the extension used the stock storage")
        self.assertEqual([k for k, _ in got], keys)  # unique keys here: in their order
        self.assertEqual(dict(got), want)
        self.assertEqual(cache.d, want)
        many = [keys[i % len(keys)] for i in range(200)]  # more than one get_many, cached now
        self.assertEqual([b for _, b in store.load_blobs(many)], [want[k] for k in many])

    def test_missing_blob_as_stock_metaflow(self):
        st = self.storage("missing")
        key = self.Stock("Flow/data", st).save_blobs([b"here"])[0].key
        gone = sha1(b"never written")
        with self.assertRaises(Exception) as stock:
            list(self.Stock("Flow/data", st).load_blobs([key, gone]))
        self.install()
        with self.assertRaises(Exception) as ours:
            list(self.Patched("Flow/data", st).load_blobs([key, gone]))
        self.assertIs(type(ours.exception), type(stock.exception))
        self.assertEqual(str(ours.exception), str(stock.exception))

    def test_wrong_bytes_refused(self):
        st = self.storage("wrong")
        key = sha1(b"what the key says")
        self.OBJECTS.put(st.container, "mf/Flow/data/%s/%s" % (key[:2], key), gzip.compress(b"something else"),
                         json.dumps({"cas_raw": False, "cas_version": 1}))
        self.install()
        with self.assertRaises(self.mf.DataException) as cm:
            list(self.Patched("Flow/data", st).load_blobs([key]))
        self.assertIn(key, str(cm.exception))

    def test_unsupported_configuration_keeps_stock_io(self):
        st = self.storage("unsup")
        blobs = self.payloads()[:5]
        name, value = self.UNSUPPORTED
        saved = os.environ.get(name)
        os.environ[name] = value
        try:
            self.install()
            err = io.StringIO()
            real, sys.stderr = sys.stderr, err
            try:
                keys = [r.key for r in self.Patched("Flow/data", st).save_blobs(iter(blobs))]
                got = [b for _, b in self.Patched("Flow/data", st).load_blobs(keys)]
            finally:
                sys.stderr = real
        finally:
            if saved is None:
                del os.environ[name]
            else:
                os.environ[name] = saved
        self.assertEqual(got, blobs)
        self.assertGreater(st.calls, 0)
        said = err.getvalue()
        self.assertEqual(said.count("Metaflow's own I/O"), 1, said)
        self.assertIn(name, said)

    def test_task_metadata_through_cas_h(self):
        """What TaskDataStore does around the blobs (data.json, attempt and DONE
        markers, logs), through cas.h, as Metaflow's storage does it."""
        st = self.storage("meta")
        files = [("Flow/1/start/2/0.attempt.json", io.BytesIO(b'{"time": 1}')),
                 ("Flow/1/start/2/0.data.json", io.BytesIO(b'{"objects": {"x": "ab"}}')),
                 ("Flow/1/start/2/0.runtime_stdout.log", (io.BytesIO(b"log\n" * 999), {"size": 3996}))]
        self.install()
        st.save_bytes(iter(files), overwrite=True)
        self.assertEqual(st.is_file(["Flow/1/start/2/0.data.json", "Flow/1/start/2/0.DONE.lock"]), [True, False])
        st.save_bytes([("Flow/1/start/2/0.data.json", io.BytesIO(b"{}"))], overwrite=False)  # kept
        st.save_bytes([("Flow/1/start/2/0.DONE.lock", io.BytesIO(b""))], overwrite=True)
        with st.load_bytes(["Flow/1/start/2/0.data.json", "Flow/1/start/2/9.data.json",
                            "Flow/1/start/2/0.runtime_stdout.log"]) as loaded:
            got = [(p, slurp(f) if f else None, m) for p, f, m in loaded]
        self.assertEqual(got, [("Flow/1/start/2/0.data.json", b'{"objects": {"x": "ab"}}', None),
                               ("Flow/1/start/2/9.data.json", None, None),
                               ("Flow/1/start/2/0.runtime_stdout.log", b"log\n" * 999, {"size": 3996})])
        self.assertEqual(st.calls, 0, "the extension used the stock storage")
        self.ext.uninstall(self.Patched)  # stock Metaflow reads what cas.h wrote, the same
        self.assertEqual(st.is_file(["Flow/1/start/2/0.DONE.lock", "Flow/1/start/2/1.attempt.json"]), [True, False])
        with st.load_bytes(["Flow/1/start/2/0.runtime_stdout.log", "Flow/1/start/2/0.attempt.json"]) as loaded:
            back = [(slurp(f), m) for _, f, m in loaded]
        self.assertEqual(back, [(b"log\n" * 999, {"size": 3996}), (b'{"time": 1}', None)])
        _, meta = self.OBJECTS.get(st.container, "mf/Flow/1/start/2/0.runtime_stdout.log")
        self.assertEqual(meta, json.dumps({"size": 3996}))
        _, meta = self.OBJECTS.get(st.container, "mf/Flow/1/start/2/0.data.json")
        self.assertIsNone(meta)

    def test_access_denied_hands_over_to_metaflow(self):
        """cas.h refused by the server (here: a wrong secret that Metaflow's own client,
        with the right one, does not share): the call and the store go to Metaflow's
        code, said once; nothing fails that Metaflow would have done."""
        st = self.storage("denied")
        blobs = self.payloads()[:4]
        keys = [r.key for r in self.Stock("Flow/data", st).save_blobs(iter(blobs))]
        name, value = self.WRONG_SECRET
        saved = os.environ.get(name)
        os.environ[name] = value
        err = io.StringIO()
        real, sys.stderr = sys.stderr, err
        try:
            self.install()
            got = [b for _, b in self.Patched("Flow/data", st).load_blobs(keys)]
            again = [b for _, b in self.Patched("Flow/data", st).load_blobs(keys)]
            more = self.Patched("Flow/data", st).save_blobs([b"after the refusal"])
        finally:
            sys.stderr = real
            if saved is None:
                del os.environ[name]
            else:
                os.environ[name] = saved
        self.assertEqual(got, blobs)
        self.assertEqual(again, blobs)
        self.assertEqual(more[0].key, sha1(b"after the refusal"))
        self.assertGreater(st.calls, 0)
        said = err.getvalue()
        self.assertEqual(said.count("Metaflow's own I/O from now on"), 1, said)
        self.assertNotIn(value, said)

    def test_forked_child_uses_its_own_connections(self):
        """Metaflow's parallel_map forks; a child loads artifacts on its own
        connections (not the parent's, which it must neither use nor close), and the
        parent's go on working."""
        st = self.storage("fork")
        blobs = self.payloads()[:6]
        self.install()
        keys = [r.key for r in self.Patched("Flow/data", st).save_blobs(iter(blobs))]
        self.assertEqual([b for _, b in self.Patched("Flow/data", st).load_blobs(keys)], blobs)
        ext = self.ext
        ext._Small.clear()
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only if it read everything right
            ok = 1
            try:
                ext._Small.clear()
                ok = 0 if [b for _, b in self.Patched("Flow/data", st).load_blobs(keys)] == blobs else 3
            finally:
                os._exit(ok)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(status, 0)
        self.assertEqual([b for _, b in self.Patched("Flow/data", st).load_blobs(keys)], blobs)
        self.assertEqual(st.calls, 0, "the extension used the stock storage")
        self.assertEqual(len([i for i, v in ext._Remote.stores.items() if v is not None and i[3] == os.getpid()]), 1)

    def test_load_bytes_leaves_no_temp_files(self):
        st = self.storage("tmp")
        self.install()
        st.save_bytes([("F/1/s/1/0.data.json", io.BytesIO(b"{}"))], overwrite=True)
        with st.load_bytes(["F/1/s/1/0.data.json"]) as loaded:
            (_, local, _), = list(loaded)
            self.assertTrue(os.path.exists(local))
        self.assertFalse(os.path.exists(os.path.dirname(local)))
