"""Every artifact of every fixture store (real Metaflow 2.19.38 and PR #3090
runs) reads back to bytes that hash to its key: whole, streamed, through the
task, as a file, and from Python file objects."""

import hashlib
import io
import json
import os
import unittest

import cas_h
from tests._util import edge_cases, fixture_stores


def sha1(b):
    return hashlib.sha1(b).hexdigest()


class TestFixtures(unittest.TestCase):
    def setUp(self):
        self.stores = fixture_stores()
        if len(self.stores) < 3:
            self.fail("fixtures missing under %s" % (self.stores and self.stores[0][1]))

    def test_every_artifact(self):
        checked = 0
        for name, root, manifest in self.stores:
            with cas_h.Store(root) as store:
                for a in manifest:
                    flow = a["blob"].split("/")[0]
                    key = a["key"]
                    msg = "%s %s %s" % (name, a["pathspec"], a["name"])
                    whole = store.get(flow, key)
                    self.assertEqual(sha1(whole), key, msg)
                    self.assertEqual(len(whole), a["size"], msg)
                    with store.open(flow, key) as f:  # streamed, small reads
                        parts = []
                        while True:
                            p = f.read(4093)
                            if not p:
                                break
                            parts.append(p)
                    self.assertEqual(sha1(b"".join(parts)), key, msg)
                    self.assertEqual(sha1(store.artifact(a["pathspec"], a["name"])), key, msg)
                    with store.open_artifact(a["pathspec"], a["name"]) as f:
                        self.assertEqual(sha1(f.read()), key, msg)
                    self.assertEqual(store.verify(flow, key), a["size"])
                    # the blob file and its sidecar, outside any store
                    path = os.path.join(root, a["blob"])
                    with open(path, "rb") as f:
                        blob = f.read()
                    self.assertEqual(sha1(cas_h.unpack(blob, a["meta"], name=a["blob"], key=key)), key, msg)
                    with cas_h.open_blob(path, key=key) as f:
                        self.assertEqual(sha1(f.read()), key, msg)
                    with cas_h.open_blob(io.BytesIO(blob), meta=a["meta"], key=key) as f:
                        self.assertEqual(sha1(f.readall()), key, msg)
                    self.assertEqual(store.stat(flow, key).format, a["meta"]["cas_version"])
                    checked += 1
        self.assertEqual(checked, sum(len(m) for _, _, m in self.stores))

    def test_batch_and_tasks(self):
        for name, root, manifest in self.stores:
            with cas_h.Store(root, verify=True) as store:
                keys = sorted({a["key"] for a in manifest})
                for data, key in zip(store.get_many("FixtureFlow", keys), keys):
                    self.assertEqual(sha1(data), key)
                by_task = {}
                for a in manifest:
                    by_task.setdefault(a["pathspec"], {})[a["name"]] = a
                for pathspec, arts in by_task.items():
                    task = store.task(pathspec)
                    self.assertEqual(task.flow, "FixtureFlow")
                    self.assertEqual({x.name: x.key for x in task}, {n: a["key"] for n, a in arts.items()})
                    self.assertEqual(task.attempt, next(iter(arts.values()))["attempt"])
                    for a in task:
                        self.assertEqual(a.encoding, "pickle-v4")
                        self.assertEqual(a.size, arts[a.name]["size"])

    def test_edge_cases(self):
        root, cases = edge_cases()
        with cas_h.Store(root, verify=True) as store:
            for case, c in sorted(cases.items()):
                flow = c["path"].split("/")[0]
                self.assertEqual(c["expect"], "ok")
                data = store.get(flow, c["key"])
                self.assertEqual((sha1(data), len(data)), (c["key"], c["size"]), case)
                with store.open(flow, c["key"]) as f:
                    self.assertEqual(sha1(f.read()), c["key"], case)
                path = os.path.join(root, c["path"])
                with open(path, "rb") as f:
                    blob = f.read()
                meta = None
                if os.path.exists(path + "_meta"):
                    with open(path + "_meta") as f:
                        meta = json.load(f)
                self.assertEqual(sha1(cas_h.unpack(blob, meta, key=c["key"])), c["key"], case)
                with cas_h.open_blob(io.BytesIO(blob), meta=meta) as f:
                    self.assertEqual(sha1(f.read()), c["key"], case)

    def test_not_found(self):
        name, root, manifest = self.stores[0]
        with cas_h.Store(root) as store:
            with self.assertRaises(cas_h.NotFound) as cm:
                store.get("FixtureFlow", "0" * 40)
            self.assertIn("No blob 'FixtureFlow/data/00/0000000000000000000000000000000000000000'", str(cm.exception))
            with self.assertRaises(KeyError):
                store.artifact(manifest[0]["pathspec"], "no_such_artifact")
            with self.assertRaises(cas_h.NotFound) as cm:
                store.task("FixtureFlow/1/start/1")
            self.assertEqual(str(cm.exception),
                             "Cannot open task 'FixtureFlow/1/start/1': no such task in this datastore")
            with self.assertRaises(cas_h.InvalidName):
                store.task("not/a/pathspec/../x")
            self.assertFalse(store.exists("FixtureFlow", "0" * 40))
            self.assertTrue(store.exists("FixtureFlow", manifest[0]["key"]))
            with self.assertRaises(cas_h.InvalidKey):
                store.exists("FixtureFlow", "xyz")
            with self.assertRaises(cas_h.InvalidName):
                store.exists("../etc", "0" * 40)


