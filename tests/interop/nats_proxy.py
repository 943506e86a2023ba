"""A TCP proxy between a ternd node and its nats-server that can lose the
acks of JetStream messages, as a nats-server that dies with them on their
way would: the test decides when (drop_acks), and reads how many went
(dropped).

It reads the client's side of the NATS protocol (CONNECT, PING, PONG, SUB,
UNSUB, PUB, HPUB: a line, and for PUB / HPUB a payload of the size the line
gives) and passes everything on but a PUB of "+ACK" (or an empty one, also
an ack) to a "$JS.ACK." subject while drop_acks is set. The server's side
is passed on as it comes.
"""

import socket
import threading

from conftest import HOST, free_port


def _shut(*socks):
    """Ends both directions of a proxied connection: one side closed, the
    other is told at once."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class NatsProxy:
    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.port = free_port()
        self.drop_acks = False
        self.dropped = 0
        self._lock = threading.Lock()
        self._socks = []
        self._stop = False
        self._lsock = socket.socket()
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((HOST, self.port))
        self._lsock.listen(16)
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    @property
    def url(self):
        return "nats://%s:%d" % (HOST, self.port)

    def _accept(self):
        while not self._stop:
            try:
                cs, _ = self._lsock.accept()
            except OSError:
                return
            try:
                us = socket.create_connection((HOST, self.upstream), timeout=5)
                us.settimeout(None)
            except OSError:
                cs.close()
                continue
            with self._lock:
                self._socks += [cs, us]
            threading.Thread(target=self._client_to_server, args=(cs, us), daemon=True).start()
            threading.Thread(target=self._pipe, args=(us, cs), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        _shut(src, dst)

    def _is_ack(self, line, payload):
        words = line.split()
        return (words and words[0].upper() == b"PUB" and len(words) >= 3
                and words[1].startswith(b"$JS.ACK.") and payload in (b"+ACK", b""))

    def _client_to_server(self, src, dst):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                out = []
                while True:
                    eol = buf.find(b"\r\n")
                    if eol < 0:
                        break
                    line = buf[:eol]
                    words = line.split()
                    op = words[0].upper() if words else b""
                    if op in (b"PUB", b"HPUB"):
                        size = int(words[-1])
                        end = eol + 2 + size + 2
                        if len(buf) < end:
                            break
                        payload = buf[eol + 2:eol + 2 + size]
                        packet, buf = buf[:end], buf[end:]
                        if self._is_ack(line, payload):
                            with self._lock:
                                if self.drop_acks:
                                    self.dropped += 1
                                    continue
                        out.append(packet)
                    else:
                        out.append(buf[:eol + 2])
                        buf = buf[eol + 2:]
                if out:
                    dst.sendall(b"".join(out))
        except OSError:
            pass
        _shut(src, dst)

    def stop(self):
        self._stop = True
        try:
            self._lsock.close()
        except OSError:
            pass
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
