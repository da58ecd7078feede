#!/bin/sh
# tools/bootstrap.sh [demo|test|build] - install what is missing, build, then
# run the demo (default) or the test suite.
#
# Installs with apt-get (Debian/Ubuntu) only the tools the build needs and
# that are not already present: a C compiler, meson, ninja, pkg-config,
# cJSON and gnuplot. The build goes to ./build (created on first use).
set -eu
cd "$(dirname "$0")/.."
what=${1:-demo}

missing=""
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v meson >/dev/null 2>&1 || missing="$missing meson"
command -v ninja >/dev/null 2>&1 || missing="$missing ninja-build"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
command -v gnuplot >/dev/null 2>&1 || missing="$missing gnuplot-nox"
pkg-config --exists libcjson 2>/dev/null || missing="$missing libcjson-dev"
if [ -n "$missing" ]; then
    echo "bootstrap: installing:$missing" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi

if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null
fi
meson compile -C build >/dev/null

case "$what" in
demo) exec ./build/cli/bubblesim ;;
test) exec meson test -C build --print-errorlogs ;;
build) ;;
*) echo "usage: tools/bootstrap.sh [demo|test|build]" >&2; exit 2 ;;
esac
