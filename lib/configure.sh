#!/bin/sh
# shellcheck disable=SC2048,SC2086 # flag and word lists are split on purpose
# Finds cas.h's optional backends and writes the Makefile's view of them (the
# Makefile includes the output as $(B)/config.mk; `make` re-runs this when CC,
# PKG_CONFIG or WITHOUT change, or after `make clean`).
#
#   lib/configure.sh > build/config.mk     CC, PKG_CONFIG and WITHOUT from the environment
#
# zlib and liblz4 (and pthreads) are required; each of these is used when found:
#   isal       ISA-L's igzip: the fastest gzip          (-DCAS_USE_ISAL)
#   libdeflate libdeflate: whole-buffer gzip             (-DCAS_USE_LIBDEFLATE)
#   openssl    OpenSSL's SHA-1 (SHA-NI); S3 needs it too   (-DCAS_USE_OPENSSL)
#   xxhash     xxhash.h, for XXH3-128 keys               (else -DCAS_NO_XXH3)
#   cloud      libcurl + expat + OpenSSL: s3:// roots    (else -DCAS_NO_CLOUD)
# "Found" means pkg-config knows the module, or failing that, and in any case,
# that a test program including its header links: a .pc file without headers
# does not count. WITHOUT="isal cloud ..." leaves backends out even when found.
set -eu
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG-pkg-config}
WITHOUT=${WITHOUT:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cas-configure-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# probe NAME PC-MODULE HEADER LIBS: sets cflags and libs, and pc (the module when
# pkg-config knows it, for cas.pc's Requires.private); returns 1 if not usable.
probe() {
    case " $WITHOUT " in *" $1 "*) return 1 ;; esac
    cflags="" libs=$4 pc=""
    if [ -n "$PKG_CONFIG" ] && $PKG_CONFIG --exists "$2" 2>/dev/null; then
        libs=$($PKG_CONFIG --libs "$2") pc=$2
        for f in $($PKG_CONFIG --cflags "$2"); do # the compiler's own dirs stay system dirs (libcurl lists one)
            case $f in -I/usr/include|-I/usr/include/*-linux-*) ;; *) cflags="$cflags $f" ;; esac
        done
    fi
    printf '#include <%s>\nint main(void) { return 0; }\n' "$3" > "$tmp/p.c"
    $CC $cflags "$tmp/p.c" -o "$tmp/p" $libs > /dev/null 2>&1
}

# What a static libcas.a needs. The required modules pkg-config knows go to
# Requires.private (pkg-config --static adds their own private libraries); the
# optional ones go to Libs.private as flags, so that cas.pc still works for a shared
# link when one of their .pc files is gone (pkg-config refuses a Requires.private it
# cannot find). Each goes first: libcurl, found last, needs OpenSSL after it.
pc_requires="" pc_libs=""
private() { pc_libs="$libs $pc_libs"; }
required() { if [ -n "$pc" ]; then pc_requires="$pc $pc_requires"; else pc_libs="$libs $pc_libs"; fi; }

# required: say what is missing rather than fail in the middle of the build
for req in "zlib zlib.h -lz zlib1g-dev" "liblz4 lz4frame.h -llz4 liblz4-dev"; do
    set -- $req
    probe required "$1" "$2" "$3" ||
        { echo "cas.h needs $1 (headers and library; Debian: $4), and $CC could not build with it" >&2; exit 1; }
    required
done

fast_defs="" fast_cflags="" fast_libs="" found="" missing=""
add() { # NAME-AS-PRINTED DEFINE
    fast_defs="$fast_defs $2" fast_cflags="$fast_cflags $cflags" fast_libs="$fast_libs $libs" found="$found, $1"
    private
}
if probe isal libisal isa-l/igzip_lib.h -lisal; then add ISA-L -DCAS_USE_ISAL; else missing="$missing, ISA-L"; fi
if probe libdeflate libdeflate libdeflate.h -ldeflate; then add libdeflate -DCAS_USE_LIBDEFLATE
else missing="$missing, libdeflate"; fi
have_ssl=""
if probe openssl libcrypto openssl/evp.h -lcrypto; then
    add "OpenSSL SHA-1" -DCAS_USE_OPENSSL
    have_ssl=1 ssl_libs=$libs
else missing="$missing, OpenSSL SHA-1"; fi
xxh_defs=""
if probe xxhash libxxhash xxhash.h ""; then # header-only: nothing to link, but maybe a directory to include
    found="$found, xxhash.h (XXH3 keys)" fast_cflags="$fast_cflags $cflags"
else xxh_defs=-DCAS_NO_XXH3 missing="$missing, xxhash.h (XXH3 keys)"; fi

cloud="" cloud_defs=-DCAS_NO_CLOUD cloud_libs=""
if [ -n "$have_ssl" ] && probe cloud libcurl curl/curl.h -lcurl; then
    c_cflags=$cflags c_libs=$libs c_pc=$pc
    if probe cloud expat expat.h -lexpat; then
        cloud=1 cloud_defs="" cloud_libs="$c_libs $libs $ssl_libs"
        fast_cflags="$fast_cflags $c_cflags $cflags" found="$found, S3 (libcurl, expat)"
        private
        pc=$c_pc libs=$c_libs
        private
    fi
fi
[ -n "$cloud" ] || missing="$missing, S3 (libcurl, expat, OpenSSL)"

squash() { echo $* ; } # one space between words, none at the ends
found=${found#, } missing=${missing#, }
cat <<EOF
# Written by lib/configure.sh (CC=$CC PKG_CONFIG=$PKG_CONFIG WITHOUT=$WITHOUT).
FAST_DEFS   := $(squash "$fast_defs")
FAST_CFLAGS := $(squash "$fast_cflags")
FAST_LIBS   := $(squash "$fast_libs")
XXH_DEFS    := $xxh_defs
CLOUD       := $cloud
CLOUD_DEFS  := $cloud_defs
CLOUD_LIBS  := $(squash "$cloud_libs")
PC_REQUIRES := $(squash "$pc_requires")
PC_LIBS     := $(squash "$pc_libs -lpthread -lm")
CAS_FOUND   := ${found:-none}
CAS_MISSING := ${missing:-none}
EOF
