# cas.h: build the library, the `cas` command, the single header; test; bench.
#
#   make              libcas.so, libcas.a, cas, dist/cas.h, with each optional backend
#                     lib/configure.sh finds (ISA-L, libdeflate, OpenSSL SHA-1, xxhash.h,
#                     libcurl + expat for S3); zlib and liblz4 are all it needs.
#                     WITHOUT="isal libdeflate openssl xxhash cloud" leaves some out.
#   make demo         the newcomer's tour on the bundled fixtures
#   make test         everything CI runs (see the test-* targets)
#   make bench        the benchmark tables (bench/results/): codecs, a task through the
#                     Metaflow extension, S3, Azure, previews
#   make install      PREFIX=/usr/local: cas (and its man page), headers, libcas, cas.pc, casConfig.cmake
#   make uninstall    removes exactly what install put

.DEFAULT_GOAL := all
PREFIX   ?= /usr/local
CC       ?= cc
CXX      ?= c++
PYTHON   ?= /usr/bin/python3
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Wpedantic -Werror
STD      := -std=c99
B        := build
FIXTURES ?= tests/fixtures/metaflow

BASE_LIBS := -lz -llz4 -lpthread -lm
HEADERS   := cas.h cas_codecs.h cas_cloud.h cas_pickle.h
VERSION   := $(shell sed -n 's/^\#define CAS_VERSION_STRING "\(.*\)"/\1/p' cas_codecs.h)

export CAS_FIXTURES := $(abspath $(FIXTURES))
# the tests, the demo and the binding use this build's cas and libcas.so
export CAS           := $(abspath $(B))/cas
export CAS_H_LIBRARY := $(abspath $(B))/libcas.so

# What lib/configure.sh finds, as FAST_DEFS/FAST_CFLAGS/FAST_LIBS (ISA-L, libdeflate,
# OpenSSL SHA-1), XXH_DEFS (-DCAS_NO_XXH3 without xxhash.h), CLOUD (1 with S3),
# CLOUD_DEFS/CLOUD_LIBS, PC_REQUIRES/PC_LIBS (cas.pc's Requires.private and Libs.private)
# and CAS_FOUND/CAS_MISSING.
# It looks again on every run (half a second), so a library installed or removed
# since is seen; $(B)/config.mk only changes, and rebuilds, when the answer does.
PKG_CONFIG ?= pkg-config
WITHOUT    ?=
CONFIGURE  := CC='$(CC)' PKG_CONFIG='$(PKG_CONFIG)' WITHOUT='$(WITHOUT)' sh lib/configure.sh
ifneq ($(if $(MAKECMDGOALS),$(filter-out clean uninstall,$(MAKECMDGOALS)),all),)
CFG_RUN := $(shell mkdir -p $(B) && $(CONFIGURE) > $(B)/config.new 2> $(B)/config.err && \
             { cmp -s $(B)/config.new $(B)/config.mk || mv $(B)/config.new $(B)/config.mk; } && echo ok)
ifneq ($(CFG_RUN),ok)
$(error $(shell cat $(B)/config.err))
endif
include $(B)/config.mk
endif
# after `make clean` in the same run (make clean all), the answer is written again
$(B)/config.mk:
	@mkdir -p $(B) && $(CONFIGURE) > $@
# Every compile of the headers: the build's own view of xxhash.h and libcurl.
CFG_DEFS := $(XXH_DEFS) $(FAST_CFLAGS)

# cas_h's speedups (python/cas_h/_speedups.c), beside libcas.so, for $(PYTHON), when
# it has Python.h; cas_h finds it next to the library it loads.
PY_CONF  := $(shell $(PYTHON) -c "import sysconfig as s; print(s.get_paths()['include'], s.get_config_var('EXT_SUFFIX'))" \
              2>/dev/null)
SPEEDUPS := $(if $(wildcard $(firstword $(PY_CONF))/Python.h),$(B)/_speedups$(word 2,$(PY_CONF)))

.PHONY: all demo test test-build test-c test-configs test-single test-cli test-interop test-python test-s3 test-azure test-cross test-lint \
        test-asan test-valgrind test-fuzz-replay test-infra test-cmake test-layers test-format format install uninstall clean bench fuzz examples speedups

