#!/usr/bin/env bash
# Write an OCI image layout from one or more root directories (one layer
# each, in order).  Deterministic: sorted names, zero mtimes, root owner.
#
#   oci-layout.sh OUT TAG CONFIG_JSON DIR [DIR...]
#
# CONFIG_JSON is the body of the image config's "config" object, e.g.
# '{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}'.  A layer dir may hold OCI
# whiteouts (.wh.NAME files) to delete entries of earlier layers.
set -euo pipefail
out=$1 tag=$2 cfg=$3
shift 3
mkdir -p "$out/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
put() { # put FILE -> prints "digest size"
        local d s
        d=$(sha256sum "$1" | cut -d' ' -f1)
        s=$(stat -c %s "$1")
        mv "$1" "$out/blobs/sha256/$d"
        echo "sha256:$d $s"
}
layers="" diffs=""
for dir in "$@"; do
        tarf=$(mktemp "$out/.layer-XXXXXX")
        tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
                --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
                -C "$dir" -cf "$tarf" .
        diff=$(sha256sum "$tarf" | cut -d' ' -f1)
        gzip -n -9 "$tarf"
        read -r ld ls < <(put "$tarf.gz")
        layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$ld\",\"size\":$ls}"
        diffs+="${diffs:+,}\"sha256:$diff\""
done
cf=$(mktemp "$out/.config-XXXXXX")
printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]}}' \
        "$cfg" "$diffs" >"$cf"
read -r cd cs < <(put "$cf")
mf=$(mktemp "$out/.manifest-XXXXXX")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
        "$cd" "$cs" "$layers" >"$mf"
read -r md ms < <(put "$mf")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$md" "$ms" "$tag" >"$out/index.json"
