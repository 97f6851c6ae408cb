#!/usr/bin/env python3
"""Seeds for fuzz-supervisor: whole conversations (a guest and three
clients, interleaved), so the fuzzer starts past the handshakes.
usage: seed-supervisor.py DIR"""
import os
import struct
import sys

(HELLO, SETUP, EXEC, STDIN, STDIN_EOF, STDOUT, STDERR, SIGNAL, RESIZE, ACK, STARTED, EXIT, ERROR, SHUTDOWN,
 ATTACH, STOP, WAIT) = range(1, 18)


def u32(v):
    return struct.pack('<I', v)


def st(s):
    b = s.encode()
    return u32(len(b)) + b


def fr(t, pl):
    return struct.pack('<IHH', len(pl), t, 0) + pl


def exec_(i, argv, flags=0):
    return fr(EXEC, u32(i) + u32(flags) + st('') + st('') + u32(len(argv)) + b''.join(st(a) for a in argv) +
              u32(0) + u32(0) + u32(0) + u32(0) + st('') + st('') + u32(0) + u32(0) + u32(0) + u32(0))


def chunk(sel, b):
    return bytes([sel]) + struct.pack('<H', len(b)) + b


hello = fr(HELLO, u32(4) + st('x'))
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
