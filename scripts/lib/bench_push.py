#!/usr/bin/python3
"""N concurrent pushes of small images, for scripts/bench.

    bench_push.py URL REPO N [TAG_PREFIX]

URL is the registry's base (http://127.0.0.1:PORT), REPO a repository
(<project>/<name>).  The Authorization header, if any, comes from the
environment (BENCH_AUTH="Bearer ..."), never from the command line.

Each of N threads pushes one image the way podman and docker do:
for each of three blobs (a base layer shared by all N images, so N
uploads of one digest race each other; a layer and a config unique to
the image) HEAD it, and if absent POST an upload session and PUT the
bytes with ?digest= (the monolithic upload that every registry speaks);
then PUT the manifest under tag TAG_PREFIX<i>.  All threads wait at a
barrier and start together; the clock runs from the barrier to the last
thread's end.  Afterwards (not timed) every tag is read back and its
digest compared.

Prints one line:
    BENCH pushes=N ok=K errors=E seconds=S requests=R
and the first few error descriptions on stderr.

    bench_push.py --tags URL REPO CHECKPOINTS

The other mode: one client pushes tags t0, t1, ... to REPO, one after
the other, each a manifest of its own (the same layer and config, an
annotation apart: every tag a new image, no blob upload per tag) up to
the last of CHECKPOINTS (comma-separated, ascending, e.g.
10,100,1000,5000).  At each checkpoint it prints
    BENCH tags=N p50_ms=P p90_ms=Q redis_bytes=M redis_base=B log_max=L
          log_entries=E errors=X
P and Q over the manifest PUTs since the previous checkpoint (the last
200 at most), M Redis's used_memory (B: before the first push), L the bytes of the largest event
in imagestreams:log (what one watch event weighs) and E the entries.
Redis is read with redis-cli on 127.0.0.1:$BENCH_REDIS_PORT (its
password, if any, in REDISCLI_AUTH).
"""

import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


class PushError(Exception):
    pass


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    def __init__(self, base, auth):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.auth = auth
        self.conn = None
        self.requests = 0

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.auth:
            h["Authorization"] = self.auth
        if body is not None:
            h["Content-Length"] = str(len(body))
        elif method in ("PUT", "POST", "PATCH"):
            h["Content-Length"] = "0"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=20)
            try:
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                self.requests += 1
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, resp, data
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError, http.client.CannotSendRequest):
                # a keep-alive connection the server closed: one retry on
                # a fresh one (what every HTTP client does)
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise PushError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()


def location_path(loc):
    """A Location (relative or absolute) as a request path with query."""
    u = urllib.parse.urlsplit(loc)
    return u.path + ("?" + u.query if u.query else "")


def push_blob(c, repo, data, media):
    d = digest(data)
    st, _, _ = c.request("HEAD", "/v2/%s/blobs/%s" % (repo, d))
    if st == 200:
        return d
    if st != 404:
        raise PushError("HEAD blob %s: %d" % (d[:19], st))
    st, resp, body = c.request("POST", "/v2/%s/blobs/uploads/" % repo)
    if st != 202:
        raise PushError("POST upload: %d %s" % (st, body[:200]))
    loc = resp.getheader("Location")
    if not loc:
        raise PushError("POST upload: no Location")
    path = location_path(loc)
    path += ("&" if "?" in path else "?") + "digest=" + urllib.parse.quote(d)
    st, _, body = c.request("PUT", path, body=data,
                            headers={"Content-Type": "application/octet-stream"})
    if st != 201:
        raise PushError("PUT blob %s: %d %s" % (d[:19], st, body[:200]))
    return d


def image(i, base_layer):
    layer = os.urandom(16384) + b"layer %d" % i
    cfg = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"bench": str(i), "nonce": os.urandom(8).hex()}},
        "rootfs": {"type": "layers",
                   "diff_ids": [digest(base_layer), digest(layer)]},
    }, separators=(",", ":")).encode()
    return layer, cfg


def manifest(cfg, layers):
    return json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "size": len(cfg), "digest": digest(cfg)},
        "layers": [{"mediaType": LAYER_TYPE, "size": len(l), "digest": digest(l)}
                   for l in layers],
    }, separators=(",", ":")).encode()


# the largest event of the watch log, read in Redis (entries may be MBs)
LOG_MAX = """
local max, n, start = 0, 0, '-'
while true do
    local b = redis.call('XRANGE', 'imagestreams:log', start, '+', 'COUNT', 16)
    for _, e in ipairs(b) do
        n = n + 1
        for i = 1, #e[2], 2 do
            if e[2][i] == 'e' and #e[2][i + 1] > max then max = #e[2][i + 1] end
        end
    end
    if #b < 16 then return {max, n} end
    start = '(' .. b[#b][1]
end
"""


