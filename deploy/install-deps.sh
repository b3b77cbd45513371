#!/bin/sh
# Installs what qjob needs to build, test and run, from Debian 12's packages.
# Runs apt-get as root (directly, or through sudo when not root).
set -eu
PKGS="build-essential pkg-config meson ninja-build
  libzmq3-dev libsodium-dev libmsgpack-dev libjansson-dev libcmocka-dev
  valgrind clang libclang-rt-14-dev python3 python3-zmq python3-msgpack
  libinih-dev help2man iproute2 libmicrohttpd-dev curl"
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
echo "install-deps: done"
