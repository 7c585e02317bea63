"""Writes the seed corpora of `make fuzz` into DIR/http and DIR/uwsgi:
a few valid requests of each kind, for the fuzzer to mutate."""

import os
import struct
import sys

HTTP = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /p?q=1 HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5 ; a=\"b c\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"GET http://u:p@h:8/x#f HTTP/1.1\r\nHost: a\r\nHost: b\r\n x\r\n\r\n",
    b"OPTIONS * HTTP/1.0\r\n\r\n",
    b"PROPFIND /d HTTP/1.1\r\nHost: [::1]:80\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz",
]


def uwsgi(pairs, body=b""):
    payload = b""
    for k, v in pairs:
        payload += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return struct.pack("<BHB", 0, len(payload), 0) + payload + body


UWSGI = [
    uwsgi([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/x?y"), (b"HTTP_HOST", b"h")]),
    uwsgi([(b"REQUEST_METHOD", b"POST"), (b"CONTENT_LENGTH", b"3"), (b"HTTP_A", b"1"),
           (b"HTTP_A", b"2"), (b"HTTP_COOKIE", b"k=v")], b"abc"),
    uwsgi([(b"REQUEST_METHOD", b"HEAD"), (b"REQUEST_METHOD", b"GET")]),
    uwsgi([(b"PATH_INFO", b"/\r\n\x00")]),
]


def main(out):
    for name, seeds in (("http", HTTP), ("uwsgi", UWSGI)):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        for i, s in enumerate(seeds):
            # http: the first byte picks piece size and limits.
            data = (bytes([i * 37 % 256]) + s) if name == "http" else s
            with open(os.path.join(d, "seed%d" % i), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
