#!/usr/bin/env python3
"""The `cas` command on the real Metaflow stores: every artifact of every
manifest, verify, migrate there and back (checked with Python's own readers),
exit codes, messages, --help, root discovery."""
import glob
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import tempfile
import time
import unittest

import lz4.frame

HERE = os.path.dirname(os.path.abspath(__file__))
CAS = os.environ.get("CAS", os.path.join(HERE, "..", "build", "cas"))
FIX = os.environ.get("CAS_FIXTURES") or os.path.join(HERE, "fixtures", "metaflow")


def cas(*args, **kw):
    return subprocess.run([CAS] + list(args), capture_output=True, check=False, **kw)


def blobs_of(store):
    for dirpath, _, files in os.walk(store):
        if os.path.basename(os.path.dirname(dirpath)) != "data":
            continue
        for f in files:
            if len(f) == 40 and not f.startswith("."):
                yield os.path.join(dirpath, f)


def python_read(blob_path):
    """Reads a blob as Metaflow and PR #3090 do, from its sidecar."""
    with open(blob_path, "rb") as f:
        blob = f.read()
    try:
        with open(blob_path + "_meta") as f:
            meta = json.load(f)
    except FileNotFoundError:
        meta = None
    if meta and meta.get("cas_raw"):
        return blob, "raw"
    version = 1 if meta is None else meta["cas_version"]
    if version == 1:
        return gzip.GzipFile(fileobj=io.BytesIO(blob)).read(), "v1"
    return lz4.frame.decompress(blob), "v2"


class TestArtifacts(unittest.TestCase):
    def test_every_manifest_artifact(self):
        seen = 0
        for store in ("v1", "v2", "mixed"):
            root = os.path.join(FIX, store, ".metaflow")
            with open(os.path.join(FIX, store, "manifest.json")) as f:
                manifest = json.load(f)
            for a in manifest:
                out = cas("artifact", "%s/%s" % (a["pathspec"], a["name"]), "--root", root, "--verify")
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(len(out.stdout), a["size"])
                self.assertEqual(hashlib.sha1(out.stdout).hexdigest(), a["key"])
                seen += 1
        self.assertEqual(seen, 536)

    def test_ls(self):
        root = os.path.join(FIX, "mixed", ".metaflow")
        with open(os.path.join(FIX, "mixed", "manifest.json")) as f:
            manifest = json.load(f)
        a = [x for x in manifest if x["meta"]["cas_version"] == 2][0]
        out = cas("ls", a["pathspec"], "--root", root)
        self.assertEqual(out.returncode, 0, out.stderr)
        line = [l for l in out.stdout.decode().splitlines() if l.split()[:1] == [a["name"]]][0].split()
        self.assertEqual(line, [a["name"], a["key"], str(a["size"]), a["encoding"], "v2"])

    def test_verify_every_root(self):
        for store in ("v1", "v2", "mixed"):
            out = cas("verify", "--root", os.path.join(FIX, store, ".metaflow"))
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(b", 0 bad", out.stdout)
            self.assertEqual(out.stderr, b"")  # no progress bar when stderr is not a terminal

    def test_a_flow_that_cannot_be_listed_is_counted_apart(self):
        root = os.path.join(FIX, "v1", ".metaflow")
        for cmd in (("verify",), ("migrate", "--to", "v1")):
            out = cas(*cmd, "--root", root, "NoSuchFlow")
            self.assertEqual(out.returncode, 1, out.stderr)
            self.assertIn(b"Cannot list 'NoSuchFlow/data'", out.stderr)
            self.assertIn(b"0 failed; 1 flow could not be listed" if cmd[0] == "migrate" else
                          b"verified 0 blobs: 0 ok, 0 bad; 1 flow could not be listed", out.stdout)

    def test_cat_and_stat_edge_blobs(self):
        with open(os.path.join(FIX, "v1", "edge_cases.json")) as f:
            edges = json.load(f)
        for name, e in edges.items():
            path = os.path.join(FIX, "v1", ".metaflow", e["path"])
            out = cas("cat", path, "--verify")
            self.assertEqual(out.returncode, 0, (name, out.stderr))
            self.assertEqual(hashlib.sha1(out.stdout).hexdigest(), e["key"])
            st = cas("stat", path)
            self.assertEqual(st.returncode, 0)
            self.assertIn(b"decoded:  %d bytes" % e["size"], st.stdout)


class _BuiltinsOnly(pickle.Unpickler):
    """Unpickles built-in values only (what Python's repr can be compared with)."""

    def find_class(self, module, name):
        if module == "builtins" and name in ("set", "frozenset", "bytearray", "complex", "slice"):
            return getattr(__import__("builtins"), name)
        if module == "_codecs" and name == "encode":
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError("not a built-in: %s.%s" % (module, name))


