#!/usr/bin/env python3
"""cas.h on a real S3 server (Ceph radosgw on loopback, started by tests/s3/run.sh).

Metaflow's S3 layout: the object keys are the local datastore's paths under the
root, and a blob's sidecar JSON is its user metadata (x-amz-meta-metaflow-user-
attributes). Here the real stores Metaflow wrote are uploaded in that layout with
boto3 (as Metaflow's own S3 client writes them), then read, verified, migrated and
written through `cas` and the Python binding, and checked back with boto3.
Also: errors (wrong secret, no bucket, no object, expired token, no server), a
fault proxy (resets, stalls, cut bodies, 503 SlowDown) over 1,000+ requests,
SIGKILL during multipart puts, every credential source against local stand-ins,
Metaflow's configuration file, server-side encryption.

Needs the environment of tests/s3/s3server.sh (CAS_TEST_S3_ENDPOINT, keys).
"""
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import boto3
import botocore.config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "s3"))
import faultproxy  # noqa: E402
import cloudtest  # noqa: E402
from cloudtest import CAS, REPO, TMP as _TMP, make_env, manifest, python_decode, run_cas, sha1, stand_in  # noqa: E402

ENDPOINT = os.environ.get("CAS_TEST_S3_ENDPOINT")
if not ENDPOINT:
    sys.exit("tests/test_s3.py: no S3 server: run it through tests/s3/run.sh (make test-s3)")
HOST, PORT = urllib.parse.urlparse(ENDPOINT).hostname, urllib.parse.urlparse(ENDPOINT).port
AK, SK = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
# the binding, in this process, reads the same settings the `cas` runs get
os.environ.update(METAFLOW_S3_ENDPOINT_URL=ENDPOINT, AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1")
# The variables a test may set; everything else of the caller's environment passes.
_SCRUB = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
          "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL",
          "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS", "METAFLOW_S3_ENDPOINT_URL", "METAFLOW_DEFAULT_DATASTORE",
          "METAFLOW_DATASTORE_SYSROOT_S3", "METAFLOW_S3_SERVER_SIDE_ENCRYPTION", "METAFLOW_PROFILE",
          "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE")


def base_env(**extra):
    return make_env(_SCRUB, dict(AWS_EC2_METADATA_DISABLED="true", METAFLOW_S3_ENDPOINT_URL=ENDPOINT,
                                 AWS_REGION="us-east-1", CAS_S3_RETRY_BASE="20"), extra)


def cas(*args, env=None, input=None, timeout=300, cwd=None):
    return run_cas(args, env or base_env(), input=input, timeout=timeout, cwd=cwd)


def client():
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=AK,
                        aws_secret_access_key=SK,
                        config=botocore.config.Config(retries={"max_attempts": 5, "mode": "standard"}))


S3 = client()


class S3Objects(cloudtest.ObjectStore):
    """Buckets and objects as boto3 writes them (Metaflow's own S3 client)."""
    scheme = "s3://"

    def create(self, name):
        try:
            S3.create_bucket(Bucket=name)
        except S3.exceptions.BucketAlreadyOwnedByYou:
            pass

    def put(self, bkt, key, data, meta=None):
        kw = {"Metadata": {"metaflow-user-attributes": meta}} if meta is not None else {}
        S3.put_object(Bucket=bkt, Key=key, Body=data, **kw)

    def get(self, bkt, key):
        r = S3.get_object(Bucket=bkt, Key=key)
        return r["Body"].read(), r["Metadata"].get("metaflow-user-attributes")

    def etag(self, bkt, key):
        return S3.head_object(Bucket=bkt, Key=key)["ETag"]

    def names(self, bkt, prefix):
        pages = S3.get_paginator("list_objects_v2").paginate(Bucket=bkt, Prefix=prefix)
        return [o["Key"] for p in pages for o in p.get("Contents", [])]


OBJECTS = S3Objects()
bucket, upload_store, fixture_root, s3_blob = OBJECTS.ensure, OBJECTS.upload_store, OBJECTS.fixture_root, OBJECTS.get


def no_secret(test, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    test.assertNotIn(SK, text)
    test.assertNotIn(SK[:12], text)


# ---- the real stores, in Metaflow's S3 layout ------------------------------------------------------------


class TestFixtures(cloudtest.FixtureChecks, unittest.TestCase):
    objects, cas, env = OBJECTS, staticmethod(cas), staticmethod(base_env)

    def test_example_program(self):
        """examples/s3_read.c, as a C user builds it: an artifact from S3 to stdout."""
        prog = os.path.join(os.path.dirname(CAS), "s3_read")  # built beside cas
        root = fixture_root("v1")
        a = max(manifest("v1"), key=lambda x: x["size"])
        out = subprocess.run([prog, root, "%s/%s" % (a["pathspec"], a["name"])], capture_output=True, env=base_env())
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sha1(out.stdout), a["key"])
        out = subprocess.run([prog, root, "%s/no_such_artifact" % a["pathspec"]], capture_output=True, env=base_env())
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"has no artifact 'no_such_artifact'", out.stderr)

# ---- writing through cas.h, read back by Metaflow's rules --------------------------------------------------


