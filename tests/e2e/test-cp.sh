#!/usr/bin/env bash
# End-to-end: msb cp between the host and a named sandbox (one sandbox
# boot for most tests): big files both ways in little memory, trees with
# their modes, times, symlinks and hard links, docker cp's landing rules, a
# hostile guest tree, a host tree with symlinks out of it, a stopped
# sandbox booted for the copy, and errors that change nothing.
. "$(dirname "$0")/lib.sh"

SB=e2e-cp-$$
trap '"$MSB" rm -f "$SB" "e2e-cpc-$$" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

sb_status() { "$MSB" ls -a --format json | python3 -c "
import json,sys
for s in json.load(sys.stdin):
    if s['name'] == sys.argv[1]: print(s['status'], s['exit_code'])" "$1"; }

# A tree's description, one line per entry: type, mode, mtime (ns), size,
# content hash, link target, and which earlier entry it is a hard link of.
manifest() {
        python3 - "$1" <<'EOF'
import hashlib, os, stat, sys
top = sys.argv[1]
seen = {}
for dirpath, dirs, files in sorted(os.walk(top)):
    dirs.sort()
    for n in sorted(dirs + files) if dirpath != top else [""] + sorted(dirs + files):
        p = os.path.join(dirpath, n) if n else top
        st = os.lstat(p)
        rel = os.path.relpath(p, top)
        kind = "d" if stat.S_ISDIR(st.st_mode) else "l" if stat.S_ISLNK(st.st_mode) else "f"
        extra = ""
        if kind == "f":
            extra = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
            if st.st_nlink > 1:
                extra += " link-of=" + seen.setdefault(st.st_ino, rel)
        elif kind == "l":
            extra = "-> " + os.readlink(p)
        mode = "" if kind == "l" else oct(st.st_mode & 0o7777)
        mtime = st.st_mtime_ns
        print(kind, mode, mtime, st.st_size if kind == "f" else "", extra, rel)
EOF
}

# peak RSS (kB) of a command run under /usr/bin/time -v, whose output is in $1
peak_rss() { awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$1"; }

t_01_start() {
        run_msb run -d --name "$SB" busybox -- sleep 100000
        assert_eq status 0 "$RC"
}

t_02_200mb_both_ways_in_little_memory() {
        head -c 200000000 /dev/urandom >"$WORK/big"
        want=$(sha256sum <"$WORK/big" | cut -d' ' -f1)
        local t0=$SECONDS
        /usr/bin/time -v "$MSB" cp "$WORK/big" "$SB:/root/big" 2>"$WORK/time-in" || fail "cp in failed: $(tail -3 "$WORK/time-in")"
        local tin=$((SECONDS - t0))
        run_msb exec "$SB" sha256sum /root/big
        assert_eq "checksum in the guest" "$want" "${OUT%% *}"
        t0=$SECONDS
        /usr/bin/time -v "$MSB" cp "$SB:/root/big" "$WORK/back" 2>"$WORK/time-out" || fail "cp out failed"
        local tout=$((SECONDS - t0))
        assert_eq "checksum back on the host" "$want" "$(sha256sum <"$WORK/back" | cut -d' ' -f1)"
        rin=$(peak_rss "$WORK/time-in") rout=$(peak_rss "$WORK/time-out")
        echo "    200 MB: in ${tin}s (peak RSS ${rin} kB), out ${tout}s (peak RSS ${rout} kB)"
        [ "$rin" -lt 51200 ] || fail "cp in peaked at $rin kB"
        [ "$rout" -lt 51200 ] || fail "cp out peaked at $rout kB"
        rm -f "$WORK/big" "$WORK/back"
        run_msb exec "$SB" rm /root/big
}

make_tree() { # make_tree DIR: every kind of entry, odd modes and times
        local d=$1 long
        long=$(printf 'n%.0s' $(seq 1 150))
        mkdir -p "$d/sub/deeper" "$d/ro" "$d/$long"
        echo hello >"$d/f"
        : >"$d/empty"
        echo deep >"$d/sub/deeper/g"
        echo "$long" >"$d/$long/$long"
        printf 'x%.0s' $(seq 1 5000) >"$d/sub/5k"
        echo ro >"$d/ro/inside"
        ln "$d/f" "$d/sub/hard"
        ln -s f "$d/rel"
        ln -s /etc/passwd "$d/abs"
        ln -s ../../f "$d/sub/deeper/up"
        ln -s "$long" "$d/to-long"
        chmod 0640 "$d/f"
        chmod 0700 "$d/sub"
        chmod 0751 "$d/sub/deeper"
        chmod 0555 "$d/ro"
        chmod 1777 "$d/$long"
        touch -h -d @981173106.123456789 "$d/f" "$d/rel" "$d/sub/deeper/g"
        touch -d @1286705410.5 "$d/sub/deeper" "$d/ro" "$d/sub"
}

t_03_tree_round_trip() {
        make_tree "$WORK/tree"
        manifest "$WORK/tree" >"$WORK/m-host"
        run_msb cp "$WORK/tree" "$SB:/t"
        assert_eq "cp in" 0 "$RC"
        assert_eq "nothing said" "" "$ERR"
        run_msb exec "$SB" sh -c 'stat -c "%a %Y %h" /t/f /t/ro /t/sub; readlink /t/abs; readlink /t/sub/deeper/up;
                [ "$(stat -c %i /t/f)" = "$(stat -c %i /t/sub/hard)" ] && echo same-inode'
        assert_eq "in the guest" "640 981173106 2
555 1286705410 2
700 1286705410 3
/etc/passwd
../../f
same-inode" "$OUT"
        run_msb cp "$SB:/t" "$WORK/back"
        assert_eq "cp out" 0 "$RC"
        manifest "$WORK/back" >"$WORK/m-back"
        diff "$WORK/m-host" "$WORK/m-back" >&2 || fail "the tree came back different"
        chmod -R u+w "$WORK/back" "$WORK/tree"
        rm -rf "$WORK/back"
}

t_04_where_copies_land() {
        local h=$WORK/land
        mkdir -p "$h/into" "$h/contents"
        echo old >"$h/file"
        # out of the sandbox: file to a new path, file into a directory,
        # directory to a new path and into a directory, DIR/., file over file
        "$MSB" cp "$SB:/t/f" "$h/newfile" && "$MSB" cp "$SB:/t/f" "$h/into" && "$MSB" cp "$SB:/t/sub" "$h/newdir" &&
                "$MSB" cp "$SB:/t/sub" "$h/into" && "$MSB" cp "$SB:/t/sub/." "$h/contents" &&
                "$MSB" cp "$SB:/t/f" "$h/file" || fail "a copy out failed"
        assert_eq "file to a new path" hello "$(cat "$h/newfile")"
        assert_eq "file into a dir" hello "$(cat "$h/into/f")"
        assert_eq "dir to a new path" deep "$(cat "$h/newdir/deeper/g")"
        assert_eq "dir into a dir" deep "$(cat "$h/into/sub/deeper/g")"
        assert_eq "DIR/. contents" deep "$(cat "$h/contents/deeper/g")"
        assert_eq "file over a file" hello "$(cat "$h/file")"
        run_msb cp "$SB:/t/sub" "$h/file"
        assert_eq "dir over a file" 125 "$RC"
        assert_contains "says why" "cannot overwrite non-directory" "$ERR"
        assert_eq "the file is intact" hello "$(cat "$h/file")"
        run_msb cp "$SB:/t/f" "$h/nodir/"
        assert_eq "file to a missing dir/" 125 "$RC"
        # into the sandbox, the same rules (agentd's side)
        run_msb exec "$SB" sh -c 'mkdir -p /in/into /in/contents && echo old >/in/file'
        "$MSB" cp "$h/newfile" "$SB:/in/newfile" && "$MSB" cp "$h/newfile" "$SB:/in/into" &&
                "$MSB" cp "$h/newdir" "$SB:/in/newdir" && "$MSB" cp "$h/newdir" "$SB:/in/into" &&
                "$MSB" cp "$h/newdir/." "$SB:/in/contents" && "$MSB" cp "$h/newfile" "$SB:/in/file" ||
                fail "a copy in failed"
        run_msb exec "$SB" sh -c 'cat /in/newfile /in/into/newfile /in/newdir/deeper/g /in/into/newdir/deeper/g /in/contents/deeper/g /in/file'
        assert_eq "landed in the guest" "hello
hello
deep
deep
deep
hello" "$OUT"
        run_msb cp "$h/newdir" "$SB:/in/file"
        assert_eq "dir over a file in the guest" 125 "$RC"
        assert_contains "says why" "cannot overwrite a non-directory" "$ERR"
        run_msb exec "$SB" sh -c 'cat /in/file; ls -a /in | grep -c msb-cp'
        assert_eq "guest file intact, no temporary left" "hello
0" "$OUT"
        ls -A "$h" | grep -q msb-cp && fail "a temporary directory was left on the host"
        true
}

# What the guest presents may not reach outside DST: symlinks out, symlinks
# up, special files, and a host symlink waiting where the copy goes.
t_05_hostile_guest_tree() {
        run_msb exec "$SB" sh -c 'mkdir -p /x/d && ln -s /etc /x/link && ln -s ../../../.. /x/up &&
                echo data >/x/d/file && mkfifo /x/fifo && mknod /x/null c 1 3 && ln -s /x/d /x/d2 &&
                echo "..name" >"/x/..dots" && echo wh >/x/.wh.file && chmod 4755 /x/d/file'
        assert_eq "guest tree" 0 "$RC"
        mkdir -p "$WORK/h5/dst" "$WORK/h5/elsewhere"
        run_msb cp "$SB:/x" "$WORK/h5/dst"
        assert_eq "cp out" 0 "$RC"
        assert_contains "special files counted" "2 special files" "$ERR"
        assert_eq "link stays a link" /etc "$(readlink "$WORK/h5/dst/x/link")"
        assert_eq "up stays a link" ../../../.. "$(readlink "$WORK/h5/dst/x/up")"
        [ -L "$WORK/h5/dst/x/d2" ] || fail "d2 is not a symlink"
        assert_eq ".wh. is a name" wh "$(cat "$WORK/h5/dst/x/.wh.file")"
        assert_eq "..dots is a name" ..name "$(cat "$WORK/h5/dst/x/..dots")"
        assert_eq "setuid dropped" 755 "$(stat -c %a "$WORK/h5/dst/x/d/file")"
        [ -e "$WORK/h5/dst/x/fifo" ] || [ -e "$WORK/h5/dst/x/null" ] && fail "a special file was made"
        assert_eq "nothing but dst and elsewhere" "dst elsewhere" "$(ls "$WORK/h5" | xargs)"
        # a host symlink where a directory of the copy goes is not followed
        rm -rf "$WORK/h5/dst/x"
        ln -s "$WORK/h5/elsewhere" "$WORK/h5/dst/x"
        run_msb cp "$SB:/x" "$WORK/h5/dst"
        assert_eq "refused" 125 "$RC"
        assert_eq "nothing written through the symlink" "" "$(ls -A "$WORK/h5/elsewhere")"
}

# Copying in reads nothing outside SRC: its symlinks go in as symlinks.
t_06_host_tree_with_symlinks_out() {
        mkdir -p "$WORK/h6/src"
        echo TOP-SECRET-$$ >"$WORK/h6/secret"
        ln -s ../secret "$WORK/h6/src/up"
        ln -s "$WORK/h6/secret" "$WORK/h6/src/abs"
        ln -s "$WORK/h6" "$WORK/h6/src/dir"
        run_msb cp "$WORK/h6/src" "$SB:/h6"
        assert_eq "cp in" 0 "$RC"
        run_msb exec "$SB" sh -c 'readlink /h6/up; readlink /h6/abs; find /h6 -type f | wc -l; find /h6 -type l | wc -l'
        assert_eq "links came as links, no file came" "../secret
$WORK/h6/secret
0
3" "$OUT"
}

t_07_errors_change_nothing() {
        mkdir -p "$WORK/e"
        run_msb cp "$SB:/no/such/path" "$WORK/e/x"
        assert_eq "missing guest path" 125 "$RC"
        assert_contains "names it" "/no/such/path" "$ERR"
        assert_eq "one line" 1 "$(printf '%s\n' "$ERR" | wc -l)"
        run_msb cp "$WORK/e/nope" "$SB:/root/"
        assert_eq "missing host path" 125 "$RC"
        assert_contains "names it" "$WORK/e/nope" "$ERR"
        run_msb cp "$WORK/e" "no-such-sandbox-$$:/x"
        assert_eq "unknown sandbox" 125 "$RC"
        assert_contains "names it" "no-such-sandbox-$$" "$ERR"
        run_msb cp "no-such-sandbox-$$:/x" "$WORK/e/x"
        assert_eq "unknown sandbox, out" 125 "$RC"
        run_msb cp "$SB:/t" "$SB:/u"
        assert_eq "both sides" 125 "$RC"
        run_msb cp "$WORK/e" "$WORK/f"
        assert_eq "neither side" 125 "$RC"
        run_msb cp "$SB:/t/f" "$WORK/e/no/parent"
        assert_eq "missing host parent" 125 "$RC"
        assert_contains "names it" "$WORK/e/no" "$ERR"
        run_msb cp "$WORK/e" "$SB:/no/parent/here"
        assert_eq "missing guest parent" 125 "$RC"
        run_msb cp "$SB:" "$WORK/e/x"
        assert_eq "empty guest path" 125 "$RC"
        assert_eq "nothing was created" "" "$(ls -A "$WORK/e")"
        run_msb exec "$SB" sh -c 'ls -d /no 2>/dev/null; ls -a /root | grep -c msb-cp'
        assert_eq "nothing in the guest" 0 "$OUT"
}

t_08_tar_streams() {
        "$MSB" cp "$SB:/t/sub" - | tar -tf - >"$WORK/list" || fail "cp to -"
        assert_contains "a tar on stdout" "sub/deeper/g" "$(cat "$WORK/list")"
        mkdir -p "$WORK/h8" && echo piped >"$WORK/h8/p"
        tar -cf - -C "$WORK/h8" . | "$MSB" cp - "$SB:/piped" || fail "cp from -"
        run_msb exec "$SB" cat /piped/p
        assert_eq "a tar from stdin" piped "$OUT"
}

t_09_stopped_sandbox_boots_and_stops() {
        run_msb stop -t 0 "$SB"
        assert_eq "stopped" "stopped 137" "$(sb_status "$SB")"
        local before
        before=$(leak_snapshot)
        echo while-stopped >"$WORK/ws"
        run_msb cp "$WORK/ws" "$SB:/root/ws"
        assert_eq "cp into a stopped sandbox" 0 "$RC"
        assert_eq "still stopped, same exit code" "stopped 137" "$(sb_status "$SB")"
        run_msb cp "$SB:/root/ws" "$WORK/ws-back"
        assert_eq "cp out of a stopped sandbox" 0 "$RC"
        assert_eq "it was kept on its disk" while-stopped "$(cat "$WORK/ws-back")"
        assert_eq "still stopped" "stopped 137" "$(sb_status "$SB")"
        assert_eq "no VM or runtime dir left" "$before" "$(leak_snapshot)"
        run_msb create --name "e2e-cpc-$$" busybox -- sleep 1000
        run_msb cp "$WORK/ws" "e2e-cpc-$$:/ws"
        assert_eq "cp into a created sandbox" 0 "$RC"
        assert_eq "still created" "created -1" "$(sb_status "e2e-cpc-$$" | sed 's/None/-1/')"
        run_msb start "e2e-cpc-$$"
        run_msb exec "e2e-cpc-$$" cat /ws
        assert_eq "its first start finds the copy" while-stopped "$OUT"
        "$MSB" rm -f "e2e-cpc-$$" >/dev/null
}

t_10_remove() {
        run_msb rm -f "$SB"
        assert_eq rm 0 "$RC"
}

run_tests
