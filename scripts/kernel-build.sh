#!/usr/bin/env bash
# Build msb's tailored guest kernel from Debian's linux-source-6.1 package:
# 'make tinyconfig' + guest/kernel/microvm.config + 'make olddefconfig', then
# bzImage, into <data>/kernels/msb-<key> where key hashes the source version
# and the fragment; <data>/kernels/msb points at the current one.  Built once
# per machine, rebuilt only when either input changes.  Exits non-zero (and
# says why) on failure; setup.sh then falls back to the Debian cloud kernel.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
data=$(msb_data_dir)
frag=$here/../guest/kernel/microvm.config
pkg=linux-source-6.1
ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
        echo "kernel-build.sh: package $pkg is not available (run 'apt-get update')" >&2
        exit 1
fi
key=$( (echo "$pkg $ver"; cat "$frag") | sha256sum | cut -c1-16)
dest=$data/kernels/msb-$key
mkdir -p "$data/kernels"
if [ -f "$dest/vmlinuz" ] && [ -f "$dest/vmlinux" ]; then
        ln -sfn "msb-$key" "$data/kernels/msb.tmp" && mv -T "$data/kernels/msb.tmp" "$data/kernels/msb"
        exit 0
fi
log=$data/kernels/build-$key.log
work=$data/kernels/.build-$key
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
say "building msb's guest kernel from $pkg $ver (about 5 minutes on 2 cores; log: $log)"
: >"$log"
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >>"$log" 2>&1) || {
        echo "kernel-build.sh: apt-get download $pkg failed; see $log" >&2
        exit 1
}
dpkg-deb -x "$work"/*.deb "$work/x"
tar -xf "$work/x/usr/src/linux-source-6.1.tar.xz" -C "$work"
rm -rf "$work/x" "$work"/*.deb
src=$work/linux-source-6.1
{
        make -C "$src" tinyconfig
        "$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$frag"
        make -C "$src" olddefconfig
} >>"$log" 2>&1 || {
        echo "kernel-build.sh: configuring the kernel failed; see $log" >&2
        exit 1
}
missing=$(grep -E '^CONFIG_[A-Z0-9_]+=y$' "$frag" | while read -r l; do grep -qx "$l" "$src/.config" || echo "${l%=y}"; done)
if [ -n "$missing" ]; then
        echo "kernel-build.sh: options the fragment needs were dropped by olddefconfig (a dependency is missing): $missing" >&2
        exit 1
fi
# progress: one line per 100 lines of build output (~15 for the whole build)
if ! make -C "$src" -j"$(nproc)" bzImage 2>&1 | tee -a "$log" |
        awk 'NR % 100 == 0 {print "    ... " $NF; fflush()}' >&2 || [ ! -f "$src/arch/x86/boot/bzImage" ]; then
        echo "kernel-build.sh: the kernel build failed; last lines of $log:" >&2
        tail -15 "$log" >&2
        exit 1
fi
mkdir "$work/kit"
cp "$src/arch/x86/boot/bzImage" "$work/kit/vmlinuz"
# the uncompressed ELF boots through PVH without the decompressor (faster
# under TCG); msb prefers it, vmlinuz stays for other VMMs
cp "$src/vmlinux" "$work/kit/vmlinux"
cp "$src/.config" "$work/kit/config"
make -s -C "$src" kernelrelease >"$work/kit/release" 2>>"$log"
rm -rf "$dest"
mv "$work/kit" "$dest"
ln -sfn "msb-$key" "$data/kernels/msb.tmp" && mv -T "$data/kernels/msb.tmp" "$data/kernels/msb"
say "guest kernel $(cat "$dest/release") in $dest"
