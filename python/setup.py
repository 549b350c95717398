"""Builds the cas-h Python package: cas_h (the ctypes binding), the Metaflow
extension (metaflow_extensions.cas_h), and libcas.so inside cas_h/, built by
the checkout's own Makefile from its sources (cas.h, cas_cloud.h,
cas_pickle.h, lib/libcas.c), so that `import cas_h` finds it next to the
package from any directory, without PYTHONPATH or LD_LIBRARY_PATH.

With Python.h (Debian: python3-dev) it also builds cas_h's speedups,
python/cas_h/_speedups.c, a CPython extension module for the one-blob calls.

The version is the library's (CAS_VERSION_STRING in cas_codecs.h): one place.
Needs what `make` needs (Debian packages: infra/debian-deps.sh).
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def version():
    with open(os.path.join(REPO, "cas_codecs.h")) as f:
        return re.search(r'#define CAS_VERSION_STRING "([^"]+)"', f.read()).group(1)


class BuildWithLibrary(build_py):
    """build_py, then libcas.so and, for this Python when it has Python.h, cas_h's
    speedups (the CPython extension for one-blob calls, _speedups.c) into the built
    cas_h/ (make B=<a temp build folder> PYTHON=<this Python>)."""

    def run(self):
        build_py.run(self)
        out = os.path.join(os.path.abspath(self.build_lib), "cas_h")
        tmp = os.path.abspath(os.path.join(self.build_lib, "..", "casbuild"))
        os.makedirs(tmp, exist_ok=True)
        subprocess.check_call(["make", "-C", REPO, "--no-print-directory", "B=" + tmp, "PYTHON=" + sys.executable,
                               os.path.join(tmp, "libcas.so"), os.path.join(tmp, "cas"), "speedups"])
        shutil.copy(os.path.join(tmp, "libcas.so"), os.path.join(out, "libcas.so"))
        shutil.copy(os.path.join(tmp, "cas"), os.path.join(out, "cas"))  # the command, run by cas_h._cli
        speedups = os.path.join(tmp, "_speedups" + sysconfig.get_config_var("EXT_SUFFIX"))
        if os.path.exists(speedups):  # else cas_h makes those calls through ctypes (make said why)
            shutil.copy(speedups, os.path.join(out, os.path.basename(speedups)))


class BinaryDistribution(Distribution):
    """A platform wheel: the package carries a shared library."""

    def has_ext_modules(self):
        return True


setup(  # the metadata is pyproject.toml's; here what a build computes
    version=version(),
    cmdclass={"build_py": BuildWithLibrary},
    distclass=BinaryDistribution,
)