class TestPutGetMigrate(cloudtest.WriteChecks, unittest.TestCase):
    objects, cas, env = OBJECTS, staticmethod(cas), staticmethod(base_env)
    upstream = (HOST, PORT)
    ROOT = "s3://casput/mf"

    def env_through(self, endpoint):
        return base_env(METAFLOW_S3_ENDPOINT_URL=endpoint)

    def head(self, flow, key):
        return S3.head_object(Bucket=bucket("casput"), Key="mf/%s/data/%s/%s" % (flow, key[:2], key))

    def test_multipart_file_and_pipe(self):
        data = os.urandom(12 << 20) + b"\0" * (2 << 20)
        env = base_env(CAS_S3_PART_SIZE=str(5 << 20))
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            out = cas("put", "--flow", "Big", "--v2", "--root", self.ROOT, f.name, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        key = out.stdout.decode().strip()
        h = self.head("Big", key)
        self.assertRegex(h["ETag"], r"-\d+\"$")  # a multipart object
        self.assertEqual(h["Metadata"]["metaflow-user-attributes"], '{"cas_raw": false, "cas_version": 2}')
        got = cas("get", "--flow", "Big", key, "--root", self.ROOT, "--verify")
        self.assertEqual(got.stdout, data)
        # migrated in place as a multipart upload, metadata and all
        out = cas("migrate", "--to", "v1", "--root", self.ROOT, "Big", env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        h = self.head("Big", key)
        self.assertRegex(h["ETag"], r"-\d+\"$")
        self.assertEqual(h["Metadata"]["metaflow-user-attributes"], '{"cas_raw": false, "cas_version": 1}')
        blob, meta = s3_blob("casput", "mf/Big/data/%s/%s" % (key[:2], key))
        self.assertEqual(gzip.decompress(blob), data)
        # the same bytes from a pipe, v1: the name comes last, the bytes wait in a temp file
        data2 = data[::-1]
        out = cas("put", "--flow", "Big", "--root", self.ROOT, input=data2, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        blob, meta = s3_blob("casput", "mf/Big/data/%s/%s" % (sha1(data2)[:2], sha1(data2)))
        self.assertEqual(python_decode(blob, meta), data2)


# ---- errors --------------------------------------------------------------------------------------------------


class TestExtension(cloudtest.ExtensionChecks, unittest.TestCase):
    OBJECTS, KIND = OBJECTS, "s3"
    UNSUPPORTED = ("METAFLOW_DEFAULT_AWS_CLIENT_PROVIDER", "my-provider")
    WRONG_SECRET = ("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789abcdef0123456")


class TestErrors(unittest.TestCase):
    def setUp(self):
        self.root = fixture_root("v1")
        self.key = manifest("v1")[0]["key"]

    def test_wrong_secret(self):
        env = base_env(AWS_SECRET_ACCESS_KEY="not-the-" + SK[8:])
        out = cas("get", "--flow", "FixtureFlow", self.key, "--root", self.root, env=env)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"SignatureDoesNotMatch", out.stderr)
        no_secret(self, out.stderr)
        self.assertNotIn(env["AWS_SECRET_ACCESS_KEY"].encode(), out.stderr)
        out = cas("put", "--flow", "F", "--root", self.root, input=b"x", env=env)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"Could not store artifact 'F/data/", out.stderr)
        self.assertIn(b"SignatureDoesNotMatch", out.stderr)

    def test_unknown_access_key(self):
        env = base_env(AWS_ACCESS_KEY_ID="AKIANOSUCHKEY0000000")
        out = cas("ls", manifest("v1")[0]["pathspec"], "--root", self.root, env=env)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, rb"HTTP 403 (InvalidAccessKeyId|AccessDenied)")
        no_secret(self, out.stderr)

    def test_unknown_bucket(self):
        out = cas("get", "--flow", "F", self.key, "--root", "s3://no-such-bucket-here/x")
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"NoSuchBucket", out.stderr)
        out = cas("verify", "--root", "s3://no-such-bucket-here/x")
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"NoSuchBucket", out.stderr)

    def test_expired_token(self):
        with faultproxy.FaultProxy((HOST, PORT), rate=1.0, kinds=("expired",)) as p:
            env = base_env(METAFLOW_S3_ENDPOINT_URL=p.endpoint, AWS_SESSION_TOKEN="FwoGZXIvYXdzEXPIREDTOKEN")
            out = cas("get", "--flow", "FixtureFlow", self.key, "--root", self.root, env=env)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"HTTP 400 ExpiredToken: The provided token has expired.", out.stderr)
        self.assertNotIn(b"EXPIREDTOKEN", out.stderr)

    def test_no_server(self):
        env = base_env(METAFLOW_S3_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="3")
        t = time.time()
        out = cas("get", "--flow", "F", self.key, "--root", self.root, env=env)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"after 3 tries", out.stderr)
        self.assertLess(time.time() - t, 30)

    def test_no_credentials(self):
        env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
        out = cas("ls", "F/1/s/1", "--root", self.root, env=env)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"no AWS credentials found", out.stderr)

    def test_bad_roots_and_settings(self):
        for root in ("s3://", "s3://a", "s3://bad bucket/x"):
            out = cas("ls", "F/1/s/1", "--root", root)
            self.assertEqual(out.returncode, 1, root)
            self.assertIn(b"s3://BUCKET[/PREFIX]", out.stderr)
        out = cas("ls", "F/1/s/1", "--root", self.root, env=base_env(AWS_MAX_ATTEMPTS="zero"))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"AWS_MAX_ATTEMPTS", out.stderr)


