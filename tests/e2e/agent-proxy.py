#!/usr/bin/env python3
"""Stands in for QEMU under msb (MSB_QEMU) to drive what agentd offers that
`msb run` does not use: terminals, many processes, flow-control windows,
SHUTDOWN, the disk upper.

It starts the real QEMU with a control socket of its own, passes msb's
conversation (the main process, id 1) through, and plays a scenario with
processes of its own (ids >= 2) on the same channel; their frames never
reach msb.  Results go to $MSB_PROXY_LOG as "ok NAME" / "FAIL NAME: why".

  MSB_PROXY_SCENARIO  procs | violation | shutdown | none
  MSB_PROXY_DISK      an image file: attached as virtio-blk, SETUP gets DISK
"""
import ctypes
import os
import selectors
import socket
import struct
import sys
import time

HELLO, SETUP, EXEC, STDIN, STDIN_EOF, STDOUT, STDERR, SIGNAL, RESIZE, ACK, STARTED, EXIT, ERROR, SHUTDOWN = range(1, 15)
EXEC_STDIN, EXEC_IDS, EXEC_TTY, EXEC_MAIN = 1, 2, 4, 8
SETUP_DISK = 1
WINDOW = 256 * 1024
HAS_ID = set(range(STDIN, 17)) - {SHUTDOWN}

log_path = os.environ.get("MSB_PROXY_LOG", "/dev/null")


def log(line):
    with open(log_path, "a") as f:
        f.write(line + "\n")


def frame(t, payload=b""):
    return struct.pack("<IHH", len(payload), t, 0) + payload


def s(x):
    x = x.encode() if isinstance(x, str) else x
    return struct.pack("<I", len(x)) + x


def enc_exec(pid, argv, flags=0, env=(), user="", workdir="", rows=0, cols=0):
    p = struct.pack("<II", pid, flags) + s(workdir) + s(user)
    p += struct.pack("<I", len(argv)) + b"".join(s(a) for a in argv)
    p += struct.pack("<I", len(env)) + b"".join(s(e) for e in env)
    p += struct.pack("<III", 0, 0, 0) + s("") + s("") + struct.pack("<I", 0)
    p += struct.pack("<II", rows, cols)
    p += struct.pack("<I", 0)  # no rlimits
    return frame(EXEC, p)


class Frames:
    """Splits a byte stream into (type, payload, raw frame)."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 8:
            n, t, _ = struct.unpack_from("<IHH", self.buf)
            if len(self.buf) < 8 + n:
                break
            raw, self.buf = self.buf[: 8 + n], self.buf[8 + n :]
            yield t, raw[8:], raw


class Proc:
    def __init__(self):
        self.out = b""
        self.err = b""
        self.exit = None  # (kind, value)
        self.error = None  # (step, errno, message)
        self.started = False
        self.acked = 0  # stdin bytes the guest acknowledged
        self.owed = 0  # output received, not acknowledged
        self.hold = False  # do not acknowledge (a slow reader)


class Proxy:
    def __init__(self, msb, guest):
        self.msb, self.guest = msb, guest
        self.procs = {}
        self.to_guest = b""
        self.to_msb = b""
        self.main_started = False
        self.guest_error0 = None

    def p(self, pid):
        return self.procs.setdefault(pid, Proc())

    def send(self, data):
        self.to_guest += data

    def from_msb(self, t, payload, raw):
        if t == SETUP and os.environ.get("MSB_PROXY_DISK"):
            flags = struct.unpack_from("<I", payload)[0] | SETUP_DISK
            raw = raw[:8] + struct.pack("<I", flags) + raw[12:]
        self.to_guest += raw

    def from_guest(self, t, payload, raw):
        pid = struct.unpack_from("<I", payload)[0] if t in HAS_ID and len(payload) >= 4 else 0
        if t == STARTED and pid == 1:
            self.main_started = True
        if t == ERROR and pid == 0:
            self.guest_error0 = payload
        if pid < 2:
            self.to_msb += raw
            return
        pr = self.p(pid)
        if t in (STDOUT, STDERR):
            data = payload[4:]
            if t == STDOUT:
                pr.out += data
            else:
                pr.err += data
            pr.owed += len(data)
            self.settle(pid)
        elif t == ACK:
            pr.acked += struct.unpack_from("<I", payload, 4)[0]
        elif t == STARTED:
            pr.started = True
        elif t == EXIT:
            pr.exit = struct.unpack_from("<II", payload, 4)
        elif t == ERROR:
            n = struct.unpack_from("<I", payload, 4)[0]
            step = payload[8 : 8 + n].decode()
            err = struct.unpack_from("<i", payload, 8 + n)[0]
            pr.error = (step, err)

    def settle(self, pid):
        pr = self.p(pid)
        if pr.owed and not pr.hold:
            self.send(frame(ACK, struct.pack("<II", pid, pr.owed)))
            pr.owed = 0


def start_qemu(argv):
    """The real QEMU with our end of a new socketpair as its fd 3."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        libc = ctypes.CDLL(None)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: it dies with us
        os.dup2(theirs.fileno(), 3)
        os.execvp("qemu-system-x86_64", ["qemu-system-x86_64"] + argv)
    theirs.close()
    return pid, ours


