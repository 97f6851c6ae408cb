#!/usr/bin/env bash
# Fetch the guest kernel: Debian's linux-image-<version>-cloud-amd64, resolved
# from the linux-image-cloud-amd64 metapackage, downloaded with apt-get
# download and unpacked into msb's data dir.  Nothing is installed into the
# host's /boot.  Idempotent: does nothing when that release is already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
data=$(msb_data_dir)
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$pkg" ]; then
        echo "kit.sh: cannot resolve linux-image-cloud-amd64 (run 'apt-get update' first)" >&2
        exit 1
fi
release=${pkg#linux-image-}
dest=$data/kernels/$release
if [ -f "$dest/vmlinuz" ] && [ "$(readlink "$data/kernels/default" 2>/dev/null)" = "$release" ]; then
        exit 0
fi
say "fetching guest kernel $pkg"
mkdir -p "$data/kernels"
tmp=$(mktemp -d "$data/kernels/.fetch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
dpkg-deb -x "$tmp"/*.deb "$tmp/x"
mkdir "$tmp/kit"
cp "$tmp/x/boot/vmlinuz-$release" "$tmp/kit/vmlinuz"
mv "$tmp/x/lib/modules/$release" "$tmp/kit/modules"
rm -rf "$dest"
mv "$tmp/kit" "$dest"
ln -sfn "$release" "$data/kernels/default.tmp"
mv -T "$data/kernels/default.tmp" "$data/kernels/default"
say "guest kernel $release in $dest"
