#!/usr/bin/python3
"""What the registry keeps in Redis, measured: for scripts/redis-footprint.

    footprint.py URL REDIS_PORT IMAGES TAGS SESSIONS LAYERS SHARED

URL is a registry (http://127.0.0.1:PORT, authorization off) whose
Redis, on 127.0.0.1:REDIS_PORT without a password, holds nothing else:
it is emptied first.  Each step pushes over HTTP, then reads Redis: the
keys it has, the sum of MEMORY USAGE over them by kind of key (digests,
ids and names replaced by D, ID, R...), INFO memory's used_memory, and
INFO commandstats (the commands run, and Redis's CPU time in them).
Steps:

  images    IMAGES images, each in a repository of its own under one
            tag: LAYERS layers, SHARED of them the same in every image
            (a base), a Docker-style config (env, labels, a history
            line per layer), the manifest by tag
  tags      TAGS more tags, each naming an image already pushed
  pulls     each image pulled: the manifest by tag, then each blob
  sessions  SESSIONS upload sessions opened (POST) and left, then as
            many holding a 1 KiB chunk (PATCH), which waits in Redis
            until it makes a 5 MiB part

The blob bytes go to S3 and are kept small: Redis holds their size, not
their bytes.  The bounded streams (events, imagestreams:log, at most
registry_events_maxlen entries each) are counted apart, per entry.
Prints a Markdown table and the per-kind breakdown of an image.
"""

import hashlib
import http.client
import json
import re
import socket
import sys
import urllib.parse

URL, RPORT, N_IMG, N_TAG, N_SES, LAYERS, SHARED = sys.argv[1:8]
RPORT, N_IMG, N_TAG, N_SES = int(RPORT), int(N_IMG), int(N_TAG), int(N_SES)
LAYERS, SHARED = int(LAYERS), int(SHARED)
HOST = urllib.parse.urlparse(URL)

STREAMS = ('events', 'imagestreams:log')


# --- Redis, over a socket of our own (thousands of MEMORY USAGE) ---------

class Redis:
    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port))
        self.f = self.s.makefile('rb')

    def __call__(self, *args):
        out = b'*%d\r\n' % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b'$%d\r\n%s\r\n' % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b'+':
            return rest.decode()
        if t == b'-':
            raise RuntimeError(rest.decode())
        if t == b':':
            return int(rest)
        if t == b'$':
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode('utf-8', 'replace')
        if t == b'*':
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError('bad reply %r' % line)


r = Redis(RPORT)


def kind(key):
    """A key's name with what varies replaced: its kind."""
    key = re.sub(r'sha256:[0-9a-f]{64}', 'D', key)
    key = re.sub(r'upload:[0-9a-f]{32}', 'upload:ID', key)
    key = re.sub(r'repo:[^:]+/[^:]+:', 'repo:R:', key)
    key = re.sub(r'imagestream:[^/]+/.+$', 'imagestream:R', key)
    key = re.sub(r'project:[^:]+:', 'project:P:', key)
    return key


def snapshot():
    kinds = {}
    cursor = '0'
    while True:
        cursor, keys = r('SCAN', cursor, 'COUNT', 1000)
        for k in keys:
            n = r('MEMORY', 'USAGE', k, 'SAMPLES', 0) or 0
            c = kinds.setdefault(kind(k), [0, 0])
            c[0] += 1
            c[1] += n
        if cursor == '0':
            break
    info = r('INFO', 'memory')
    used = int(re.search(r'used_memory:(\d+)', info).group(1))
    streams = {s: r('XLEN', s) for s in STREAMS}
    return dict(work(), kinds=kinds, used=used, streams=streams)


def work():
    """commands run and Redis CPU time, but for the measuring's own"""
    calls = usec = 0
    for m in re.finditer(r'cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)',
                         r('INFO', 'commandstats')):
        if m.group(1) not in ('scan', 'memory|usage', 'info', 'xlen', 'flushall',
                              'config|resetstat'):
            calls += int(m.group(2))
            usec += int(m.group(3))
    return {'calls': calls, 'usec': usec}


