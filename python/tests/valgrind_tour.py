"""Run under valgrind by test_valgrind.py: a tour of the binding, errors included."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cas_h  # noqa: E402

root = tempfile.mkdtemp()
d = os.urandom(300000) + b"a" * 300000
for i in range(3):
    with cas_h.Store(root, verify=True) as st:
        keys = [st.put("F", d + bytes([v]), version=v) for v in (1, 2)]
        for k in keys:
            st.get("F", k)
            st.verify("F", k)
            st.stat("F", k)
            with st.open("F", k) as f:
                f.read(10)
        st.keys("F")
        st.flows()
        st.put_many("G", [d, b"x", b""])
        st.get_many("G", keys[:0] + [cas_h.hash_key(b"x")])
        for bad in ("0" * 40,):
            for call in (lambda: st.get("F", bad), lambda: st.get_many("F", [keys[0], bad]),
                         lambda: st.open("F", bad)):
                try:
                    call()
                except cas_h.NotFound:
                    pass
    for v in (1, 2):
        k, blob = cas_h.pack(d, version=v)
        cas_h.unpack(blob, cas_h.sidecar(v))
        try:
            cas_h.unpack(blob[:-5], cas_h.sidecar(v))
        except cas_h.TruncatedBlob:
            pass
        with cas_h.Packer(version=v) as pk, cas_h.Unpacker() as up:
            up.unpack(pk.pack(d)[1], pk.meta)
cas_h._tls.__dict__.clear()
shutil.rmtree(root)
print("tour done")
