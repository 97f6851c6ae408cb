#!/usr/bin/env bash
# msb set-up, the only entry point a fresh clone needs:
#
#   ./setup.sh         install what is missing, build, fetch the guest kernel,
#                      build the default image, then run a real sandbox
#   ./setup.sh test    the same set-up, then run the whole test suite
#
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib.sh

mode=${1:-demo}
case $mode in demo | test) ;; *)
        echo "usage: ./setup.sh [test]" >&2
        exit 2
        ;;
esac

# Debian packages: build tools, libraries, QEMU (with virtiofsd), passt, the default
# image's userland, clang for the fuzzers, and the test registry tooling.
pkgs=(meson ninja-build gcc libc6-dev pkg-config libjansson-dev libseccomp-dev zlib1g-dev libcurl4-openssl-dev libssl-dev libzstd-dev libmicrohttpd-dev
        qemu-system-x86 passt busybox-static file ca-certificates
        make flex bison bc libelf-dev xz-utils cpio)
[ "$mode" = test ] && pkgs+=(clang libclang-rt-14-dev umoci skopeo docker-registry curl python3 python3-yaml python3-jsonschema python3-venv python3-pytest zstd e2fsprogs dnsmasq-base iproute2
        podman conmon runc containernetworking-plugins containerd)
missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
                echo "setup.sh: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
                exit 1
        fi
        say "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
ninja -C build >/dev/null

scripts/kit.sh
# a current passt; Debian 12's stays as the fallback
if ! scripts/passt-build.sh; then
        say "WARNING: building passt from Debian trixie's source failed (see above); using the system's passt, whose limits docs/network.md lists"
fi
# msb's own guest kernel; Debian's stays as the fallback
if ! scripts/kernel-build.sh; then
        say "WARNING: building msb's guest kernel failed (see above); using Debian's cloud kernel, which boots slower"
fi

# The default image: rebuilt only when busybox or the recipe changes.
data=$(msb_data_dir)
stamp=$(cat /bin/busybox scripts/mkimage-busybox.sh scripts/oci-layout.sh | sha256sum | cut -d' ' -f1)
ref=$(cat "$data/images/refs/busybox%3Alatest" 2>/dev/null || true)
# (an older store's roots are dropped when msb migrates it: import again)
if [ "$(cat "$data/cache/busybox-image.stamp" 2>/dev/null)" != "$stamp" ] || [ -z "$ref" ] ||
        [ ! -d "$data/images/rootfs/${ref#sha256:}" ] || [ "$(cat "$data/images/format" 2>/dev/null)" != 2 ]; then
        say "building the default image 'busybox' from busybox-static"
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        scripts/mkimage-busybox.sh "$tmp/layout"
        build/msb image import "$tmp/layout" busybox
        mkdir -p "$data/cache"
        echo "$stamp" >"$data/cache/busybox-image.stamp"
        # the exec below replaces this shell: its EXIT trap would never run
        rm -rf "$tmp"
        trap - EXIT
fi

# As root: install for every user of the machine (<prefix>/bin/msb, kernels
# and the default image under <prefix>/lib/msb).
if [ "$(id -u)" = 0 ]; then
        scripts/install-system.sh
fi

if [ "$mode" = demo ]; then
        say "build/msb run busybox -- sh -c 'echo hello from \$(hostname); uname -r'"
        exec build/msb run busybox -- sh -c 'echo "hello from $(hostname), a microVM running kernel $(uname -r)"'
fi
exec tests/run-all.sh