class TestShow(unittest.TestCase):
    WIDE = ("--items", "1000", "--depth", "200", "--max-bytes", "100000000")

    def test_a_task_every_artifact_one_row_each(self):
        """cas show TASK --json: a row per artifact of data.json, each preview the one
        `cas show TASK/NAME --json` gives; a blob that fails is its own row's error."""
        tmp = tempfile.mkdtemp(prefix="cas_show_")
        self.addCleanup(shutil.rmtree, tmp)
        root = os.path.join(tmp, ".metaflow")
        shutil.copytree(os.path.join(FIX, "mixed", ".metaflow"), root, symlinks=True)
        listing = [json.loads(l)
                   for l in cas("ls", "--json", "FixtureFlow/latest/start/1", "--root", root).stdout.splitlines()]
        out = cas("show", "FixtureFlow/latest/start/1", "--json", "--items", "4", "--root", root)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = [json.loads(l) for l in out.stdout.splitlines()]
        self.assertEqual([(r["name"], r["key"]) for r in rows], [(a["name"], a["key"]) for a in listing])
        for r in rows[:6]:
            one = cas("show", "%s/%s" % (r["pathspec"], r["name"]), "--json", "--items", "4", "--root", root)
            self.assertEqual(json.loads(one.stdout), r["preview"])
        victim = rows[1]
        path = os.path.join(root, "FixtureFlow", "data", victim["key"][:2], victim["key"])
        with open(path, "r+b") as fh:
            fh.truncate(max(1, os.path.getsize(path) // 2))
        out = cas("show", "FixtureFlow/latest/start/1", "--json", "--root", root)
        self.assertEqual(out.returncode, 1)
        rows = [json.loads(l) for l in out.stdout.splitlines()]
        self.assertEqual(len(rows), len(listing))
        self.assertEqual([r["name"] for r in rows if "error" in r], [victim["name"]])
        text = cas("show", "FixtureFlow/latest/start/1", "--root", root)
        self.assertEqual(text.returncode, 1)
        self.assertIn(("%s: " % victim["name"]).encode(), text.stderr)
        self.assertEqual(len(text.stdout.decode().splitlines()), len(listing))

    def test_every_manifest_artifact_previews_as_python_shows_it(self):
        compared = arrays = 0
        for store in ("v1", "v2", "mixed"):
            root = os.path.join(FIX, store, ".metaflow")
            with open(os.path.join(FIX, store, "manifest.json")) as f:
                manifest = json.load(f)
            for a in manifest:
                spec = "%s/%s" % (a["pathspec"], a["name"])
                out = cas("show", spec, "--root", root, *self.WIDE)
                self.assertEqual(out.returncode, 0, (spec, out.stderr))
                text = out.stdout.decode()[:-1]
                data = cas("artifact", spec, "--root", root).stdout
                try:
                    value = _BuiltinsOnly(io.BytesIO(data)).load()
                except pickle.UnpicklingError:
                    value = None
                if isinstance(value, (str, bytes)) and len(value) > 256:  # the first 256 bytes, and the length
                    self.assertTrue(text.endswith("...<%d %s in all>" % (len(value), "bytes" if isinstance(
                        value, bytes) else "chars")) or "in all>" in text, text[-60:])
                    self.assertTrue(repr(value).startswith(text[:text.rindex("...<") - 1]), spec)
                    compared += 1
                elif value is not None or data in (b"\x80\x04N.",):
                    self.assertEqual(text, repr(value), spec)
                    compared += 1
                elif text.startswith("array("):
                    arr = pickle.loads(data)
                    self.assertIn("dtype=%s, shape=%s)" % (arr.dtype.name, tuple(arr.shape)), text)
                    arrays += 1
                tree = json.loads(cas("show", spec, "--root", root, "--json").stdout)
                self.assertIn("type", tree)
        self.assertGreater(compared, 300)
        self.assertGreater(arrays, 10)

    def test_blob_file_limits_and_json(self):
        root = os.path.join(FIX, "v1", ".metaflow")
        with open(os.path.join(FIX, "v1", "manifest.json")) as f:
            a = [x for x in json.load(f) if x["name"] == "_graph_info"][0]
        whole = cas("show", os.path.join(root, a["blob"]), *self.WIDE)
        self.assertEqual(whole.returncode, 0, whole.stderr)
        self.assertTrue(whole.stdout.startswith(b"{'file': "), whole.stdout)
        cut = cas("show", os.path.join(root, a["blob"]), "--max-bytes", "100")
        self.assertEqual(cut.returncode, 0)
        self.assertTrue(cut.stdout.endswith(b" <truncated: output limit>\n"), cut.stdout)
        small = cas("show", "%s/%s" % (a["pathspec"], a["name"]), "--root", root, "--items", "2", "--depth", "1")
        self.assertIn(b"'file': 'fixture_flow.py', 'start_step': 'start', ...<", small.stdout)
        tree = json.loads(cas("show", os.path.join(root, a["blob"]), "--json", "--max-bytes", "300").stdout)
        self.assertTrue(tree["output_truncated"])

    def test_a_malformed_pickle_exits_1_naming_the_artifact(self):
        tmp = tempfile.mkdtemp()
        try:
            store = os.path.join(tmp, ".metaflow")
            os.makedirs(store)
            key = cas("put", "--flow", "F", "--root", store, input=b"\x80\x04](K\x01K\x02").stdout.decode().strip()
            path = os.path.join(store, "F", "data", key[:2], key)
            out = cas("show", path)
            self.assertEqual(out.returncode, 1)
            self.assertEqual(out.stdout, b"[1, 2] <incomplete: the pickle ends at byte 8, before its STOP>\n")
            self.assertEqual(out.stderr.decode(), "cas: %s: the pickle ends at byte 8, before its STOP\n" % path)
            out = cas("show", "F/1/start/2/x", "--root", store)
            self.assertEqual(out.returncode, 1)
            self.assertIn(b"F/1/start/2", out.stderr)
        finally:
            shutil.rmtree(tmp)


class TestMigrate(unittest.TestCase):
    def test_v2_then_v1(self):
        tmp = tempfile.mkdtemp()
        try:
            store = os.path.join(tmp, ".metaflow")
            shutil.copytree(os.path.join(FIX, "mixed", ".metaflow"), store)
            shutil.copytree(os.path.join(FIX, "v1", ".metaflow", "EdgeFlow"), os.path.join(store, "EdgeFlow"))
            keys = sorted(os.path.basename(p) for p in blobs_of(store))
            for target in ("v2", "v1", "v2", "v1"):
                out = cas("migrate", "--to", target, "--root", store, "--quiet")
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(sorted(os.path.basename(p) for p in blobs_of(store)), keys)
                for p in blobs_of(store):
                    data, fmt = python_read(p)  # Python's gzip / lz4.frame, as the sidecar says
                    self.assertEqual(hashlib.sha1(data).hexdigest(), os.path.basename(p))
                    if "EdgeFlow" not in p:
                        self.assertEqual(fmt, target)
                out = cas("verify", "--root", store, "--quiet")
                self.assertEqual(out.returncode, 0, out.stderr)
            # resumable: a second run changes nothing
            out = cas("migrate", "--to", "v1", "--root", store, "--quiet")
            self.assertIn(b": 0 blobs rewritten", out.stdout)
            # every artifact still resolves
            with open(os.path.join(FIX, "mixed", "manifest.json")) as f:
                a = json.load(f)[-1]
            out = cas("artifact", "%s/%s" % (a["pathspec"], a["name"]), "--root", store, "--verify")
            self.assertEqual(hashlib.sha1(out.stdout).hexdigest(), a["key"])
        finally:
            shutil.rmtree(tmp)


class TestWalkJson(unittest.TestCase):
    """verify and migrate --json: a row per blob, the bad ones with their reason, a
    summary last; verify's batched reads and its one-at-a-time reads (a blob over the
    batch size) give the same verdicts, whatever -j."""

    def test_rows_and_verdicts(self):
        tmp = tempfile.mkdtemp(prefix="cas_walk_")
        self.addCleanup(shutil.rmtree, tmp)
        store = os.path.join(tmp, ".metaflow")
        shutil.copytree(os.path.join(FIX, "mixed", ".metaflow"), store)
        big = os.urandom(5 << 20)  # stored over the batch limit: read alone, streaming
        big_key = cas("put", "--flow", "FixtureFlow", "--raw", "--root", store, input=big).stdout.decode().strip()
        blobs = sorted(blobs_of(store))
        big_path = os.path.join(store, "FixtureFlow", "data", big_key[:2], big_key)
        bad = [p for p in blobs if os.path.getsize(p) > 200 and p != big_path][:2] + [big_path]
        for p in bad:
            with open(p, "r+b") as fh:
                fh.seek(os.path.getsize(p) - 20)
                fh.write(b"\x00" * 8)
        bad_keys = sorted(os.path.basename(p) for p in bad)
        for jobs in ("1", "2", "4"):
            out = cas("verify", "--json", "-j", jobs, "--root", store)
            self.assertEqual(out.returncode, 1)
            rows = [json.loads(l) for l in out.stdout.splitlines()]
            self.assertEqual(rows[-1], {"summary": True, "command": "verify", "blobs": len(blobs), "ok": len(blobs) - 3,
                                        "bad": 3, "unlisted_flows": 0})
            self.assertEqual(sorted(r["key"] for r in rows[:-1]), sorted(os.path.basename(p) for p in blobs))
            self.assertEqual(sorted(r["key"] for r in rows[:-1] if not r["ok"]), bad_keys)
            self.assertTrue(all(r["error"] for r in rows[:-1] if not r["ok"]))
        text = cas("verify", "--root", store, "--quiet")
        self.assertEqual(text.stderr.count(b"BAD "), 3)
        twin = os.path.join(tmp, "twin")
        shutil.copytree(store, twin)
        out = cas("migrate", "--to", "v2", "--json", "--root", store)  # 8 side by side by default
        rows = [json.loads(l) for l in out.stdout.splitlines()]
        self.assertEqual(rows[-1]["rewritten"], sum(1 for r in rows[:-1] if r["changed"]))
        self.assertGreater(rows[-1]["rewritten"], 8)
        failed = {r["key"] for r in rows[:-1] if not r["ok"]}  # those it had to rewrite (v2 ones are skipped)
        self.assertTrue(failed and failed <= set(bad_keys) - {big_key}, (failed, bad_keys))  # raw: left alone
        self.assertEqual(out.returncode, 1)
        one = cas("migrate", "--to", "v2", "--json", "-j", "1", "--root", twin)  # one at a time: the same rows
        self.assertEqual([json.loads(l) for l in one.stdout.splitlines()], rows)
        self.assertEqual(cas("verify", "--quiet", "--root", store).stderr.count(b"BAD "), 3)


class TestOneRowJson(unittest.TestCase):
    def test_put_and_stat(self):
        tmp = tempfile.mkdtemp(prefix="cas_json_")
        self.addCleanup(shutil.rmtree, tmp)
        root = os.path.join(tmp, ".metaflow")
        data = b"json me " * 1000
        rows = [json.loads(cas("put", "--json", "--v2", "--flow", "F", "--root", root, "-", input=data).stdout)
                for _ in range(2)]
        key = hashlib.sha1(data).hexdigest()
        self.assertEqual(rows, [{"flow": "F", "key": key, "stored": True}, {"flow": "F", "key": key, "stored": False}])
        path = os.path.join(root, "F", "data", key[:2], key)
        st = json.loads(cas("stat", "--json", path).stdout)
        self.assertEqual((st["format"], st["bytes"], st["decoded"], st["key_ok"], st["sidecar"]),
                         ("v2", "lz4", len(data), True, True))
        self.assertEqual(st["stored"], os.path.getsize(path))
        with open(path, "r+b") as fh:
            fh.truncate(os.path.getsize(path) - 3)
        out = cas("stat", "--json", path)
        self.assertEqual(out.returncode, 1)
        st = json.loads(out.stdout)
        self.assertEqual((st["decoded"], st["key_ok"]), (None, False))
        self.assertTrue(st["error"])


class TestErrorsAndUsage(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.store = os.path.join(self.tmp, ".metaflow")
        os.makedirs(self.store)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_help_everywhere(self):
        for sub in ("artifact", "ls", "cat", "stat", "show", "put", "get", "verify", "migrate", "gc"):
            out = cas(sub, "--help")
            self.assertEqual(out.returncode, 0, sub)
            self.assertTrue(out.stdout.startswith(b"usage: cas " + sub.encode()), sub)
        self.assertEqual(cas("--help").returncode, 0)
        self.assertEqual(cas().returncode, 2)

    def test_usage_errors_exit_2(self):
        for args in (["nosuch"], ["put"], ["put", "--flow", "../x"], ["get", "--flow", "F", "XYZ"],
                     ["migrate", "--to", "v3"], ["artifact", "a/b"], ["ls", "F/1/s/2/x"], ["verify", "--bogus"],
                     ["put", "--flow"], ["cat"], ["show"], ["show", "F/1/s/2/x", "--items", "0"],
                     ["show", "F/1/s/2/x", "--depth", "x"], ["show", "F/1/s"]):
            out = cas(*args, cwd=self.tmp)  # the default root (self.store) is found from here
            self.assertEqual(out.returncode, 2, (args, out.stderr))
            self.assertTrue(out.stderr.startswith(b"cas: "), out.stderr)

    def test_data_errors_exit_1_one_line(self):
        key = cas("put", "--flow", "F", "--root", self.store, input=b"hello").stdout.decode().strip()
        blob = os.path.join(self.store, "F", "data", key[:2], key)
        with open(blob, "r+b") as f:  # truncate the gzip blob
            data = f.read()
            f.seek(0)
            f.truncate()
            f.write(data[:-5])
        out = cas("get", "--flow", "F", key, "--root", self.store)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stderr.decode(),
                         "cas: Could not unpack artifact 'F/data/%s/%s': Compressed file ended before the "
                         "end-of-stream marker was reached\n" % (key[:2], key))
        out = cas("verify", "--root", self.store, "--quiet")
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"BAD Could not unpack artifact 'F/data/", out.stderr)
        with open(blob + "_meta", "w") as f:
            f.write('{"cas_raw": false, "cas_version": 999}')
        out = cas("get", "--flow", "F", key, "--root", self.store)
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stderr.decode().count("\n"), 1)
        self.assertIn("Unknown encoding version 999 for 'F/data/", out.stderr.decode())
        out = cas("get", "--flow", "F", "0" * 40, "--root", self.store)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"No blob 'F/data/00/0000000000000000000000000000000000000000'", out.stderr)

    def test_put_creates_a_new_store(self):
        root = os.path.join(self.tmp, "new", "deeper", ".metaflow")
        out = cas("put", "--flow", "F", "--root", root, input=b"first artifact")
        self.assertEqual(out.returncode, 0, out.stderr)
        key = out.stdout.decode().strip()
        self.assertEqual(cas("get", "--flow", "F", key, "--root", root).stdout, b"first artifact")
        with open(os.path.join(self.tmp, "a_file"), "w"):
            pass
        out = cas("put", "--flow", "F", "--root", os.path.join(self.tmp, "a_file", "x"), input=b"x")
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"Cannot create the datastore root", out.stderr)
        self.assertEqual(cas("ls", "F/1/s/2", "--root", os.path.join(self.tmp, "nowhere")).returncode, 1)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "nowhere")))  # only put creates

    def test_put_get_roundtrip_and_dedup(self):
        data = os.urandom(300000)
        for fmt in ("--v1", "--v2", "--raw"):
            k1 = cas("put", "--flow", "F", "--root", self.store, fmt, input=data)
            self.assertEqual(k1.returncode, 0, k1.stderr)
            self.assertEqual(k1.stdout.decode().strip(), hashlib.sha1(data).hexdigest())
            out = cas("get", "--flow", "F", k1.stdout.decode().strip(), "--root", self.store, "--verify")
            self.assertEqual(out.stdout, data)
        # the first put won: the later formats were dedup hits
        key = hashlib.sha1(data).hexdigest()
        with open(os.path.join(self.store, "F", "data", key[:2], key + "_meta")) as f:
            self.assertEqual(f.read(), '{"cas_raw": false, "cas_version": 1}')

    def test_default_root(self):
        sub = os.path.join(self.tmp, "a", "b")
        os.makedirs(sub)
        key = cas("put", "--flow", "F", cwd=sub, input=b"x").stdout.decode().strip()
        self.assertTrue(os.path.exists(os.path.join(self.store, "F", "data", key[:2], key)))
        env = dict(os.environ, METAFLOW_DATASTORE_SYSROOT_LOCAL=os.path.join(self.tmp, "sys"))
        os.makedirs(os.path.join(self.tmp, "sys", ".metaflow"))
        key = cas("put", "--flow", "G", cwd=sub, input=b"y", env=env).stdout.decode().strip()
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "sys", ".metaflow", "G", "data", key[:2], key)))
        out = cas("ls", "F/1/s/1", cwd="/")
        self.assertEqual(out.returncode, 2)
        self.assertIn(b"no datastore found", out.stderr)

    def test_gc(self):
        cas("put", "--flow", "F", "--root", self.store, input=b"x")
        tmpfile = os.path.join(self.store, "F", "data", ".abc.cas-tmp-999999999-1-0")
        with open(tmpfile, "w") as f:
            f.write("half")
        out = cas("gc", "--root", self.store)
        self.assertEqual(out.returncode, 0)
        self.assertEqual(out.stdout, b"removed 1 temp files\n")
        self.assertFalse(os.path.exists(tmpfile))


