#!/usr/bin/env python3
"""Seeds for fuzz-supervisor: whole conversations (a guest and three
clients, interleaved), so the fuzzer starts past the handshakes.
usage: seed-supervisor.py DIR"""
import os
import re
import struct
import sys

(HELLO, SETUP, EXEC, STDIN, STDIN_EOF, STDOUT, STDERR, SIGNAL, RESIZE, ACK, STARTED, EXIT, ERROR, SHUTDOWN,
 ATTACH, STOP, WAIT, PROCS, PROC_INFO) = range(1, 20)
EXEC_STDIN, EXEC_TTY, EXEC_KEEP = 1, 4, 128
ATTACH_STDIN, ATTACH_NO_BACKLOG, ATTACH_INFO, ATTACH_NO_OUTPUT = 1, 2, 4, 8
# the version the handshakes must carry, from proto.h
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, '..', '..', 'src', 'proto', 'proto.h')) as f:
    VERSION = int(re.search(r'#define MSB_PROTO_VERSION (\d+)u', f.read()).group(1))


def u32(v):
    return struct.pack('<I', v)


def st(s):
    b = s.encode()
    return u32(len(b)) + b


def fr(t, pl):
    return struct.pack('<IHH', len(pl), t, 0) + pl


def exec_(i, argv, flags=0):
    tty = u32(24) + u32(80) if flags & EXEC_TTY else u32(0) + u32(0)
    return fr(EXEC, u32(i) + u32(flags) + st('') + st('') + u32(len(argv)) + b''.join(st(a) for a in argv) +
              u32(0) + u32(0) + u32(0) + u32(0) + st('') + st('') + u32(0) + tty + u32(0))


def chunk(sel, b):
    return bytes([sel]) + struct.pack('<H', len(b)) + b


hello = fr(HELLO, u32(VERSION) + st('x'))
g1 = hello + fr(STARTED, u32(1) + u32(5)) + fr(STDOUT, u32(1) + b'hi\n') + fr(STDERR, u32(1) + b'e')
c1 = hello + fr(ATTACH, u32(1) + u32(1)) + fr(STDIN, u32(1) + b'x') + fr(ACK, u32(1) + u32(2)) + \
    fr(RESIZE, u32(1) + u32(24) + u32(80))
c2 = hello + exec_(1, ['ls', '-l'], flags=1) + fr(STDIN, u32(1) + b'in') + fr(STDIN_EOF, u32(1))
g2 = fr(STARTED, u32(2) + u32(6)) + fr(STDOUT, u32(2) + b'y' * 100) + fr(ACK, u32(2) + u32(2)) + \
    fr(ACK, u32(1) + u32(1)) + fr(EXIT, u32(2) + u32(0) + u32(0))
g3 = fr(ERROR, u32(3) + st('exec') + u32(2) + st('nope')) + fr(EXIT, u32(1) + u32(0) + u32(3))
os.makedirs(sys.argv[1], exist_ok=True)
with open(os.path.join(sys.argv[1], 'running'), 'wb') as f:
    f.write(bytes([0]) + chunk(0, g1) + chunk(1, c1) + chunk(2, c2) + chunk(0, g2) +
            chunk(3, hello + fr(WAIT, b'')) + chunk(0, g3))
with open(os.path.join(sys.argv[1], 'held'), 'wb') as f:
    f.write(bytes([1]) + chunk(0, hello) + chunk(1, c1) + chunk(0, fr(STARTED, u32(1) + u32(5))) +
            chunk(3, hello + fr(STOP, u32(1) + u32(1000))) + chunk(2, c2) + chunk(0, g2))
# kept processes: a kept cat (id 2) whose client goes, readers attached by
# id (backlog, live, a second writer refused),
# stdin across two writers, the listing, signals and resizes by id, its end
# and a reader of its record; a kept tty (id 3) resized
big = fr(STDOUT, u32(2) + b'z' * 200)  # seeds stay under -max_len
k1 = hello + exec_(1, ['cat'], flags=EXEC_STDIN | EXEC_KEEP) + fr(STDIN, u32(1) + b'a' * 10)
kg1 = fr(STARTED, u32(2) + u32(7)) + fr(STDOUT, u32(2) + b'out\n') + fr(ACK, u32(2) + u32(10)) + big * 2
k2 = hello + fr(ATTACH, u32(2) + u32(ATTACH_STDIN | ATTACH_INFO)) + fr(STDIN, u32(1) + b'bb') + \
    fr(SIGNAL, u32(1) + u32(2)) + fr(ACK, u32(1) + u32(4)) + fr(STDIN_EOF, u32(1))
k3 = hello + fr(ATTACH, u32(2) + u32(ATTACH_STDIN | ATTACH_NO_OUTPUT | ATTACH_INFO))
kg2 = fr(ACK, u32(2) + u32(2)) + big * 3 + fr(EXIT, u32(2) + u32(0) + u32(4))
k4 = hello + fr(PROCS, b'')
k5 = hello + fr(ATTACH, u32(2) + u32(ATTACH_NO_BACKLOG))
k6 = hello + fr(SIGNAL, u32(2) + u32(15))
k7 = hello + exec_(1, ['sh'], flags=EXEC_TTY | EXEC_KEEP | EXEC_STDIN)
k8 = hello + fr(RESIZE, u32(3) + u32(30) + u32(100))
with open(os.path.join(sys.argv[1], 'kept'), 'wb') as f:
    f.write(bytes([0]) + chunk(0, g1) + chunk(1, k1) + chunk(0, kg1) + chunk(2, k2) + chunk(3, k3) +
            chunk(0, kg2) + chunk(3, k4) + chunk(2, k5) + chunk(1, k6))
with open(os.path.join(sys.argv[1], 'kept-tty'), 'wb') as f:
    f.write(bytes([0]) + chunk(1, k7) + chunk(0, fr(STARTED, u32(2) + u32(8))) + chunk(2, hello +
            fr(RESIZE, u32(2) + u32(30) + u32(100))) + chunk(3, k4) + chunk(0, fr(STDOUT, u32(2) + b'$ ')) +
            chunk(3, k8))
