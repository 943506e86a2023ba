#!/usr/bin/python3
"""Writes the seed corpus of fuzz_proxy (the PROXY protocol header decoder,
src/broker/proxy_proto.c): v1 lines and v2 headers as HAProxy writes them,
and the PP2_TYPE_SSL TLVs of a proxy that ended the client's TLS
(send-proxy-v2-ssl, send-proxy-v2-ssl-cn), well-formed and not.

    /usr/bin/python3 fuzz/gen_proxy_seeds.py [OUTDIR]

(default fuzz/corpus/fuzz_proxy/). Each seed is fuzz_proxy.c's input: one
byte for the version (even: 1, odd: 2), then the bytes a connection brings,
here a header followed by the start of a CONNECT. The headers are built from
the specification (haproxy.org/download/2.9/doc/proxy-protocol.txt, sections
2.1, 2.2 and 2.2.5), independently of ternd's decoder.
"""
import os
import socket
import struct
import sys

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
CONNECT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"
SSL, CERT_CONN, CERT_SESS = 0x01, 0x02, 0x04


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def ssl_tlv(client=SSL | CERT_CONN | CERT_SESS, verify=0, cn=None, extra=b""):
    sub = tlv(0x21, b"TLSv1.3")
    if cn is not None:
        sub += tlv(0x22, cn)
    sub += extra
    return tlv(0x20, bytes([client]) + struct.pack("!I", verify) + sub)


def v2(tlvs=b"", cmd=0x21, fam=0x11):
    if fam >> 4 == 1:
        addr = socket.inet_aton("203.0.113.7") + socket.inet_aton("10.0.0.1") + \
            struct.pack("!HH", 50000, 1883)
    elif fam >> 4 == 2:
        addr = socket.inet_pton(socket.AF_INET6, "2001:db8::7") + \
            socket.inet_pton(socket.AF_INET6, "2001:db8::1") + struct.pack("!HH", 50000, 1883)
    elif fam >> 4 == 3:
        addr = b"/run/haproxy.sock".ljust(108, b"\0") + b"/run/ternd.sock".ljust(108, b"\0")
    else:
        addr = b""
    body = addr + tlvs
    return SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


def seeds():
    yield "v1-tcp4", 0, b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 1883\r\n"
    yield "v1-tcp6", 0, b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 1883\r\n"
    yield "v1-unknown", 0, b"PROXY UNKNOWN\r\n"
    yield "v2-ipv4", 1, v2()
    yield "v2-ipv6", 1, v2(fam=0x21)
    yield "v2-unix", 1, v2(fam=0x31)
    yield "v2-local", 1, v2(cmd=0x20, fam=0x00)
    yield "v2-ssl-no-cert", 1, v2(ssl_tlv(client=SSL))
    yield "v2-ssl-cert-cn", 1, v2(ssl_tlv(cn=b"sensor-1"))
    yield "v2-ssl-cert-sess-cn", 1, v2(ssl_tlv(client=SSL | CERT_SESS, cn=b"sensor-1"))
    yield "v2-ssl-cert-no-cn", 1, v2(ssl_tlv())
    yield "v2-ssl-verify-failed", 1, v2(ssl_tlv(verify=20, cn=b"mallory"))
    yield "v2-ssl-cn-utf8", 1, v2(ssl_tlv(cn="Jos\u00e9 \u6771\u4eac".encode()))
    yield "v2-ssl-cn-longest", 1, v2(ssl_tlv(cn=b"c" * 256))
    yield "v2-ssl-all-subtlvs", 1, v2(
        tlv(0x01, b"mqtt") +
        ssl_tlv(cn=b"bob", extra=tlv(0x23, b"TLS_AES_256_GCM_SHA384") +
                tlv(0x24, b"SHA256") + tlv(0x25, b"RSA2048")) +
        tlv(0x04, b"\0\0\0") + tlv(0x05, b"u" * 16), fam=0x21)
    # Malformed: the CN running past the SSL TLV into the next TLV, a
    # NUL or a control character in it, ill-formed UTF-8, one too long,
    # two CNs, two SSL TLVs, an SSL TLV too short for its fixed part, a
    # sub-TLV cut short.
    yield "v2-bad-cn-past-tlv", 1, v2(ssl_tlv(cn=b"eve")[:-6] + b"\x22\x00\x04eve" +
                                      tlv(0x41, b"mqtt"))
    yield "v2-bad-cn-nul", 1, v2(ssl_tlv(cn=b"ev\0e"))
    yield "v2-bad-cn-control", 1, v2(ssl_tlv(cn=b"a\nb"))
    yield "v2-bad-cn-utf8", 1, v2(ssl_tlv(cn=b"\xc3\x28"))
    yield "v2-bad-cn-too-long", 1, v2(ssl_tlv(cn=b"c" * 257))
    yield "v2-bad-two-cns", 1, v2(ssl_tlv(cn=b"a", extra=tlv(0x22, b"b")))
    yield "v2-bad-two-ssl", 1, v2(ssl_tlv() + ssl_tlv(cn=b"b"))
    yield "v2-bad-ssl-short", 1, v2(tlv(0x20, b"\x07\0\0\0"))
    yield "v2-bad-subtlv-cut", 1, v2(tlv(0x20, b"\x07\0\0\0\0\x22\x00"))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "fuzz_proxy")
    os.makedirs(out, exist_ok=True)
    for name, version, header in seeds():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(bytes([version]) + header + CONNECT)


if __name__ == "__main__":
    main()