RUNS = {"old": "1600000000000000", "mid": "1700000000000000", "new": "1800000000000000"}
RUN_TIMES = {"old": 1600100000, "mid": 1700000000, "new": 1800000000}  # 2020-09-14, 2023-11-14, 2027-01-15
OLD_TIME = 1600000000


def _set_times(top, t):
    for dirpath, _, files in os.walk(top):
        for f in files:
            os.utime(os.path.join(dirpath, f), (t, t))


def gc_store(tmp, cas_run=None):
    """A store for fsck, prune and gc: a copy of a real run as three runs (old and mid
    finished, new not finished), each with an artifact only it names, and blobs nothing
    names: an old v1 one, an old raw one (what a code package is) and a young one.
    Returns (root, {what: key})."""
    cas_run = cas_run or cas
    root = os.path.join(tmp, ".metaflow")
    shutil.copytree(os.path.join(FIX, "v1", ".metaflow"), root, symlinks=True)
    flow = os.path.join(root, "FixtureFlow")
    shutil.rmtree(os.path.join(root, "EdgeFlow"))
    base = [d for d in os.listdir(flow) if d.isdigit()][0]
    os.rename(os.path.join(flow, base), os.path.join(flow, RUNS["old"]))
    for what in ("mid", "new"):
        shutil.copytree(os.path.join(flow, RUNS["old"]), os.path.join(flow, RUNS[what]), symlinks=True)
    keys = {}

    def put(data, *opts):
        out = cas_run("put", "--flow", "FixtureFlow", "--root", root, *opts, input=data)
        assert out.returncode == 0, out.stderr
        return out.stdout.decode().strip()

    _set_times(os.path.join(flow, "data"), OLD_TIME)  # every blob old: only references keep them
    for what, run in sorted(RUNS.items()):
        data = pickle.dumps("only in the %s run" % what, 4)
        keys[what] = put(data)
        start = os.path.join(flow, run, "start")
        dj = os.path.join(start, [t for t in os.listdir(start) if t.isdigit()][0], "0.data.json")
        with open(dj) as fh:
            doc = json.load(fh)
        doc["objects"]["only_" + what] = keys[what]
        doc["info"]["only_" + what] = {"size": len(data), "type": "<class 'str'>", "encoding": "pickle-v4"}
        with open(dj, "w") as fh:
            json.dump(doc, fh)
        self_json = os.path.join(flow, run, "_meta", "_self.json")  # the start Metaflow recorded
        with open(self_json) as fh:
            meta = json.load(fh)
        meta["ts_epoch"] = RUN_TIMES[what] * 1000
        with open(self_json, "w") as fh:
            json.dump(meta, fh)
        _set_times(os.path.join(flow, run), RUN_TIMES[what])
    for name in os.listdir(os.path.join(flow, RUNS["new"], "end")):
        for f in os.listdir(os.path.join(flow, RUNS["new"], "end", name)):
            if f.endswith(".DONE.lock"):
                os.unlink(os.path.join(flow, RUNS["new"], "end", name, f))
    keys["unreferenced"] = put(b"nothing names me")
    keys["raw"] = put(b"a code package, say", "--raw")
    for what in ("old", "mid", "new", "unreferenced", "raw"):
        for suffix in ("", "_meta"):
            path = os.path.join(flow, "data", keys[what][:2], keys[what] + suffix)
            if os.path.exists(path):
                os.utime(path, (OLD_TIME, OLD_TIME))
    keys["young"] = put(b"written a moment ago, its data.json not yet")
    return root, keys


