#!/usr/bin/env python3
"""cas.h on Azure Blob Storage (Microsoft's emulator azurite, started by tests/azure/run.sh).

Metaflow's Azure layout: the blob names are the local datastore's paths under
container/prefix, and a blob's sidecar JSON is its metadata
metaflow_user_attributes (x-ms-meta-metaflow_user_attributes). Here the real
stores Metaflow wrote are uploaded in that layout with the Azure SDK (the client
Metaflow's Azure datastore uses), then read, verified, migrated and written
through `cas` and the Python binding, and checked back with the SDK.
Also: shared key, connection string and SAS tokens (a read-only one refused a
write); errors (wrong key, no container, no blob, no server, no credentials, a
corrupt blob); the fault proxy; Metaflow's configuration (container/prefix).

Needs the environment of tests/azure/azurite.sh (CAS_TEST_AZURE_ENDPOINT, the
development account's name and key).
"""
import base64
import datetime
import gzip
import json
import os
import sys
import tempfile
import time
import unittest
import urllib.parse

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "s3"))
import faultproxy  # noqa: E402
import cloudtest  # noqa: E402
from cloudtest import TMP, make_env, manifest, python_decode, run_cas, sha1, stand_in  # noqa: E402

ENDPOINT = os.environ.get("CAS_TEST_AZURE_ENDPOINT")
if not ENDPOINT:
    sys.exit("tests/test_azure.py: no Azure emulator: run it through tests/azure/run.sh (make test-azure)")
_u = urllib.parse.urlparse(ENDPOINT)
HOST, PORT = _u.hostname, _u.port
ACCOUNT, KEY = os.environ["AZURE_STORAGE_ACCOUNT"], os.environ["AZURE_STORAGE_KEY"]
META = "metaflow_user_attributes"
OAUTH = os.environ["CAS_TEST_AZURE_OAUTH_ENDPOINT"]  # HTTPS, bearer tokens checked (azurite --oauth basic)
CA = os.environ["CAS_TEST_AZURE_CA"]
_SCRUB = ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN",
          "METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT", "METAFLOW_DEFAULT_DATASTORE",
          "METAFLOW_DATASTORE_SYSROOT_AZURE", "METAFLOW_PROFILE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID",
          "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT",
          "IDENTITY_HEADER", "AZURE_POD_IDENTITY_AUTHORITY_HOST", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
# the binding, in this process, reads the same settings the `cas` runs get
os.environ.update(METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=ENDPOINT)


