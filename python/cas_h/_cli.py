"""`cas` on a venv's PATH: pip installs this entry point, which becomes the `cas`
command built with the package (cas_h/cas, the C program, statically linked), so
that exit status, signals and streams are the command's own."""
import os
import sys


def main() -> None:
    exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cas")
    if not os.access(exe, os.X_OK):
        sys.stderr.write("cas: the command was not built into this package (%s); build it with make\n" % exe)
        sys.exit(2)
    os.execv(exe, ["cas"] + sys.argv[1:])


if __name__ == "__main__":
    main()