def blob_path(root, key):
    return os.path.join(root, "FixtureFlow", "data", key[:2], key)


class TestCheckAndCollect(unittest.TestCase):
    """fsck by references, prune, gc --unreferenced: after prune and gc every artifact of
    every remaining run still reads, and nothing unreferenced and old is left."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cas_gc_")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.root, self.keys = gc_store(self.tmp)

    def run_cas(self, *args, rc=0):
        out = cas(*args, "--root", self.root)
        self.assertEqual(out.returncode, rc, out.stderr + out.stdout)
        return out

    def every_artifact_reads(self, runs):
        for run in runs:
            listing = [json.loads(l) for l in self.run_cas("ls", "--json", "FixtureFlow/" + run).stdout.splitlines()]
            for step in listing:
                for task in [json.loads(l) for l in self.run_cas("ls", "--json", step["pathspec"]).stdout.splitlines()]:
                    if not task["done"]:
                        continue
                    for art in [json.loads(l)
                                for l in self.run_cas("ls", "--json", task["pathspec"]).stdout.splitlines()]:
                        out = self.run_cas("artifact", "%s/%s" % (task["pathspec"], art["name"]), "--verify")
                        self.assertEqual(hashlib.sha1(out.stdout).hexdigest(), art["key"])

    def test_fsck_clean_then_each_problem_named(self):
        rows = [json.loads(l) for l in self.run_cas("fsck", "--json").stdout.splitlines()]
        self.assertEqual(rows[-1]["problems"], 0)
        self.assertEqual(rows[-1]["unreferenced"], 3)  # the unreferenced, raw and young blobs
        self.assertGreater(rows[-1]["data_json"], 20)
        task = self.run_cas("fsck", "FixtureFlow/latest/start")
        self.assertIn(b"FixtureFlow/%s/start: 1 data.json files" % RUNS["new"].encode(), task.stdout)
        os.unlink(blob_path(self.root, self.keys["mid"]))  # an artifact's blob gone
        with open(blob_path(self.root, self.keys["old"]), "r+b") as fh:  # another's corrupt
            fh.seek(12)
            fh.write(b"\xff\xff")
        done = glob.glob(os.path.join(self.root, "FixtureFlow", RUNS["old"], "end", "*", "0.data.json"))[0]
        os.unlink(done)  # a DONE marker whose data.json is gone
        out = self.run_cas("fsck", rc=1)
        text = out.stdout.decode()
        self.assertIn("BAD FixtureFlow/%s/start/" % RUNS["mid"], text)
        self.assertIn("artifact 'only_mid': No blob", text)
        self.assertIn("artifact 'only_old': ", text)
        self.assertIn("0.DONE.lock: a DONE marker, but no data.json for that attempt", text)
        self.assertIn("3 problems", text)
        rows = [json.loads(l) for l in self.run_cas("fsck", "--json", rc=1).stdout.splitlines()]
        self.assertEqual(len([r for r in rows if "problem" in r]), 3)
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        out = cas("fsck", "--root", empty)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"no Metaflow datastore under", out.stderr)

    def test_prune_then_gc_frees_only_what_pruned_runs_used(self):
        out = self.run_cas("prune", "FixtureFlow", "--keep-last", "1", "--dry-run")
        self.assertIn(b"would prune 2 runs of 3", out.stdout)
        self.assertEqual(len(os.listdir(os.path.join(self.root, "FixtureFlow"))), 6)  # nothing removed
        out = self.run_cas("prune", "FixtureFlow", RUNS["new"])  # named, but not finished: kept
        self.assertIn(b"it has not finished", out.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "FixtureFlow", RUNS["new"])))
        self.run_cas("prune", "FixtureFlow", "--before", "2020-09-20")  # old only (1600100000)
        self.assertFalse(os.path.exists(os.path.join(self.root, "FixtureFlow", RUNS["old"])))
        self.run_cas("prune", "FixtureFlow", "--keep-last", "1")  # mid; new is newest
        self.assertEqual([r.split()[0] for r in self.run_cas("ls", "FixtureFlow").stdout.decode().splitlines()[1:]],
                         [RUNS["new"]])
        self.run_cas("prune", "FixtureFlow", "--keep-last", "1")  # idempotent
        dry = [json.loads(l) for l in self.run_cas("gc", "--unreferenced", "--dry-run", "--json").stdout.splitlines()]
        self.assertEqual(sorted(r["key"] for r in dry if "key" in r),
                         sorted([self.keys["old"], self.keys["mid"], self.keys["unreferenced"]]))
        self.assertTrue(all(r["removed"] is False for r in dry if "key" in r))
        self.assertEqual(dry[-1]["blobs"], 3)
        self.assertTrue(os.path.exists(blob_path(self.root, self.keys["old"])))
        out = self.run_cas("gc", "--unreferenced")
        self.assertIn(b"removed 3 unreferenced blobs", out.stdout)
        self.assertIn(b"1 younger than the grace period, 1 raw or legacy", out.stdout)
        for what, there in (("old", False), ("mid", False), ("unreferenced", False), ("new", True), ("raw", True),
                            ("young", True)):
            self.assertEqual(os.path.exists(blob_path(self.root, self.keys[what])), there, what)
            self.assertEqual(os.path.exists(blob_path(self.root, self.keys[what]) + "_meta"), there, what)
        self.run_cas("fsck")
        self.every_artifact_reads([RUNS["new"]])
        out = self.run_cas("gc", "--unreferenced", "--grace", "0")  # now the young one goes; raw never
        self.assertIn(b"removed 1 unreferenced blobs", out.stdout)
        self.assertTrue(os.path.exists(blob_path(self.root, self.keys["raw"])))
        self.run_cas("fsck")

    def test_references_that_cannot_be_read_stop_gc(self):
        """Whatever hides a data.json from the walk (a folder nested past its depth, a run
        folder Metaflow would not name) makes gc leave the flow whole and fsck fail."""
        deep = os.path.join(self.root, "FixtureFlow", RUNS["mid"], "start", *["d%d" % i for i in range(10)])
        os.makedirs(deep)
        with open(os.path.join(deep, "0.data.json"), "w") as fh:
            fh.write("{}")
        out = self.run_cas("gc", "--unreferenced", rc=1)
        self.assertIn(b"not collecting 'FixtureFlow'", out.stderr)
        self.assertIn(b"nest deeper", out.stdout)
        self.assertTrue(os.path.exists(blob_path(self.root, self.keys["unreferenced"])))
        self.assertEqual(cas("fsck", "--root", self.root).returncode, 1)
        shutil.rmtree(os.path.join(self.root, "FixtureFlow", RUNS["mid"], "start", "d0"))
        os.rename(os.path.join(self.root, "FixtureFlow", RUNS["old"]), os.path.join(self.root, "FixtureFlow", "run+1"))
        out = self.run_cas("gc", "--unreferenced", rc=1)
        self.assertIn(b"a folder Metaflow would not name a run", out.stdout)
        self.assertTrue(os.path.exists(blob_path(self.root, self.keys["old"])))  # only run+1 names it
        # a run moved away and symlinked back: Metaflow follows the link, the store does not
        away = os.path.join(self.tmp, "elsewhere")
        os.rename(os.path.join(self.root, "FixtureFlow", "run+1"), away)
        os.symlink(away, os.path.join(self.root, "FixtureFlow", RUNS["old"]))
        out = self.run_cas("gc", "--unreferenced", rc=1)
        self.assertIn(b"never followed", out.stdout)
        self.assertTrue(os.path.exists(blob_path(self.root, self.keys["old"])))
        os.unlink(os.path.join(self.root, "FixtureFlow", RUNS["old"]))
        os.symlink(away, os.path.join(self.root, "FixtureFlow", RUNS["mid"], "start", "link"))  # a link inside a run
        out = self.run_cas("gc", "--unreferenced", rc=1)
        self.assertIn(b"a symbolic link or special file, never followed below it", out.stdout)
        self.assertEqual(cas("fsck", "--root", self.root).returncode, 1)

    def test_prune_removes_a_step_named_like_a_sidecar(self):
        run = os.path.join(self.root, "FixtureFlow", RUNS["old"])
        os.rename(os.path.join(run, "start"), os.path.join(run, "fetch_meta"))
        self.run_cas("prune", "FixtureFlow", RUNS["old"])
        self.assertFalse(os.path.exists(run))

    def test_cp_goes_on_past_a_run_that_fails(self):
        os.unlink(blob_path(self.root, self.keys["old"]))  # the old run's own artifact is gone
        dst = os.path.join(self.tmp, "dst")
        with open(os.path.join(self.root, "FixtureFlow", RUNS["mid"], ".cas-pruning"), "w"):
            pass
        out = cas("cp", self.root, dst, "FixtureFlow")
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"only_old", out.stderr)
        self.assertFalse(os.path.exists(os.path.join(dst, "FixtureFlow", RUNS["old"])))  # no data.json without blobs
        for run in ("mid", "new"):  # the others copied whole; a prune's marker never
            self.assertTrue(glob.glob(os.path.join(dst, "FixtureFlow", RUNS[run], "start", "*", "0.data.json")), run)
        self.assertFalse(os.path.exists(os.path.join(dst, "FixtureFlow", RUNS["mid"], ".cas-pruning")))
        self.assertEqual(cas("fsck", "--root", dst).returncode, 0)

    def test_a_stopped_prune_is_finished_by_the_next(self):
        """A prune stopped midway (its marker written, part of the run removed: here the
        end step's attempt files, so the run no longer reads as finished) is finished
        by any later prune of the flow, even one that chooses no run."""
        mid = os.path.join(self.root, "FixtureFlow", RUNS["mid"])
        with open(os.path.join(mid, ".cas-pruning"), "w"):
            pass
        for f in (glob.glob(os.path.join(mid, "end", "*", "0.attempt.json"))
                  + glob.glob(os.path.join(mid, "_parameters", "*", "*.*"))):
            os.unlink(f)
        runs = {r["run"]: r for r in map(json.loads, self.run_cas("ls", "--json", "FixtureFlow").stdout.splitlines())}
        self.assertFalse(runs[RUNS["mid"]]["finished"])
        out = self.run_cas("prune", "FixtureFlow", "--before", "2000-01-01")
        self.assertIn(b"finishing the prune of FixtureFlow/%s" % RUNS["mid"].encode(), out.stderr)
        self.assertFalse(os.path.exists(mid))
        self.assertEqual(sorted(r["run"] for r in map(json.loads,
                                                      self.run_cas("ls", "--json", "FixtureFlow").stdout.splitlines())),
                         sorted([RUNS["old"], RUNS["new"]]))
        self.run_cas("prune", "FixtureFlow", RUNS["old"])  # an ordinary prune: no marker left behind
        self.assertFalse(os.path.exists(os.path.join(self.root, "FixtureFlow", RUNS["old"])))

    def test_gc_killed_anywhere_leaves_every_remaining_artifact_readable(self):
        import random
        import signal
        import time
        self.run_cas("prune", "FixtureFlow", "--keep-last", "1")
        for i in range(1500):  # enough unreferenced blobs that a kill lands mid-sweep
            out = cas("put", "--flow", "FixtureFlow", "--root", self.root, input=b"spare %d" % i)
            key = out.stdout.decode().strip()
            for suffix in ("", "_meta"):
                os.utime(blob_path(self.root, key) + suffix, (OLD_TIME, OLD_TIME))
        start = time.monotonic()
        self.run_cas("gc", "--unreferenced", "--dry-run")
        took = time.monotonic() - start
        rnd = random.Random(7)
        kills = 0
        for _ in range(8):
            p = subprocess.Popen([CAS, "gc", "--unreferenced", "--root", self.root], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0, took * 2))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
            self.run_cas("fsck")
        self.run_cas("gc", "--unreferenced")
        left = [f for f in glob.glob(os.path.join(self.root, "FixtureFlow", "data", "*", "*"))]
        self.assertFalse([f for f in left if f.endswith("_meta") and not os.path.exists(f[:-5])], "orphan sidecars")
        self.assertFalse(os.path.exists(blob_path(self.root, self.keys["mid"])))
        self.every_artifact_reads([RUNS["new"]])
        self.assertGreater(kills, 0)


class TestUserBackend(unittest.TestCase):
    """A backend of a user's own, loaded by cas from CAS_BACKENDS (examples/flat_backend.c:
    flat://DIR, every object one file): every command runs on it as on a local root,
    with no other edit; a plugin that cannot load stops the command, named."""

    PLUGIN = os.path.join(os.path.dirname(CAS), "flat_backend.so")

    def setUp(self):
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.tmp = tempfile.mkdtemp(prefix="cas_flat_")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.src = os.path.join(FIX, "mixed", ".metaflow")
        self.flat = "flat://" + os.path.join(self.tmp, "shelf")

    def with_plugin(self):
        os.environ["CAS_BACKENDS"] = ":" + self.PLUGIN  # an empty entry is skipped
        self.addCleanup(os.environ.pop, "CAS_BACKENDS", None)

    def rows(self, *args):
        out = cas(*args)
        self.assertEqual(out.returncode, 0, (args, out.stderr))
        return [json.loads(line) for line in out.stdout.splitlines()]

    def test_refused_without_it_and_named_when_it_cannot_load(self):
        out = cas("ls", "--root", self.flat)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"no backend is registered for 'flat://' roots", out.stderr)
        for plugin, words in ((os.path.join(self.tmp, "none.so"), b"none.so"),
                              (os.path.join(os.path.dirname(CAS), "libcas.so"), b"exports no cas_backend_plugin")):
            out = cas("ls", "--root", self.flat, env=dict(os.environ, CAS_BACKENDS=plugin))
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn(b"CAS_BACKENDS", out.stderr)
            self.assertIn(words, out.stderr)

    def test_metaflow_config_names_it(self):
        """METAFLOW_DEFAULT_DATASTORE=flat reaches the plugin by Metaflow's rule
        (DATASTORE_SYSROOT_FLAT, a root without a scheme under the datastore's name):
        the core knows no datastore by name but local."""
        self.with_plugin()
        self.assertEqual(cas("cp", self.src, self.flat, "FixtureFlow").returncode, 0)
        env = dict(os.environ, METAFLOW_DEFAULT_DATASTORE="flat", METAFLOW_HOME=self.tmp)
        for sysroot in (self.flat, self.flat[len("flat://"):]):
            env["METAFLOW_DATASTORE_SYSROOT_FLAT"] = sysroot
            got = self.rows_env(env, "ls", "--json", "FixtureFlow")
            self.assertEqual(got, self.rows("ls", "--json", "FixtureFlow", "--root", self.src), sysroot)
        del env["METAFLOW_DATASTORE_SYSROOT_FLAT"]
        out = cas("ls", "FixtureFlow", env=env, cwd=self.tmp)
        self.assertEqual(out.returncode, 2)
        self.assertIn(b"METAFLOW_DEFAULT_DATASTORE is 'flat' but METAFLOW_DATASTORE_SYSROOT_FLAT is not set",
                      out.stderr)
        # names that could not be a registered scheme and a variable's suffix are refused, named
        for bad in ("../x", "my_store", "a" * 16, "b" * 80):
            env["METAFLOW_DEFAULT_DATASTORE"] = bad
            out = cas("ls", "FixtureFlow", env=env, cwd=self.tmp)
            self.assertEqual(out.returncode, 2, bad)
            self.assertIn(b"'%s' is not a datastore name" % bad[:40].encode() if len(bad) < 64
                          else b"is longer than a datastore name", out.stderr)

    def rows_env(self, env, *args):
        out = cas(*args, env=env, cwd=self.tmp)
        self.assertEqual(out.returncode, 0, (args, out.stderr))
        return [json.loads(line) for line in out.stdout.splitlines()]

    def test_every_command_on_it(self):
        self.with_plugin()
        out = cas("cp", self.src, self.flat, "FixtureFlow")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(all("%2F" in n for n in os.listdir(self.flat[7:])))  # its own layout, not a local store's
        # browse every level: the same rows as the local source's
        for spec in ("", "FixtureFlow", "FixtureFlow/latest", "FixtureFlow/latest/end"):
            args = ("ls", "--json") + ((spec,) if spec else ())
            self.assertEqual(self.rows(*args, "--root", self.flat), self.rows(*args, "--root", self.src), spec)
        runs = [r["run"] for r in self.rows("ls", "--json", "FixtureFlow", "--root", self.src)]
        want = TestCopy.artifacts(self, self.src, runs[0])
        self.assertEqual(TestCopy.artifacts(self, self.flat, runs[0]), want)
        self.assertEqual(cas("show", next(iter(want)), "--root", self.flat).stdout,
                         cas("show", next(iter(want)), "--root", self.src).stdout)
        self.assertEqual(cas("fsck", "--root", self.flat).returncode, 0)
        self.assertEqual(cas("verify", "--quiet", "--root", self.flat).returncode, 0)
        # prune and collect on it; the run left reads as before, copied back
        self.assertEqual(cas("prune", "FixtureFlow", "--keep-last", "1", "--root", self.flat).returncode, 0)
        gc = self.rows("gc", "--unreferenced", "--grace", "0", "--json", "--root", self.flat)
        self.assertGreater(gc[-1]["blobs"], 0)
        fsck = self.rows("fsck", "--json", "--root", self.flat)
        self.assertEqual((fsck[-1]["unreferenced"], fsck[-1]["problems"]), (0, 0), fsck[-1])
        back = os.path.join(self.tmp, "back")
        self.assertEqual(cas("cp", self.flat, back, "FixtureFlow", "--to", "v1").returncode, 0)
        self.assertEqual({k: v[0] for k, v in TestCopy.artifacts(self, back, runs[0]).items()},
                         {k: v[0] for k, v in want.items()})
        self.assertEqual([r["run"] for r in self.rows("ls", "--json", "FixtureFlow", "--root", back)], runs[:1])
        # what a crashed writer left: its own gc removes it once it is an hour old, and the objects it makes
        # follow the umask, as any file's
        shelf = self.flat[len("flat://"):]
        for name, age in (("%tmp1-0x1-0", 7200), ("%tmp2-0x2-0", 60)):
            with open(os.path.join(shelf, name), "wb") as fh:
                fh.write(b"half")
            os.utime(os.path.join(shelf, name), (time.time() - age, time.time() - age))
        out = cas("gc", "--root", self.flat)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"removed 1 temp file", out.stdout)
        self.assertEqual(sorted(n for n in os.listdir(shelf) if n.startswith("%tmp")), ["%tmp2-0x2-0"])
        mode = os.stat(os.path.join(shelf, sorted(os.listdir(shelf))[0])).st_mode & 0o777
        self.assertEqual(mode, 0o666 & ~self.umask, oct(mode))


class TestCopy(unittest.TestCase):
    """cas cp: a run with every blob it references, re-encoded on the way, resumable."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cas_cp_")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.src = os.path.join(FIX, "mixed", ".metaflow")

    def artifacts(self, root, run):
        got = {}
        for step in cas("ls", "--json", "FixtureFlow/" + run, "--root", root).stdout.splitlines():
            for task in cas("ls", "--json", json.loads(step)["pathspec"], "--root", root).stdout.splitlines():
                task = json.loads(task)
                if task["done"]:
                    for art in cas("ls", "--json", task["pathspec"], "--root", root).stdout.splitlines():
                        art = json.loads(art)
                        got["%s/%s" % (task["pathspec"], art["name"])] = (art["key"], art["format"])
        return got

    def test_a_run_then_the_flow_reencoded_and_resumed(self):
        import signal
        import time
        dst = os.path.join(self.tmp, "dst")
        runs = [json.loads(l)["run"]
                for l in cas("ls", "--json", "FixtureFlow", "--root", self.src).stdout.splitlines()]
        self.assertEqual(len(runs), 2)
        out = cas("cp", self.src, dst, "FixtureFlow/" + runs[1], "--to=v2")
        self.assertEqual(out.returncode, 0, out.stderr)
        want, got = self.artifacts(self.src, runs[1]), self.artifacts(dst, runs[1])
        self.assertEqual({k: v[0] for k, v in got.items()}, {k: v[0] for k, v in want.items()})
        self.assertTrue(all(fmt in ("v2", "raw") for _, fmt in got.values()), got)
        self.assertEqual(cas("fsck", "--root", dst).returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(dst, "FixtureFlow", runs[0])))
        again = cas("cp", self.src, dst, "FixtureFlow/" + runs[1])
        self.assertIn(b"0 blobs (", again.stdout)
        self.assertIn(b", 0 files", again.stdout)
        # the whole flow, killed midway and run again
        for delay in (0.02, 0.05):
            p = subprocess.Popen([CAS, "cp", self.src, dst, "FixtureFlow"], stdout=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait()
            fsck = cas("fsck", "--root", dst)  # never a data.json whose blobs are missing
            self.assertEqual(fsck.returncode, 0, fsck.stdout)
        out = cas("cp", self.src, dst, "FixtureFlow", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout.splitlines()[-1])["failed"], False)
        for run in runs:
            self.assertEqual({k: v[0] for k, v in self.artifacts(dst, run).items()},
                             {k: v[0] for k, v in self.artifacts(self.src, run).items()})
            for name, (key, _) in self.artifacts(dst, run).items():
                a = cas("artifact", name, "--root", dst, "--verify")
                self.assertEqual(hashlib.sha1(a.stdout).hexdigest(), key)
        self.assertEqual(cas("cp", self.src, dst, "FixtureFlow/x/y/z/w").returncode, 2)
        self.assertEqual(cas("cp", self.src, dst).returncode, 2)
        self.assertEqual(cas("cp", self.src, dst, "NoSuchFlow").returncode, 1)