all: $(B)/libcas.so $(B)/libcas.a $(B)/cas $(B)/flat_backend.so dist/cas.h $(SPEEDUPS)
	@echo "cas.h $(VERSION) built in $(B)/ with: $(CAS_FOUND); without: $(CAS_MISSING)"
	@echo "cas_h's speedups (a CPython extension for one-blob calls): $(if $(SPEEDUPS),$(SPEEDUPS),not built: \
	  $(PYTHON) has no Python.h (Debian: python3-dev); cas_h makes those calls through ctypes)"

$(B):
	@mkdir -p $@

$(B)/libcas.o: lib/libcas.c $(HEADERS) $(B)/config.mk | $(B)
	$(CC) $(STD) $(OPT) $(WARN) -fPIC $(CFG_DEFS) $(FAST_DEFS) $(CLOUD_DEFS) -c $< -o $@

$(B)/libcas.so: $(B)/libcas.o
	$(CC) -shared -Wl,-soname,libcas.so.0 -o $@ $< $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS)

# C99 and -Wpedantic as the library: Python.h is written to compile under them.
$(SPEEDUPS): python/cas_h/_speedups.c $(HEADERS) | $(B)
	$(CC) $(STD) $(OPT) $(WARN) -fPIC -shared -I. -I$(firstword $(PY_CONF)) -o $@ python/cas_h/_speedups.c

# the speedups alone, or a line saying why not (python/setup.py builds this)
speedups: $(SPEEDUPS)
	@[ -n "$(SPEEDUPS)" ] || echo "speedups: not built, $(PYTHON) has no Python.h (Debian: python3-dev)"

$(B)/libcas.a: $(B)/libcas.o
	ar rcs $@ $<

# -ldl: cas loads the backends CAS_BACKENDS names (libc itself has dlopen since glibc 2.34)
$(B)/cas: cli/cas.c $(B)/libcas.a
	$(CC) $(STD) $(OPT) $(WARN) $(CFG_DEFS) -o $@ cli/cas.c $(B)/libcas.a $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS) -ldl

# A backend of a user's own, as a plugin cas loads (CAS_BACKENDS); it needs cas.h's
# declarations only, so it is built from the headers, not against a configuration.
$(B)/flat_backend.so: examples/flat_backend.c $(HEADERS) | $(B)
	$(CC) $(STD) $(OPT) $(WARN) -fPIC -shared -I. -o $@ examples/flat_backend.c

