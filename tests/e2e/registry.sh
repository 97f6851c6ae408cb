# shellcheck shell=bash
# The registry rig for e2e suites (sourced after lib.sh): Debian's
# docker-registry on a free loopback port with its own config and storage,
# msb configured to take docker.io from it (a mirror), and a data dir of the
# suite's own so pulls start from an empty store (kernels borrowed).
# Stopped when the suite exits.  Also pushes the suite's `alpine`: busybox
# layers plus an /etc/os-release.

busybox_rootfs() {
        local d
        d=$(cat "$DATA/images/refs/busybox%3Alatest")
        echo "$DATA/images/rootfs/${d#sha256:}"
}

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
  delete:
    enabled: true
http:
  addr: $REG
# so the suite can push a schema 1 manifest and see msb refuse it
compatibility:
  schema1:
    enabled: true
YML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGPID=$!
trap 'kill $REGPID 2>/dev/null; wait $REGPID 2>/dev/null; [ "${MSB_E2E_POOL:-}" = 1 ] && "$MSB" pool stop >/dev/null 2>&1; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
curl -sf "http://$REG/v2/" >/dev/null || { echo "docker-registry did not start: $(cat "$WORK/registry.log")" >&2; exit 1; }

# msb's own config: docker.io comes from the local registry
export MSB_CONFIG=$WORK/msb-config
echo "mirror docker.io http://$REG" >"$MSB_CONFIG"
# a data dir of our own, so pulls start from an empty store; kernels borrowed
export MSB_HOME=$WORK/home
mkdir -p "$MSB_HOME"
ln -s "$DATA/kernels" "$MSB_HOME/kernels"
STORE=$MSB_HOME/images
RUNDIR=$MSB_HOME/run

push() { # push LAYOUT TAG REPO:TAG [--all]
        skopeo copy -q ${4:-} --dest-tls-verify=false "oci:$1:$2" "docker://$REG/$3" >/dev/null
}
store_state() {
        echo "refs=$(ls "$STORE/refs" 2>/dev/null | sort | tr '\n' ' ') rootfs=$(ls "$STORE/rootfs" 2>/dev/null | wc -l) tmp=$(ls -A "$STORE/tmp" 2>/dev/null | wc -l)"
}

# the suite's `alpine`
mkdir -p "$WORK/l1/etc"
printf 'NAME="msb test alpine"\nID=alpine\n' >"$WORK/l1/etc/os-release"
"$ROOT/scripts/oci-layout.sh" "$WORK/base" v1 '{"Cmd":["/bin/sh"],"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}' \
        "$(busybox_rootfs)" "$WORK/l1" >/dev/null
push "$WORK/base" v1 library/alpine:latest