def readme_blocks(containing):
    """The README's ```sh blocks whose text holds `containing`, as written."""
    with open(os.path.join(HERE, "..", "README.md")) as fh:
        text = fh.read()
    found = [b for b in text.split("```sh\n")[1:]]
    return [b.split("```")[0] for b in found if containing in b.split("```")[0]]


def readme_config(block):
    """The config.json a README block shows in its comments ("#   {...}"), as JSON."""
    lines = [l.lstrip("#").split("(optional)")[0].strip() for l in block.splitlines() if l.startswith("#")]
    text = " ".join(lines)
    return json.loads(text[text.index("{"):text.index("}") + 1])


def readme_store(tmp):
    """A local store holding what the README's examples name: MyFlow/12/train/3 with an
    artifact 'model' (a real task of the v1 fixture, renamed). Returns (root, model bytes)."""
    src = os.path.join(FIX, "v1", ".metaflow", "FixtureFlow")
    root = os.path.join(tmp, "readme", ".metaflow")
    run = [d for d in os.listdir(src) if d.isdigit()][0]
    task = os.path.join(src, run, "start", "1")
    shutil.copytree(os.path.join(src, "data"), os.path.join(root, "MyFlow", "data"))
    shutil.copytree(task, os.path.join(root, "MyFlow", "12", "train", "3"))
    dj = os.path.join(root, "MyFlow", "12", "train", "3", "0.data.json")
    with open(dj) as fh:
        doc = json.load(fh)
    name = sorted(doc["objects"])[0]
    doc["objects"]["model"], doc["info"]["model"] = doc["objects"][name], doc["info"][name]
    with open(dj, "w") as fh:
        json.dump(doc, fh)
    model = cas("get", "--flow", "MyFlow", doc["objects"]["model"], "--root", root)
    assert model.returncode == 0, model.stderr
    return root, model.stdout


