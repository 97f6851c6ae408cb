#!/usr/bin/env bash
# Install msb for every user of this machine (run as root, by ./setup.sh):
#
#   <prefix>/bin/msb, <prefix>/libexec/msb/{msb-fsd,agentd}   (meson install)
#   <prefix>/lib/msb/kernels/   the guest kernels set-up prepared, read-only
#   <prefix>/lib/msb/images/    the default image 'busybox', read-only
#   <prefix>/lib/msb/passt/     the passt set-up built, read-only
#
# msb looks for kernels and images there after the user's own data dir
# (MSB_SYSTEM_DIR overrides the place), so any user can `msb run busybox`
# with nothing set up; what a user pulls goes to their own store.
# Idempotent: copies only what changed.
set -euo pipefail
# what lands in <prefix> is for every user to read, whatever root's umask
umask 022
cd "$(dirname "$0")/.."
. scripts/lib.sh
[ "$(id -u)" = 0 ] || { echo "install-system.sh: run as root" >&2; exit 1; }
data=$(msb_data_dir)
prefix=$(meson introspect build --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
sys=$prefix/lib/msb

meson install -C build --quiet >/dev/null

# Kernels and passt: directories named by content (a kernel's release and
# build key, passt's version); symlinks say which one is current (kernels:
# msb and default; passt: msb).  Each is copied whole, readable by all, and
# put in place by rename; what no link names any more goes.
install_named() { # install_named KIND LINK...
        local kind=$1 link target d keep
        shift
        install -d -m 0755 "$sys/$kind"
        for link in "$@"; do
                target=$(readlink "$data/$kind/$link" 2>/dev/null) || continue
                [ -d "$data/$kind/$target" ] || continue
                if [ ! -d "$sys/$kind/$target" ]; then
                        rm -rf "$sys/$kind/.new"
                        cp -r "$data/$kind/$target" "$sys/$kind/.new"
                        chmod -R go+rX,go-w "$sys/$kind/.new"
                        mv -T "$sys/$kind/.new" "$sys/$kind/$target"
                fi
                ln -sfn "$target" "$sys/$kind/$link.tmp" && mv -T "$sys/$kind/$link.tmp" "$sys/$kind/$link"
        done
        for d in "$sys/$kind"/*; do
                [ -d "$d" ] && [ ! -L "$d" ] || continue
                keep=
                for link in "$@"; do
                        [ "$(basename "$d")" = "$(readlink "$sys/$kind/$link" 2>/dev/null)" ] && keep=1
                done
                [ -n "$keep" ] || rm -rf "$d"
        done
}
install -d -m 0755 "$sys"
install_named kernels msb default
# passt as set-up built it (scripts/passt-build.sh); none built: the
# system's, found on PATH
[ -L "$data/passt/msb" ] && install_named passt msb

# The default image, in a store of its own that every user may read.
stamp=$(cat /bin/busybox scripts/mkimage-busybox.sh scripts/oci-layout.sh build/msb | sha256sum | cut -d' ' -f1)
if [ "$(cat "$sys/images/stamp" 2>/dev/null)" != "$stamp" ]; then
        say "installing the default image 'busybox' for every user in $sys/images"
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        scripts/mkimage-busybox.sh "$tmp/layout"
        MSB_HOME=$tmp/home MSB_SYSTEM_DIR=/nonexistent build/msb image import "$tmp/layout" busybox
        rm -rf "$tmp/home/images/tmp" "$tmp/home/images/lock"
        echo "$stamp" >"$tmp/home/images/stamp"
        # readable by all, writable by none but root; the image's own modes
        # (no setuid, no device nodes: they are metadata) stay as unpacked
        chmod 0755 "$tmp/home/images" "$tmp/home/images/refs" "$tmp/home/images/blobs" \
                "$tmp/home/images/blobs/sha256" "$tmp/home/images/rootfs"
        chmod -R go+r,go-w "$tmp/home/images/refs" "$tmp/home/images/blobs"
        chmod 0644 "$tmp/home/images/format" "$tmp/home/images/stamp"
        rm -rf "$sys/images.old"
        [ ! -e "$sys/images" ] || mv -T "$sys/images" "$sys/images.old"
        mv -T "$tmp/home/images" "$sys/images"
        rm -rf "$sys/images.old" "$tmp"
        trap - EXIT
fi
