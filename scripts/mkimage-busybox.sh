#!/usr/bin/env bash
# Build the default image, "busybox", from Debian's busybox-static as an OCI
# image layout:  mkimage-busybox.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
bb=/bin/busybox
[ -x "$bb" ] || { echo "mkimage-busybox.sh: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
if ! file -L "$bb" 2>/dev/null | grep -q 'statically linked' && ldd "$bb" >/dev/null 2>&1; then
        echo "mkimage-busybox.sh: $bb is not static (apt-get install busybox-static)" >&2
        exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,home,var/tmp,proc,sys,dev,run}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
        [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done
cat >"$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$root/etc/group" <<'G'
root:x:0:
daemon:x:1:
users:x:100:
nogroup:x:65534:
G
echo 'msb' >"$root/etc/hostname"
"$here/oci-layout.sh" "$out" latest \
        '{"Cmd":["/bin/sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' "$root"