# ---- faults between client and server --------------------------------------------------------------------


class TestFaults(unittest.TestCase):
    def test_thousand_requests_through_faults(self):
        """Resets, stalls, cut bodies and 503s on a seeded quarter of the requests:
        every read is the right bytes or fails with a clear message; never a hang."""
        import cas_h
        bucket("casfault")
        rnd = random.Random(11)
        sizes = [rnd.choice((0, 10, 3000, 70000, 300000)) for _ in range(60)] + [6 << 20, 9 << 20]
        items = [os.urandom(n) for n in sizes]
        want = {sha1(b): b for b in items}
        good = bad = 0
        messages = set()
        clear = re.compile(r"(HTTP \d{3} [A-Za-z]+: .+|after \d+ tries)")
        with faultproxy.FaultProxy((HOST, PORT), rate=0.25, kinds=faultproxy.KINDS, seed=3, stall=2.5) as p:
            os.environ.update(METAFLOW_S3_ENDPOINT_URL=p.endpoint, CAS_S3_STALL_TIMEOUT="1", CAS_S3_RETRY_BASE="10",
                              CAS_S3_PART_SIZE=str(5 << 20))
            try:
                with cas_h.Store("s3://casfault/f") as st:
                    rounds = 0
                    while p.stats["requests"] < 1000 or rounds < 2:
                        rounds += 1
                        for i, b in enumerate(items):
                            try:
                                k = st.put("Fault", b, version=1 + (i % 2))
                                self.assertEqual(k, sha1(b))
                            except cas_h.CasError as e:
                                bad += 1
                                messages.add(str(e))
                                self.assertRegex(str(e), clear)
                        keys = list(want)
                        try:
                            got = st.get_many("Fault", keys)
                            for k, b in zip(keys, got):
                                self.assertEqual(sha1(b), k)
                                good += 1
                        except cas_h.CasError as e:
                            bad += 1
                            messages.add(str(e))
                            self.assertRegex(str(e), clear)
                        for k in keys[-3:]:  # streams: resumed after a break, or a clear error
                            try:
                                with st.open("Fault", k) as f:
                                    data = f.read()
                                self.assertEqual(data, want[k])
                                good += 1
                            except cas_h.CasError as e:
                                bad += 1
                                messages.add(str(e))
                                self.assertRegex(str(e), clear)
            finally:
                for k in ("CAS_S3_STALL_TIMEOUT", "CAS_S3_RETRY_BASE", "CAS_S3_PART_SIZE"):
                    os.environ.pop(k, None)
                os.environ["METAFLOW_S3_ENDPOINT_URL"] = ENDPOINT
            stats = dict(p.stats)
        print("\n    fault proxy: %d requests, %d forwarded, faults %s; %d reads right, %d clear failures"
              % (stats["requests"], stats["forwarded"], stats["faults"], good, bad), file=sys.stderr)
        for m in sorted(messages)[:5]:
            print("    e.g. " + m[:200], file=sys.stderr)
        self.assertGreaterEqual(stats["requests"], 1000)
        self.assertTrue(all(v > 0 for v in stats["faults"].values()), stats)
        self.assertGreater(good, 10 * max(bad, 1))
        # what the faults left is whole: every stored object decodes and hashes to its key
        out = cas("verify", "--root", "s3://casfault/f")
        self.assertEqual(out.returncode, 0, out.stderr)


# ---- a lying server: answers whose headers, or bytes, are not the range asked for ---------------------------


