# cas.h: build the library, the `cas` command, the single header; test; bench.
#
#   make              libcas.so, libcas.a, cas, dist/cas.h (fast backends: ISA-L,
#                     libdeflate, OpenSSL SHA-1; all from Debian)
#   make demo         the newcomer's tour on the bundled fixtures
#   make test         everything CI runs (see the test-* targets)
#   make bench        the benchmark tables (bench/results/): codecs, S3, previews
#   make install      PREFIX=/usr/local: cas (and its man page), headers, libcas, cas.pc, casConfig.cmake
#   make uninstall    removes exactly what install put

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
FAST_DEFS := -DCAS_USE_ISAL -DCAS_USE_LIBDEFLATE -DCAS_SHA1_OPENSSL
FAST_LIBS := -lisal -ldeflate -lcrypto
CLOUD_LIBS := -lcurl -lexpat -lcrypto
HEADERS   := cas.h cas_codecs.h cas_cloud.h cas_pickle.h
VERSION   := $(shell sed -n 's/^\#define CAS_VERSION_STRING "\(.*\)"/\1/p' cas_codecs.h)

export CAS_FIXTURES := $(abspath $(FIXTURES))

.PHONY: all demo test test-c test-configs test-single test-cli test-interop test-python test-s3 \
        test-asan test-valgrind test-fuzz-replay test-infra test-cmake install uninstall clean bench fuzz examples

all: $(B)/libcas.so $(B)/libcas.a $(B)/cas dist/cas.h

$(B):
	@mkdir -p $@

$(B)/libcas.o: lib/libcas.c $(HEADERS) | $(B)
	$(CC) $(STD) $(OPT) $(WARN) -fPIC $(FAST_DEFS) -c $< -o $@

$(B)/libcas.so: $(B)/libcas.o
	$(CC) -shared -Wl,-soname,libcas.so.0 -o $@ $< $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS)

$(B)/libcas.a: $(B)/libcas.o
	ar rcs $@ $<

$(B)/cas: cli/cas.c $(B)/libcas.a
	$(CC) $(STD) $(OPT) $(WARN) -o $@ cli/cas.c $(B)/libcas.a $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS)

dist/cas.h: $(HEADERS) amalgamate.py
	$(PYTHON) amalgamate.py

examples: $(B)/quickstart $(B)/s3_read

$(B)/s3_read: examples/s3_read.c $(HEADERS) | $(B)
	$(CC) $(STD) $(OPT) $(WARN) -o $@ examples/s3_read.c $(BASE_LIBS) $(CLOUD_LIBS)

$(B)/quickstart: examples/quickstart.c $(B)/libcas.a
	$(CC) $(STD) $(OPT) $(WARN) -o $@ examples/quickstart.c $(B)/libcas.a $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS)

demo: all
	@sh examples/demo.sh

# ---- tests -----------------------------------------------------------------

TEST_SRC := tests/run_tests.c tests/test.h tests/test_core.c tests/test_store.c tests/test_faults.c tests/test_backend.c \
            tests/test_pickle.c

$(B)/run_tests: $(TEST_SRC) $(HEADERS) | $(B)
	$(CC) $(STD) -O1 -g $(WARN) -o $@ tests/run_tests.c $(BASE_LIBS)

$(B)/run_tests_fast: $(TEST_SRC) $(HEADERS) | $(B)
	$(CC) $(STD) -O1 -g $(WARN) $(FAST_DEFS) -o $@ tests/run_tests.c $(BASE_LIBS) $(FAST_LIBS)

$(B)/run_tests_asan: $(TEST_SRC) $(HEADERS) | $(B)
	clang $(STD) -O1 -g $(WARN) $(FAST_DEFS) -fsanitize=address,undefined -fno-sanitize-recover=all \
	  -fno-omit-frame-pointer -o $@ tests/run_tests.c $(BASE_LIBS) $(FAST_LIBS)

test-c: $(B)/run_tests $(B)/run_tests_fast
	$(B)/run_tests
	$(B)/run_tests_fast

# Every configuration the header promises, warning-free, as C99 and as C++.
CONFIGS := "" CAS_NO_GZIP CAS_NO_LZ4 CAS_NO_RAW CAS_NO_XXH3 CAS_NO_STORE CAS_NO_THREADS \
           CAS_SHA1_OPENSSL CAS_KEY_XXH3 CAS_USE_ISAL CAS_USE_LIBDEFLATE CAS_STATIC \
           "CAS_NO_GZIP -DCAS_NO_LZ4" "CAS_KEY_XXH3 -DCAS_SHA1_OPENSSL -DCAS_USE_ISAL -DCAS_USE_LIBDEFLATE"