# The shipped headers are generated from the modules in src/ (amalgamate.py; the
# README's "Development"): edit src/. Unchanged output is only touched (so that make
# does not ask again). The grouped target (&:) needs GNU make 4.3 (Debian 12's). A copy
# without src/ (the headers and this Makefile, as python/setup.py may see) builds
# from the headers as they are.
ifneq ($(wildcard src/cas.h.in),)
SRC := $(wildcard src/*.h.in src/*/*.h src/*/*.c)
$(HEADERS) dist/cas.h &: $(SRC) amalgamate.py
	$(PYTHON) amalgamate.py
endif

examples: $(B)/quickstart $(if $(CLOUD),$(B)/s3_read)

$(B)/s3_read: examples/s3_read.c $(HEADERS) $(B)/config.mk | $(B)
	$(CC) $(STD) $(OPT) $(WARN) $(CFG_DEFS) -o $@ examples/s3_read.c $(BASE_LIBS) $(CLOUD_LIBS)

$(B)/quickstart: examples/quickstart.c $(B)/libcas.a
	$(CC) $(STD) $(OPT) $(WARN) $(CFG_DEFS) -o $@ examples/quickstart.c $(B)/libcas.a $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS)

demo: all
	@sh examples/demo.sh

# ---- tests -----------------------------------------------------------------

TEST_SRC := tests/run_tests.c tests/test.h tests/test_core.c tests/test_store.c tests/test_faults.c tests/test_backend.c \
            tests/test_pickle.c

# run_tests: the portable code (zlib, liblz4, SHA-1 by hand); run_tests_fast: with the
# optional backends this build found (the same program when it found none).
$(B)/run_tests: $(TEST_SRC) $(HEADERS) $(B)/config.mk | $(B)
	$(CC) $(STD) -O1 -g $(WARN) $(CFG_DEFS) -o $@ tests/run_tests.c $(BASE_LIBS)

$(B)/run_tests_fast: $(TEST_SRC) $(HEADERS) $(B)/config.mk | $(B)
	$(CC) $(STD) -O1 -g $(WARN) $(CFG_DEFS) $(FAST_DEFS) -o $@ tests/run_tests.c $(BASE_LIBS) $(FAST_LIBS)

$(B)/run_tests_asan: $(TEST_SRC) $(HEADERS) $(B)/config.mk | $(B)
	clang $(STD) -O1 -g $(WARN) $(CFG_DEFS) $(FAST_DEFS) -fsanitize=address,undefined -fno-sanitize-recover=all \
	  -fno-omit-frame-pointer -o $@ tests/run_tests.c $(BASE_LIBS) $(FAST_LIBS)

# A codec and a format added by one table row each (a test-only build), and a
# program written against 0.1.0's API (tests/compat: examples/quickstart.c of feb9904, byte
# for byte), compiled unchanged against today's headers with -Werror and run.
$(B)/test_toy_codec: tests/test_toy_codec.c $(HEADERS) $(B)/config.mk | $(B)
	$(CC) $(STD) -O1 -g $(WARN) $(CFG_DEFS) -o $@ tests/test_toy_codec.c $(BASE_LIBS)
	$(CXX) -x c++ -std=c++11 -O0 $(WARN) $(CFG_DEFS) -c tests/test_toy_codec.c -o $(B)/test_toy_codec_cxx.o

$(B)/compat_0_1_0: tests/compat/quickstart-0.1.0.c $(B)/libcas.a
	$(CC) $(STD) $(OPT) $(WARN) $(CFG_DEFS) -Itests -o $@ tests/compat/quickstart-0.1.0.c $(B)/libcas.a $(BASE_LIBS) \
	  $(FAST_LIBS) $(CLOUD_LIBS)

test-c: $(B)/run_tests $(if $(FAST_DEFS),$(B)/run_tests_fast) $(B)/test_toy_codec $(B)/compat_0_1_0
	$(B)/run_tests
	$(if $(FAST_DEFS),$(B)/run_tests_fast)
	$(B)/test_toy_codec
	cd $(B) && ./compat_0_1_0 > compat_0_1_0.out

# Every configuration the header promises, warning-free, as C99 and as C++; those
# that need a library this build did not find say so and are left out.
NOT_BUILT := $(filter-out $(patsubst -D%,%,$(FAST_DEFS)) $(if $(XXH_DEFS),,CAS_USE_XXH3_KEYS),\
               CAS_USE_ISAL CAS_USE_LIBDEFLATE CAS_USE_OPENSSL CAS_USE_XXH3_KEYS)
# 0.1.0's names for two of them, aliases since
NOT_BUILT += $(if $(filter CAS_USE_OPENSSL,$(NOT_BUILT)),CAS_SHA1_OPENSSL) $(if $(filter CAS_USE_XXH3_KEYS,$(NOT_BUILT)),CAS_KEY_XXH3)
CONFIG_SKIP = skip=; for m in $(NOT_BUILT); do case "$$cfg" in *$$m*) skip=$$m ;; esac; done; \
  if [ -n "$$skip" ]; then printf '%-60s skipped: not built with %s\n' "[$$what$$cfg]" $$skip; continue; fi; \
  d="$${cfg:+-D$$cfg} $(CFG_DEFS)"
CONFIGS := "" CAS_NO_GZIP CAS_NO_LZ4 CAS_NO_RAW CAS_NO_XXH3 CAS_NO_STORE CAS_NO_THREADS \
           CAS_USE_OPENSSL CAS_USE_XXH3_KEYS CAS_USE_ISAL CAS_USE_LIBDEFLATE CAS_STATIC \
           "CAS_NO_GZIP -DCAS_NO_LZ4" "CAS_USE_XXH3_KEYS -DCAS_USE_OPENSSL -DCAS_USE_ISAL -DCAS_USE_LIBDEFLATE" \
           "CAS_SHA1_OPENSSL -DCAS_KEY_XXH3"
# CHECK_ALL: $$src compiled as C99 by gcc and clang at each of $$opts, and as C++11 by
# g++ and clang++ at $$xopt, side by side (two cores); then linked by gcc and run.
CHECK_ALL = pids=; \
  for o in $$opts; do for c in gcc clang; do \
    $$c $(STD) $$o $(WARN) $$d -c $$src -o $(B)/chk-$$c$$o.o & pids="$$pids $$!"; done; done; \
  for c in g++ clang++; do $$c -x c++ -std=c++11 $$xopt $(WARN) $$d -c $$src -o $(B)/chk-$$c.o & pids="$$pids $$!"; done; \
  gcc $(STD) $(WARN) $$d $$src -o $(B)/chk $(BASE_LIBS) $$libs; \
  for p in $$pids; do wait $$p; done; \
  printf '%-60s ' "[$$what$${cfg:-default}]"; $(B)/chk

test-configs: $(B)/config.mk | $(B)
	@set -e; src=tests/config_check.c opts=-O0 xopt=-O0 libs="$(FAST_LIBS)" what=; \
	for cfg in $(CONFIGS); do $(CONFIG_SKIP); $(CHECK_ALL); done
	@set -e; [ -n "$(CLOUD)" ] || { echo "[cas_cloud.h] skipped: not built with libcurl, expat, OpenSSL"; exit 0; }; \
	src=tests/cloud_check.c opts=-O0 xopt=-O0 libs="$(FAST_LIBS) $(CLOUD_LIBS)" what="cas_cloud.h "; \
	for cfg in "" CAS_NO_THREADS CAS_STATIC "CAS_USE_ISAL -DCAS_USE_LIBDEFLATE -DCAS_USE_OPENSSL"; do \
	  $(CONFIG_SKIP); $(CHECK_ALL); done
	@set -e; src=tests/pickle_check.c opts="-O0 -O2" xopt=-O2 libs= what="cas_pickle.h "; \
	for cfg in "" CAS_NO_THREADS CAS_NO_STORE CAS_STATIC CAS_NO_GZIP CAS_NO_LZ4; do $(CONFIG_SKIP); $(CHECK_ALL); done
	@set -e; what="layers "; for cfg in $(CONFIGS); do $(CONFIG_SKIP); \
	  case "$$cfg" in *CAS_NO_STORE*) w=--without\ cas_cloud.h ;; *) w="$(if $(CLOUD),,--without cas_cloud.h)" ;; esac; \
	  printf '%-60s ' "[$$what$${cfg:-default}]"; $(PYTHON) amalgamate.py --layers --quiet $$w $$d $(CLOUD_DEFS); done

# The generated headers are what src/ gives, each module compiles with only the
# modules below it, and a .c file holding only the implementation switch and the
# amalgamated header's include links against system libraries alone.
test-single: dist/cas.h | $(B)
	$(PYTHON) amalgamate.py --check
	$(PYTHON) amalgamate.py --layers $(if $(CLOUD),,--without cas_cloud.h) $(CFG_DEFS) $(FAST_DEFS) $(CLOUD_DEFS)
	printf '#define CAS_IMPLEMENTATION\n#include "$(abspath dist/cas.h)"\n' > $(B)/single_impl.c
	$(CC) $(STD) $(WARN) $(CFG_DEFS) -O2 -c $(B)/single_impl.c -o $(B)/single_impl.o
	$(CC) $(STD) $(WARN) $(CFG_DEFS) -O2 -DQUICKSTART_SINGLE -o $(B)/quickstart_single examples/quickstart.c \
	  $(B)/single_impl.o $(BASE_LIBS)
	$(B)/quickstart_single

# The layer check alone (make test-single runs it; make test-configs in every configuration).
test-layers: $(B)/config.mk
	$(PYTHON) amalgamate.py --layers $(if $(CLOUD),,--without cas_cloud.h) $(CFG_DEFS) $(FAST_DEFS) $(CLOUD_DEFS)

test-cli: all
	$(PYTHON) tests/test_cli.py

test-interop: all
	$(PYTHON) tests/interop.py

# The object-store suites, each starting and stopping its servers: S3 (Ceph radosgw on
# loopback), Azure (Microsoft's emulator azurite, from npm), and both at once (cas cp
# from one store to the other).
ifeq ($(CLOUD),1)
test-s3: all $(B)/s3_read
	sh tests/s3/run.sh
test-azure: all
	sh tests/azure/run.sh
test-cross: all
	sh tests/cross/run.sh
else
test-s3 test-azure test-cross:
	@echo "$@: skipped, this build has no object stores (it did not find libcurl, expat and OpenSSL)"
endif

test-python: all
	$(PYTHON) -m unittest discover -s python/tests -t python

# CAS_TEST_QUICK: fewer kill rounds and no 1-byte sweep of big fixtures (test-c runs
# those in full; under ASan the sweep alone took 6 minutes)
test-asan: $(B)/run_tests_asan
	CAS_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(B)/run_tests_asan

test-infra:
	sh infra/check.sh

# Every Python file against .flake8 (pyflakes and pycodestyle, 120 columns); the
# cas_h package's annotations against mypy.ini (what py.typed promises users).
test-lint:
	$(PYTHON) -m flake8
	$(PYTHON) -m mypy

# Every C file against .clang-format (clang-format 14: Debian 12's; another version
# formats some lines differently). `make format` rewrites them so.
CLANG_FORMAT ?= clang-format-14
FORMAT_SRC   := $(wildcard src/*/*.c src/*/*.h cli/*.c lib/*.c examples/*.c tests/*.c tests/*.h tests/fuzz/*.c \
                  python/cas_h/*.c bench/*.c)
test-format:
	@command -v $(CLANG_FORMAT) > /dev/null || { echo "test-format: $(CLANG_FORMAT) is not installed \
	  (sudo infra/debian-deps.sh)" >&2; exit 2; }
	$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_SRC)
	@echo "test-format: $(words $(FORMAT_SRC)) files as .clang-format says"

format:
	$(CLANG_FORMAT) -i $(FORMAT_SRC)
	$(PYTHON) amalgamate.py

test-valgrind: $(B)/run_tests_fast
	CAS_TEST_QUICK=1 valgrind -q --error-exitcode=9 --child-silent-after-fork=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  $(B)/run_tests_fast

# Everything, in the configuration lib/configure.sh found: suites that need a library
# this build lacks say so and are left out (S3 without libcurl, ISA-L's configs...).
test: all test-build test-configs test-lint test-format test-s3 test-azure test-cross test-asan test-valgrind test-fuzz-replay test-infra test-cmake
	@echo "make test: all suites passed ($(B)/ with: $(CAS_FOUND); without: $(CAS_MISSING))"

# The built library, cas and the binding themselves (CI runs this alone on a build with
# none of the optional libraries, before it installs them and runs make test).
test-build: all test-c test-single test-cli test-interop test-python

# ---- fuzzing ---------------------------------------------------------------

FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

test-fuzz-replay: $(B)/config.mk | $(B)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  if [ $$t = cloud ] && [ -z "$(CLOUD)" ]; then echo "fuzz_cloud: skipped, no S3 in this build"; continue; fi; \
	  if [ $$t = stream ] && [ -n "$(XXH_DEFS)" ]; then echo "fuzz_stream: skipped, it forges checksums with xxhash.h"; continue; fi; \
	  clang $(STD) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all $(CFG_DEFS) $(FAST_DEFS) \
	    -DCAS_FUZZ_REPLAY -o $(B)/replay_$$t tests/fuzz/fuzz_$$t.c $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS); \
	  $(B)/replay_$$t tests/fuzz/corpus/$$t; \
	done

fuzz: | $(B)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  if [ $$t = cloud ] && [ -z "$(CLOUD)" ]; then echo "fuzz_cloud: skipped, no S3 in this build"; continue; fi; \
	  clang -O1 -g -fsanitize=fuzzer,address,undefined $(CFG_DEFS) $(FAST_DEFS) -o $(B)/fuzz_$$t tests/fuzz/fuzz_$$t.c \
	    $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS); \
	done; echo "built: $(patsubst %,$(B)/fuzz_%,$(FUZZ_TARGETS))"

# ---- bench -----------------------------------------------------------------

# The tables compare every backend (ISA-L, libdeflate, OpenSSL, S3): a full build only.
# The task bench starts each state cold (--cold: as root, the page cache dropped first).
bench: all
	@[ "$(CAS_MISSING)" = none ] || { echo "make bench needs the full build (missing: $(CAS_MISSING)); sudo infra/debian-deps.sh"; exit 2; }
	$(PYTHON) bench/run.py
	$(PYTHON) bench/task.py --cold
	@if [ -n "$(MF)" ]; then $(PYTHON) bench/metaflow_cloud.py s3 --fan 40 --rounds 2 && \
	  $(PYTHON) bench/metaflow_cloud.py azure --fan 40 --rounds 2; \
	else echo "bench/metaflow_cloud.py (real Metaflow on radosgw and azurite): skipped, set MF=/path/to/metaflow"; fi
	$(PYTHON) bench/s3.py
	$(PYTHON) bench/azure_bench.py
	$(PYTHON) bench/preview.py

# ---- install ---------------------------------------------------------------

# What install puts under $(PREFIX), which uninstall removes (test-cmake checks that
# uninstall leaves nothing: a file install adds must be listed here).
INSTALLED := bin/cas $(addprefix include/,$(HEADERS)) lib/libcas.so.$(VERSION) lib/libcas.so.0 lib/libcas.so \
             lib/libcas.a lib/pkgconfig/cas.pc lib/cmake/cas/casConfig.cmake lib/cmake/cas/casConfigVersion.cmake \
             share/man/man1/cas.1

# The man page is `cas --help-all` (the usage, then every command's help with its
# --json fields), as troff: one text for both.
$(B)/cas.1: $(B)/cas
	{ printf '.TH CAS 1 "" "cas.h $(VERSION)" "User Commands"\n.SH NAME\ncas \\- read, write, verify, migrate and show Metaflow artifact stores\n.SH SYNOPSIS\n.nf\n'; \
	  $(B)/cas --help-all | sed -e 's/\\/\\e/g' -e 's/^[.'"'"']/\\\&&/'; printf '.fi\n'; } > $@

install: all $(B)/cas.1 $(B)/config.mk
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/lib/cmake/cas $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(B)/cas $(DESTDIR)$(PREFIX)/bin/cas
	install -m 644 $(HEADERS) $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(B)/libcas.so $(DESTDIR)$(PREFIX)/lib/libcas.so.$(VERSION)
	ln -sf libcas.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libcas.so.0
	ln -sf libcas.so.0 $(DESTDIR)$(PREFIX)/lib/libcas.so
	install -m 644 $(B)/libcas.a $(DESTDIR)$(PREFIX)/lib/libcas.a
	for f in lib/cas.pc.in:lib/pkgconfig/cas.pc lib/casConfig.cmake.in:lib/cmake/cas/casConfig.cmake \
	         lib/casConfigVersion.cmake.in:lib/cmake/cas/casConfigVersion.cmake; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@REQUIRES_PRIVATE@|$(PC_REQUIRES)|g' -e 's|@LIBS_PRIVATE@|$(PC_LIBS)|g' \
	      -e 's|@HEADER_DEFS@|$(patsubst -D%,%,$(XXH_DEFS))|g' \
	      -e 's| *@HEADER_CFLAGS@|$(if $(XXH_DEFS), $(XXH_DEFS))|g' $${f%%:*} > $(DESTDIR)$(PREFIX)/$${f#*:} || exit 1; \
	done
	install -m 644 $(B)/cas.1 $(DESTDIR)$(PREFIX)/share/man/man1/cas.1

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALLED))
	-rmdir $(DESTDIR)$(PREFIX)/lib/cmake/cas 2>/dev/null

# CMake projects: find_package(cas CONFIG) after make install, and add_subdirectory().
test-cmake: all
	sh tests/cmake/run.sh

clean:
	rm -rf $(B)