class TestLyingServer(unittest.TestCase):
    """The fault proxy as a lying server (faultproxy.LIES): every whole GET is cut
    halfway, every resume and every ranged GET answered with a lie. A read never
    returns wrong bytes: answers that are not the range asked for (start, size,
    length, version) are retried, then refused by name; one that lies in every
    header is caught by the rehash object stores always get (issue 23)."""

    WANT = {"range_from_zero": rb"Content-Range 'bytes 0-",
            "range_no_header": rb"Content-Range '\(none\)'",
            "short206": rb"Content-Range 'bytes \d+-\d+/\d+'",
            "etag_change": rb"the object changed while it was being read",
            "consistent": rb"content hashes to [0-9a-f]{40}, not to its key"}

    @classmethod
    def setUpClass(cls):
        import cas_h
        bucket("caslie")
        cls.root = "s3://caslie/mf"
        cls.blobs = {}
        with cas_h.Store(cls.root, raw=True) as st:  # raw: nothing but the hash can tell wrong bytes
            for name, n in (("small", 300000), ("large", 9 << 20)):
                data = os.urandom(n)
                cls.blobs[name] = (st.put("Lie", data), data)

    def read(self, lie, which, **extra):
        key, data = self.blobs[which]
        with faultproxy.FaultProxy((HOST, PORT), lie=lie) as p:
            out = cas("get", "--flow", "Lie", key, "--root", self.root,
                      env=base_env(METAFLOW_S3_ENDPOINT_URL=p.endpoint, AWS_MAX_ATTEMPTS="3", **extra), timeout=120)
            stats = dict(p.stats)
        self.assertFalse(out.returncode == 0 and out.stdout != data, "%s: exit 0 with wrong bytes" % lie)
        return out, stats

    def test_resumes_that_lie(self):
        for lie in faultproxy.LIES:
            with self.subTest(lie=lie):
                out, stats = self.read(lie, "small")
                self.assertEqual(out.returncode, 1, (lie, out.stderr))
                self.assertRegex(out.stderr, self.WANT[lie])
                self.assertGreater(stats["cuts"], 0, stats)
                self.assertGreater(stats["lies"], 0, stats)

    def test_read_ahead_and_ranged_reads_that_lie(self):
        """A 9 MiB object: the read-ahead thread's resumes, then ranged GETs from the
        start (CAS_S3_RANGED_MIN=1), each lied to."""
        for lie in faultproxy.LIES:
            for extra in ({}, {"CAS_S3_RANGED_MIN": "1"}):
                with self.subTest(lie=lie, **extra):
                    out, stats = self.read(lie, "large", **extra)
                    self.assertEqual(out.returncode, 1, (lie, out.stderr))
                    self.assertRegex(out.stderr, rb"a range came short" if lie == "short206" and extra
                                     else self.WANT[lie])
                    self.assertGreater(stats["lies"], 0, stats)

    def test_the_binding_refuses_them_too(self):
        import cas_h
        key, data = self.blobs["small"]
        with faultproxy.FaultProxy((HOST, PORT), lie="range_from_zero") as p:
            os.environ.update(METAFLOW_S3_ENDPOINT_URL=p.endpoint, AWS_MAX_ATTEMPTS="3")
            try:
                with cas_h.Store(self.root, verify=False) as st:  # the Content-Range check alone
                    with self.assertRaisesRegex(cas_h.CasError, "Content-Range 'bytes 0-"):
                        with st.open("Lie", key) as f:
                            f.read()
            finally:
                os.environ.update(METAFLOW_S3_ENDPOINT_URL=ENDPOINT)
                os.environ.pop("AWS_MAX_ATTEMPTS")
        with faultproxy.FaultProxy((HOST, PORT), lie="consistent") as p:
            os.environ.update(METAFLOW_S3_ENDPOINT_URL=p.endpoint, AWS_MAX_ATTEMPTS="3")
            try:
                with cas_h.Store(self.root) as st:  # an object store's reads are rehashed by default
                    with self.assertRaises(cas_h.HashMismatch):
                        with st.open("Lie", key) as f:
                            f.read()
            finally:
                os.environ.update(METAFLOW_S3_ENDPOINT_URL=ENDPOINT)
                os.environ.pop("AWS_MAX_ATTEMPTS")


# ---- SIGKILL during multipart puts ----------------------------------------------------------------------


class TestKill(unittest.TestCase):
    def test_sigkill_multipart_put(self):
        """40 SIGKILLs during multipart `cas put` (3 parts), at times spread over a put's
        own length (measured first, so a faster machine still kills mid-upload)."""
        bkt = bucket("caskill")
        cloudtest.kill_puts(self, "s3://caskill/k", base_env(CAS_S3_PART_SIZE=str(5 << 20)), 40, 21)
        # nothing visible is broken: every object has its metadata and decodes to its key
        objs = S3.list_objects_v2(Bucket=bkt, Prefix="k/").get("Contents", [])
        for o in objs:
            blob, meta = s3_blob(bkt, o["Key"])
            self.assertIsNotNone(meta, o["Key"])
            self.assertEqual(sha1(python_decode(blob, meta)), o["Key"].rsplit("/", 1)[1])
        left = S3.list_multipart_uploads(Bucket=bkt, Prefix="k/").get("Uploads", [])
        self.assertGreater(len(left), 0)  # killed mid-upload: parts S3 keeps until aborted
        out = cas("gc", "--root", "s3://caskill/k", env=base_env(CAS_S3_GC_AGE="0"))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"aborted %d unfinished uploads" % len(left), out.stdout)
        self.assertEqual(S3.list_multipart_uploads(Bucket=bkt, Prefix="k/").get("Uploads", []), [])
        out = cas("verify", "--root", "s3://caskill/k")
        self.assertEqual(out.returncode, 0, out.stderr)


# ---- credentials: every link of the chain, against local stand-ins ---------------------------------------


def _creds_json(expires_in=3600):
    exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
    return json.dumps({"AccessKeyId": AK, "SecretAccessKey": SK, "Token": "", "Expiration": exp}).encode()


