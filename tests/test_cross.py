#!/usr/bin/env python3
"""cas cp from one object store to another: a run of the mixed fixture store (written by
Metaflow) copied local -> S3 (radosgw) -> Azure (azurite, re-encoded to cas_version 2)
-> local (re-encoded to cas_version 1). Each copy is checked by fsck, the artifacts keep
their keys, the bytes read back from Azure are the ones Metaflow saved, and a second
copy finds everything there. Needs both servers: tests/cross/run.sh (make test-cross)
starts them."""
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from cloudtest import FIX, run_cas  # noqa: E402
import test_azure  # noqa: E402  (each exits at once without its server)
import test_s3  # noqa: E402


def env():
    """One environment for both stores: S3's settings and Azure's, in a fresh HOME."""
    e = test_s3.base_env()
    az = test_azure.base_env()
    e.update((k, az[k]) for k in ("METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT", "AZURE_STORAGE_ACCOUNT",
                                  "AZURE_STORAGE_KEY", "AZURE_POD_IDENTITY_AUTHORITY_HOST"))
    return e


def cas(*args):
    return run_cas(args, env())


def rows(*args):
    out = cas(*args)
    if out.returncode:
        raise AssertionError("cas %s: %s" % (" ".join(args), out.stderr.decode(errors="replace")))
    return [json.loads(line) for line in out.stdout.splitlines()]


def artifacts(root, run):
    """{TASKSPEC/name: (key, format)} of a run's finished tasks, through cas ls."""
    got = {}
    for step in rows("ls", "--json", "FixtureFlow/" + run, "--root", root):
        for task in rows("ls", "--json", step["pathspec"], "--root", root):
            if task["done"]:
                for art in rows("ls", "--json", task["pathspec"], "--root", root):
                    got["%s/%s" % (task["pathspec"], art["name"])] = (art["key"], art["format"])
    return got


class TestCopyBetweenStores(unittest.TestCase):
    def test_local_s3_azure_local(self):
        src = os.path.join(FIX, "mixed", ".metaflow")
        tag = "cross%d" % random.getrandbits(32)
        s3 = "s3://%s/mf" % test_s3.OBJECTS.ensure(tag)
        az = "azure://%s/mf" % test_azure.OBJECTS.ensure(tag)
        back = tempfile.mkdtemp(prefix="cas_cross_")
        self.addCleanup(shutil.rmtree, back)
        runs = [r["run"] for r in rows("ls", "--json", "FixtureFlow", "--root", src)]
        self.assertEqual(len(runs), 2)
        want = {run: artifacts(src, run) for run in runs}
        self.assertTrue(all(want.values()))

        hops = ((src, s3, ()), (s3, az, ("--to", "v2")), (az, back, ("--to", "v1")))
        for a, b, to in hops:
            out = cas("cp", a, b, "FixtureFlow", *to)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(cas("fsck", "--quiet", "--root", b).returncode, 0, b)
            for run in runs:
                got = artifacts(b, run)
                self.assertEqual({k: v[0] for k, v in got.items()}, {k: v[0] for k, v in want[run].items()}, b)
                wanted = {"--to": to[1]}.get(to[0]) if to else None
                if wanted:
                    self.assertTrue(all(fmt in (wanted, "raw") for _, fmt in got.values()), (b, got))

        # the bytes from Azure, two hops away, are what Metaflow saved (its key is their SHA-1)
        name, (key, _) = sorted(want[runs[0]].items())[-1]
        out = cas("artifact", name, "--root", az, "--verify")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(hashlib.sha1(out.stdout).hexdigest(), key)

        # a second copy between the object stores finds every blob there (the flow's
        # latest_run is the source's, so it is written again)
        out = cas("cp", s3, az, "FixtureFlow", "--to", "v2", "--json")
        self.assertEqual(out.returncode, 0, out.stderr)
        summary = json.loads(out.stdout.splitlines()[-1])
        self.assertEqual((summary["blobs"], summary["failed"]), (0, False), summary)
        self.assertGreater(summary["blobs_there"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
