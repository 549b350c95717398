#!/usr/bin/env python3
"""Builds bench/probes.c and runs its probes on the benchmark payloads: the
evidence behind the tuning notes (not part of `make bench`).

  /usr/bin/python3 bench/probes.py [tiny|levels|xxh|upper ...]
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BDIR = os.path.join(ROOT, "build", "bench")
sys.path.insert(0, HERE)
import payloads  # noqa: E402


def build():
    os.makedirs(BDIR, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    objs = []
    for flav, extra in (("sse2", []), ("avx2", ["-mavx2"]), ("lib", ["-DXXH_FROM_LIB"])):
        o = os.path.join(BDIR, "probe_xxh_%s.o" % flav)
        subprocess.check_call([cc, "-O2", "-c", "-DFLAVOUR=" + flav] + extra
                              + [os.path.join(HERE, "probe_xxh.c"), "-o", o])
        objs.append(o)
    exe = os.path.join(BDIR, "probes")
    subprocess.check_call([cc, "-O2", "-Wall", "-o", exe, os.path.join(HERE, "probes.c")] + objs +
                          ["-lisal", "-ldeflate", "-llz4", "-lz", "-lcrypto", "-lxxhash"])
    return exe


def main():
    exe = build()
    paths = payloads.ensure(os.path.join(BDIR, "payloads"), log=lambda *a: None)
    which = sys.argv[1:] or ["tiny", "levels", "xxh", "upper"]
    plan = {"tiny": ["config_233", "metrics_52k"], "levels": ["text_64m", "weights_8m", "random_5m"],
            "xxh": ["weights_8m"], "upper": ["weights_8m"]}
    for w in which:
        for p in plan[w]:
            print("== %s %s" % (w, p), flush=True)
            subprocess.check_call([exe, w, paths[p]])


if __name__ == "__main__":
    main()