class TestCredentials(unittest.TestCase):
    def setUp(self):
        self.root = fixture_root("v1")
        self.a = manifest("v1")[3]
        self.spec = "%s/%s" % (self.a["pathspec"], self.a["name"])

    def read_with(self, env):
        out = cas("artifact", self.spec, "--root", self.root, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sha1(out.stdout), self.a["key"])

    def test_shared_credentials_file_and_profile(self):
        d = tempfile.mkdtemp(dir=_TMP)
        with open(os.path.join(d, "credentials"), "w") as f:
            f.write("[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n"
                    "# the profile in use\n[team]\naws_access_key_id = %s\naws_secret_access_key=%s\n" % (AK, SK))
        with open(os.path.join(d, "config"), "w") as f:
            f.write("[profile team]\nregion = us-east-1\ns3 =\n  addressing_style = path\n")
        self.read_with(base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_PROFILE="team",
                                AWS_SHARED_CREDENTIALS_FILE=os.path.join(d, "credentials"),
                                AWS_CONFIG_FILE=os.path.join(d, "config")))
        # the keys in ~/.aws/config work too
        env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
        os.makedirs(os.path.join(env["HOME"], ".aws"))
        with open(os.path.join(env["HOME"], ".aws", "config"), "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (AK, SK))
        self.read_with(env)

    def test_container_endpoint(self):
        srv = stand_in(lambda m, p, h, b: (200, _creds_json())
                       if h.get("Authorization") == "tok-123" and p == "/v2/creds" else (401, b"no"))
        try:
            env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                           AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/v2/creds" % srv.server_port,
                           AWS_CONTAINER_AUTHORIZATION_TOKEN="tok-123")
            self.read_with(env)
            self.assertEqual(len(srv.calls), 1)
            # the token from a file (EKS pod identity), and credentials close to expiry refreshed
            tf = os.path.join(env["HOME"], "token")
            with open(tf, "w") as f:
                f.write("tok-123\n")
            srv.calls.clear()
            env.pop("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = tf
            self.read_with(env)
            self.assertGreaterEqual(len(srv.calls), 1)
            # a wrong token: the endpoint's refusal, named
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = os.devnull
            out = cas("artifact", self.spec, "--root", self.root, env=env)
            self.assertEqual(out.returncode, 1)
            self.assertIn(b"container credentials endpoint: HTTP 401", out.stderr)
        finally:
            srv.shutdown()
            srv.server_close()

    def test_container_answer_without_a_session_token(self):
        """Long-lived keys from an endpoint: "Token" null or absent is no session token."""
        for token in (None, "absent"):
            body = {"AccessKeyId": AK, "SecretAccessKey": SK, "Token": token}
            if token == "absent":
                del body["Token"]
            srv = stand_in(lambda m, p, h, b: (200, json.dumps(body).encode()))
            try:
                self.read_with(base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                                        AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/c" % srv.server_port))
            finally:
                srv.shutdown()
                srv.server_close()

    def test_refresh_before_expiry(self):
        srv = stand_in(lambda m, p, h, b: (200, _creds_json(expires_in=120)))
        try:
            env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                           AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/c" % srv.server_port)
            out = cas("verify", "--root", self.root, env=env)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertGreater(len(srv.calls), 2)  # every request found them within 5 minutes of expiry
        finally:
            srv.shutdown()
            srv.server_close()

    def test_container_url_must_be_local_or_https(self):
        """The URL is parsed as libcurl reads it, not matched by prefix: a user part
        ("127.0.0.1@elsewhere"), a look-alike host or a relative URI starting with "@"
        would send the pod's authorization token elsewhere over plain HTTP (issue 23)."""
        srv = stand_in(lambda m, p, h, b: (200, _creds_json()), host="0.0.0.0")
        here = cloudtest.machine_address()
        port = srv.server_port
        try:
            urls = ["http://example.com/creds", "http://127.0.0.1@%s:%d/creds" % (here or "192.0.2.1", port),
                    "http://127.0.0.1:x@%s:%d/creds" % (here or "192.0.2.1", port),
                    "http://169.254.170.2.%s.nip.io/creds" % (here or "x"), "http://[fd00:ec2::24]/creds",
                    "ftp://127.0.0.1/creds", "not a url"]
            if here:
                urls.append("http://%s:%d/creds" % (here, port))
            for url in urls:
                env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                               AWS_CONTAINER_CREDENTIALS_FULL_URI=url, AWS_CONTAINER_AUTHORIZATION_TOKEN="pod-token")
                out = cas("ls", "F/1/s/1", "--root", self.root, env=env)
                self.assertEqual(out.returncode, 1, url)
                self.assertIn(b"AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to this machine or the "
                              b"ECS/EKS credential agent, without a user", out.stderr, url)
            env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                           AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="@%s:%d/creds" % (here or "192.0.2.1", port),
                           AWS_CONTAINER_AUTHORIZATION_TOKEN="pod-token", CAS_S3_CONNECT_TIMEOUT="1")
            out = cas("ls", "F/1/s/1", "--root", self.root, env=env)  # 169.254.170.2 here: nothing answers
            self.assertEqual(out.returncode, 1)
            self.assertEqual(srv.calls, [])  # the token went nowhere
            # what the SDKs allow still works: loopback by any of its names
            for host in ("127.0.0.1", "localhost", "127.1.2.3"):
                env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                               AWS_CONTAINER_CREDENTIALS_FULL_URI="http://%s:%d/creds" % (host, port))
                self.read_with(env)
        finally:
            srv.shutdown()
            srv.server_close()

    def test_instance_metadata_v2(self):
        def imds(m, p, h, b):
            if m == "PUT" and p == "/latest/api/token" and h.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return 200, b"imds-session-token"
            if h.get("X-aws-ec2-metadata-token") != "imds-session-token":
                return 401, b""
            if p == "/latest/meta-data/iam/security-credentials/":
                return 200, b"mf-role"
            if p == "/latest/meta-data/iam/security-credentials/mf-role":
                return 200, _creds_json()
            return 404, b""
        srv = stand_in(imds)
        try:
            self.read_with(base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_EC2_METADATA_DISABLED=None,
                                    AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:%d" % srv.server_port))
            self.assertEqual([c[0] for c in srv.calls], ["PUT", "GET", "GET"])
        finally:
            srv.shutdown()
            srv.server_close()

    def test_web_identity(self):
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))

        def sts(m, p, h, b):
            form = urllib.parse.parse_qs(b.decode())
            if (form.get("Action") == ["AssumeRoleWithWebIdentity"] and form.get("WebIdentityToken") == ["jwt.of.pod"]
                    and form.get("RoleArn") == ["arn:aws:iam::123:role/mf"]):
                return 200, ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                             "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
                             "<SessionToken></SessionToken><Expiration>%s</Expiration></Credentials>"
                             "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
                             % (AK, SK, exp)).encode()
            return 403, (b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized to perform "
                         b"sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>")
        srv = stand_in(sts)
        try:
            env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                           AWS_ROLE_ARN="arn:aws:iam::123:role/mf",
                           AWS_ENDPOINT_URL_STS="http://127.0.0.1:%d" % srv.server_port)
            tf = os.path.join(env["HOME"], "jwt")
            with open(tf, "w") as f:
                f.write("jwt.of.pod\n")
            env["AWS_WEB_IDENTITY_TOKEN_FILE"] = tf
            self.read_with(env)
            with open(tf, "w") as f:
                f.write("another.jwt\n")
            out = cas("artifact", self.spec, "--root", self.root, env=env)
            self.assertEqual(out.returncode, 1)
            self.assertIn(b"AssumeRoleWithWebIdentity", out.stderr)
            self.assertIn(b"HTTP 403 AccessDenied", out.stderr)
            self.assertNotIn(b"another.jwt", out.stderr)
        finally:
            srv.shutdown()
            srv.server_close()


