#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Rewrite OCI image layouts for the pull tests (stdlib only).

  oci-tool.py index LAYOUT TAG ARCH...   make TAG an image index with one
        manifest per ARCH (copies of TAG's image whose config says ARCH)
  oci-tool.py hostile LAYOUT TAG KIND    append a layer that tries to write
        outside the root: KIND is dotdot, absolute, symlink or hardlink
  oci-tool.py hostile LAYOUT TAG special append device nodes, a fifo, a
        setuid-root copy of $SUID_BIN and files of uid 1000
  oci-tool.py docker-special OUT KIND    write a docker save archive whose
        config.json is a char device 1:5 (KIND chardev) or whose layer is a
        fifo (KIND fifo)
  oci-tool.py zstd LAYOUT TAG            recompress TAG's layers with zstd(1)
  oci-tool.py history LAYOUT TAG         give TAG's config a history entry per
        layer (what skopeo needs to write a schema 1 manifest)
"""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile


def add_entry(t, name, data=b"", **kw):
    """Append one member to tarfile t; kw sets TarInfo fields (type, mode, ...)."""
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
    t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)


def put(layout, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def get(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def entry(layout, tag):
    idx = json.load(open(os.path.join(layout, "index.json")))
    for m in idx["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return idx, m
    sys.exit("no manifest tagged %s" % tag)


def save_index(layout, idx):
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(idx, f)


def cmd_index(layout, tag, archs):
    idx, m = entry(layout, tag)
    man = json.loads(get(layout, m["digest"]))
    cfg = json.loads(get(layout, man["config"]["digest"]))
    entries = []
    for arch in archs:
        c = dict(cfg, architecture=arch, os="linux")
        cd, cs = put(layout, json.dumps(c).encode())
        mm = dict(man, config=dict(man["config"], digest=cd, size=cs))
        md, ms = put(layout, json.dumps(mm).encode())
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                        "platform": {"architecture": arch, "os": "linux"}})
    ix = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
    d, s = put(layout, json.dumps(ix).encode())
    m.update(mediaType="application/vnd.oci.image.index.v1+json", digest=d, size=s)
    save_index(layout, idx)


def cmd_hostile(layout, tag, kind):
    idx, m = entry(layout, tag)
    man = json.loads(get(layout, m["digest"]))
    cfg = json.loads(get(layout, man["config"]["digest"]))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data=b"escaped\n", **kw):
            add_entry(t, name, data, **kw)
        if kind == "dotdot":
            add("../../../../tmp/msb-pull-escape")
        elif kind == "absolute":
            add("/tmp/msb-pull-escape")
        elif kind == "symlink":
            add("up", type=tarfile.SYMTYPE, linkname="/tmp")
            add("up/msb-pull-escape")
        elif kind == "hardlink":
            add("h", type=tarfile.LNKTYPE, linkname="../../../../tmp/msb-pull-escape")
        elif kind == "special":
            exe = open(os.environ["SUID_BIN"], "rb").read()
            add("imgdev", type=tarfile.DIRTYPE, mode=0o755)
            add("imgdev/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660, gid=6)
            add("imgdev/zero", type=tarfile.CHRTYPE, devmajor=1, devminor=5, mode=0o666)
            add("imgdev/fifo", type=tarfile.FIFOTYPE, mode=0o644)
            add("bin/suidcheck", exe, mode=0o4755)
            add("bin/plaincheck", exe, mode=0o755)
            add("home/u", type=tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000)
            add("home/u/own", b"mine\n", mode=0o600, uid=1000, gid=1000)
        else:
            sys.exit("unknown kind " + kind)
    data = raw.getvalue()
    diff = "sha256:" + hashlib.sha256(data).hexdigest()
    gz = gzip.compress(data, mtime=0)
    ld, ls = put(layout, gz)
    man["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls})
    cfg["rootfs"]["diff_ids"].append(diff)
    cd, cs = put(layout, json.dumps(cfg).encode())
    man["config"] = dict(man["config"], digest=cd, size=cs)
    md, ms = put(layout, json.dumps(man).encode())
    m.update(digest=md, size=ms)
    save_index(layout, idx)


def cmd_docker_special(out, kind):
    with tarfile.open(out, mode="w") as t:
        def add(name, data=b"", **kw):
            add_entry(t, name, data, **kw)
        man = [{"Config": "config.json", "RepoTags": ["msbtest/load:v1"], "Layers": ["layer.tar"]}]
        add("manifest.json", json.dumps(man).encode())
        if kind == "chardev":
            add("config.json", type=tarfile.CHRTYPE, devmajor=1, devminor=5, mode=0o644)
            add("layer.tar", b"\0" * 1024)
        elif kind == "fifo":
            add("config.json", b'{"architecture":"amd64","os":"linux","config":{}}')
            add("layer.tar", type=tarfile.FIFOTYPE, mode=0o644)
        else:
            sys.exit("unknown kind " + kind)


def cmd_zstd(layout, tag):
    idx, m = entry(layout, tag)
    man = json.loads(get(layout, m["digest"]))
    for l in man["layers"]:
        raw = gzip.decompress(get(layout, l["digest"]))
        z = subprocess.run(["zstd", "-q", "-c", "-19"], input=raw, stdout=subprocess.PIPE, check=True).stdout
        d, s = put(layout, z)
        l.update(digest=d, size=s, mediaType="application/vnd.oci.image.layer.v1.tar+zstd")
    md, ms = put(layout, json.dumps(man).encode())
    m.update(digest=md, size=ms)
    save_index(layout, idx)


def cmd_history(layout, tag):
    idx, m = entry(layout, tag)
    man = json.loads(get(layout, m["digest"]))
    cfg = json.loads(get(layout, man["config"]["digest"]))
    cfg["history"] = [{"created": "2026-01-01T00:00:00Z", "created_by": "layer %d" % i}
                      for i in range(len(man["layers"]))]
    cd, cs = put(layout, json.dumps(cfg).encode())
    man["config"] = dict(man["config"], digest=cd, size=cs)
    md, ms = put(layout, json.dumps(man).encode())
    m.update(digest=md, size=ms)
    save_index(layout, idx)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "index":
        cmd_index(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 4 and sys.argv[1] == "history":
        cmd_history(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "docker-special":
        cmd_docker_special(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "zstd":
        cmd_zstd(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "hostile":
        cmd_hostile(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