test-configs: | $(B)
	@set -e; for cfg in $(CONFIGS); do \
	  d=$${cfg:+-D$$cfg}; \
	  for cc in gcc clang; do $$cc $(STD) $(WARN) $$d -c tests/config_check.c -o $(B)/cfg.o; done; \
	  for cxx in g++ clang++; do $$cxx -x c++ -std=c++11 $(WARN) $$d -c tests/config_check.c -o $(B)/cfg.o; done; \
	  gcc $(STD) $(WARN) $$d tests/config_check.c -o $(B)/cfg $(BASE_LIBS) $(FAST_LIBS); \
	  printf '%-60s ' "[$${cfg:-default}]"; $(B)/cfg; \
	done
	@set -e; for cfg in "" CAS_NO_THREADS CAS_STATIC "CAS_USE_ISAL -DCAS_USE_LIBDEFLATE -DCAS_SHA1_OPENSSL"; do \
	  d=$${cfg:+-D$$cfg}; \
	  for cc in gcc clang; do $$cc $(STD) $(WARN) $$d -c tests/cloud_check.c -o $(B)/cloud.o; done; \
	  for cxx in g++ clang++; do $$cxx -x c++ -std=c++11 $(WARN) $$d -c tests/cloud_check.c -o $(B)/cloud.o; done; \
	  gcc $(STD) $(WARN) $$d tests/cloud_check.c -o $(B)/cloud $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS); \
	  printf '%-60s ' "[cas_cloud.h $${cfg:-default}]"; $(B)/cloud; \
	done
	@set -e; for cfg in "" CAS_NO_THREADS CAS_NO_STORE CAS_STATIC CAS_NO_GZIP CAS_NO_LZ4; do \
	  d=$${cfg:+-D$$cfg}; \
	  for cc in gcc clang; do for o in -O0 -O2; do $$cc $(STD) $$o $(WARN) $$d -c tests/pickle_check.c -o $(B)/pickle.o; done; done; \
	  for cxx in g++ clang++; do $$cxx -x c++ -std=c++11 -O2 $(WARN) $$d -c tests/pickle_check.c -o $(B)/pickle.o; done; \
	  gcc $(STD) $(WARN) $$d tests/pickle_check.c -o $(B)/pickle $(BASE_LIBS); \
	  printf '%-60s ' "[cas_pickle.h $${cfg:-default}]"; $(B)/pickle; \
	done

# The amalgamated header is current, and a .c file holding only the
# implementation switch and the include links against system libraries alone.
test-single: dist/cas.h | $(B)
	$(PYTHON) amalgamate.py --check
	printf '#define CAS_IMPLEMENTATION\n#include "../dist/cas.h"\n' > $(B)/single_impl.c
	$(CC) $(STD) $(WARN) -O2 -c $(B)/single_impl.c -o $(B)/single_impl.o
	$(CC) $(STD) $(WARN) -O2 -DQUICKSTART_SINGLE -o $(B)/quickstart_single examples/quickstart.c \
	  $(B)/single_impl.o $(BASE_LIBS)
	$(B)/quickstart_single

test-cli: all
	$(PYTHON) tests/test_cli.py

test-interop: all
	$(PYTHON) tests/interop.py

# A real S3 server (Ceph radosgw on loopback), started and stopped by the script.
test-s3: all $(B)/s3_read
	sh tests/s3/run.sh

test-python: all
	$(PYTHON) -m unittest discover -s python/tests -t python

test-asan: $(B)/run_tests_asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(B)/run_tests_asan

test-infra:
	sh infra/check.sh

test-valgrind: $(B)/run_tests_fast
	CAS_TEST_QUICK=1 valgrind -q --error-exitcode=9 --child-silent-after-fork=yes --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  $(B)/run_tests_fast

test: all test-c test-configs test-single test-cli test-interop test-python test-s3 test-asan test-valgrind \
      test-fuzz-replay test-infra test-cmake
	@echo "make test: all suites passed"

# ---- fuzzing ---------------------------------------------------------------

FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

test-fuzz-replay: | $(B)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  clang $(STD) -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all $(FAST_DEFS) \
	    -DCAS_FUZZ_REPLAY -o $(B)/replay_$$t tests/fuzz/fuzz_$$t.c $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS); \
	  $(B)/replay_$$t tests/fuzz/corpus/$$t; \
	done

fuzz: | $(B)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  clang -O1 -g -fsanitize=fuzzer,address,undefined $(FAST_DEFS) -o $(B)/fuzz_$$t tests/fuzz/fuzz_$$t.c \
	    $(BASE_LIBS) $(FAST_LIBS) $(CLOUD_LIBS); \
	done; echo "built: $(patsubst %,$(B)/fuzz_%,$(FUZZ_TARGETS))"

# ---- bench -----------------------------------------------------------------

bench: all
	$(PYTHON) bench/run.py
	$(PYTHON) bench/s3.py
	$(PYTHON) bench/preview.py

# ---- install ---------------------------------------------------------------

# What install puts under $(PREFIX), which uninstall removes (test-cmake checks that
# uninstall leaves nothing: a file install adds must be listed here).
INSTALLED := bin/cas $(addprefix include/,$(HEADERS)) lib/libcas.so.$(VERSION) lib/libcas.so.0 lib/libcas.so \
             lib/libcas.a lib/pkgconfig/cas.pc lib/cmake/cas/casConfig.cmake lib/cmake/cas/casConfigVersion.cmake \
             share/man/man1/cas.1

# The man page is `cas --help`, as troff: one text for both.
$(B)/cas.1: $(B)/cas
	{ printf '.TH CAS 1 "" "cas.h $(VERSION)" "User Commands"\n.SH NAME\ncas \\- read, write, verify, migrate and show Metaflow artifact stores\n.SH SYNOPSIS\n.nf\n'; \
	  $(B)/cas --help | sed -e 's/\\/\\e/g' -e 's/^[.'"'"']/\\\&&/'; printf '.fi\n.SH SEE ALSO\nEach subcommand: cas COMMAND \\-\\-help\n'; } > $@

install: all $(B)/cas.1
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
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $${f%%:*} > $(DESTDIR)$(PREFIX)/$${f#*:} || exit 1; \
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