class TestSpool(unittest.TestCase):
    def test_the_spool_file_is_close_on_exec(self):
        """A put from a pipe (the key, so the name, known only at the end) keeps the
        bytes past its first part in an unlinked temp file: close-on-exec from the
        moment it exists, so a program the process starts meanwhile does not inherit
        it (issue 23)."""
        import cas_h
        import threading
        bucket("casspool")
        r, w = os.pipe()
        seen = []

        def feed():
            os.write(w, os.urandom(12 << 20))  # more than a part: the spool is open now
            deadline = time.time() + 30
            while time.time() < deadline and not seen:
                for fd in os.listdir("/proc/self/fd"):
                    try:
                        target = os.readlink("/proc/self/fd/" + fd)
                    except OSError:
                        continue
                    if "cas-spool-" in target:
                        with open("/proc/self/fdinfo/" + fd) as f:
                            flags = int(next(l for l in f if l.startswith("flags:")).split()[1], 8)
                        seen.append((target, flags))
                time.sleep(0.05)
            os.close(w)
        th = threading.Thread(target=feed)
        os.environ["CAS_S3_PART_SIZE"] = str(5 << 20)
        try:
            th.start()
            with cas_h.Store("s3://casspool/mf") as st:
                st.put_file("Spool", r)
        finally:
            os.environ.pop("CAS_S3_PART_SIZE")
            th.join()
            os.close(r)
        self.assertTrue(seen, "no spool file seen")
        for target, flags in seen:
            self.assertTrue(flags & os.O_CLOEXEC, (target, oct(flags)))


class TestHostileListing(unittest.TestCase):
    def test_a_listed_name_with_a_nul_is_skipped_not_cut(self):
        """A listing (EncodingType=url) naming 'KEY%00junk' under a flow: that name is
        skipped, never read as KEY, the name before the NUL (issue 23)."""
        good, cut = "ab" + "1" * 38, "cd" + "2" * 38
        page = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name><EncodingType>url"
                "</EncodingType><IsTruncated>false</IsTruncated>"
                "<Contents><Key>mf/F/data/ab/%s</Key><Size>4</Size><LastModified>2026-12-01T00:00:00.000Z"
                "</LastModified></Contents><Contents><Key>mf/F/data/cd/%s%%00junk</Key><Size>4</Size>"
                "<LastModified>2026-12-01T00:00:00.000Z</LastModified></Contents></ListBucketResult>" % (good, cut))
        srv = stand_in(lambda m, p, h, b: (200, page.encode()) if "list-type=2" in p else (404, b""))
        try:
            cas("verify", "--root", "s3://bkt/mf", "F",
                env=base_env(METAFLOW_S3_ENDPOINT_URL="http://127.0.0.1:%d" % srv.server_port))
            paths = [c[1] for c in srv.calls if "list-type" not in c[1]]
            self.assertTrue(any(good in p for p in paths), paths)  # the listing was read
            self.assertFalse(any(cut in p for p in paths), paths)
        finally:
            srv.shutdown()
            srv.server_close()