def base_env(**extra):
    # no instance metadata service here: the chain's last link finds nothing at once
    return make_env(_SCRUB, dict(METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=ENDPOINT, AZURE_STORAGE_ACCOUNT=ACCOUNT,
                                 AZURE_STORAGE_KEY=KEY, CAS_S3_RETRY_BASE="20",
                                 AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:9"), extra)


def cas(*args, env=None, input=None, timeout=300):
    return run_cas(args, env or base_env(), input=input, timeout=timeout)


SVC = BlobServiceClient(account_url=ENDPOINT, credential={"account_name": ACCOUNT, "account_key": KEY})


class AzureObjects(cloudtest.ObjectStore):
    """Containers and blobs as the Azure SDK writes them (Metaflow's own Azure client)."""
    scheme = "azure://"
    meta_write_keeps_etag = False  # Set Blob Metadata gives a new ETag
    dot_segments = False  # the SDK's request for "a/../b" fails its own signature (the path is normalised)

    def __init__(self, svc):
        super().__init__()
        self.svc = svc

    def create(self, name):
        try:
            self.svc.create_container(name)
        except ResourceExistsError:
            pass

    def blob(self, cont, name):
        return self.svc.get_container_client(self.ensure(cont)).get_blob_client(name)

    def put(self, cont, name, data, meta=None):
        self.blob(cont, name).upload_blob(data, overwrite=True, metadata={META: meta} if meta is not None else None)

    def get(self, cont, name):
        b = self.blob(cont, name)
        return b.download_blob().readall(), b.get_blob_properties().metadata.get(META)

    def etag(self, cont, name):
        return self.blob(cont, name).get_blob_properties().etag

    def names(self, cont, prefix):
        return [b.name for b in self.svc.get_container_client(cont).list_blobs(name_starts_with=prefix)]


OBJECTS = AzureObjects(SVC)
fixture_root = OBJECTS.fixture_root


def no_secret(test, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    test.assertNotIn(KEY, text)
    test.assertNotIn(KEY[:12], text)
    test.assertNotIn("sig=", text)


def sas(cont, **perms):
    return generate_container_sas(ACCOUNT, cont, account_key=KEY, permission=ContainerSasPermissions(**perms),
                                  expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=1))


# ---- the real stores, in Metaflow's Azure layout ----------------------------------------------------------


class TestFixtures(cloudtest.FixtureChecks, unittest.TestCase):
    objects, cas, env = OBJECTS, staticmethod(cas), staticmethod(base_env)


# ---- writing through cas.h, read back with the Azure SDK as Metaflow reads ---------------------------------


class TestPutGetMigrate(cloudtest.WriteChecks, unittest.TestCase):
    objects, cas, env = OBJECTS, staticmethod(cas), staticmethod(base_env)
    upstream = (HOST, PORT)
    ROOT = "azure://casput/mf"

    def env_through(self, endpoint):
        return base_env(METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=endpoint + "/" + ACCOUNT)

    def props(self, flow, key):
        return OBJECTS.blob(self.C, "mf/%s/data/%s/%s" % (flow, key[:2], key)).get_blob_properties()

    def test_blocks_file_and_pipe(self):
        """Over one part size a blob goes up as blocks and a block list; from a pipe, v1,
        the name comes last and the bytes wait in a temp file."""
        data = os.urandom(12 << 20) + b"\0" * (2 << 20)
        # Azure's own name, over the first name (which alone would be out of range)
        env = base_env(CAS_AZURE_PART_SIZE=str(5 << 20), CAS_S3_PART_SIZE="1")
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            out = cas("put", "--flow", "Big", "--v2", "--root", self.ROOT, f.name, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        key = out.stdout.decode().strip()
        name = "mf/Big/data/%s/%s" % (key[:2], key)
        committed, uncommitted = OBJECTS.blob(self.C, name).get_block_list("all")
        self.assertGreaterEqual(len(committed), 2)
        self.assertEqual(self.props("Big", key).metadata[META], '{"cas_raw": false, "cas_version": 2}')
        got = cas("get", "--flow", "Big", key, "--root", self.ROOT, "--verify")
        self.assertEqual(got.stdout, data)
        out = cas("migrate", "--to", "v1", "--root", self.ROOT, "Big", env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        blob, meta = OBJECTS.get(self.C, name)
        self.assertEqual(meta, '{"cas_raw": false, "cas_version": 1}')
        self.assertEqual(gzip.decompress(blob), data)
        data2 = data[::-1]
        out = cas("put", "--flow", "Big", "--root", self.ROOT, input=data2, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        blob, meta = OBJECTS.get(self.C, "mf/Big/data/%s/%s" % (sha1(data2)[:2], sha1(data2)))
        self.assertEqual(python_decode(blob, meta), data2)

    def test_sigkill_block_puts(self):
        """20 SIGKILLs during block uploads: a blob appears whole with its metadata (Put
        Block List commits both at once) or not at all; gc has nothing to abort."""
        cloudtest.kill_puts(self, "azure://%s/k" % OBJECTS.ensure("caskill"), base_env(CAS_S3_PART_SIZE=str(5 << 20)),
                            20, 21)
        names = OBJECTS.names("caskill", "k/")
        self.assertGreaterEqual(len(names), 3)
        for name in names:
            blob, meta = OBJECTS.get("caskill", name)
            self.assertIsNotNone(meta, name)
            self.assertEqual(sha1(python_decode(blob, meta)), name.rsplit("/", 1)[1])
        out = cas("gc", "--root", "azure://caskill/k")
        self.assertEqual(out.returncode, 0, out.stderr)
        out = cas("verify", "--root", "azure://caskill/k")
        self.assertEqual(out.returncode, 0, out.stderr)


# ---- credentials and settings --------------------------------------------------------------------------------


class TestExtension(cloudtest.ExtensionChecks, unittest.TestCase):
    OBJECTS, KIND = OBJECTS, "azure"
    UNSUPPORTED = ("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/ssl/private/client.pem")
    WRONG_SECRET = ("AZURE_STORAGE_KEY", base64.b64encode(b"not the account key, 32 bytes..!").decode())


class TestCredentials(unittest.TestCase):
    def setUp(self):
        self.root = fixture_root("v1")
        self.a = manifest("v1")[3]
        self.spec = "%s/%s" % (self.a["pathspec"], self.a["name"])

    def read_with(self, env, root=None):
        out = cas("artifact", self.spec, "--root", root or self.root, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sha1(out.stdout), self.a["key"])

    def test_connection_string(self):
        cs = "DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;" % (ACCOUNT, KEY, ENDPOINT)
        self.read_with(base_env(AZURE_STORAGE_CONNECTION_STRING=cs, AZURE_STORAGE_KEY=None, AZURE_STORAGE_ACCOUNT=None,
                                METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=None))

    def test_account_from_the_emulator_endpoint(self):
        self.read_with(base_env(AZURE_STORAGE_ACCOUNT=None))

    def test_sas_tokens(self):
        tok = sas("fix-v1", read=True, list=True)
        # in AZURE_STORAGE_SAS_TOKEN, and as the query of the endpoint
        self.read_with(base_env(AZURE_STORAGE_KEY=None, AZURE_STORAGE_SAS_TOKEN=tok))
        self.read_with(base_env(AZURE_STORAGE_KEY=None,
                                METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=ENDPOINT + "?" + tok))
        out = cas("verify", "--root", self.root, env=base_env(AZURE_STORAGE_KEY=None, AZURE_STORAGE_SAS_TOKEN=tok))
        self.assertEqual(out.returncode, 0, out.stderr)
        # a read-only token cannot write: the blob, the status and Azure's code, not the token
        out = cas("put", "--flow", "F", "--root", self.root, input=b"no",
                  env=base_env(AZURE_STORAGE_KEY=None, AZURE_STORAGE_SAS_TOKEN=tok))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"Could not store artifact 'F/data/", out.stderr)
        self.assertIn(b"HTTP 403", out.stderr)
        no_secret(self, out.stderr)
        # a forged signature
        bad = tok.replace("sig=", "sig=AAAA")
        out = cas("artifact", self.spec, "--root", self.root, env=base_env(AZURE_STORAGE_KEY=None,
                                                                           AZURE_STORAGE_SAS_TOKEN=bad))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"HTTP 403", out.stderr)
        no_secret(self, out.stderr)

    def test_metaflow_config_container_prefix(self):
        env = base_env()
        os.makedirs(env["METAFLOW_HOME"])
        with open(os.path.join(env["METAFLOW_HOME"], "config.json"), "w") as f:
            json.dump({"METAFLOW_DEFAULT_DATASTORE": "azure", "METAFLOW_DATASTORE_SYSROOT_AZURE": "fix-v1/metaflow",
                       "METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT": ENDPOINT}, f)
        env.pop("METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT")
        fixture_root("v1")
        out = run_cas(("artifact", self.spec), env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sha1(out.stdout), self.a["key"])


# ---- Microsoft Entra ID tokens: the token endpoints are local stand-ins, the blobs behind
# azurite over HTTPS, which checks each token's issuer, audience and lifetime ------------------


TENANT, CLIENT, SECRET = "72f988bf-86f1-41af-91ab-2d7cd011db47", "0a1b2c3d-client", "sp-secret-~Xq8Q"


def jwt(exp_in=3600):
    def part(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return "%s.%s.c2ln" % (part({"alg": "RS256", "typ": "JWT"}),
                           part({"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/%s/" % TENANT,
                                 "nbf": now - 60, "iat": now - 60, "exp": now + exp_in, "oid": "cas-test"}))


_OAUTH = []


def oauth_fixture():
    """fix-v1 on the HTTPS instance, uploaded once with the account key."""
    if not _OAUTH:
        _OAUTH.append(AzureObjects(BlobServiceClient(account_url=OAUTH, connection_verify=CA,
                                                     credential={"account_name": ACCOUNT, "account_key": KEY})))
    return _OAUTH[0].fixture_root("v1")


class TestEntra(unittest.TestCase):
    """Service principal, workload identity and managed identity, as DefaultAzureCredential
    gets them (untested against Azure itself: its token endpoints cannot be reached here)."""

    def setUp(self):
        self.root = oauth_fixture()
        self.a = manifest("v1")[3]
        self.spec = "%s/%s" % (self.a["pathspec"], self.a["name"])
        self.exp_in = self.jwt_exp = 3600
        self.srv = stand_in(self.answer)
        self.host = "http://127.0.0.1:%d" % self.srv.server_address[1]

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()

    def answer(self, method, path, headers, body):
        u = urllib.parse.urlparse(path)
        q = urllib.parse.parse_qs(u.query)
        if method == "POST" and u.path == "/%s/oauth2/v2.0/token" % TENANT:
            f = urllib.parse.parse_qs(body.decode())
            ok = (f.get("grant_type") == ["client_credentials"] and f.get("client_id") == [CLIENT] and
                  f.get("scope") == ["https://storage.azure.com/.default"] and
                  (f.get("client_secret") == [SECRET] or
                   (f.get("client_assertion") == ["federated.jwt.token"] and
                    f.get("client_assertion_type") == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"])))
            if not ok:
                return 401, json.dumps({"error": "invalid_client", "error_description":
                                        "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}).encode()
            return 200, json.dumps({"token_type": "Bearer", "expires_in": self.exp_in, "ext_expires_in": self.exp_in,
                                    "access_token": jwt(self.jwt_exp)}).encode()
        if method == "GET" and u.path == "/metadata/identity/oauth2/token":  # IMDS
            if headers.get("Metadata") != "true" or q.get("resource") != ["https://storage.azure.com/"]:
                return 400, b'{"error": "invalid_request"}'
            return 200, json.dumps({"access_token": jwt(), "expires_on": str(int(time.time()) + 3600),
                                    "expires_in": "3600", "token_type": "Bearer",
                                    "client_id": q.get("client_id", ["system"])[0]}).encode()
        if method == "GET" and u.path == "/msi/token":  # App Service
            if headers.get("X-IDENTITY-HEADER") != "app-service-header" or q.get("api-version") != ["2019-08-01"]:
                return 401, b'{"error": "unauthorized"}'
            return 200, json.dumps({"access_token": jwt(), "expires_on": int(time.time()) + 3600,
                                    "resource": "https://storage.azure.com/", "token_type": "Bearer"}).encode()
        return 404, b"{}"

    def env(self, **extra):
        return base_env(METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=OAUTH, AZURE_STORAGE_KEY=None,
                        REQUESTS_CA_BUNDLE=CA, AZURE_AUTHORITY_HOST=self.host, **extra)

    def read_with(self, env):
        out = cas("artifact", self.spec, "--root", self.root, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sha1(out.stdout), self.a["key"])

    def test_service_principal(self):
        self.read_with(self.env(AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT, AZURE_CLIENT_SECRET=SECRET))
        out = cas("artifact", self.spec, "--root", self.root,
                  env=self.env(AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT, AZURE_CLIENT_SECRET="wrong-secret-1"))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"service principal: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided.",
                      out.stderr)
        self.assertNotIn(b"wrong-secret-1", out.stderr)

    def test_workload_identity(self):
        path = os.path.join(TMP, "federated-token")
        with open(path, "w") as f:
            f.write("federated.jwt.token\n")
        self.read_with(self.env(AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT, AZURE_FEDERATED_TOKEN_FILE=path))

    def test_managed_identity_imds_and_app_service(self):
        self.read_with(self.env(AZURE_POD_IDENTITY_AUTHORITY_HOST=self.host, AZURE_CLIENT_ID="user-assigned-id"))
        imds = [c for c in self.srv.calls if c[1].startswith("/metadata/identity/")]
        self.assertTrue(imds)
        self.assertIn("client_id=user-assigned-id", imds[-1][1])
        self.read_with(self.env(IDENTITY_ENDPOINT=self.host + "/msi/token", IDENTITY_HEADER="app-service-header"))

    def test_expired_and_refreshed_tokens(self):
        # a token azurite finds expired (its endpoint's clock said otherwise): the refusal, as Azure gives it
        self.jwt_exp = -120
        out = cas("artifact", self.spec, "--root", self.root,
                  env=self.env(AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT, AZURE_CLIENT_SECRET=SECRET))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"HTTP 403", out.stderr)
        self.assertNotIn(b"eyJ", out.stderr)  # no token in the message
        # an answer whose token has already expired is refused as it comes
        self.exp_in = -120
        out = cas("artifact", self.spec, "--root", self.root,
                  env=self.env(AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT, AZURE_CLIENT_SECRET=SECRET))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"service principal: the token answer is not the expected JSON", out.stderr)
        # tokens within five minutes of their expiry are replaced before a request uses them
        self.exp_in = self.jwt_exp = 299
        before = len(self.srv.calls)
        out = cas("verify", "--root", self.root,
                  env=self.env(AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT, AZURE_CLIENT_SECRET=SECRET))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertGreater(len(self.srv.calls) - before, 2)

    def test_secrets_stay_off_plain_http(self):
        """A client secret or a federated token is POSTed only to an https authority (or
        one on this machine), a bearer token sent only to an https blob endpoint (or an
        emulator here), as the Azure SDK does (issue 23). A stand-in on this machine's
        network address sees whether anything came."""
        here = cloudtest.machine_address()
        if not here:
            self.skipTest("this machine has no address but loopback")
        far = stand_in(self.answer, host="0.0.0.0")
        far_url = "http://%s:%d" % (here, far.server_address[1])
        path = os.path.join(TMP, "federated-token-2")
        with open(path, "w") as f:
            f.write("federated.jwt.token\n")
        try:
            for creds in (dict(AZURE_CLIENT_SECRET=SECRET), dict(AZURE_FEDERATED_TOKEN_FILE=path)):
                env = self.env(AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT, **creds)
                env["AZURE_AUTHORITY_HOST"] = far_url
                out = cas("ls", "F/1/s/1", "--root", self.root, env=env)
                self.assertEqual(out.returncode, 1)
                self.assertIn(b"AZURE_AUTHORITY_HOST: a secret is not sent over plain HTTP to '%s'" % here.encode(),
                              out.stderr)
            # a token from the (loopback) authority, for a blob endpoint over plain HTTP elsewhere
            env = self.env(AZURE_TENANT_ID=TENANT, AZURE_CLIENT_ID=CLIENT, AZURE_CLIENT_SECRET=SECRET)
            env["METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT"] = far_url + "/" + ACCOUNT
            out = cas("ls", "F/1/s/1", "--root", self.root, env=env)
            self.assertEqual(out.returncode, 1)
            self.assertIn(b"the Azure endpoint, with a Microsoft Entra ID token: a secret is not sent over plain HTTP",
                          out.stderr)
            self.assertEqual(far.calls, [])
        finally:
            far.shutdown()
            far.server_close()

    def test_a_refusing_endpoint_is_named_not_skipped(self):
        """A 404 from the token endpoint (a wrong tenant) is the service principal's
        failure, not "not configured here" passed on to the managed identity (issue 23)."""
        out = cas("ls", "F/1/s/1", "--root", self.root,
                  env=self.env(AZURE_TENANT_ID="no-such-tenant", AZURE_CLIENT_ID=CLIENT, AZURE_CLIENT_SECRET=SECRET))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"service principal: HTTP 404", out.stderr)
        self.assertNotIn(b"managed identity", out.stderr)

    def test_bearer_needs_no_key_and_says_what_it_looked_for(self):
        out = cas("ls", "F/1/s/1", "--root", self.root, env=self.env())
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"no Azure credentials found", out.stderr)
        self.assertIn(b"managed identity", out.stderr)


# ---- errors ------------------------------------------------------------------------------------------------


class TestErrors(unittest.TestCase):
    def setUp(self):
        self.root = fixture_root("v1")
        self.key = manifest("v1")[0]["key"]

    def test_wrong_key(self):
        wrong = KEY[:-12] + "AAAAAAAAAA=="
        out = cas("get", "--flow", "FixtureFlow", self.key, "--root", self.root, env=base_env(AZURE_STORAGE_KEY=wrong))
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, rb"HTTP 403 (AuthenticationFailed|AuthorizationFailure)")  # Azure | azurite
        self.assertIn(b"FixtureFlow/data/", out.stderr)
        no_secret(self, out.stderr)
        self.assertNotIn(wrong[:12].encode(), out.stderr)
        out = cas("ls", "F/1/s/1", "--root", self.root, env=base_env(AZURE_STORAGE_KEY="not base64!"))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"the Azure storage key is not base64", out.stderr)

    def test_unknown_container(self):
        out = cas("get", "--flow", "F", self.key, "--root", "azure://no-such-container/x")
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"ContainerNotFound", out.stderr)
        out = cas("verify", "--root", "azure://no-such-container/x")
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"ContainerNotFound", out.stderr)

    def test_no_server(self):
        env = base_env(METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT="http://127.0.0.1:9/devstoreaccount1",
                       AWS_MAX_ATTEMPTS="3")
        t = time.time()
        out = cas("get", "--flow", "F", self.key, "--root", self.root, env=env)
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"after 3 tries", out.stderr)
        self.assertLess(time.time() - t, 30)

    def test_no_credentials_no_endpoint(self):
        out = cas("ls", "F/1/s/1", "--root", self.root, env=base_env(AZURE_STORAGE_KEY=None))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"no Azure credentials found", out.stderr)
        out = cas("ls", "F/1/s/1", "--root", self.root,
                  env=base_env(METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=None, AZURE_STORAGE_ACCOUNT=None))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"no Azure endpoint", out.stderr)

    def test_settings_by_azure_names(self):
        """CAS_AZURE_X sets what CAS_S3_X set, which is still taken when the Azure name is
        unset; a bad value is named by the variable it came from."""
        for extra, why in (({"CAS_AZURE_CONNECTIONS": "0", "CAS_S3_CONNECTIONS": "4"}, b"CAS_AZURE_CONNECTIONS=0 "),
                           ({"CAS_S3_CONNECTIONS": "0"}, b"CAS_S3_CONNECTIONS=0 "),
                           ({"CAS_AZURE_RETRY_BASE": "x"}, b"CAS_AZURE_RETRY_BASE=x ")):
            out = cas("ls", "F/1/s/1", "--root", self.root, env=base_env(**extra))
            self.assertEqual(out.returncode, 1, extra)
            self.assertIn(why + b"is out of range", out.stderr)
        out = cas("ls", "--root", self.root, env=base_env(CAS_AZURE_CONNECTIONS="4", CAS_S3_CONNECTIONS="0"))
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_bad_roots(self):
        for root in ("azure://", "azure://ab", "azure://Upper/x", "azure://bad_name/x"):
            out = cas("ls", "F/1/s/1", "--root", root)
            self.assertEqual(out.returncode, 1, root)
            self.assertIn(b"azure://CONTAINER[/PREFIX]", out.stderr)