def run_readme_block(test, block, cwd, env):
    """Each command line of a README block, as written, through sh; every one exits 0."""
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out = subprocess.run(["sh", "-ec", line], cwd=cwd, env=env, capture_output=True, timeout=600)
        test.assertEqual(out.returncode, 0, "%s\n%s%s" % (line, out.stdout[-2000:], out.stderr[-2000:]))


class TestReadme(unittest.TestCase):
    """The README's Python set-up, run as written in a fresh folder (a venv, pip install
    offline, the cas command on the venv's PATH)."""

    def test_python_setup_as_written(self):
        (block,) = readme_blocks("venv/bin/pip install")
        tmp = tempfile.mkdtemp(prefix="cas_readme_")
        self.addCleanup(shutil.rmtree, tmp)
        py = os.path.join(tmp, "python")
        shutil.copytree(os.path.join(HERE, "..", "python"), py, symlinks=True,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "*.so"))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CAS_H_LIBRARY", "LD_LIBRARY_PATH")}
        env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")  # Debian's python3, as on a fresh machine
        env["PIP_NO_INDEX"] = "1"
        # ./python's setup.py builds from the checkout around it: the copy needs one
        for f in ("Makefile", "cas.h", "cas_codecs.h", "cas_cloud.h", "cas_pickle.h", "lib", "cli"):
            os.symlink(os.path.join(HERE, "..", f), os.path.join(tmp, f))
        run_readme_block(self, block, tmp, env)
        out = subprocess.run([os.path.join(tmp, "venv", "bin", "cas"), "ls", "--root",
                              os.path.join(FIX, "v1", ".metaflow")], capture_output=True)
        self.assertEqual(out.returncode, 0, out.stderr)


