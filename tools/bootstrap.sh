#!/bin/sh
# tools/bootstrap.sh [demo|test|build|ci-tools] - install what is missing,
# build, then run the demo (default) or the test suite.
#
# Installs with apt-get (Debian/Ubuntu) only the tools the build needs and
# that are not already present: a C compiler, meson, ninja, pkg-config,
# cJSON and gnuplot. The build goes to ./build (created on first use).
# `ci-tools` installs, only where missing, what CI adds on top (.ci/run):
# clang, its libFuzzer runtime (libclang-rt-N-dev) and valgrind; it builds
# nothing.
set -eu
cd "$(dirname "$0")/.."
what=${1:-demo}

apt_install() {
    echo "bootstrap: installing:$*" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if [ "$what" = ci-tools ]; then
    missing=""
    command -v clang >/dev/null 2>&1 || missing="$missing clang"
    command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
    [ -z "$missing" ] || apt_install $missing
    # libFuzzer: does clang link a fuzz target?
    probe=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }\n' \
        >"$probe/t.c"
    if ! clang -fsanitize=fuzzer "$probe/t.c" -o "$probe/t" >/dev/null 2>&1; then
        major=$(clang -dumpversion | cut -d. -f1)
        apt_install "libclang-rt-$major-dev"
    fi
    rm -rf "$probe"
    exit 0
fi

missing=""
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v meson >/dev/null 2>&1 || missing="$missing meson"
command -v ninja >/dev/null 2>&1 || missing="$missing ninja-build"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
command -v gnuplot >/dev/null 2>&1 || missing="$missing gnuplot-nox"
pkg-config --exists libcjson 2>/dev/null || missing="$missing libcjson-dev"
if [ -n "$missing" ]; then
    apt_install $missing
fi

if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null
fi
meson compile -C build >/dev/null

case "$what" in
demo) exec ./build/cli/bubblesim ;;
test) exec meson test -C build --print-errorlogs ;;
build) ;;
*) echo "usage: tools/bootstrap.sh [demo|test|build|ci-tools]" >&2; exit 2 ;;
esac
