# Metaflow loads toplevel/<toplevel>.py at the end of `import metaflow`, once
# the datastore classes exist; that module switches cas.h on when configured.
toplevel = "cas_h_toplevel"