class TestBrowse(unittest.TestCase):
    """`cas ls` at every level, on a copy of a real run plus a newer, unfinished one."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cas_ls_")
        self.addCleanup(shutil.rmtree, self.tmp)
        self.root = os.path.join(self.tmp, ".metaflow")
        shutil.copytree(os.path.join(FIX, "v1", ".metaflow"), self.root, symlinks=True)
        flow = os.path.join(self.root, "FixtureFlow")
        self.old = [d for d in os.listdir(flow) if d.isdigit()][0]
        self.new = "1900000000000000"  # sorts after, and is made newer by its files' times too
        shutil.copytree(os.path.join(flow, self.old), os.path.join(flow, self.new), symlinks=True)
        # the new run's start, user and tags from its _meta/_self.json (Metaflow's local
        # metadata); the old run has none (as on an object store): its objects' times tell
        os.unlink(os.path.join(flow, self.old, "_meta", "_self.json"))
        self_json = os.path.join(flow, self.new, "_meta", "_self.json")
        with open(self_json) as fh:
            doc = json.load(fh)
        doc.update(ts_epoch=1800000000000 + 123, tags=["exp:1", "team \"a\""], user_name="ana")
        with open(self_json, "w") as fh:
            json.dump(doc, fh)
        for d in (self.old, self.new):
            t = 1700000000 if d == self.old else 1800000000
            for dirpath, _, files in os.walk(os.path.join(flow, d)):
                for f in files:
                    os.utime(os.path.join(dirpath, f), (t, t))
        end = os.path.join(flow, self.new, "end")
        for task in os.listdir(end):  # the new run has not finished: no DONE marker on end
            for f in os.listdir(os.path.join(end, task)):
                if f.endswith(".DONE.lock"):
                    os.unlink(os.path.join(end, task, f))

    def ls(self, *args):
        out = cas("ls", "--root=" + self.root, *args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.decode()

    def rows(self, *args):
        return [json.loads(l) for l in self.ls("--json", *args).splitlines()]

    def test_every_level(self):
        self.assertEqual(sorted(self.ls().split()), ["EdgeFlow", "FixtureFlow"])
        self.assertEqual(sorted(r["flow"] for r in self.rows()), ["EdgeFlow", "FixtureFlow"])
        runs = self.rows("FixtureFlow")
        self.assertEqual([(r["run"], r["finished"], r["started"]) for r in runs],
                         [(self.new, False, "2027-01-15T08:00:00Z"), (self.old, True, "2023-11-14T22:13:20Z")])
        self.assertEqual([(r["user"], r["tags"]) for r in runs], [("ana", ["exp:1", 'team "a"']), (None, [])])
        self.assertIn("metaflow_version:2.19.38", runs[0]["system_tags"])
        text = self.ls("FixtureFlow").splitlines()
        self.assertEqual(text[1].split()[:4], [self.new, "2027-01-15T08:00:00Z", "no", "ana"])
        self.assertEqual(text[2].split(), [self.old, "2023-11-14T22:13:20Z", "yes", "-", "-"])
        steps = self.rows("FixtureFlow/" + self.old)
        self.assertEqual({r["step"]: r["tasks"] for r in steps},
                         {"_parameters": 1, "start": 1, "fan": 3, "join": 1, "end": 1})
        self.assertEqual(self.rows("FixtureFlow/latest"), [dict(r, pathspec=r["pathspec"].replace(self.old, self.new))
                                                           for r in steps])
        tasks = self.rows("FixtureFlow/latest/end")
        self.assertEqual([(t["attempt"], t["done"]) for t in tasks], [(-1, False)])
        tasks = self.rows("FixtureFlow/%s/fan" % self.old)
        self.assertEqual([(t["attempt"], t["done"]) for t in tasks], [(0, True)] * 3)
        task = tasks[0]["pathspec"]
        arts = self.rows(task)
        text = self.ls(task)
        self.assertEqual(len(arts), len(text.splitlines()) - 2)
        for a in arts:
            self.assertEqual(set(a), {"pathspec", "attempt", "name", "key", "size", "encoding", "format"})
            self.assertIn("  %s  " % a["key"], text)
            self.assertEqual(a["format"], "v1")

    def test_conventions(self):
        """getopt_long's: --root=X or --root X, options anywhere, --, help CMD; a
        failed write to stdout and an empty root are errors."""
        a = cas("ls", "FixtureFlow", "--root", self.root)
        b = cas("ls", "--root", self.root, "--", "FixtureFlow")
        self.assertEqual((a.returncode, a.stdout), (b.returncode, b.stdout))
        self.assertEqual(self.ls("FixtureFlow"), a.stdout.decode())
        h = cas("help", "ls")
        self.assertEqual(h.returncode, 0)
        self.assertEqual(h.stdout, cas("ls", "--help").stdout)
        self.assertIn(b"latest", h.stdout)
        for bad in (("ls", "--bogus"), ("ls", "--root"), ("ls", "a/b/c/d/e"), ("ls", "Flow/../x"), ("verify", "-v")):
            out = cas(*bad)
            self.assertEqual(out.returncode, 2, bad)
        with open("/dev/full", "w") as full:
            out = subprocess.run([CAS, "ls", "--root", self.root, "FixtureFlow"], stdout=full, stderr=subprocess.PIPE)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"cannot write to stdout", out.stderr)
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        out = cas("ls", "--root", empty)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"no Metaflow flows", out.stderr)
        out = cas("ls", "--root", self.root, "NoSuchFlow/latest")
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"NoSuchFlow", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
