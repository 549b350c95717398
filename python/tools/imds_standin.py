"""A stand-in for Azure's instance metadata service (managed identity), for
python/tools/check_real_metaflow_cloud.sh: answers the token request as IMDS does,
with a JWT whose issuer, audience and lifetime azurite --oauth basic accepts (its
signature is not checked there). Prints its port, then serves until killed."""
import base64
import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def jwt():
    def part(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return "%s.%s.c2ln" % (part({"alg": "RS256", "typ": "JWT"}),
                           part({"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/cas-check/",
                                 "nbf": now - 60, "iat": now - 60, "exp": now + 3600}))


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path != "/metadata/identity/oauth2/token" or self.headers.get("Metadata") != "true":
            body, status = (b'{"error": "invalid_request", '
                            b'"error_description": "Required metadata header not specified"}'), 400
        else:
            body, status = json.dumps({"access_token": jwt(), "expires_in": "3599",
                                       "expires_on": str(int(time.time()) + 3599), "token_type": "Bearer",
                                       "resource": "https://storage.azure.com/"}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
sys.stdout.close()
srv.serve_forever()
