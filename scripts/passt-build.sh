#!/usr/bin/env bash
# Build a current passt from Debian 13 (trixie)'s source package, as the guest
# kernel is built: Debian 12's passt (0.0~git20230309) loses the server's FIN
# after a guest half-closes, and through -p finishes a guest's handshake only
# once the client has sent a byte, so servers that speak first hang.
#
# The source comes from Debian's archive: apt, with its own list directory
# (the system's sources are left alone), reads trixie's signed Sources index
# and prints each file's SHA256; curl fetches the files and sha256sum checks
# them.  passt builds with the C compiler alone (its Makefile, no libraries).
#
# Output: <data>/passt/<version>/{passt,passt.avx2,version}, and <data>/passt/msb pointing at it.
# Built once per version; when the archive cannot be reached the last build
# stays in use.  Exits non-zero (and says why) on failure: msb then uses the
# system's passt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
data=$(msb_data_dir)
dir=$data/passt
mkdir -p "$dir"
work=$dir/.build
rm -rf "$work"
mkdir -p "$work/lists/partial"
trap 'rm -rf "$work"' EXIT
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$work/sources.list"
apt_own=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$work/lists" -o APT::Sandbox::User=root)
keep_last() {
        if [ -x "$dir/msb/passt" ]; then
                say "passt-build.sh: $1; keeping $(readlink "$dir/msb")"
                exit 0
        fi
        echo "passt-build.sh: $1" >&2
        exit 1
}
apt-get "${apt_own[@]}" -qq update >"$work/apt.log" 2>&1 || keep_last "cannot read trixie's Sources index ($(tail -1 "$work/apt.log"))"
# lines: 'URI' NAME SIZE SHA256:HEX
apt-get "${apt_own[@]}" -qq source --print-uris passt >"$work/uris" 2>"$work/apt.log" ||
        keep_last "trixie has no passt source ($(tail -1 "$work/apt.log"))"
dsc=$(awk -F"'" '/\.dsc/ {print $2}' "$work/uris")
ver=$(basename "$dsc" .dsc)
ver=${ver#passt_}
ver=$(printf '%b' "${ver//%/\\x}")
case $ver in *[!A-Za-z0-9.~+-]* | "") keep_last "unexpected version '$ver' in the Sources index" ;; esac
if [ -x "$dir/$ver/passt" ]; then
        ln -sfn "$ver" "$dir/msb.tmp" && mv -T "$dir/msb.tmp" "$dir/msb"
        exit 0
fi
say "building passt $ver from Debian trixie's source (about a minute)"
while read -r uri name _size sum; do
        uri=${uri//\'/}
        case $name in *.dsc) continue ;; esac
        case $name in *[!A-Za-z0-9._~+-]*) keep_last "unexpected file name '$name'" ;; esac
        curl -fsS -o "$work/$name" "$uri" || keep_last "downloading $uri failed"
        echo "${sum#SHA256:}  $work/$name" | sha256sum -c --quiet - || keep_last "$name does not match trixie's index"
done <"$work/uris"
mkdir "$work/src"
tar -xf "$work"/passt_*.orig.tar.* -C "$work/src" --strip-components=1
tar -xf "$work"/passt_*.debian.tar.* -C "$work/src"
(
        cd "$work/src"
        if [ -f debian/patches/series ]; then
                grep -v '^#' debian/patches/series | while read -r p; do
                        [ -n "$p" ] && patch -s -p1 <"debian/patches/$p"
                done
        fi
        make -s passt passt.avx2 VERSION="$ver" >"$work/build.log" 2>&1
) || { tail -15 "$work/build.log" >&2 2>/dev/null; keep_last "building passt $ver failed"; }
mkdir "$work/out"
# passt execs passt.avx2 beside itself where the CPU has AVX2
cp "$work/src/passt" "$work/src/passt.avx2" "$work/out/"
# what msb info shows: this passt's --version does not flush into a pipe
echo "$ver" >"$work/out/version"
rm -rf "${dir:?}/$ver"
mv "$work/out" "$dir/$ver"
ln -sfn "$ver" "$dir/msb.tmp" && mv -T "$dir/msb.tmp" "$dir/msb"
# versions nothing points at any more
for d in "$dir"/*; do
        if [ -d "$d" ] && [ ! -L "$d" ] && [ "$(basename "$d")" != "$ver" ]; then rm -rf "$d"; fi
done
say "passt $ver in $dir/$ver"