def delta(a, b):
    """b - a, the bounded streams apart"""
    kinds = {}
    for k in set(a['kinds']) | set(b['kinds']):
        x, y = a['kinds'].get(k, [0, 0]), b['kinds'].get(k, [0, 0])
        if x != y:
            kinds[k] = [y[0] - x[0], y[1] - x[1]]
    keys = sum(v[0] for k, v in kinds.items() if k not in STREAMS)
    mem = sum(v[1] for k, v in kinds.items() if k not in STREAMS)
    smem = sum(v[1] for k, v in kinds.items() if k in STREAMS)
    entries = sum(b['streams'][s] - a['streams'][s] for s in STREAMS)
    return {'kinds': kinds, 'keys': keys, 'mem': mem, 'used': b['used'] - a['used'],
            'stream_mem': smem, 'stream_entries': entries,
            'calls': b['calls'] - a['calls'], 'usec': b['usec'] - a['usec']}


# --- HTTP ------------------------------------------------------------------

def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection(HOST.hostname, HOST.port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    res = c.getresponse()
    data = res.read()
    c.close()
    return res.status, dict(res.getheaders()), data


def digest(b):
    return 'sha256:' + hashlib.sha256(b).hexdigest()


def push_blob(repo, data):
    d = digest(data)
    st, _, body = request('POST', '/v2/%s/blobs/uploads/?digest=%s' % (repo, d), data,
                          {'Content-Type': 'application/octet-stream'})
    if st != 201:
        sys.exit('blob push: %d %s' % (st, body[:200]))
    return d


def blob_bytes(name):
    """a few KiB standing for a layer: S3 has the bytes, Redis the size"""
    return hashlib.sha512(name.encode()).digest() * 64


def push_image(i):
    repo = 'footprint/app%d' % i
    layers = [blob_bytes('base %d' % j) for j in range(SHARED)]
    layers += [blob_bytes('image %d layer %d' % (i, j)) for j in range(LAYERS - SHARED)]
    config = {
        'architecture': 'amd64', 'os': 'linux',
        'created': '2024-05-06T07:08:%02dZ' % (i % 60),
        'author': 'footprint',
        'config': {
            'Env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                    'LANG=C.UTF-8', 'APP_HOME=/opt/app', 'APP_VERSION=1.%d' % i],
            'Entrypoint': ['/opt/app/bin/start'],
            'Cmd': ['--config', '/etc/app/config.yaml'],
            'WorkingDir': '/opt/app',
            'ExposedPorts': {'8080/tcp': {}},
            'Labels': {'org.opencontainers.image.title': 'app%d' % i,
                       'org.opencontainers.image.version': '1.%d' % i,
                       'org.opencontainers.image.source': 'https://git.example.com/app',
                       'io.openshift.tags': 'app,footprint'},
        },
        'rootfs': {'type': 'layers',
                   'diff_ids': [digest(hashlib.sha256(l).digest()) for l in layers]},
        'history': [{'created': '2024-05-06T07:08:09Z',
                     'created_by': '/bin/sh -c #(nop) step %d of image %d' % (j, i)}
                    for j in range(LAYERS)],
    }
    cbytes = json.dumps(config, separators=(',', ':')).encode()
    cd = push_blob(repo, cbytes)
    descs = []
    for l in layers:
        descs.append({'mediaType': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
                      'size': len(l), 'digest': push_blob(repo, l)})
    manifest = json.dumps({
        'schemaVersion': 2,
        'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',
        'config': {'mediaType': 'application/vnd.docker.container.image.v1+json',
                   'size': len(cbytes), 'digest': cd},
        'layers': descs,
    }, indent=3).encode()    # docker and podman indent theirs
    put_manifest(repo, 'v1', manifest,
                 'application/vnd.docker.distribution.manifest.v2+json')
    return repo, manifest, [cd] + [x['digest'] for x in descs]


def pull_image(repo, blobs):
    """as a client does: the manifest by tag, the config, each layer"""
    st, _, _ = request('GET', '/v2/%s/manifests/v1' % repo, None, {'Accept':
                       'application/vnd.docker.distribution.manifest.v2+json'})
    if st != 200:
        sys.exit('manifest pull: %d' % st)
    for d in blobs:
        st, _, _ = request('GET', '/v2/%s/blobs/%s' % (repo, d))
        if st != 200:
            sys.exit('blob pull: %d' % st)


def put_manifest(repo, tag, manifest, mtype):
    st, _, body = request('PUT', '/v2/%s/manifests/%s' % (repo, tag), manifest,
                          {'Content-Type': mtype})
    if st != 201:
        sys.exit('manifest push: %d %s' % (st, body[:200]))


# --- the steps ---------------------------------------------------------------

r('FLUSHALL')
r('CONFIG', 'RESETSTAT')
s0 = snapshot()
pushed = [push_image(i) for i in range(N_IMG)]
s1 = snapshot()
img = delta(s0, s1)

for t in range(N_TAG):
    repo, manifest, _ = pushed[t % len(pushed)]
    put_manifest(repo, 'extra%d' % t, manifest,
                 'application/vnd.docker.distribution.manifest.v2+json')
s2 = snapshot()
tag = delta(s1, s2)

w0 = work()
for repo, _, blobs in pushed:
    pull_image(repo, blobs)
w1 = work()
pulls = {'calls': w1['calls'] - w0['calls'], 'usec': w1['usec'] - w0['usec']}
s2 = snapshot()

sessions = []
for s in range(N_SES):
    st, h, _ = request('POST', '/v2/footprint/sessions/blobs/uploads/')
    if st != 202:
        sys.exit('upload session: %d' % st)
    sessions.append(h['Location'])
s3 = snapshot()
ses = delta(s2, s3)

for s in range(N_SES):
    st, h, _ = request('POST', '/v2/footprint/sessions/blobs/uploads/')
    st, h, body = request('PATCH', h['Location'], b'x' * 1024,
                          {'Content-Type': 'application/octet-stream',
                           'Content-Range': '0-1023'})
    if st != 202:
        sys.exit('upload chunk: %d %s' % (st, body[:200]))
s4 = snapshot()
chunk = delta(s3, s4)


def per(d, n):
    return d['keys'] / n, d['mem'] / n, d['used'] / n


def row(what, d, n):
    k, m, u = per(d, n)
    print('| %s | %.1f | %s | %s |' % (what, k, '{:,.0f}'.format(m), '{:,.0f}'.format(u)))


print('| per | keys | bytes (MEMORY USAGE) | bytes (used_memory) |')
print('| --- | ---: | ---: | ---: |')
row('image (%d layers, %d shared by all; in a repository of its own, one tag)'
    % (LAYERS, SHARED), img, N_IMG)
row('tag (one more, on an image already pushed)', tag, N_TAG)
row('upload session, open', ses, N_SES)
row('upload session holding a 1 KiB chunk', chunk, N_SES)
all_entries = img['stream_entries'] + tag['stream_entries']
all_mem = img['stream_mem'] + tag['stream_mem']
print('| entry of the bounded streams (events, imagestreams:log) | - | %s | - |'
      % '{:,.0f}'.format(all_mem / max(all_entries, 1)))
print()
print('Streams: %d entries per image, %.1f per tag.'
      % (img['stream_entries'] / N_IMG, tag['stream_entries'] / max(N_TAG, 1)))
print()
print('Redis work (INFO commandstats: commands, and the CPU time Redis spent in them):')
print()
print('| per | commands | Redis CPU (µs) |')
print('| --- | ---: | ---: |')
for what, d, n in (('image pushed', img, N_IMG), ('tag pushed', tag, N_TAG),
                   ('image pulled (manifest by tag, each blob)', pulls, N_IMG)):
    print('| %s | %.1f | %.0f |' % (what, d['calls'] / n, d['usec'] / n))
print()
print('An image, by kind of key (per image; D a digest, R a repository):')
print()
print('| key | keys | bytes |')
print('| --- | ---: | ---: |')
for k, v in sorted(img['kinds'].items(), key=lambda kv: -kv[1][1]):
    if k in STREAMS:
        continue
    print('| `%s` | %.2f | %s |' % (k, v[0] / N_IMG, '{:,.0f}'.format(v[1] / N_IMG)))
print()
print('FOOTPRINT images=%d tags=%d sessions=%d layers=%d shared=%d used_memory=%d'
      % (N_IMG, N_TAG, N_SES, LAYERS, SHARED, s4['used']))
