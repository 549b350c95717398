"""A Metaflow UI backend's artifact endpoint that never unpickles.

Metaflow's UI service unpickles an artifact to show it, and refuses those over
4 KB. Here each artifact of a task is previewed from its pickle opcodes by
cas_h (cas_pickle.h): a 1 GiB array shows its dtype, shape and first values
after reading its first bytes, a DataFrame its columns and first rows, and no
code of the pickle runs, whoever wrote it. The task's artifacts are read side by
side (each C call releases the GIL), from a local datastore, S3 or Azure alike.

    python3 examples/ui_preview.py --root .metaflow --port 8083
    curl localhost:8083/api/flows/MyFlow/runs/latest/steps/train/tasks/3/artifacts
"""
import argparse
import http.server
import json

import cas_h

ROUTE = ("api", "flows", None, "runs", None, "steps", None, "tasks", None, "artifacts")


def task_artifacts(store, flow, run, step, task):
    """[{"name", "size", "encoding", "preview", "error"?}] for one task."""
    out = []
    for name, row in store.preview_task("%s/%s/%s/%s" % (flow, run, step, task), items=5, max_bytes=2048).items():
        out.append(dict(row, name=name))
    return out


def handler_for(store):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            parts = self.path.strip("/").split("/")
            if len(parts) != len(ROUTE) or any(r and r != p for r, p in zip(ROUTE, parts)):
                return self.answer(404, {"error": "expected /" + "/".join(r or "{}" for r in ROUTE)})
            try:
                self.answer(200, task_artifacts(store, *parts[2:9:2]))
            except cas_h.NotFound as e:
                self.answer(404, {"error": str(e)})
            except cas_h.CasError as e:
                self.answer(400 if isinstance(e, cas_h.InvalidName) else 500, {"error": str(e)})

        def answer(self, status, doc):
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="the datastore (default: the one Metaflow would use)")
    ap.add_argument("--port", type=int, default=8083)
    args = ap.parse_args()
    with cas_h.Store(args.root) as store:
        http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(store)).serve_forever()


if __name__ == "__main__":
    main()
