#!/usr/bin/python3
"""Garbage for the collector, and one timed collection, for scripts/bench.

    bench_gc.py push URL REPO N SIZE [THREADS]

pushes N blobs of SIZE random bytes to REPO, each with one monolithic
POST .../blobs/uploads/?digest=, then DELETEs each (unlinked and named by
no manifest: a collection candidate).  THREADS (default 8) clients with
keep-alive connections share the work.  The Authorization header comes
from the environment (BENCH_AUTH), never from the command line.  Prints
    BENCH pushed=N ok=K errors=E seconds=S bytes=B

    bench_gc.py collect GC_URL

asks the collector (GET GC_URL, e.g. http://127.0.0.1:P/_registry/gc?grace=0)
again while it answers "more": true, as scripts/registry gc does.  Prints
    BENCH collect seconds=S requests=R blobs=N bytes=B
First errors go to stderr; the exit status is 1 on any error.
"""

import hashlib
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def connect(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)


def push(base, repo, n, size, threads):
    auth = os.environ.get("BENCH_AUTH", "")
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "errors": [], "bytes": 0}

    def take():
        with lock:
            i = state["next"]
            state["next"] += 1
            return i if i < n else None

    def request(conn, method, path, body=None):
        h = {"Content-Length": str(len(body)) if body is not None else "0"}
        if auth:
            h["Authorization"] = auth
        if body is not None:
            h["Content-Type"] = "application/octet-stream"
        for attempt in (0, 1):
            try:
                conn.request(method, path, body=body, headers=h)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, http.client.CannotSendRequest):
                conn.close()     # keep-alive closed by the server: once more
                if attempt:
                    raise
        return 0, b""

    def worker():
        conn = connect(base)
        while True:
            i = take()
            if i is None:
                break
            data = os.urandom(size)
            d = "sha256:" + hashlib.sha256(data).hexdigest()
            try:
                st, body = request(conn, "POST", "/v2/%s/blobs/uploads/?digest=%s"
                                   % (repo, urllib.parse.quote(d)), data)
                if st != 201:
                    raise RuntimeError("POST ?digest= %d %s" % (st, body[:200]))
                st, body = request(conn, "DELETE", "/v2/%s/blobs/%s" % (repo, d))
                if st != 202:
                    raise RuntimeError("DELETE blob %d %s" % (st, body[:200]))
                with lock:
                    state["ok"] += 1
                    state["bytes"] += size
            except Exception as e:           # counted, the others go on
                conn.close()
                with lock:
                    state["errors"].append(str(e))
        conn.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    s = time.monotonic() - t0
    for e in state["errors"][:3]:
        print(e, file=sys.stderr)
    print("BENCH pushed=%d ok=%d errors=%d seconds=%.3f bytes=%d"
          % (n, state["ok"], len(state["errors"]), s, state["bytes"]))
    return 0 if not state["errors"] else 1


def collect(url):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    conn = connect(url)
    blobs = nbytes = requests = 0
    more = True
    t0 = time.monotonic()
    while more:
        conn.request("GET", path)
        resp = conn.getresponse()
        data = resp.read()
        requests += 1
        if resp.status != 200:
            print("GET %s: %d %s" % (path, resp.status, data[:200]),
                  file=sys.stderr)
            return 1
        j = json.loads(data)
        blobs += j.get("blobs", 0)
        nbytes += j.get("bytes", 0)
        more = bool(j.get("more"))
    s = time.monotonic() - t0
    print("BENCH collect seconds=%.3f requests=%d blobs=%d bytes=%d"
          % (s, requests, blobs, nbytes))
    return 0


def main(argv):
    if len(argv) >= 6 and argv[1] == "push":
        return push(argv[2], argv[3], int(argv[4]), int(argv[5]),
                    int(argv[6]) if len(argv) > 6 else 8)
    if len(argv) == 3 and argv[1] == "collect":
        return collect(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