def check(name, cond, why=""):
    log(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + why))


def scenario_none(px):
    return
    yield


def scenario_violation(px):
    """A frame the guest must never receive: ERROR id 0 and power off."""
    yield lambda: px.main_started
    px.send(frame(STDOUT, struct.pack("<I", 1) + b"x"))


def scenario_shutdown(px):
    """SHUTDOWN while the main process runs: the guest syncs and resets."""
    yield lambda: px.main_started
    px.send(enc_exec(2, ["sh", "-c", "echo from-shutdown >/root/at-shutdown"]))
    yield lambda: px.p(2).exit is not None
    px.send(frame(SHUTDOWN))


def tty_tests(px):
    px.send(enc_exec(2, ["sh", "-c", "stty size; tty; read x; echo got:$x"], EXEC_TTY | EXEC_STDIN, rows=30, cols=100))
    yield lambda: b"/dev/pts/" in px.p(2).out
    px.send(frame(STDIN, struct.pack("<I", 2) + b"hello\n"))
    yield lambda: px.p(2).exit is not None
    o = px.p(2).out
    check("tty size set before exec", b"30 100" in o, repr(o))
    check("tty is a /dev/pts terminal", b"/dev/pts/" in o, repr(o))
    check("tty input and output", b"got:hello" in o, repr(o))
    check("tty exit 0", px.p(2).exit == (0, 0), repr(px.p(2).exit))

    script = 'trap "stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done'
    px.send(enc_exec(3, ["sh", "-c", script], EXEC_TTY, rows=24, cols=80))
    yield lambda: b"ready" in px.p(3).out
    px.send(frame(RESIZE, struct.pack("<III", 3, 40, 120)))
    yield lambda: px.p(3).exit is not None
    check("resize reaches the process (SIGWINCH, new size)", b"40 120" in px.p(3).out, repr(px.p(3).out))

    px.send(enc_exec(4, ["cat"], EXEC_TTY | EXEC_STDIN, rows=24, cols=80))
    px.send(frame(STDIN, struct.pack("<I", 4) + b"abc\n"))
    px.send(frame(STDIN_EOF, struct.pack("<I", 4)))
    yield lambda: px.p(4).exit is not None
    check("STDIN_EOF on a terminal ends cat (VEOF)", px.p(4).exit == (0, 0) and b"abc" in px.p(4).out,
          repr((px.p(4).exit, px.p(4).out)))
    check("terminal input acknowledged", px.p(4).acked == 4, repr(px.p(4).acked))


def error_tests(px):
    px.send(enc_exec(5, ["no-such-cmd"]))
    px.send(enc_exec(6, ["true"], user="no-such-user"))
    px.send(enc_exec(7, ["true"], workdir="relative"))
    px.send(enc_exec(8, ["true"], EXEC_MAIN))
    px.send(enc_exec(20, ["sleep", "100"]))
    px.send(enc_exec(20, ["true"]))
    yield lambda: all(px.p(i).error for i in (5, 6, 7, 8)) and px.p(20).started and px.p(20).error
    check("exec failure is the process's ERROR", px.p(5).error == ("exec", 2), repr(px.p(5).error))
    check("unknown user", px.p(6).error and px.p(6).error[0] == "user", repr(px.p(6).error))
    check("bad workdir", px.p(7).error == ("workdir", 22), repr(px.p(7).error))
    check("a second main process", px.p(8).error == ("exec", 17), repr(px.p(8).error))
    check("an id in use", px.p(20).error == ("exec", 17), repr(px.p(20).error))
    px.send(frame(SIGNAL, struct.pack("<II", 20, 15)))
    yield lambda: px.p(20).exit is not None
    check("SIGNAL to a process", px.p(20).exit == (1, 15), repr(px.p(20).exit))


