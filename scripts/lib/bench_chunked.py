#!/usr/bin/python3
"""A chunked blob push, for scripts/bench.

    bench_chunked.py URL REPO FILE DIGEST CHUNK_BYTES

POST an upload session, PATCH the file in CHUNK_BYTES pieces (each with
Content-Range, each to the Location the previous answer gave), then PUT
?digest=DIGEST with no body.  The Authorization header, if any, comes
from the environment (BENCH_AUTH).  Chunks are read from the file before
the clock starts (they come from the page cache anyway), so the time is
the registry's and the wire's, not this script's.

Each request goes on a connection of its own: a connect on loopback
costs microseconds against a 16 MiB body, and this keeps one registry's
keep-alive handling (scripts/bench's concurrent-push row tests that) out
of the throughput figure.

Prints: BENCH status=ok|error seconds=S bytes=N [detail]
"""

import http.client
import os
import sys
import time
import urllib.parse


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    base, repo, path, digest, chunk = sys.argv[1:6]
    chunk = int(chunk)
    auth = os.environ.get("BENCH_AUTH", "")
    u = urllib.parse.urlsplit(base)
    host, port = u.hostname, u.port or 80

    size = os.path.getsize(path)
    chunks = []
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            chunks.append(b)

    def request(method, target, body=b"", headers=None):
        h = dict(headers or {})
        if auth:
            h["Authorization"] = auth
        h["Content-Length"] = str(len(body))
        c = http.client.HTTPConnection(host, port, timeout=300)
        try:
            c.request(method, target, body=body if body else None, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, r, data
        finally:
            c.close()

    def target_of(loc):
        t = urllib.parse.urlsplit(loc)
        return t.path + ("?" + t.query if t.query else "")

    def fail(what):
        print("BENCH status=error seconds=0 bytes=%d %s" % (size, what))
        sys.exit(0)

    t0 = time.monotonic()
    st, r, data = request("POST", "/v2/%s/blobs/uploads/" % repo)
    if st != 202 or not r.getheader("Location"):
        fail("POST: %d %r" % (st, data[:200]))
    loc = target_of(r.getheader("Location"))
    off = 0
    for b in chunks:
        st, r, data = request("PATCH", loc, b, {
            "Content-Type": "application/octet-stream",
            "Content-Range": "%d-%d" % (off, off + len(b) - 1)})
        if st != 202 or not r.getheader("Location"):
            fail("PATCH at %d: %d %r" % (off, st, data[:200]))
        loc = target_of(r.getheader("Location"))
        off += len(b)
    loc += ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest)
    st, r, data = request("PUT", loc)
    if st != 201:
        fail("PUT: %d %r" % (st, data[:200]))
    print("BENCH status=ok seconds=%.4f bytes=%d" % (time.monotonic() - t0, size))


if __name__ == "__main__":
    main()