if __name__ == "__main__":
    unittest.main()


class TestBrowse(unittest.TestCase):
    """Store.runs/latest/steps/tasks/task and preview_task on the fixture stores, against
    what Metaflow recorded (the manifest): every task it lists is found at its level."""

    def test_every_level_matches_the_manifest(self):
        for name, root, manifest in fixture_stores():
            with self.subTest(store=name), cas_h.Store(root) as st:
                want_tasks = {a["pathspec"] for a in manifest}
                want_runs = {p.split("/")[1] for p in want_tasks}
                runs = list(st.runs("FixtureFlow"))
                self.assertEqual({r.id for r in runs}, want_runs)
                self.assertEqual([r.started for r in runs], sorted((r.started for r in runs), reverse=True))
                self.assertTrue(all(r.finished and r.user == "fixture" and r.started for r in runs), runs)
                self.assertEqual(st.latest("FixtureFlow"), runs[0])
                got_tasks = set()
                for run in runs:
                    for step in st.steps(run.pathspec):
                        tasks = list(st.tasks(step.pathspec))
                        self.assertEqual(step.tasks, len(tasks))
                        got_tasks |= {t.pathspec for t in tasks if t.done}
                self.assertEqual(got_tasks, want_tasks)
                latest = [s.name for s in st.steps("FixtureFlow/latest")]
                self.assertIn("start", latest)
                one = sorted(p for p in want_tasks if p.split("/")[1] == runs[0].id)[0]
                spec = "FixtureFlow/latest/" + "/".join(one.split("/")[2:])
                self.assertEqual(st.task(spec).pathspec, one)
                with self.assertRaises(cas_h.InvalidName):
                    list(st.steps("FixtureFlow"))
                with self.assertRaises(cas_h.NotFound):
                    st.latest("NoSuchFlow")

    def test_preview_task_is_preview_artifact_for_each(self):
        name, root, manifest = fixture_stores()[2]
        pathspec = sorted({a["pathspec"] for a in manifest})[-1]
        with cas_h.Store(root) as st:
            got = st.preview_task(pathspec, threads=4, items=3)
            self.assertEqual(list(got), list(st.task(pathspec).artifacts))
            for art, row in got.items():
                self.assertEqual(row["preview"], st.preview_artifact(pathspec, art, json=True, items=3))
                self.assertNotIn("error", row)


class TestUiExample(unittest.TestCase):
    """examples/ui_preview.py answers a task's artifacts as JSON previews."""

    def test_endpoint(self):
        import importlib.util
        import threading
        import urllib.error
        import urllib.request
        here = os.path.dirname(os.path.abspath(__file__))
        spec = importlib.util.spec_from_file_location("ui_preview", os.path.join(here, "..", "..", "examples",
                                                                                 "ui_preview.py"))
        ui = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ui)
        name, root, manifest = fixture_stores()[2]
        task = sorted({a["pathspec"] for a in manifest})[-1]
        flow, run, step, tid = task.split("/")
        import http.server
        with cas_h.Store(root) as st:
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ui.handler_for(st))
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            try:
                base = ("http://127.0.0.1:%d/api/flows/%s/runs/latest/steps/%s/tasks/"
                        % (srv.server_address[1], flow, step))
                with urllib.request.urlopen(base + tid + "/artifacts") as r:
                    doc = json.loads(r.read())
                want = {a["name"]: a for a in manifest if a["pathspec"] == task}
                self.assertEqual({d["name"] for d in doc}, set(want))
                for d in doc:
                    self.assertEqual(d["preview"], st.preview_artifact(task, d["name"], json=True, items=5,
                                                                       max_bytes=2048))
                with self.assertRaises(urllib.error.HTTPError) as e:
                    urllib.request.urlopen(base + "999999/artifacts")
                self.assertEqual(e.exception.code, 404)
            finally:
                srv.shutdown()
                srv.server_close()