class TestLongCredentials(unittest.TestCase):
    """Session tokens run to several KiB (session tags, policies, role chains):
    they are sent whole, from every source, or refused by name; never cut (issue 23)."""

    def setUp(self):
        self.seen = []

        def s3(m, p, h, b):  # the S3 endpoint: records what it was sent
            self.seen.append(h.get("x-amz-security-token"))
            return 404, b"<Error><Code>NoSuchKey</Code><Message>none</Message></Error>"
        self.s3 = stand_in(s3)

    def tearDown(self):
        self.s3.shutdown()
        self.s3.server_close()

    def run_with(self, **extra):
        env = dict(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                   METAFLOW_S3_ENDPOINT_URL="http://127.0.0.1:%d" % self.s3.server_port)
        env = base_env(**dict(env, **extra))
        return cas("ls", "F/1/s/1", "--root", "s3://caslong/x", env=env)

    def sts(self, token, status=200):
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        body = ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>"
                "<Expiration>%s</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                "</AssumeRoleWithWebIdentityResponse>" % (AK, SK, token, exp)).encode()
        srv = stand_in(lambda m, p, h, b: (status, body if status == 200 else b"not here"))
        jwt = os.path.join(tempfile.mkdtemp(dir=_TMP), "jwt")
        with open(jwt, "w") as f:
            f.write("jwt.of.pod\n")
        return srv, dict(AWS_ROLE_ARN="arn:aws:iam::123:role/mf", AWS_WEB_IDENTITY_TOKEN_FILE=jwt,
                         AWS_ENDPOINT_URL_STS="http://127.0.0.1:%d" % srv.server_port)

    def sent_whole_or_refused(self, out, token, ok, refusal):
        """The token reached the server whole in every request, or no request was made
        and the refusal was said; never a cut token, never the token in a message."""
        if ok:
            self.assertTrue(self.seen and all(s == token for s in self.seen), [len(s or "") for s in self.seen])
        else:
            self.assertEqual(self.seen, [])
            self.assertIn(refusal, out.stderr)
        self.assertNotIn(token[20:40].encode(), out.stderr)

    def test_sts_session_token_whole_or_refused(self):
        for n, ok in ((3000, True), (20000, True), (70000, False)):
            token = "FQoGZXIvYXdzE" + "x" * (n - 14) + "="
            srv, env = self.sts(token)
            try:
                self.seen.clear()
                out = self.run_with(**env)
                self.assertEqual(out.returncode, 1)  # the stand-in holds no task: only what it was sent matters
                self.sent_whole_or_refused(out, token, ok, b"STS AssumeRoleWithWebIdentity gave a SessionToken longer "
                                                           b"than cas.h keeps (65536 bytes)")
            finally:
                srv.shutdown()
                srv.server_close()

    def test_files_and_environment_whole_or_refused(self):
        d = tempfile.mkdtemp(dir=_TMP)
        for n, ok in ((5000, True), (70000, False)):
            token = "T" * 19 + "%d" % n + "T" * (n - 19 - len(str(n)))
            with open(os.path.join(d, "credentials"), "w") as f:
                f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\naws_session_token = %s\n"
                        % (AK, SK, token))
            for env, refusal in (
                    (dict(AWS_SHARED_CREDENTIALS_FILE=os.path.join(d, "credentials")),
                     b"aws_session_token of profile 'default' in the shared credentials file is longer than cas.h "
                     b"keeps (65536 bytes)"),
                    (dict(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_SESSION_TOKEN=token),
                     b"AWS_SESSION_TOKEN: the credentials' token is 70000 bytes long, more than cas.h keeps (65536)")):
                self.seen.clear()
                self.sent_whole_or_refused(self.run_with(**env), token, ok, refusal)

    def test_a_refusing_link_is_named_not_skipped(self):
        """A 404 from the STS endpoint is that link's failure, not "no credentials here"."""
        srv, env = self.sts("t", status=404)
        try:
            out = self.run_with(**env)
            self.assertEqual(out.returncode, 1)
            self.assertIn(b"STS AssumeRoleWithWebIdentity for arn:aws:iam::123:role/mf: HTTP 404", out.stderr)
            self.assertEqual(self.seen, [])
        finally:
            srv.shutdown()
            srv.server_close()

    def test_web_identity_token_stays_off_plain_http(self):
        here = cloudtest.machine_address()
        if not here:
            self.skipTest("this machine has no address but loopback")
        srv = stand_in(lambda m, p, h, b: (500, b""), host="0.0.0.0")
        try:
            _, env = self.sts("t")
            env["AWS_ENDPOINT_URL_STS"] = "http://%s:%d" % (here, srv.server_port)
            out = self.run_with(**env)
            self.assertEqual(out.returncode, 1)
            self.assertIn(b"the STS endpoint, with a web identity token: a secret is not sent over plain HTTP",
                          out.stderr)
            self.assertEqual(srv.calls, [])
        finally:
            srv.shutdown()
            srv.server_close()


_SCAN = r"""
import gc, json, os, sys
sys.path.insert(0, sys.argv[1])
import cas_h
mask = bytes.fromhex(sys.argv[2])  # the secrets, each byte ^ 0x5a: their plain bytes are never in this process
needles = [bytes.fromhex(h) for h in sys.argv[3:]]
with cas_h.Store("s3://fix-v1/metaflow") as st:
    for k in json.loads(os.environ["KEYS"]):
        try:
            st.get("FixtureFlow", k)
        except cas_h.CasError:
            pass
    try:
        st.get_many("FixtureFlow", json.loads(os.environ["KEYS"]))
    except cas_h.CasError:
        pass
del st
gc.collect()
table = bytes(b ^ 0x5A for b in range(256))
found = []
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
    for line in maps:
        addr, perms = line.split()[:2]
        if not perms.startswith("r") or line.rstrip().endswith(("[vvar]", "[vsyscall]", "[vvar_vclock]")):
            continue
        lo, hi = (int(x, 16) for x in addr.split("-"))
        try:
            mem.seek(lo)
            region = mem.read(hi - lo).translate(table)
        except (OSError, ValueError, OverflowError):
            continue
        for i, n in enumerate(needles):
            if n in region:
                found.append([i, line.strip()])
        del region
print(json.dumps(found))
"""


