#!/usr/bin/env python3
"""Seeds for fuzz-net: conversations in its record format (see
tests/fuzz/fuzz-net.c): frames of every kind the engine parses, from the
guest and from passt, DNS queries and answers (with compression and CNAMEs)
the engine will match, and time passing.
usage: seed-net.py DIR"""
import ipaddress
import os
import struct
import sys

GMAC = bytes.fromhex('525400123456')
WMAC = bytes.fromhex('9a559a559a55')
G4, GW4 = '10.0.2.15', '10.0.2.2'
G6, GW6 = 'fd00:6d73:6200::15', 'fd00:6d73:6200::2'


def rec(op, b=b''):
    return bytes([op]) + struct.pack('>H', len(b)) + b


def tick(n):
    return bytes([3]) + struct.pack('>H', n)


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('>%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip(src, dst, proto, l4, opts=b'', frag=0, ext=b'', from_guest=True):
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    eth = (WMAC + GMAC) if from_guest else (GMAC + WMAC)
    if s.version == 4:
        hl = 20 + len(opts)
        h = struct.pack('>BBHHHBBH4s4s', 0x40 | hl // 4, 0, hl + len(l4), 1, frag, 64, proto, 0, s.packed, d.packed) + opts
        h = h[:10] + struct.pack('>H', csum(h)) + h[12:]
        return eth + b'\x08\x00' + h + l4
    nh = proto
    if ext:
        nh, ext = ext[0], ext[1:]
    h = struct.pack('>IHBB16s16s', 0x60000000, len(ext) + len(l4), nh, 64, s.packed, d.packed)
    return eth + b'\x86\xdd' + h + ext + l4


def tcp(sp, dp, flags, seq=1, ack=0, data=b''):
    return struct.pack('>HHIIBBHHH', sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + data


def udp(sp, dp, data):
    return struct.pack('>HHHH', sp, dp, 8 + len(data), 0) + data


def icmp(t, code=0, ident=7, data=b'abcdefgh'):
    return struct.pack('>BBHHH', t, code, 0, ident, 1) + data


def name(n):
    return b''.join(bytes([len(x)]) + x.encode() for x in n.split('.') if x) + b'\0'


def query(qid, qname, qtype=1, edns=0):
    q = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 1 if edns else 0) + name(qname) + struct.pack('>HH', qtype, 1)
    if edns:
        q += b'\0' + struct.pack('>HHIH', 41, edns, 0, 0)
    return q


def answer_body(rrs, owner=0xc00c):
    """answer records after a 12-byte header and a spliced-in question"""
    out = b''
    for r in rrs:
        if r.startswith('cname:'):
            tgt = name(r[6:])
            out += struct.pack('>HHHIH', owner, 5, 1, 60, len(tgt)) + tgt
        else:
            a = ipaddress.ip_address(r)
            out += struct.pack('>HHHIH', owner, 1 if a.version == 4 else 28, 1, 60, len(a.packed)) + a.packed
    return out


def answer(rrs, rcode=0):
    # op 2 with bits 4 and 5: the id and question are the engine's own
    hdr = struct.pack('>HHHHHH', 0, 0x8180 | rcode, 1, len(rrs), 0, 0)
    return rec(2 | 0x30, hdr + answer_body(rrs))


def flow(addr_i, proto_sel, sp, dp, flags, payload=b'', ingress=False):
    return rec(5 | (0x10 if ingress else 0), bytes([addr_i, proto_sel]) + struct.pack('>HHB', sp, dp, flags) + payload)


arp = WMAC + GMAC + b'\x08\x06' + struct.pack('>HHBBH', 1, 0x0800, 6, 4, 1) + GMAC + bytes([10, 0, 2, 15]) + \
    b'\0' * 6 + bytes([10, 0, 2, 2])
hbh = bytes([0, 60, 0]) + b'\x01\x04\0\0\0\0'[:6]  # hop-by-hop (next: dest opts), 8 bytes
dst_opts = bytes([6, 0]) + b'\x01\x04\0\0\0\0'
ext_chain = bytes([0]) + bytes([60, 0]) + b'\x01\x04\0\0\0\0' + dst_opts
frag6 = bytes([44]) + bytes([17, 0, 0, 1, 0, 0, 0, 9])
routing = bytes([43]) + bytes([6, 0, 0, 0, 0, 0, 0, 0])

seeds = {
    'public-mix': bytes([0]) +
    rec(0, arp) +
    rec(0, ip(G4, '203.0.113.10', 6, tcp(40000, 443, 0x02))) +
    rec(0, ip(G4, '10.1.2.3', 6, tcp(40001, 80, 0x10, 5, 9))) +
    rec(0, ip(G4, '8.8.8.8', 17, udp(5000, 123, b'ntp'))) +
    rec(0, ip(G4, '8.8.8.8', 1, icmp(8))) +
    rec(0, ip(G4, '8.8.8.8', 6, tcp(1, 2, 0x02), opts=b'\x94\x04\0\0')) +
    rec(0, ip(G4, '8.8.8.8', 17, udp(1, 2, b'x' * 16), frag=0x2000)) +
    rec(0, ip(G6, '2001:db8::1', 6, tcp(40002, 443, 0x02), ext=ext_chain)) +
    rec(0, ip(G6, '2001:db8::1', 17, udp(1, 2, b'x'), ext=frag6)) +
    rec(0, ip(G6, '2001:db8::1', 6, tcp(40003, 80, 0x02), ext=routing)) +
    rec(0, ip('fe80::15', 'ff02::1:ff00:2', 58, icmp(135, data=b'\0' * 16))) +
    rec(0, ip(G6, '2001:db8::1', 58, icmp(128))) +
    tick(100),
    'dns': bytes([0]) +
    rec(4, query(0x1234, 'www.good.test', 1)) +
    answer(['cname:edge.cdn.example', '10.9.9.9', '2001:db8::9']) +
    flow(3, 0, 40000, 443, 0x02) +
    rec(4, query(0x1235, 'bad.test', 28)) +
    rec(4 | 0x10, query(0x1236, 'example.org', 1, edns=1232)) +
    answer(['203.0.113.10', '10.1.2.3']) +
    rec(4, query(0x1237, 'big.example', 1)) +
    answer(['203.0.113.%d' % i for i in range(1, 40)]) +
    rec(4, query(0x1238, 'slow.example', 16)) +
    tick(600),
    'ingress': bytes([1]) +
    flow(5, 0, 50000, 80, 0x02, ingress=True) +
    flow(2, 0, 50001, 8080, 0x02, ingress=True) +
    flow(2, 0, 8080, 50001, 0x12) +
    flow(5, 1, 999, 5353, 0, b'hi', ingress=True) +
    rec(1, ip('203.0.113.7', G4, 6, tcp(50002, 22, 0x02), from_guest=False)) +
    tick(65535),
    'evict': bytes([8]) + b''.join(flow(i % 16, i % 4, 1000 + i, 80, 0x02) for i in range(20)) + tick(1) +
    b''.join(flow(i % 16, 0, 1000 + i, 80, 0x11) for i in range(20)),
    'all-modes-defaults': bytes([7]) +
    b''.join(flow(i, 0, 2000 + i, 25, 0x02) + flow(i, 2, i, 0, 8) for i in range(16)),
    'dns-malformed': bytes([2]) +
    rec(4, query(1, 'a.test')[:5]) +
    rec(4, struct.pack('>HHHHHH', 2, 0x0100, 2, 0, 0, 0)) +
    rec(4, struct.pack('>HHHHHH', 3, 0x0100, 1, 0, 0, 0) + b'\xc0\x0c\0\1\0\1') +
    rec(4, query(4, 'x.test')) +
    rec(2 | 0x30, struct.pack('>HHHHHH', 0, 0x8180, 1, 2, 0, 0) +
        struct.pack('>HHHIH', 0xc00c, 5, 1, 60, 2) + b'\xc0\x0c' +
        struct.pack('>HHHIH', 0xc040, 1, 1, 60, 4) + b'\x01\x02\x03\x04'),
    'rule-text': b'\xff' + b'allow:egress@[fd00::/8]:tcp:80-90',
    'port-text': b'\xff' + b'[::1]:8080:80/udp',
    # denied flows fill the reply queue, one frame is written out, more come (the queue
    # compacts); then 200 s pass with no tick, so a flow expires when looked up
    'partial-drain': bytes([0]) + b''.join(flow(3, 0, 3000 + i, 99, 0x02) for i in range(8)) + rec(3 | 0x20) +
    b''.join(flow(3, 1, 3000 + i, 99, 0) for i in range(8)) + bytes([3 | 0x10]) + struct.pack('>H', 20000) +
    flow(3, 1, 3000, 99, 0),
}

os.makedirs(sys.argv[1], exist_ok=True)
for k, v in seeds.items():
    with open(os.path.join(sys.argv[1], k), 'wb') as f:
        f.write(v)
