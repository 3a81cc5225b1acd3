"""When did the server's ``captured`` frames reach each watcher's socket? Ask the kernel.

A packet socket on the loopback interface (Linux, needs CAP_NET_RAW) receives a copy of every
packet the server sends, filtered in the kernel (classic BPF: outgoing IPv4 TCP from the server's
port), each with the kernel's timestamp (``SO_TIMESTAMPNS``, CLOCK_REALTIME) taken when the packet
was handed to the interface. That time does not depend on when a watcher process gets a CPU to
read and decode the frame, so it measures the server alone. The sniffer runs under SCHED_IDLE: it
reads only when a core is idle and takes no CPU from the server or the watchers; the kernel keeps
the copies (and their timestamps) in a large receive buffer until then.
"""

from __future__ import annotations

import ctypes
import os
import re
import socket
import struct

ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35  # also the control message's type (SCM_TIMESTAMPNS); 64-bit timespec
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4
# One Socket.IO event frame per watcher; the summary is JSON with the keys sorted.
_EVENT = b'42["captured",'
_SEQ = re.compile(rb'"seq": ?(\d+)')


def _filter(port: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF for ``outbound and ip and tcp src port <port>`` (no fragments) on Ethernet."""
    drop = 12
    return [
        (0x30, 0, 0, 0xFFFFF004),  # ldb [SKF_AD_PKTTYPE]
        (0x15, 0, drop - 2, PACKET_OUTGOING),  # jeq OUTGOING (each loopback packet comes twice)
        (0x28, 0, 0, 12),  # ldh [12]: EtherType
        (0x15, 0, drop - 4, 0x0800),  # IPv4
        (0x30, 0, 0, 23),  # ldb [23]: IP protocol
        (0x15, 0, drop - 6, 6),  # TCP
        (0x28, 0, 0, 20),  # ldh [20]: flags and fragment offset
        (0x45, drop - 8, 0, 0x1FFF),  # not a fragment
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf): IP header length
        (0x48, 0, 0, 14),  # ldh [x+14]: TCP source port
        (0x15, 0, drop - 11, port),
        (0x06, 0, 0, 0xFFFF),  # keep the packet
        (0x06, 0, 0, 0),  # drop
    ]


def open_sniffer(port: int) -> socket.socket:
    """A packet socket on ``lo`` that keeps the server's outgoing TCP packets, time-stamped."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    program = _filter(port)
    insns = (ctypes.c_uint64 * len(program))(
        *[
            int.from_bytes(struct.pack("HBBI", code, jt, jf, k), "little")
            for code, jt, jf, k in program
        ]
    )
    fprog = struct.pack("HL", len(program), ctypes.addressof(insns))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 * 1024 * 1024)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024 * 1024)
    sock.bind(("lo", ETH_P_ALL))
    # Packets that passed before the filter was attached would not be filtered: read them away.
    sock.setblocking(False)
    try:
        while True:
            sock.recv(65536)
    except BlockingIOError:
        pass
    sock.setblocking(True)
    return sock


def parse(packet: bytes) -> tuple[int, list[int]]:
    """Return (destination port, seqs of the ``captured`` events) of one outgoing packet."""
    ip = 14
    ihl = (packet[ip] & 0x0F) * 4
    tcp = ip + ihl
    dport = int.from_bytes(packet[tcp + 2 : tcp + 4], "big")
    payload = packet[tcp + (packet[tcp + 12] >> 4) * 4 :]
    seqs = []
    start = payload.find(_EVENT)
    while start != -1:
        m = _SEQ.search(payload, start)
        if m is None:
            break
        seqs.append(int(m.group(1)))
        start = payload.find(_EVENT, m.end())
    return dport, seqs


def sniff(port: int, ready, stop, results) -> None:
    """Process body: record (seq, watcher port, kernel ns) for every frame until ``stop``."""
    try:
        sock = open_sniffer(port)
    except (OSError, AttributeError) as exc:  # not Linux, or no CAP_NET_RAW
        ready.put(f"{type(exc).__name__}: {exc}")
        return
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        os.nice(19)
    ready.put(None)
    seen: list[tuple[int, int, int]] = []
    cmsg_space = socket.CMSG_SPACE(16)
    sock.settimeout(0.2)
    while True:
        try:
            packet, ancdata, _, _ = sock.recvmsg(65536, cmsg_space)
        except TimeoutError:
            if stop.is_set():
                break
            continue
        dport, seqs = parse(packet)
        if not seqs:
            continue
        ns = 0
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                ns = sec * 1_000_000_000 + nsec
        for seq in seqs:
            seen.append((seq, dport, ns))
    _, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    sock.close()
    results.put((seen, drops))