def window_tests(px):
    slow = px.p(9)
    slow.hold = True
    px.send(enc_exec(9, ["head", "-c", "1000000", "/dev/zero"]))
    px.send(enc_exec(10, ["echo", "ten"]))
    yield lambda: px.p(10).exit is not None and len(slow.out) >= WINDOW
    deadline = time.monotonic() + 1.0
    yield lambda: time.monotonic() > deadline
    check("a slow reader does not hold another process", px.p(10).out == b"ten\n", repr(px.p(10).out))
    check("output stops at the window", len(slow.out) == WINDOW and slow.exit is None,
          "%d bytes, exit %r" % (len(slow.out), slow.exit))
    slow.hold = False
    px.settle(9)
    yield lambda: slow.exit is not None
    check("output resumes on ACK, all of it", len(slow.out) == 1000000 and slow.exit == (0, 0),
          "%d bytes, exit %r" % (len(slow.out), slow.exit))

    px.send(enc_exec(11, ["sh", "-c", "wc -c"], EXEC_STDIN))
    total, sent = 600000, 0
    while sent < total:
        yield lambda: sent - px.p(11).acked + 32768 <= WINDOW
        n = min(32768, total - sent)
        px.send(frame(STDIN, struct.pack("<I", 11) + b"y" * n))
        sent += n
    px.send(frame(STDIN_EOF, struct.pack("<I", 11)))
    yield lambda: px.p(11).exit is not None
    check("stdin through the window", px.p(11).out.strip() == b"600000" and px.p(11).acked == total,
          repr((px.p(11).out, px.p(11).acked)))

    px.send(frame(STDIN, struct.pack("<I", 10) + b"z" * 100))
    px.send(enc_exec(12, ["sleep", "0.2"]))
    px.send(frame(STDIN, struct.pack("<I", 12) + b"z" * 50))
    yield lambda: px.p(10).acked == 100 and px.p(12).acked == 50 and px.p(12).exit is not None
    check("stdin for a process gone or without stdin is acknowledged", True)


def many_tests(px):
    ids = range(100, 140)
    for i in ids:
        px.send(enc_exec(i, ["sh", "-c", "echo %d; sleep 0.3" % i]))
    yield lambda: all(px.p(i).exit is not None for i in ids)
    bad = [i for i in ids if px.p(i).out != b"%d\n" % i or px.p(i).exit != (0, 0)]
    check("40 processes at once", not bad, repr(bad[:3]))


def scenario_procs(px):
    yield lambda: px.main_started
    for part in (tty_tests, error_tests, window_tests, many_tests):
        yield from part(px)
    # the main process ends: everything else is killed, msb gets its EXIT
    px.send(enc_exec(30, ["sleep", "1000"]))
    px.send(enc_exec(31, ["touch", "/tmp/stop"]))
    log("done")


def relay(px, qemu_pid, scenario):
    sel = selectors.DefaultSelector()
    sel.register(px.msb, selectors.EVENT_READ, "msb")
    sel.register(px.guest, selectors.EVENT_READ, "guest")
    fm, fg = Frames(), Frames()
    waiting = None
    while True:
        # advance the scenario as far as it goes
        while scenario and (waiting is None or waiting()):
            try:
                waiting = next(scenario)
            except StopIteration:
                scenario = None
        for sock, attr in ((px.guest, "to_guest"), (px.msb, "to_msb")):
            data = getattr(px, attr)
            if data:
                sock.setblocking(True)
                sock.sendall(data)
                setattr(px, attr, b"")
        for key, _ in sel.select(timeout=0.05):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                if key.data == "msb":
                    os.kill(qemu_pid, 9)
                sel.unregister(sock)
                continue
            for t, payload, raw in (fm if key.data == "msb" else fg).feed(data):
                (px.from_msb if key.data == "msb" else px.from_guest)(t, payload, raw)
        pid, status = os.waitpid(qemu_pid, os.WNOHANG)
        if pid:
            if scenario:
                log("FAIL scenario: the VM stopped before it ended")
            if px.guest_error0:
                log("guest ERROR 0: %r" % px.guest_error0[:200])
            return os.waitstatus_to_exitcode(status)


def main():
    argv = sys.argv[1:]
    if "socket,id=ctl,fd=3" not in argv:
        os.execvp("qemu-system-x86_64", ["qemu-system-x86_64"] + argv)
    disk = os.environ.get("MSB_PROXY_DISK")
    if disk:
        argv += ["-drive", "file=%s,format=raw,if=none,id=disk0", "-device", "virtio-blk-device,drive=disk0"]
        argv[-3] = argv[-3] % disk
    msb = socket.socket(fileno=3)
    qemu_pid, guest = start_qemu(argv)
    px = Proxy(msb, guest)
    name = os.environ.get("MSB_PROXY_SCENARIO", "none")
    sys.exit(relay(px, qemu_pid, globals()["scenario_" + name](px)))


main()