class TestSecretsInMemory(unittest.TestCase):
    def test_freed_buffers_hold_no_credential(self):
        """Credentials from a container endpoint (a session token, a secret key) pass
        through libcurl's request and receive buffers and cas.h's own; once the store
        is closed no byte of this process's memory holds either: libcurl's blocks are
        wiped as they are freed (curl_global_init_mem), cas.h's copies too (issue 23)."""
        import secrets
        token = ("IQoJb3JpZ2luX2VjE" + secrets.token_hex(600)).encode()  # a session token's length, ~1.2 KB
        body = json.dumps({"AccessKeyId": AK, "SecretAccessKey": SK, "Token": token.decode(),
                           "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))}).encode()
        srv = stand_in(lambda m, p, h, b: (200, body))
        try:
            fixture_root("v1")
            keys = [a["key"] for a in manifest("v1")[:6]]
            env = base_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, KEYS=json.dumps(keys),
                           AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:%d/creds" % srv.server_port)
            masked = [bytes(b ^ 0x5A for b in s).hex() for s in (token, SK.encode(), token[-200:])]
            r = subprocess.run([sys.executable, "-c", _SCAN, os.path.join(REPO, "python"), "5a"] + masked,
                               capture_output=True, env=env, timeout=120, check=False)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertGreaterEqual(len(srv.calls), 1)
            self.assertEqual(json.loads(r.stdout.decode().strip().splitlines()[-1]), [])
        finally:
            srv.shutdown()
            srv.server_close()


# ---- Metaflow's configuration ----------------------------------------------------------------------------


class TestMetaflowConfig(unittest.TestCase):
    def test_default_root_from_config_json(self):
        root = fixture_root("v1")
        a = manifest("v1")[5]
        env = base_env(METAFLOW_S3_ENDPOINT_URL=None)
        os.makedirs(env["METAFLOW_HOME"])
        with open(os.path.join(env["METAFLOW_HOME"], "config.json"), "w") as f:
            json.dump({"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": root,
                       "METAFLOW_S3_ENDPOINT_URL": ENDPOINT}, f)
        cwd = tempfile.mkdtemp(dir=_TMP)
        out = cas("ls", a["pathspec"], env=env, cwd=cwd)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(a["key"].encode(), out.stdout)
        out = cas("artifact", "%s/%s" % (a["pathspec"], a["name"]), env=env, cwd=cwd)
        self.assertEqual(sha1(out.stdout), a["key"])
        # a profile's file, and the environment over the file
        with open(os.path.join(env["METAFLOW_HOME"], "config_prod.json"), "w") as f:
            json.dump({"METAFLOW_DEFAULT_DATASTORE": "s3",
                       "METAFLOW_DATASTORE_SYSROOT_S3": "s3://no-such-bucket-here/x",
                       "METAFLOW_S3_ENDPOINT_URL": ENDPOINT}, f)
        env["METAFLOW_PROFILE"] = "prod"
        out = cas("ls", a["pathspec"], env=env, cwd=cwd)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"NoSuchBucket", out.stderr)
        env["METAFLOW_DATASTORE_SYSROOT_S3"] = root
        out = cas("ls", a["pathspec"], env=env, cwd=cwd)
        self.assertEqual(out.returncode, 0, out.stderr)
        # the binding's Store() takes the same default
        code = "import cas_h; s = cas_h.Store(); print(s.root); print(len(s.get(%r, %r)))" % (
            a["blob"].split("/")[0], a["key"])
        env["PYTHONPATH"] = os.path.join(REPO, "python")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, cwd=cwd)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.decode().split(), [root, str(a["size"])])

    def test_server_side_encryption_header(self):
        bucket("cassse")
        with faultproxy.FaultProxy((HOST, PORT), record=True) as p:
            env = base_env(METAFLOW_S3_ENDPOINT_URL=p.endpoint, METAFLOW_S3_SERVER_SIDE_ENCRYPTION="AES256",
                           CAS_S3_PART_SIZE=str(5 << 20))
            cas("put", "--flow", "Sse", "--root", "s3://cassse/e", input=b"small", env=env)
            cas("put", "--flow", "Sse", "--root", "s3://cassse/e", input=os.urandom(11 << 20), env=env)
            seen = list(p.seen)
        writes = [(m, path, h) for m, path, h in seen if m == "PUT" and "partNumber" not in path
                  or (m == "POST" and path.endswith("uploads="))]
        self.assertGreaterEqual(len(writes), 2)
        for m, path, h in writes:
            self.assertEqual(h.get("x-amz-server-side-encryption"), "AES256", (m, path))


if __name__ == "__main__":
    unittest.main(verbosity=2)
