"""Deterministic benchmark payloads (fixed seeds), cached under build/bench/payloads.

The set from Metaflow PR #3090's measurements, as the pickled bytes Metaflow
would store, plus a 64 MiB compressible text/JSON payload. The 1 GiB float32
stream is never materialised: bench_c gen-f32 writes it into a pipe.
"""
import hashlib
import json
import os
import pickle
import random

import numpy as np

GEN_VERSION = 1  # bump when a generator changes: cached files are rebuilt

# name -> (description, generator)
ORDER = ["config_233", "metrics_52k", "emb_800k", "weights_8m", "random_5m", "text_64m"]
LABELS = {
    "config_233": "233 B config dict (pickle)",
    "metrics_52k": "52 KB metrics dict (pickle)",
    "emb_800k": "800 KB float64 embeddings (numpy pickle)",
    "weights_8m": "8 MB float64 weights (numpy pickle)",
    "random_5m": "5 MB random bytes (pickle)",
    "text_64m": "64 MiB JSON-lines text",
}


def _config_233():
    cfg = {
        "learning_rate": 0.001,
        "batch_size": 64,
        "epochs": 20,
        "optimizer": "adam",
        "model": "resnet50",
        "seed": 42,
        "dropout": 0.25,
        "layers": [256, 128, 64],
        "pad": "",
    }
    base = len(pickle.dumps(cfg, protocol=4))
    # pad a string field so the pickle is exactly 233 bytes (short strings: 1 length byte)
    cfg["pad"] = "x" * (233 - base)
    out = pickle.dumps(cfg, protocol=4)
    assert len(out) == 233, len(out)
    return out


def _metrics_52k():
    rng = random.Random(52)
    metrics = {}
    i = 0
    while True:
        name = "val/%s_%d" % (rng.choice(["loss", "acc", "auc", "f1", "precision", "recall"]), i)
        metrics[name] = [round(rng.random(), 6) for _ in range(200)]
        i += 1
        if len(pickle.dumps(metrics, protocol=4)) > 52000 - 2200:
            break
    metrics["notes"] = ""
    base = len(pickle.dumps(metrics, protocol=4))
    metrics["notes"] = "n" * (52000 - base - 3)  # longer strings carry a 4-byte length
    out = pickle.dumps(metrics, protocol=4)
    while len(out) != 52000:  # settle the opcode-size change, if any
        metrics["notes"] = "n" * (len(metrics["notes"]) + 52000 - len(out))
        out = pickle.dumps(metrics, protocol=4)
    return out


def _emb_800k():
    rng = np.random.default_rng(800)
    return pickle.dumps(rng.standard_normal((1000, 100)), protocol=4)  # 800,000 bytes of float64


def _weights_8m():
    rng = np.random.default_rng(8)
    return pickle.dumps(rng.standard_normal(1 << 20) * 0.02, protocol=4)  # 8 MiB of float64


def _random_5m():
    rng = np.random.default_rng(5)
    return pickle.dumps(rng.bytes(5 << 20), protocol=4)


def _text_64m():
    rng = random.Random(64)
    size = 64 << 20
    steps = ["start", "load", "featurize", "train", "evaluate", "end"]
    words = ("epoch batch loss accuracy gradient checkpoint saved loaded shard worker retry "
             "cache miss hit latency throughput queue flush commit artifact dataset").split()
    hosts = ["ip-10-0-%d-%d" % (a, b) for a in range(4) for b in range(1, 40)]
    parts, total, i = [], 0, 0
    while total < size:
        rec = {
            "ts": "2024-05-%02dT%02d:%02d:%02d.%03dZ" % (1 + i // 2000000, (i // 3600) % 24, (i // 60) % 60, i % 60,
                                                         rng.randrange(1000)),
            "run_id": 1000 + i // 50000,
            "step": steps[(i // 7000) % len(steps)],
            "task_id": rng.randrange(1, 400),
            "host": rng.choice(hosts),
            "level": rng.choice(["INFO", "INFO", "INFO", "DEBUG", "WARNING"]),
            "metric": rng.choice(["loss", "acc", "lr", "grad_norm"]),
            "value": round(rng.gauss(0.5, 0.2), 5),
            "msg": " ".join(rng.choice(words) for _ in range(rng.randrange(3, 12))),
        }
        line = json.dumps(rec, separators=(", ", ": ")) + "\n"
        parts.append(line)
        total += len(line)
        i += 1
    return "".join(parts).encode()[:size]


GENERATORS = {
    "config_233": _config_233,
    "metrics_52k": _metrics_52k,
    "emb_800k": _emb_800k,
    "weights_8m": _weights_8m,
    "random_5m": _random_5m,
    "text_64m": _text_64m,
}


def system_artifacts(cas_h, n=30, keep=None):
    """Small artifacts as Metaflow writes them for every task (under 16 KiB), decoded
    from the bundled fixture stores; the first n by key (of those keep(data) takes)."""
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.environ.get("CAS_FIXTURES") or os.path.join(os.path.dirname(here), "tests", "fixtures", "metaflow")
    found = {}
    for dp, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            p = os.path.join(dp, f)
            if len(f) != 40 or os.sep + "data" + os.sep not in p:
                continue
            meta = None
            if os.path.exists(p + "_meta"):
                with open(p + "_meta") as m:
                    meta = json.load(m)
            with open(p, "rb") as b:
                try:
                    data = cas_h.unpack(b.read(), meta)
                except cas_h.CasError:
                    continue
            if len(data) < 16384 and (keep is None or keep(data)):
                found[f] = data
    if len(found) < n:
        sys.exit("bench: %d small artifacts in %s, need %d" % (len(found), root, n))
    return [found[k] for k in sorted(found)[:n]]


def ensure(directory, log=print):
    """Writes every payload file that is missing or stale; returns {name: path}."""
    os.makedirs(directory, exist_ok=True)
    stamp = os.path.join(directory, "VERSION")
    fresh = os.path.exists(stamp) and open(stamp).read().strip() == str(GEN_VERSION)
    paths = {}
    for name in ORDER:
        path = os.path.join(directory, name + ".bin")
        if not (fresh and os.path.exists(path)):
            data = GENERATORS[name]()
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
            log("  generated %-12s %10d bytes  sha1 %s" % (name, len(data), hashlib.sha1(data).hexdigest()[:12]))
        paths[name] = path
    with open(stamp, "w") as f:
        f.write(str(GEN_VERSION))
    return paths


if __name__ == "__main__":
    import sys

    d = sys.argv[1] if len(sys.argv) > 1 else "build/bench/payloads"
    for n, p in ensure(d).items():
        print(n, os.path.getsize(p))
