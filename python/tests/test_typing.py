"""The public API is typed (PEP 484) and says so (PEP 561's py.typed): every
function cas_h.__all__ exports, and the constructor and every public method and
property of each class it exports (and of the stream classes Store.open and
open_blob return) carries its parameters' and its return's annotations, and
typing.get_type_hints resolves them."""

import inspect
import os
import typing
import unittest

import cas_h


def _ours(obj):
    """Defined in the cas_h package (not inherited from tuple, io, Exception...)."""
    module = getattr(obj, "__module__", None) or ""
    return module == "cas_h" or module.startswith("cas_h.")


def _public_classes():
    """The classes cas_h.__all__ exports, then their subclasses defined in cas_h
    (Reader's: what Store.open and open_blob return)."""
    classes = [getattr(cas_h, n) for n in cas_h.__all__ if inspect.isclass(getattr(cas_h, n))]
    for cls in classes:  # grows as it goes
        for sub in cls.__subclasses__():
            if _ours(sub) and sub not in classes:
                classes.append(sub)
    return classes


def _api():
    """[(name, function)]: each function of cas_h.__all__; each class's __init__
    (when it is public) and public methods and properties (their getters and
    setters) defined in cas_h, each function once."""
    out, seen = [], set()

    def add(name, fn):
        if inspect.isfunction(fn) and _ours(fn) and fn not in seen:
            seen.add(fn)
            out.append((name, fn))

    for n in cas_h.__all__:
        obj = getattr(cas_h, n)
        if inspect.isfunction(obj):
            add(n, obj)
    exported = {getattr(cas_h, n) for n in cas_h.__all__}
    for cls in _public_classes():
        for klass in cls.__mro__:
            if not _ours(klass):
                continue
            for attr, value in vars(klass).items():
                if attr.startswith("_") and not (attr == "__init__" and cls in exported):
                    continue
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if isinstance(value, property):
                    add("%s.%s (getter)" % (cls.__name__, attr), value.fget)
                    add("%s.%s (setter)" % (cls.__name__, attr), value.fset)
                else:
                    add("%s.%s" % (cls.__name__, attr), value)
    return out


class TestTyping(unittest.TestCase):
    def test_py_typed_shipped(self):
        marker = os.path.join(os.path.dirname(os.path.abspath(cas_h.__file__)), "py.typed")
        self.assertTrue(os.path.isfile(marker), "no py.typed beside %s" % cas_h.__file__)
        with open(marker, encoding="utf-8") as f:  # annotations inline, all of them: not a partial stub package
            self.assertNotIn("partial", f.read())

    def test_walk_finds_the_api(self):
        names = {name for name, _ in _api()}
        for expected in ("pack", "unpack_many", "open_blob", "preview", "error_class", "Packer.__init__",
                         "Packer.pack", "Packer.format (getter)", "Unpacker.unpack", "Store.__init__", "Store.put",
                         "Store.closed (getter)", "Reader.read", "Reader.preview", "_StreamReader.format (getter)",
                         "CasError.__init__", "CasError.reason (getter)", "Task.__init__"):
            self.assertIn(expected, names)

    def test_public_api_annotated(self):
        problems = []
        for name, fn in _api():
            sig = inspect.signature(fn)
            for p in sig.parameters.values():
                if p.name in ("self", "cls"):
                    continue
                if p.annotation is inspect.Parameter.empty:
                    problems.append("%s: parameter %r has no annotation" % (name, p.name))
            if sig.return_annotation is inspect.Signature.empty:
                problems.append("%s: no return annotation" % name)
            try:
                typing.get_type_hints(fn)
            except Exception as e:  # a name the annotation uses does not resolve
                problems.append("%s: get_type_hints fails: %s: %s" % (name, type(e).__name__, e))
        self.assertEqual(problems, [], "\n" + "\n".join(problems))


if __name__ == "__main__":
    unittest.main()