# ---- faults between client and server --------------------------------------------------------------------


class TestFaults(unittest.TestCase):
    def test_requests_through_faults(self):
        """Resets, stalls, cut bodies, 500s and 503s on a seeded share of the requests:
        every read is the right bytes or fails with a clear message; never a hang."""
        root = fixture_root("mixed")
        arts = manifest("mixed")
        ok = failed = 0
        with faultproxy.FaultProxy((HOST, PORT), rate=0.25, kinds=("reset", "stall", "cut", "slowdown", "error500"),
                                   seed=3, stall=2) as p:
            env = base_env(METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=p.endpoint + "/" + ACCOUNT,
                           CAS_S3_STALL_TIMEOUT="1", AWS_MAX_ATTEMPTS="8")
            for a in arts:
                out = cas("artifact", "%s/%s" % (a["pathspec"], a["name"]), "--root", root, "--verify", env=env,
                          timeout=120)
                if out.returncode == 0:
                    self.assertEqual(sha1(out.stdout), a["key"])
                    ok += 1
                else:
                    self.assertRegex(out.stderr, rb"(HTTP \d{3}|tries|Timeout|timed out|reset|closed|nothing)")
                    no_secret(self, out.stderr)
                    failed += 1
            stats = p.stats
        self.assertGreater(sum(stats["faults"].values()), 20, stats)
        self.assertGreater(ok, len(arts) * 0.9)


if __name__ == "__main__":
    unittest.main(verbosity=2)