def redis(*args):
    port = os.environ.get("BENCH_REDIS_PORT", "6379")
    return subprocess.run(["redis-cli", "-p", port, "--no-raw"] + list(args),
                          check=True, capture_output=True, text=True).stdout


def used_memory():
    return int([l for l in redis("INFO", "memory").splitlines()
                if l.startswith("used_memory:")][0].split(":")[1])


def tags_main(base, repo, checkpoints):
    auth = os.environ.get("BENCH_AUTH", "")
    c = Client(base, auth)
    layer = os.urandom(65536)
    cfg = image(0, layer)[1]
    push_blob(c, repo, layer, LAYER_TYPE)
    push_blob(c, repo, cfg, CONFIG_TYPE)
    m = json.loads(manifest(cfg, [layer]))
    times, last, errors = [], 0, 0
    base = used_memory()
    for n in checkpoints:
        for i in range(last, n):
            m["annotations"] = {"bench.tag": "t%d" % i}
            body = json.dumps(m, separators=(",", ":")).encode()
            t0 = time.monotonic()
            st, _, out = c.request("PUT", "/v2/%s/manifests/t%d" % (repo, i),
                                   body=body,
                                   headers={"Content-Type": MANIFEST_TYPE})
            times.append(time.monotonic() - t0)
            if st != 201:
                errors += 1
                print("PUT t%d: %d %s" % (i, st, out[:200]), file=sys.stderr)
                if errors > 10:
                    sys.exit("too many errors")
        w = sorted(times[max(last, n - 200):n])
        mem = used_memory()
        lm = [int(x.split(")")[-1]) for x in
              redis("EVAL", LOG_MAX, "0").split("\n") if x.strip()]
        print("BENCH tags=%d p50_ms=%.1f p90_ms=%.1f redis_bytes=%d "
              "redis_base=%d log_max=%d log_entries=%d errors=%d"
              % (n, w[len(w) // 2] * 1000, w[len(w) * 9 // 10] * 1000,
                 mem, base, lm[0], lm[1], errors), flush=True)
        last = n
    c.close()


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--tags":
        return tags_main(sys.argv[2], sys.argv[3],
                         [int(x) for x in sys.argv[4].split(",")])
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    base, repo, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    prefix = sys.argv[4] if len(sys.argv) > 4 else "c"
    auth = os.environ.get("BENCH_AUTH", "")
    base_layer = os.urandom(65536)     # shared by all N images, new every run

    jobs = []
    for i in range(n):
        layer, cfg = image(i, base_layer)
        m = manifest(cfg, [base_layer, layer])
        jobs.append((i, layer, cfg, m))

    barrier = threading.Barrier(n + 1)
    errors = [None] * n
    clients = [Client(base, auth) for _ in range(n)]
    ends = [0.0] * n

    def work(k):
        i, layer, cfg, m = jobs[k]
        c = clients[k]
        barrier.wait()
        try:
            push_blob(c, repo, base_layer, LAYER_TYPE)
            push_blob(c, repo, layer, LAYER_TYPE)
            push_blob(c, repo, cfg, CONFIG_TYPE)
            st, _, body = c.request("PUT", "/v2/%s/manifests/%s%d" % (repo, prefix, i),
                                    body=m, headers={"Content-Type": MANIFEST_TYPE})
            if st != 201:
                raise PushError("PUT manifest: %d %s" % (st, body[:200]))
        except Exception as e:      # any failure counts as an error
            errors[k] = "push %d: %s: %s" % (i, type(e).__name__, e)
        ends[k] = time.monotonic()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    seconds = max(ends) - t0
    requests = sum(c.requests for c in clients)
    for c in clients:
        c.close()

    # read back (untimed): every pushed tag must serve its manifest
    c = Client(base, auth)
    for k, (i, _, _, m) in enumerate(jobs):
        if errors[k]:
            continue
        try:
            st, resp, body = c.request("GET", "/v2/%s/manifests/%s%d" % (repo, prefix, i),
                                       headers={"Accept": MANIFEST_TYPE})
            if st != 200 or body != m:
                errors[k] = "push %d: read back: %d%s" % (
                    i, st, "" if st != 200 else " (other bytes)")
        except Exception as e:
            errors[k] = "push %d: read back: %s" % (i, e)
    c.close()

    bad = [e for e in errors if e]
    for e in bad[:5]:
        print(e, file=sys.stderr)
    print("BENCH pushes=%d ok=%d errors=%d seconds=%.3f requests=%d"
          % (n, n - len(bad), len(bad), seconds, requests))


if __name__ == "__main__":
    main()
