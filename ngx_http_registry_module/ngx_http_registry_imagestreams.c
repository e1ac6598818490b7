
/*
 * Image streams and images, the way OpenShift exposes them.
 *
 * A manifest pushed by tag moves the image stream <project>/<image>: a
 * new entry at the head of the tag's history (created, image,
 * dockerImageReference, generation, pushedBy), bounded by
 * registry_history_depth.  The ImageStream object is kept in Redis as
 * JSON by Lua functions (below) that run inside the very scripts that
 * change repo:R:tags (manifests.c), so the stream's tags are the tags
 * list of the repository at every moment.  Every change takes the next
 * resourceVersion, is appended to a bounded Redis stream (the watch log)
 * and PUBLISHed, all in the same script.
 *
 * Each manifest digest gets one Image object, made here at its first
 * push: layers, sizes and, for image manifests, the fields of the config
 * blob that users look at, read once from S3.
 *
 * The read-only API, authorized like a pull of the project:
 *
 *   GET /apis/image.openshift.io/v1/namespaces/P/imagestreams[?watch=true]
 *   GET /apis/image.openshift.io/v1/namespaces/P/imagestreams/N
 *   GET /apis/image.openshift.io/v1/namespaces/P/imagestreamtags/N:T
 *   GET /apis/image.openshift.io/v1/images/D
 *
 * A watch is a chunked response of one watch event per line.  Every
 * worker holds one subscribe-mode Redis connection (redis.c) and hands
 * each published change to its watchers of that project; a watch that
 * starts from a resourceVersion is first replayed from the watch log.  A
 * watcher with a backlog's worth unsent takes no more published changes:
 * once its output went out, it reads them from the log, in steps.
 */


#include "ngx_http_registry.h"

#include <openssl/rand.h>


#define NGX_HTTP_REGISTRY_API_PREFIX  "/apis/image.openshift.io/v1/"

/* a config blob larger than this is not read: no metadata then */
#define NGX_HTTP_REGISTRY_CONFIG_MAX     (1024 * 1024)

/* s3.c keeps at most this much of an answer's body: read in ranges */
#define NGX_HTTP_REGISTRY_CONFIG_CHUNK   8192

/*
 * Unsent bytes a watcher may pile up: beyond, changes are left in the
 * watch log and read from it once the client took the rest; a client
 * that takes nothing for send_timeout is dropped.
 */
#define NGX_HTTP_REGISTRY_WATCH_BACKLOG  (4 * 1024 * 1024)

#define NGX_HTTP_REGISTRY_API_STREAMS    1
#define NGX_HTTP_REGISTRY_API_STREAM     2
#define NGX_HTTP_REGISTRY_API_TAG        3
#define NGX_HTTP_REGISTRY_API_IMAGE      4


/* the config blob of a manifest being pushed, read in ranges */
typedef struct {
    ngx_http_registry_step_pt   next;
    ngx_str_t                   key;
    off_t                       size;
    u_char                     *buf;
    off_t                       got;
} ngx_http_registry_image_read_t;


/* a line waiting to be sent, or being sent, to a watcher */
typedef struct {
    ngx_queue_t                 queue;
    uint64_t                    rv;
    ngx_buf_t                   buf;
    /* the bytes follow */
} ngx_http_registry_watch_line_t;


typedef struct {
    ngx_queue_t                 queue;      /* in the worker's watchers */
    ngx_http_request_t         *request;
    ngx_str_t                   project;
    uint64_t                    from;       /* asked for */
    uint64_t                    rv;         /* nothing older is sent */
    ngx_queue_t                 backlog;    /* published while replaying */
    ngx_queue_t                 sending;    /* lines in r's output */
    ngx_queue_t                 retired;    /* sent, maybe still seen */
    size_t                      unsent;
    ngx_event_t                 timeout;
    unsigned                    initial:1;  /* no resourceVersion given */
    unsigned                    queued:1;
    unsigned                    querying:1;
    unsigned                    live:1;
    unsigned                    behind:1;   /* changes left in the log */
    unsigned                    ended:1;
} ngx_http_registry_watch_t;


static ngx_uint_t ngx_http_registry_api_kind(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_not_found(ngx_http_request_t *r,
    const char *kind, ngx_str_t *name);
static ngx_int_t ngx_http_registry_api_send(ngx_http_request_t *r,
    u_char *data, size_t len);
static ngx_int_t ngx_http_registry_api_list(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_listed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_stream(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_tag(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_tagged(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_image(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_imaged(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_uint_t ngx_http_registry_api_may_pull(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, redisReply *repo);

static ngx_int_t ngx_http_registry_image_checked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_image_read(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_image_chunk(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_image_build(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, json_t *config);
static json_t *ngx_http_registry_image_metadata(
    ngx_http_registry_manifest_t *m, json_t *config);
static json_t *ngx_http_registry_image_children(
    ngx_http_registry_manifest_t *m);

static ngx_int_t ngx_http_registry_watch_start(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static void ngx_http_registry_watch_cleanup(void *data);
static ngx_int_t ngx_http_registry_watch_query(ngx_http_registry_watch_t *w);
static ngx_int_t ngx_http_registry_watch_replayed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_watch_replay(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_watch_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_watch_line(ngx_http_registry_watch_t *w,
    ngx_queue_t *q, uint64_t rv, u_char *data, size_t len);
static ngx_int_t ngx_http_registry_watch_send(ngx_http_registry_watch_t *w,
    ngx_http_registry_watch_line_t *line);
static ngx_int_t ngx_http_registry_watch_flush(ngx_http_registry_watch_t *w);
static void ngx_http_registry_watch_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_watch_catch_up(
    ngx_http_registry_watch_t *w);
static void ngx_http_registry_watch_forget(ngx_http_registry_watch_t *w);
static void ngx_http_registry_watch_timeout(ngx_event_t *ev);
static void ngx_http_registry_watch_end(ngx_http_registry_watch_t *w,
    ngx_int_t rc);
static void ngx_http_registry_watch_free(ngx_queue_t *lines);
static void ngx_http_registry_watch_published(ngx_uint_t event,
    u_char *message, size_t len);


static ngx_queue_t  ngx_http_registry_watchers;

static ngx_str_t  ngx_http_registry_watch_channel =
    ngx_string("imagestreams");


/*
 * The Lua functions that keep image streams, put before the manifest
 * scripts of manifests.c.  An ImageStream is decoded, changed and
 * encoded again by cjson, which escapes "/" (undone here: every "/" it
 * writes is escaped, so each "\/" is one) and writes an empty table as
 * {}: lists that could be empty (status.tags) are left out instead, as
 * OpenShift does.
 */

static const char  ngx_http_registry_imagestream_lua[] =
    "local function is_encode(obj)\n"
    "    return (string.gsub(cjson.encode(obj), '\\\\/', '/'))\n"
    "end\n"

    /* the counter, never behind the log (whose IDs must grow) */
    "local function is_next_rv()\n"
    "    local rv = redis.call('INCR', 'imagestreams:rv')\n"
    "    local last = redis.call('XREVRANGE', 'imagestreams:log', '+',"
    " '-', 'COUNT', 1)[1]\n"
    "    if last then\n"
    "        local n = tonumber(string.match(last[1], '^%d+'))\n"
    "        if n >= rv then\n"
    "            rv = n + 1\n"
    "            redis.call('SET', 'imagestreams:rv', rv)\n"
    "        end\n"
    "    end\n"
    "    return rv\n"
    "end\n"

    "local function is_save(p, n, typ, obj, maxlen)\n"
    "    local key = 'imagestream:' .. p .. '/' .. n\n"
    "    local rv = is_next_rv()\n"
    "    obj.metadata.resourceVersion = tostring(rv)\n"
    "    local text = is_encode(obj)\n"
    "    if typ == 'DELETED' then\n"
    "        redis.call('DEL', key)\n"
    "        redis.call('ZREM', 'project:' .. p .. ':imagestreams', n)\n"
    "    else\n"
    "        redis.call('SET', key, text)\n"
    "        redis.call('ZADD', 'project:' .. p .. ':imagestreams', 0, n)\n"
    "    end\n"
    "    local ev = '{\"type\":\"' .. typ .. '\",\"object\":' .. text .. '}'\n"
    "    redis.call('XADD', 'imagestreams:log', 'MAXLEN', maxlen,"
    " rv .. '-0', 'p', p, 'e', ev)\n"
    "    redis.call('PUBLISH', 'imagestreams', p .. ' ' .. rv .. ' ' .. ev)\n"
    "end\n"

    /* a push by tag: a new head, unless the tag already names d */
    "local function is_push(p, n, tag, d, user, ref, now, uid, depth,"
    " maxlen)\n"
    "    local s = redis.call('GET', 'imagestream:' .. p .. '/' .. n)\n"
    "    local obj, typ\n"
    "    if s then\n"
    "        obj, typ = cjson.decode(s), 'MODIFIED'\n"
    "    else\n"
    "        obj = {kind = 'ImageStream',"
    " apiVersion = 'image.openshift.io/v1',\n"
    "               metadata = {name = n, namespace = p, uid = uid,\n"
    "                           generation = 0, creationTimestamp = now},\n"
    "               spec = {lookupPolicy = {['local'] = false}},\n"
    "               status = {dockerImageRepository = ref}}\n"
    "        typ = 'ADDED'\n"
    "    end\n"
    "    local tags, t = obj.status.tags or {}, nil\n"
    "    for _, x in ipairs(tags) do\n"
    "        if x.tag == tag then t = x end\n"
    "    end\n"
    "    if t and t.items[1] and t.items[1].image == d then return end\n"
    "    obj.metadata.generation = obj.metadata.generation + 1\n"
    "    local item = {created = now,"
    " dockerImageReference = ref .. '@' .. d,\n"
    "                  image = d, generation = obj.metadata.generation}\n"
    "    if user ~= '' then item.pushedBy = user end\n"
    "    if not t then\n"
    "        t = {tag = tag, items = {}}\n"
    "        tags[#tags + 1] = t\n"
    "        table.sort(tags, function(a, b) return a.tag < b.tag end)\n"
    "    end\n"
    "    table.insert(t.items, 1, item)\n"
    "    while #t.items > depth do table.remove(t.items) end\n"
    "    obj.status.tags = tags\n"
    "    is_save(p, n, typ, obj, maxlen)\n"
    "end\n"

    "local function is_untag(p, n, tag, maxlen)\n"
    "    local s = redis.call('GET', 'imagestream:' .. p .. '/' .. n)\n"
    "    if not s then return end\n"
    "    local obj, out, found = cjson.decode(s), {}, false\n"
    "    for _, x in ipairs(obj.status.tags or {}) do\n"
    "        if x.tag == tag then found = true else out[#out + 1] = x end\n"
    "    end\n"
    "    if not found then return end\n"
    "    if #out > 0 then obj.status.tags = out else obj.status.tags = nil"
    " end\n"
    "    is_save(p, n, 'MODIFIED', obj, maxlen)\n"
    "end\n"

    /*
     * a manifest deleted: the tags it headed go (as from the tags list),
     * the other tags forget it; a stream left with no tag in a
     * repository left with no manifest is deleted
     */
    "local function is_forget(p, n, d, empty, maxlen)\n"
    "    local s = redis.call('GET', 'imagestream:' .. p .. '/' .. n)\n"
    "    if not s then return end\n"
    "    local obj, out, changed = cjson.decode(s), {}, false\n"
    "    for _, x in ipairs(obj.status.tags or {}) do\n"
    "        if x.items[1] and x.items[1].image == d then\n"
    "            changed = true\n"
    "        else\n"
    "            local items = {}\n"
    "            for _, i in ipairs(x.items) do\n"
    "                if i.image == d then changed = true\n"
    "                else items[#items + 1] = i end\n"
    "            end\n"
    "            x.items = items\n"
    "            out[#out + 1] = x\n"
    "        end\n"
    "    end\n"
    "    if #out > 0 then obj.status.tags = out else obj.status.tags = nil"
    " end\n"
    "    if #out == 0 and empty then\n"
    "        is_save(p, n, 'DELETED', obj, maxlen)\n"
    "    elseif changed then\n"
    "        is_save(p, n, 'MODIFIED', obj, maxlen)\n"
    "    end\n"
    "end\n"

    /*
     * the Image object, once; its resourceVersion filled in here: the
     * current one, not a new one, which would leave a hole in the log
     */
    "local function image_put(r, d, obj)\n"
    "    redis.call('SADD', 'image:' .. d .. ':repos', r)\n"
    "    if obj == '' or redis.call('HEXISTS', 'image:' .. d, 'object')"
    " == 1 then\n"
    "        return\n"
    "    end\n"
    "    local rv = redis.call('GET', 'imagestreams:rv') or '0'\n"
    "    obj = string.gsub(obj, '\"resourceVersion\":\"\"',"
    " '\"resourceVersion\":\"' .. rv .. '\"', 1)\n"
    "    redis.call('HSET', 'image:' .. d, 'object', obj)\n"
    "    redis.call('ZADD', 'images', 0, d)\n"
    "end\n";


/*
 * Whether the Image must be made.  ARGV: digest, repository, config
 * digest ("" when no config is read).  Returns 1 when the Image exists,
 * 0 when it must be made without config, else {S3 key, size} of the
 * config blob.
 */

static const char  ngx_http_registry_image_check_lua[] =
    "if redis.call('HEXISTS', 'image:' .. ARGV[1], 'object') == 1 then\n"
    "    return 1\n"
    "end\n"
    "if ARGV[3] == '' or redis.call('SISMEMBER', 'repo:' .. ARGV[2]"
    " .. ':blobs', ARGV[3]) == 0 then\n"
    "    return 0\n"
    "end\n"
    "local b = redis.call('HMGET', 'blob:' .. ARGV[3], 'key', 'size')\n"
    "if not b[1] or not b[2] then return 0 end\n"
    "return b\n";


/*
 * The streams of a project.  ARGV: project.  Returns the current
 * resourceVersion, then each ImageStream (JSON), by name.
 */

static const char  ngx_http_registry_streams_lua[] =
    "local out = {redis.call('GET', 'imagestreams:rv') or '0'}\n"
    "for _, n in ipairs(redis.call('ZRANGE', 'project:' .. ARGV[1]"
    " .. ':imagestreams', 0, -1)) do\n"
    "    local s = redis.call('GET', 'imagestream:' .. ARGV[1] .. '/' .. n)\n"
    "    if s then out[#out + 1] = s end\n"
    "end\n"
    "return out\n";


/*
 * A watch from a resourceVersion.  ARGV: project, resourceVersion, a
 * budget in bytes.  Every resourceVersion given is one entry of the log,
 * so the log holds every change after the version unless its first entry
 * is further on: then returns "gone".  Else returns the resourceVersion
 * read up to, "1" when more follows (the events reached the budget) or
 * "0", then the ID and the event of each change of the project after
 * the version.  The budget bounds what one reply holds: a watcher behind
 * catches up in steps, at the pace it reads.
 */

static const char  ngx_http_registry_replay_lua[] =
    "local from, budget = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local now = tonumber(redis.call('GET', 'imagestreams:rv') or '0')\n"
    "local first = redis.call('XRANGE', 'imagestreams:log', '-', '+',"
    " 'COUNT', 1)[1]\n"
    "first = first and tonumber(string.match(first[1], '^%d+')) or now + 1\n"
    "if from + 1 < first and from < now then return 'gone' end\n"
    "local out, bytes, start = {tostring(now), '0'}, 0, (from + 1) .. '-0'\n"
    "while true do\n"
    "    local batch = redis.call('XRANGE', 'imagestreams:log', start, '+',"
    " 'COUNT', 64)\n"
    "    for _, e in ipairs(batch) do\n"
    "        local id = string.match(e[1], '^%d+')\n"
    "        if bytes >= budget then\n"
    "            out[1], out[2] = tostring(tonumber(id) - 1), '1'\n"
    "            return out\n"
    "        end\n"
    "        if e[2][2] == ARGV[1] then\n"
    "            out[#out + 1] = id\n"
    "            out[#out + 1] = e[2][4]\n"
    "            bytes = bytes + #e[2][4]\n"
    "        end\n"
    "    end\n"
    "    if #batch < 64 then return out end\n"
    "    start = '(' .. batch[#batch][1]\n"
    "end\n";


/* ARGV: repository, tag.  Returns {ImageStream, digest, Image or ""}. */

static const char  ngx_http_registry_tag_lua[] =
    "local s = redis.call('GET', 'imagestream:' .. ARGV[1])\n"
    "if not s then return false end\n"
    "local d = redis.call('HGET', 'repo:' .. ARGV[1] .. ':tags', ARGV[2])\n"
    "if not d then return false end\n"
    "return {s, d, redis.call('HGET', 'image:' .. d, 'object') or ''}\n";


/* ARGV: digest.  Returns the Image, then the repositories holding it. */

static const char  ngx_http_registry_image_lua[] =
    "local o = redis.call('HGET', 'image:' .. ARGV[1], 'object')\n"
    "if not o then return false end\n"
    "local out = {o}\n"
    "for _, r in ipairs(redis.call('SMEMBERS', 'image:' .. ARGV[1]"
    " .. ':repos')) do\n"
    "    out[#out + 1] = r\n"
    "end\n"
    "return out\n";


const char *
ngx_http_registry_imagestream_script(const char **cache, const char *script)
{
    u_char  *p;
    size_t   len;

    if (*cache != NULL) {
        return *cache;
    }

    /* once per worker, kept for its life */

    len = sizeof(ngx_http_registry_imagestream_lua) - 1 + ngx_strlen(script);

    p = ngx_alloc(len + 1, ngx_cycle->log);
    if (p == NULL) {
        return NULL;
    }

    *cache = (const char *) p;

    p = ngx_cpymem(p, ngx_http_registry_imagestream_lua,
                   sizeof(ngx_http_registry_imagestream_lua) - 1);
    p = ngx_cpymem(p, script, ngx_strlen(script));
    *p = '\0';

    return *cache;
}


/*
 * The host in references: registry_public_host, else this server's
 * server_name when it is a plain name (with the port the connection came
 * to), else the address and port the connection came to.  Never the Host
 * header: what is stored for everyone must not be chosen by one client.
 */

ngx_int_t
ngx_http_registry_public_host(ngx_http_request_t *r, ngx_str_t *host)
{
    u_char                         *p, addr[NGX_SOCKADDR_STRLEN];
    size_t                          i;
    ngx_str_t                       s, name;
    ngx_uint_t                      port;
    ngx_http_core_srv_conf_t       *cscf;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->public_host.len) {
        *host = mcf->public_host;
        return NGX_OK;
    }

    s.data = addr;
    s.len = NGX_SOCKADDR_STRLEN;

    if (ngx_connection_local_sockaddr(r->connection, &s, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
    name = cscf->server_name;

    for (i = 0; i < name.len; i++) {
        if (!((name.data[i] >= 'a' && name.data[i] <= 'z')
              || (name.data[i] >= '0' && name.data[i] <= '9')
              || name.data[i] == '.' || name.data[i] == '-'))
        {
            break;
        }
    }

    if (name.len == 0 || i < name.len) {
        /* no usable name: the address, "[::1]:5000" or "10.0.0.1:5000" */
        host->len = s.len;
        host->data = ngx_pstrdup(r->pool, &s);

        return host->data ? NGX_OK : NGX_ERROR;
    }

    port = ngx_inet_get_port(r->connection->local_sockaddr);

    p = ngx_pnalloc(r->pool, name.len + sizeof(":65535") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    host->data = p;
    p = ngx_cpymem(p, name.data, name.len);

    if (port != 80) {
        p = ngx_sprintf(p, ":%ui", port);
    }

    host->len = p - host->data;

    return NGX_OK;
}


/* RFC 3339, UTC: seconds as Kubernetes writes them, or milliseconds */

ngx_int_t
ngx_http_registry_timestamp(ngx_pool_t *pool, ngx_str_t *ts, ngx_uint_t msec)
{
    u_char      *p;
    ngx_tm_t     tm;
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    ngx_gmtime(tp->sec, &tm);

    p = ngx_pnalloc(pool, sizeof("1970-01-01T00:00:00.000Z") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ts->data = p;

    p = ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02d",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                    tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);

    if (msec) {
        p = ngx_sprintf(p, ".%03M", tp->msec);
    }

    *p++ = 'Z';
    ts->len = p - ts->data;

    return NGX_OK;
}


/* a random (version 4) UUID */

ngx_int_t
ngx_http_registry_uuid(ngx_pool_t *pool, ngx_str_t *uuid)
{
    u_char  *p, b[16], hex[32];

    if (RAND_bytes(b, 16) != 1) {
        return NGX_ERROR;
    }

    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;

    ngx_hex_dump(hex, b, 16);

    p = ngx_pnalloc(pool, 36);
    if (p == NULL) {
        return NGX_ERROR;
    }

    uuid->data = p;
    p = ngx_cpymem(p, hex, 8);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 8, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 12, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 16, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 20, 12);
    uuid->len = p - uuid->data;

    return NGX_OK;
}


/* the Image of a manifest being pushed */

ngx_int_t
ngx_http_registry_image_prepare(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next)
{
    ngx_str_t                        args[3];
    ngx_http_registry_manifest_t    *m;
    ngx_http_registry_image_read_t  *rd;

    m = ctx->data;

    rd = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_image_read_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->next = next;
    m->image = rd;

    args[0] = m->digest;
    args[1] = ctx->repo;
    ngx_str_set(&args[2], "");

    /* only an image's config says what users look at; artifacts' do not */

    if (!m->type->index
        && ((m->config.media_type.len
             == sizeof("application/vnd.docker.container.image.v1+json") - 1
             && ngx_strncmp(m->config.media_type.data,
                            "application/vnd.docker.container.image.v1+json",
                            m->config.media_type.len)
                == 0)
            || (m->config.media_type.len
                == sizeof("application/vnd.oci.image.config.v1+json") - 1
                && ngx_strncmp(m->config.media_type.data,
                               "application/vnd.oci.image.config.v1+json",
                               m->config.media_type.len)
                   == 0)))
    {
        args[2] = m->config.digest;
    }

    return ngx_http_registry_run(r, ngx_http_registry_image_checked,
                                 ngx_http_registry_image_check_lua, 0, args, 3);
}


static ngx_int_t
ngx_http_registry_image_checked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                            size;
    ngx_str_t                        key, s;
    redisReply                      *rp;
    ngx_http_registry_manifest_t    *m;
    ngx_http_registry_image_read_t  *rd;

    m = ctx->data;
    rd = m->image;
    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->type == REDIS_REPLY_INTEGER) {
        if (rp->integer == 1) {
            /* made at an earlier push: kept as it is */
            ngx_str_null(&m->object);
            return rd->next(r, ctx);
        }

        return ngx_http_registry_image_build(r, ctx, NULL);
    }

    if (ngx_http_registry_reply_str(rp, 0, &key) != NGX_OK
        || ngx_http_registry_reply_str(rp, 1, &s) != NGX_OK)
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    size = ngx_atoof(s.data, s.len);

    if (size <= 0 || size > NGX_HTTP_REGISTRY_CONFIG_MAX) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: config %V of %V is not read (%O bytes)",
                      &m->config.digest, &m->digest, size);
        return ngx_http_registry_image_build(r, ctx, NULL);
    }

    rd->key.len = key.len;
    rd->key.data = ngx_pstrdup(r->pool, &key);
    rd->buf = ngx_pnalloc(r->pool, (size_t) size);

    if (rd->key.data == NULL || rd->buf == NULL) {
        return NGX_ERROR;
    }

    rd->size = size;
    rd->got = 0;

    return ngx_http_registry_image_read(r, ctx);
}


static ngx_int_t
ngx_http_registry_image_read(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                            end;
    ngx_str_t                        range;
    ngx_http_registry_s3_op_t        op;
    ngx_http_registry_manifest_t    *m;
    ngx_http_registry_image_read_t  *rd;

    m = ctx->data;
    rd = m->image;

    end = ngx_min(rd->got + NGX_HTTP_REGISTRY_CONFIG_CHUNK, rd->size);

    if (ngx_http_registry_keyf(r->pool, &range, "bytes=%O-%O", rd->got,
                               end - 1)
        != NGX_OK
        || ngx_http_registry_s3_op_get(r, &op, &rd->key, &range, 0)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->next = ngx_http_registry_image_chunk;

    if (ngx_http_registry_s3_request(r, ctx, &op) != NGX_OK) {
        ctx->next = NULL;
        return NGX_ERROR;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_image_chunk(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                            want;
    json_t                          *config;
    ngx_int_t                        rc;
    json_error_t                     err;
    ngx_http_registry_manifest_t    *m;
    ngx_http_registry_image_read_t  *rd;

    m = ctx->data;
    rd = m->image;

    if (ctx->s3.status != NGX_HTTP_PARTIAL_CONTENT
        && !(ctx->s3.status == NGX_HTTP_OK && rd->got == 0
             && (off_t) ctx->s3.body.len == rd->size))
    {
        return ngx_http_registry_s3_failed(r, ctx);
    }

    want = ngx_min(rd->size - rd->got, NGX_HTTP_REGISTRY_CONFIG_CHUNK);

    if ((off_t) ctx->s3.body.len != want) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: config %V: %uz bytes at %O, %O expected",
                      &m->config.digest, ctx->s3.body.len, rd->got, want);
        return ngx_http_registry_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                       "UNKNOWN", "storage error");
    }

    ngx_memcpy(rd->buf + rd->got, ctx->s3.body.data, want);
    rd->got += want;

    if (rd->got < rd->size) {
        return ngx_http_registry_image_read(r, ctx);
    }

    config = json_loadb((const char *) rd->buf, (size_t) rd->size, 0, &err);

    if (config == NULL || !json_is_object(config)) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: config %V is not a JSON object",
                      &m->config.digest);
    }

    rc = ngx_http_registry_image_build(r, ctx,
                                       json_is_object(config) ? config
                                                              : NULL);

    json_decref(config);

    return rc;
}


/*
 * The Image, in OpenShift's shape.  Its resourceVersion is filled in by
 * image_put: the field must stay the first of its name in the text.
 */

static ngx_int_t
ngx_http_registry_image_build(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, json_t *config)
{
    char                            *text;
    size_t                           i;
    json_t                          *obj, *layers, *meta;
    ngx_str_t                        host, uid, now, ref;
    ngx_http_registry_manifest_t    *m;
    ngx_http_registry_descriptor_t  *d;
    ngx_http_registry_image_read_t  *rd;

    m = ctx->data;
    rd = m->image;

    if (ngx_http_registry_public_host(r, &host) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &ref, "%V/%V@%V", &host,
                                  &ctx->repo, &m->digest)
           != NGX_OK
        || ngx_http_registry_uuid(r->pool, &uid) != NGX_OK
        || ngx_http_registry_timestamp(r->pool, &now, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }

    obj = json_pack("{s:s,s:s,s:{s:s%,s:s,s:s%,s:s%,s:{s:s}},s:s%,"
                    "s:s,s:s%,s:s%}",
                    "kind", "Image",
                    "apiVersion", "image.openshift.io/v1",
                    "metadata",
                        "name", m->digest.data, m->digest.len,
                        "resourceVersion", "",
                        "uid", uid.data, uid.len,
                        "creationTimestamp", now.data, now.len,
                        "annotations",
                            "image.openshift.io/dockerLayersOrder",
                            "ascending",
                    "dockerImageReference", ref.data, ref.len,
                    "dockerImageMetadataVersion", "1.0",
                    "dockerImageManifestMediaType",
                        m->type->name.data, m->type->name.len,
                    "dockerImageManifest", m->body.data, m->body.len);
    if (obj == NULL) {
        return NGX_ERROR;
    }

    layers = json_array();
    meta = ngx_http_registry_image_metadata(m, config);

    if (layers == NULL || meta == NULL
        || json_object_set_new(obj, "dockerImageLayers", layers) != 0
        || json_object_set_new(obj, "dockerImageMetadata", meta) != 0)
    {
        json_decref(obj);
        return NGX_ERROR;
    }

    if (m->type->index) {
        meta = ngx_http_registry_image_children(m);

        if (meta == NULL
            || json_object_set_new(obj, "dockerImageManifests", meta) != 0)
        {
            json_decref(obj);
            return NGX_ERROR;
        }

    } else {
        d = m->refs.elts;

        for (i = 0; i < m->refs.nelts; i++) {
            if (json_array_append_new(layers,
                    json_pack("{s:s%,s:I,s:s%}",
                              "name", d[i].digest.data, d[i].digest.len,
                              "size", (json_int_t) d[i].size,
                              "mediaType", d[i].media_type.data
                                           ? (char *) d[i].media_type.data
                                           : "",
                              d[i].media_type.len))
                != 0)
            {
                json_decref(obj);
                return NGX_ERROR;
            }
        }
    }

    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);

    if (text == NULL) {
        return NGX_ERROR;
    }

    m->object.len = ngx_strlen(text);
    m->object.data = ngx_pnalloc(r->pool, m->object.len);
    if (m->object.data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(m->object.data, text, m->object.len);
    free(text);

    return rd->next(r, ctx);
}


/*
 * dockerImageMetadata: OpenShift's DockerImage, from the config blob
 * when it was read.  Size is the manifest's own count: the config and
 * each distinct layer once.
 */

static json_t *
ngx_http_registry_image_metadata(ngx_http_registry_manifest_t *m,
    json_t *config)
{
    off_t                            size;
    size_t                           i, j;
    json_t                          *meta, *v;
    ngx_http_registry_descriptor_t  *d;

    static const char  *fields[][2] = {
        { "created", "Created" },
        { "architecture", "Architecture" },
        { "os", "Os" },
        { "variant", "Variant" },
        { "author", "Author" },
        { "docker_version", "DockerVersion" },
        { "config", "Config" },
        { NULL, NULL }
    };

    meta = json_pack("{s:s,s:s}", "kind", "DockerImage",
                     "apiVersion", "image.openshift.io/1.0");
    if (meta == NULL) {
        return NULL;
    }

    d = m->refs.elts;
    size = 0;

    if (m->type->index) {
        for (i = 0; i < m->refs.nelts; i++) {
            size += d[i].size;
        }

    } else {
        size = m->config.size;

        for (i = 0; i < m->refs.nelts; i++) {
            for (j = 0; j < i; j++) {
                if (d[j].digest.len == d[i].digest.len
                    && ngx_strncmp(d[j].digest.data, d[i].digest.data,
                                   d[i].digest.len)
                       == 0)
                {
                    break;
                }
            }

            if (j == i) {
                size += d[i].size;
            }
        }

        if (json_object_set_new(meta, "Id",
                                json_stringn((char *) m->config.digest.data,
                                             m->config.digest.len))
            != 0)
        {
            goto failed;
        }
    }

    if (json_object_set_new(meta, "Size", json_integer(size)) != 0) {
        goto failed;
    }

    if (config == NULL) {
        return meta;
    }

    for (i = 0; fields[i][0]; i++) {
        v = json_object_get(config, fields[i][0]);

        if (v == NULL || json_is_null(v)) {
            continue;
        }

        if (json_object_set(meta, fields[i][1], v) != 0) {
            goto failed;
        }
    }

    return meta;

failed:

    json_decref(meta);
    return NULL;
}


/* an index: its manifests with their platforms */

static json_t *
ngx_http_registry_image_children(ngx_http_registry_manifest_t *m)
{
    size_t                           i;
    json_t                          *list, *child, *platform, *v;
    const char                      *key;
    ngx_http_registry_descriptor_t  *d;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    d = m->refs.elts;

    for (i = 0; i < m->refs.nelts; i++) {
        child = json_pack("{s:s%,s:s%,s:I}",
                          "digest", d[i].digest.data, d[i].digest.len,
                          "mediaType", d[i].media_type.data
                                       ? (char *) d[i].media_type.data : "",
                          d[i].media_type.len,
                          "manifestSize", (json_int_t) d[i].size);

        if (child == NULL || json_array_append_new(list, child) != 0) {
            json_decref(list);
            return NULL;
        }

        platform = json_object_get(json_array_get(
                       json_object_get(m->json, "manifests"), i),
                       "platform");

        if (!json_is_object(platform)) {
            continue;
        }

        json_object_foreach(platform, key, v) {
            if (json_is_string(v)
                && (ngx_strcmp(key, "architecture") == 0
                    || ngx_strcmp(key, "os") == 0
                    || ngx_strcmp(key, "variant") == 0)
                && json_object_set(child, key, v) != 0)
            {
                json_decref(list);
                return NULL;
            }
        }
    }

    return list;
}


/* the API: URIs */

ngx_uint_t
ngx_http_registry_api_uri(ngx_http_request_t *r)
{
    return r->uri.len >= sizeof("/apis/") - 1
           && ngx_strncmp(r->uri.data, "/apis/", sizeof("/apis/") - 1) == 0;
}


ngx_int_t
ngx_http_registry_api_parse(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_api_kind(r, ctx) ? NGX_OK : NGX_DECLINED;
}


/*
 * The kind of object asked for, with ctx's project, repository,
 * reference and action; 0 with ctx->error_* set when the URI names
 * nothing that can exist (404, as Kubernetes answers).  The list of a
 * project's streams is authorized as a pull of <project>/imagestreams:
 * the authorizer decides by project.
 */

static ngx_uint_t
ngx_http_registry_api_kind(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char      *p, *last, *colon;
    ngx_str_t    seg[5];
    ngx_uint_t   n, kind;

    p = r->uri.data + sizeof(NGX_HTTP_REGISTRY_API_PREFIX) - 1;
    last = r->uri.data + r->uri.len;

    if (r->uri.len < sizeof(NGX_HTTP_REGISTRY_API_PREFIX) - 1
        || ngx_strncmp(r->uri.data, NGX_HTTP_REGISTRY_API_PREFIX,
                       sizeof(NGX_HTTP_REGISTRY_API_PREFIX) - 1)
           != 0)
    {
        goto not_found;
    }

    for (n = 0; p < last; n++) {
        if (n == 5) {
            goto not_found;
        }

        seg[n].data = p;

        while (p < last && *p != '/') {
            p++;
        }

        seg[n].len = p - seg[n].data;

        if (seg[n].len == 0) {
            goto not_found;
        }

        if (p < last) {
            p++;

            if (p == last) {
                goto not_found;
            }
        }
    }

#define ngx_http_registry_seg_is(i, s)                                        \
    (seg[i].len == sizeof(s) - 1 && ngx_strncmp(seg[i].data, s, seg[i].len) \
                                    == 0)

    ngx_str_null(&ctx->image);
    ngx_str_null(&ctx->reference);

    if (n == 2 && ngx_http_registry_seg_is(0, "images")) {
        if (ngx_http_registry_check_digest(&seg[1]) != NGX_OK) {
            goto not_found;
        }

        ctx->route = NGX_HTTP_REGISTRY_ROUTE_API;
        ctx->action = NGX_HTTP_REGISTRY_ACTION_LIST;
        ctx->reference = seg[1];
        ngx_str_null(&ctx->repo);
        ngx_str_null(&ctx->project);

        return NGX_HTTP_REGISTRY_API_IMAGE;
    }

    if (n < 3 || !ngx_http_registry_seg_is(0, "namespaces")) {
        goto not_found;
    }

    ctx->project = seg[1];

    if (n == 3 && ngx_http_registry_seg_is(2, "imagestreams")) {
        kind = NGX_HTTP_REGISTRY_API_STREAMS;
        ngx_str_set(&ctx->image, "imagestreams");

    } else if (n == 4 && ngx_http_registry_seg_is(2, "imagestreams")) {
        kind = NGX_HTTP_REGISTRY_API_STREAM;
        ctx->image = seg[3];

    } else if (n == 4 && ngx_http_registry_seg_is(2, "imagestreamtags")) {
        kind = NGX_HTTP_REGISTRY_API_TAG;

        colon = ngx_strlchr(seg[3].data, seg[3].data + seg[3].len, ':');
        if (colon == NULL) {
            goto not_found;
        }

        ctx->image.data = seg[3].data;
        ctx->image.len = colon - seg[3].data;
        ctx->reference.data = colon + 1;
        ctx->reference.len = seg[3].data + seg[3].len - colon - 1;

        if (!ngx_http_registry_is_tag(&ctx->reference)) {
            goto not_found;
        }

    } else {
        goto not_found;
    }

#undef ngx_http_registry_seg_is

    if (ngx_http_registry_keyf(r->pool, &ctx->repo, "%V/%V", &ctx->project,
                               &ctx->image)
        != NGX_OK)
    {
        ctx->error_status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ctx->error_code = "UNKNOWN";
        ctx->error_message = "out of memory";
        return 0;
    }

    if (!ngx_http_registry_is_repo(&ctx->repo)) {
        goto not_found;
    }

    if (kind == NGX_HTTP_REGISTRY_API_STREAMS) {
        ngx_str_null(&ctx->image);
    }

    ctx->route = NGX_HTTP_REGISTRY_ROUTE_API;
    ctx->action = NGX_HTTP_REGISTRY_ACTION_PULL;

    return kind;

not_found:

    ctx->route = NGX_HTTP_REGISTRY_ROUTE_NONE;
    ctx->error_status = NGX_HTTP_NOT_FOUND;
    ctx->error_code = "NAME_UNKNOWN";
    ctx->error_message = "the server could not find the requested resource";

    return 0;
}


ngx_int_t
ngx_http_registry_api_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t  watch;

    switch (ngx_http_registry_api_kind(r, ctx)) {

    case NGX_HTTP_REGISTRY_API_STREAMS:
        if (r->method == NGX_HTTP_GET
            && ngx_http_arg(r, (u_char *) "watch", 5, &watch) == NGX_OK
            && ((watch.len == 4 && ngx_strncmp(watch.data, "true", 4) == 0)
                || (watch.len == 1 && watch.data[0] == '1')))
        {
            return ngx_http_registry_watch_start(r, ctx);
        }

        return ngx_http_registry_api_list(r, ctx);

    case NGX_HTTP_REGISTRY_API_STREAM:
        return ngx_http_registry_api_stream(r, ctx);

    case NGX_HTTP_REGISTRY_API_TAG:
        return ngx_http_registry_api_tag(r, ctx);

    case NGX_HTTP_REGISTRY_API_IMAGE:
        return ngx_http_registry_api_image(r, ctx);

    default:
        return ngx_http_registry_api_status(r, ctx->error_status,
                                            ctx->error_message);
    }
}


/*
 * Kubernetes' Status: every error of an /apis/ URI (module.c's
 * ngx_http_registry_error() sends it for them).
 */

ngx_int_t
ngx_http_registry_api_status(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    json_t  *json;

    json = ngx_http_registry_api_status_json(status, message);
    if (json == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_registry_send_json(r, status, json);
}


/* the Status alone: errors.c puts it in place of nginx's error pages */

json_t *
ngx_http_registry_api_status_json(ngx_uint_t status, const char *message)
{
    const char  *reason;

    switch (status) {

    case NGX_HTTP_BAD_REQUEST:
        reason = "BadRequest";
        break;

    case NGX_HTTP_UNAUTHORIZED:
        reason = "Unauthorized";
        break;

    case NGX_HTTP_FORBIDDEN:
        reason = "Forbidden";
        break;

    case NGX_HTTP_NOT_FOUND:
        reason = "NotFound";
        break;

    case NGX_HTTP_NOT_ALLOWED:
        reason = "MethodNotAllowed";
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        reason = "RequestEntityTooLarge";
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        reason = "ServiceUnavailable";
        break;

    default:
        reason = (status >= 500) ? "InternalError" : "BadRequest";
    }

    return json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}",
                     "kind", "Status", "apiVersion", "v1", "metadata",
                     "status", "Failure", "message", message,
                     "reason", reason, "code", (int) status);
}


/* 404 for an object: imagestreams.image.openshift.io "name" not found */

static ngx_int_t
ngx_http_registry_api_not_found(ngx_http_request_t *r, const char *kind,
    ngx_str_t *name)
{
    json_t     *json;
    ngx_str_t   message;

    if (ngx_http_registry_keyf(r->pool, &message,
                               "%s.image.openshift.io \"%V\" not found",
                               kind, name)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    json = json_pack("{s:s,s:s,s:{},s:s,s:s%,s:s,s:{s:s%,s:s,s:s},s:i}",
                     "kind", "Status", "apiVersion", "v1", "metadata",
                     "status", "Failure",
                     "message", message.data, message.len,
                     "reason", "NotFound",
                     "details",
                         "name", name->data, name->len,
                         "group", "image.openshift.io",
                         "kind", kind,
                     "code", NGX_HTTP_NOT_FOUND);
    if (json == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_registry_send_json(r, NGX_HTTP_NOT_FOUND, json);
}


static ngx_int_t
ngx_http_registry_api_send(ngx_http_request_t *r, u_char *data, size_t len)
{
    static ngx_str_t  type = ngx_string("application/json");

    return ngx_http_registry_send(r, NGX_HTTP_OK, &type, data, len);
}


/* GET .../namespaces/P/imagestreams: an ImageStreamList */

static ngx_int_t
ngx_http_registry_api_list(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_run(r, ngx_http_registry_api_listed,
                                 ngx_http_registry_streams_lua, 0,
                                 &ctx->project, 1);
}


static ngx_int_t
ngx_http_registry_api_listed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char      *p, *data;
    size_t       i, len;
    redisReply  *rp, *e;

    static const char  head[] =
        "{\"kind\":\"ImageStreamList\","
        "\"apiVersion\":\"image.openshift.io/v1\","
        "\"metadata\":{\"resourceVersion\":\"";

    rp = ctx->reply;

    if (rp == NULL || rp->type != REDIS_REPLY_ARRAY || rp->elements < 1) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    /* the objects are JSON already: joined, not parsed again */

    len = sizeof(head) - 1 + sizeof("\"},\"items\":[]}") - 1;

    for (i = 0; i < rp->elements; i++) {
        e = rp->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            return ngx_http_registry_redis_failed(r, ctx);
        }

        len += e->len + 1;
    }

    data = ngx_pnalloc(r->pool, len);
    if (data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(data, head, sizeof(head) - 1);
    p = ngx_cpymem(p, rp->element[0]->str, rp->element[0]->len);
    p = ngx_cpymem(p, "\"},\"items\":[", sizeof("\"},\"items\":[") - 1);

    for (i = 1; i < rp->elements; i++) {
        if (i > 1) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, rp->element[i]->str, rp->element[i]->len);
    }

    *p++ = ']';
    *p++ = '}';

    return ngx_http_registry_api_send(r, data, p - data);
}


/* GET .../namespaces/P/imagestreams/N */

static ngx_int_t
ngx_http_registry_api_stream_got(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char      *p;
    redisReply  *rp;

    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->type != REDIS_REPLY_STRING) {
        return ngx_http_registry_api_not_found(r, "imagestreams",
                                               &ctx->image);
    }

    p = ngx_pnalloc(r->pool, rp->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, rp->str, rp->len);

    return ngx_http_registry_api_send(r, p, rp->len);
}


static ngx_int_t
ngx_http_registry_api_stream(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t  key;

    static ngx_str_t  get = ngx_string("GET");

    if (ngx_http_registry_keyf(r->pool, &key, "imagestream:%V", &ctx->repo)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_call(r, ngx_http_registry_api_stream_got, 2,
                                  &get, &key);
}


/* GET .../namespaces/P/imagestreamtags/N:T: an ImageStreamTag */

static ngx_int_t
ngx_http_registry_api_tag(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t  args[2];

    args[0] = ctx->repo;
    args[1] = ctx->reference;

    return ngx_http_registry_run(r, ngx_http_registry_api_tagged,
                                 ngx_http_registry_tag_lua, 0, args, 2);
}


static ngx_int_t
ngx_http_registry_api_tagged(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t       i;
    json_t      *stream, *tags, *t, *item, *image, *ist, *v;
    ngx_str_t    name;
    redisReply  *rp, **e;

    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR
        || (rp->type != REDIS_REPLY_NIL && rp->type != REDIS_REPLY_ARRAY))
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    name.len = ctx->image.len + 1 + ctx->reference.len;
    name.data = ngx_pnalloc(r->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "%V:%V", &ctx->image, &ctx->reference);

    if (rp->type == REDIS_REPLY_NIL) {
        return ngx_http_registry_api_not_found(r, "imagestreamtags", &name);
    }

    e = rp->element;

    if (rp->elements != 3 || e[0]->type != REDIS_REPLY_STRING
        || e[1]->type != REDIS_REPLY_STRING
        || e[2]->type != REDIS_REPLY_STRING)
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    stream = json_loadb(e[0]->str, e[0]->len, 0, NULL);
    if (stream == NULL) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    item = NULL;
    tags = json_object_get(json_object_get(stream, "status"), "tags");

    for (i = 0; i < json_array_size(tags); i++) {
        t = json_array_get(tags, i);
        v = json_object_get(t, "tag");

        if (json_is_string(v)
            && json_string_length(v) == ctx->reference.len
            && ngx_strncmp(json_string_value(v), ctx->reference.data,
                           ctx->reference.len)
               == 0)
        {
            item = json_array_get(json_object_get(t, "items"), 0);
            break;
        }
    }

    if (item == NULL) {
        /* a tag older than image streams: none to show */
        json_decref(stream);
        return ngx_http_registry_api_not_found(r, "imagestreamtags", &name);
    }

    if (e[2]->len) {
        image = json_loadb(e[2]->str, e[2]->len, 0, NULL);

    } else {
        image = json_pack("{s:s,s:s,s:{s:s%}}", "kind", "Image",
                          "apiVersion", "image.openshift.io/v1",
                          "metadata", "name", e[1]->str, e[1]->len);
    }

    v = json_object_get(stream, "metadata");

    ist = json_pack("{s:s,s:s,s:{s:s%,s:O,s:O,s:O,s:O},s:n,s:O,"
                    "s:{s:b},s:o}",
                    "kind", "ImageStreamTag",
                    "apiVersion", "image.openshift.io/v1",
                    "metadata",
                        "name", name.data, name.len,
                        "namespace", json_object_get(v, "namespace"),
                        "uid", json_object_get(v, "uid"),
                        "resourceVersion",
                            json_object_get(v, "resourceVersion"),
                        "creationTimestamp", json_object_get(item, "created"),
                    "tag",
                    "generation", json_object_get(item, "generation"),
                    "lookupPolicy", "local", 0,
                    "image", image);

    json_decref(stream);

    if (ist == NULL) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    return ngx_http_registry_send_json(r, NGX_HTTP_OK, ist);
}


/* GET /apis/image.openshift.io/v1/images/D */

static ngx_int_t
ngx_http_registry_api_image(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_run(r, ngx_http_registry_api_imaged,
                                 ngx_http_registry_image_lua, 0,
                                 &ctx->reference, 1);
}


static ngx_int_t
ngx_http_registry_api_imaged(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char      *p;
    size_t       i;
    ngx_uint_t   visible;
    redisReply  *rp;

    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR
        || (rp->type != REDIS_REPLY_NIL && rp->type != REDIS_REPLY_ARRAY))
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    /* an Image no repository of the user's holds is not theirs to see */

    visible = 0;

    if (rp->type == REDIS_REPLY_ARRAY && rp->elements >= 1
        && rp->element[0]->type == REDIS_REPLY_STRING)
    {
        visible = ngx_http_registry_api_may_pull(r, ctx, NULL);

        for (i = 1; !visible && i < rp->elements; i++) {
            visible = ngx_http_registry_api_may_pull(r, ctx,
                                                     rp->element[i]);
        }
    }

    if (!visible) {
        return ngx_http_registry_api_not_found(r, "images", &ctx->reference);
    }

    p = ngx_pnalloc(r->pool, rp->element[0]->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, rp->element[0]->str, rp->element[0]->len);

    return ngx_http_registry_api_send(r, p, rp->element[0]->len);
}


/*
 * Whether the user may pull the repository (NULL: whether everything is
 * visible).  The access phase asked the authorizer for "list", whose
 * answer names the projects the user may pull.
 */

static ngx_uint_t
ngx_http_registry_api_may_pull(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, redisReply *repo)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->auth_location.len == 0) {
        return 1;
    }

    if (repo == NULL || repo->type != REDIS_REPLY_STRING) {
        return 0;
    }

    return ngx_http_registry_auth_may_list(r, ctx, (u_char *) repo->str,
                                           repo->len);
}


/*
 * Watches.  A watcher is registered (and the worker subscribed) before
 * its replay is read: a change committed before the read is in the
 * replay, one committed after it is published after the subscription,
 * and resourceVersions tell which is which.
 */

static ngx_int_t
ngx_http_registry_watch_start(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                          i;
    ngx_int_t                       n;
    ngx_str_t                       v;
    ngx_msec_t                      timeout;
    ngx_pool_cleanup_t             *cln;
    ngx_http_registry_watch_t      *w;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_watch_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->request = r;
    w->project = ctx->project;
    w->initial = 1;
    ngx_queue_init(&w->backlog);
    ngx_queue_init(&w->sending);
    ngx_queue_init(&w->retired);

    /* "" and "0" ask for the current state first, as Kubernetes does */

    if (ngx_http_arg(r, (u_char *) "resourceVersion", 15, &v) == NGX_OK
        && v.len && !(v.len == 1 && v.data[0] == '0'))
    {
        for (i = 0; i < v.len; i++) {
            if (v.data[i] < '0' || v.data[i] > '9' || i == 18) {
                return ngx_http_registry_api_status(r, NGX_HTTP_BAD_REQUEST,
                                                "invalid resourceVersion");
            }
        }

        w->initial = 0;
        w->from = (uint64_t) ngx_atoof(v.data, v.len);
    }

    timeout = mcf->watch_timeout;

    if (ngx_http_arg(r, (u_char *) "timeoutSeconds", 14, &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);

        if (n == NGX_ERROR) {
            return ngx_http_registry_api_status(r, NGX_HTTP_BAD_REQUEST,
                                                "invalid timeoutSeconds");
        }

        if (n > 0 && (ngx_msec_t) n < timeout / 1000) {
            timeout = (ngx_msec_t) n * 1000;
        }
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_registry_watch_cleanup;
    cln->data = w;

    if (ngx_http_registry_watchers.next == NULL) {
        ngx_queue_init(&ngx_http_registry_watchers);
    }

    ngx_queue_insert_tail(&ngx_http_registry_watchers, &w->queue);
    w->queued = 1;

    /* a reload must not wait for watches: the timer does not hold it */

    w->timeout.handler = ngx_http_registry_watch_timeout;
    w->timeout.data = w;
    w->timeout.log = r->connection->log;
    w->timeout.cancelable = 1;
    ngx_add_timer(&w->timeout, timeout);

    ctx->data = w;

    /* the client leaving ends the watch */
    r->read_event_handler = ngx_http_test_reading;

    if (ngx_http_registry_redis_subscribe(&ngx_http_registry_watch_channel,
                                          ngx_http_registry_watch_published)
        != NGX_OK
        || (ngx_http_registry_redis_subscribed()
            && ngx_http_registry_watch_query(w) != NGX_OK))
    {
        /* answered at once: no message may reach it any more */
        w->ended = 1;
        ngx_http_registry_watch_cleanup(w);
        w->request = r;

        return ngx_http_registry_unavailable(r, "redis: not connected");
    }

    /* else the subscription's READY starts the query */

    return NGX_DONE;
}


/* r is being freed: nothing may reach it any more */

static void
ngx_http_registry_watch_cleanup(void *data)
{
    ngx_http_registry_watch_t *w = data;

    if (w->queued) {
        ngx_queue_remove(&w->queue);
        w->queued = 0;
    }

    if (w->timeout.timer_set) {
        ngx_del_timer(&w->timeout);
    }

    ngx_http_registry_watch_free(&w->backlog);
    ngx_http_registry_watch_free(&w->sending);
    ngx_http_registry_watch_free(&w->retired);

    w->request = NULL;
}


static ngx_int_t
ngx_http_registry_watch_query(ngx_http_registry_watch_t *w)
{
    ngx_str_t                 args[3];
    ngx_http_request_t       *r;
    ngx_http_registry_ctx_t  *ctx;

    r = w->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    w->querying = 1;
    ctx->next = ngx_http_registry_watch_replayed;

    args[0] = w->project;

    if (w->initial) {
        if (ngx_http_registry_eval(r, ngx_http_registry_streams_lua, 0,
                                   args, 1)
            != NGX_OK)
        {
            ctx->next = NULL;
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_registry_keyf(r->pool, &args[1], "%uL", w->from)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[2], "%uz",
                                  (size_t) NGX_HTTP_REGISTRY_WATCH_BACKLOG)
           != NGX_OK
        || ngx_http_registry_eval(r, ngx_http_registry_replay_lua, 0,
                                  args, 3)
           != NGX_OK)
    {
        ctx->next = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The state or the replay arrived: sent, then the backlog, then live.  A
 * watch that fails here leaves the watchers at once, before r is
 * finalized: no message may reach it meanwhile.
 */

static ngx_int_t
ngx_http_registry_watch_replayed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_http_registry_watch_t  *w;

    w = ctx->data;

    rc = ngx_http_registry_watch_replay(r, ctx);

    if (rc != NGX_DONE && !w->ended) {
        w->ended = 1;

        if (w->queued) {
            ngx_queue_remove(&w->queue);
            w->queued = 0;
        }

        if (w->timeout.timer_set) {
            ngx_del_timer(&w->timeout);
        }

        r->connection->idle = 0;
    }

    return rc;
}


static ngx_int_t
ngx_http_registry_watch_replay(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                           i, len;
    u_char                          *p;
    uint64_t                         rv;
    ngx_int_t                        rc;
    ngx_str_t                        line, now;
    ngx_queue_t                     *q;
    redisReply                      *rp;
    ngx_connection_t                *c;
    ngx_http_registry_watch_t       *w;
    ngx_http_registry_watch_line_t  *l;

    w = ctx->data;
    rp = ctx->reply;
    c = r->connection;

    w->querying = 0;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR
        || ((rp->type != REDIS_REPLY_ARRAY || rp->elements < 1)
            && rp->type != REDIS_REPLY_STATUS
            && rp->type != REDIS_REPLY_STRING))
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    rc = ngx_http_registry_watch_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    if (rp->type != REDIS_REPLY_ARRAY) {
        /* "gone": the log lost changes after the version asked for */

        if (ngx_http_registry_keyf(r->pool, &line,
                "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
                "\"apiVersion\":\"v1\",\"metadata\":{},\"status\":"
                "\"Failure\",\"message\":\"too old resource version: %uL\","
                "\"reason\":\"Expired\",\"code\":410}}", w->from)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_registry_watch_line(w, NULL, 0, line.data, line.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_http_registry_watch_end(w, NGX_OK);
        return NGX_DONE;
    }

    if (ngx_http_registry_reply_str(rp, 0, &now) != NGX_OK) {
        return NGX_ERROR;
    }

    rv = (uint64_t) ngx_atoof(now.data, now.len);

    if (w->initial) {
        for (i = 1; i < rp->elements; i++) {
            if (ngx_http_registry_reply_str(rp, i, &line) != NGX_OK) {
                return NGX_ERROR;
            }

            len = sizeof("{\"type\":\"ADDED\",\"object\":}") - 1 + line.len;

            p = ngx_pnalloc(r->pool, len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_sprintf(p, "{\"type\":\"ADDED\",\"object\":%V}", &line);

            if (ngx_http_registry_watch_line(w, NULL, rv, p, len) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

    } else {
        /* {rv read up to, "1" when more follows, then ID, event, ...} */

        if (ngx_http_registry_reply_str(rp, 1, &line) != NGX_OK) {
            return NGX_ERROR;
        }

        if (line.len == 1 && line.data[0] == '1') {
            w->behind = 1;
        }

        for (i = 2; i + 1 < rp->elements; i += 2) {
            if (ngx_http_registry_reply_str(rp, i, &now) != NGX_OK
                || ngx_http_registry_reply_str(rp, i + 1, &line) != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (ngx_http_registry_watch_line(w, NULL,
                                        (uint64_t) ngx_atoof(now.data,
                                                             now.len),
                                        line.data, line.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    /*
     * Published meanwhile: what the replay holds already is dropped, and
     * all of it when the log is to be read again.
     */

    w->rv = rv;
    w->live = 1;

    while (!ngx_queue_empty(&w->backlog)) {
        q = ngx_queue_head(&w->backlog);
        ngx_queue_remove(q);

        l = ngx_queue_data(q, ngx_http_registry_watch_line_t, queue);
        w->unsent -= l->buf.end - l->buf.start;

        if (l->rv <= w->rv || w->behind) {
            ngx_free(l);
            continue;
        }

        w->rv = l->rv;

        if (ngx_http_registry_watch_send(w, l) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_registry_watch_flush(w) != NGX_OK) {
        return NGX_ERROR;
    }

    /* idle for nginx: a graceful shutdown closes the watch */
    c->idle = 1;

    /* all sent at once, more in the log: the next step now */

    if (ngx_http_registry_watch_catch_up(w) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_watch_header(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    static ngx_str_t  type = ngx_string("application/json");

    if (r->header_sent) {
        return NGX_OK;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = type;
    r->headers_out.content_type_len = type.len;
    r->headers_out.content_length_n = -1;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);

    r->write_event_handler = ngx_http_registry_watch_writer;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    /* the client learns now that the watch runs, not at the first event */

    return ngx_http_send_special(r, NGX_HTTP_FLUSH);
}


/*
 * A line of the watch: copied into memory of its own, freed once sent,
 * as a watch may last long and see many changes.  q: the backlog, or
 * NULL to send at once.
 */

static ngx_int_t
ngx_http_registry_watch_line(ngx_http_registry_watch_t *w, ngx_queue_t *q,
    uint64_t rv, u_char *data, size_t len)
{
    u_char                          *p;
    ngx_http_registry_watch_line_t  *l;

    l = ngx_alloc(sizeof(ngx_http_registry_watch_line_t) + len + 1,
                  ngx_cycle->log);
    if (l == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&l->buf, sizeof(ngx_buf_t));
    l->rv = rv;

    p = (u_char *) l + sizeof(ngx_http_registry_watch_line_t);
    ngx_memcpy(p, data, len);
    p[len] = '\n';

    l->buf.pos = p;
    l->buf.last = p + len + 1;
    l->buf.start = l->buf.pos;
    l->buf.end = l->buf.last;
    l->buf.memory = 1;
    l->buf.flush = 1;

    if (q != NULL) {
        ngx_queue_insert_tail(q, &l->queue);
        w->unsent += len + 1;
        return NGX_OK;
    }

    return ngx_http_registry_watch_send(w, l);
}


/*
 * A line sent is retired, not freed: the chunked filter keeps its buf in
 * its busy chain until it is called with data again, and reads it then
 * (a freed line of over 128 KB is unmapped: the worker crashed there).
 * So lines retired before a call are freed after it.
 */

static ngx_int_t
ngx_http_registry_watch_send(ngx_http_registry_watch_t *w,
    ngx_http_registry_watch_line_t *l)
{
    ngx_int_t     rc;
    ngx_queue_t   old;
    ngx_chain_t  *cl;

    cl = ngx_alloc_chain_link(w->request->pool);
    if (cl == NULL) {
        ngx_free(l);
        return NGX_ERROR;
    }

    cl->buf = &l->buf;
    cl->next = NULL;

    ngx_queue_insert_tail(&w->sending, &l->queue);
    w->unsent += l->buf.last - l->buf.pos;

    ngx_queue_init(&old);

    if (!ngx_queue_empty(&w->retired)) {
        ngx_queue_add(&old, &w->retired);
        ngx_queue_init(&w->retired);
    }

    rc = ngx_http_output_filter(w->request, cl);

    ngx_http_registry_watch_free(&old);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_registry_watch_flush(w);
}


/* retires the lines sent; waits for the socket when some are not */

static ngx_int_t
ngx_http_registry_watch_flush(ngx_http_registry_watch_t *w)
{
    ngx_queue_t                     *q;
    ngx_http_request_t              *r;
    ngx_connection_t                *c;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_registry_watch_line_t  *l;

    r = w->request;
    c = r->connection;

    while (!ngx_queue_empty(&w->sending)) {
        q = ngx_queue_head(&w->sending);
        l = ngx_queue_data(q, ngx_http_registry_watch_line_t, queue);

        if (l->buf.pos != l->buf.last) {
            break;
        }

        ngx_queue_remove(q);
        w->unsent -= l->buf.end - l->buf.start;
        ngx_queue_insert_tail(&w->retired, q);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!c->buffered) {
        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        return NGX_OK;
    }

    if (!c->write->timer_set) {
        ngx_add_timer(c->write, clcf->send_timeout);
    }

    if (ngx_handle_write_event(c->write, clcf->send_lowat) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The socket took more: the send timeout starts again (it measures how
 * long the client takes nothing, not how long output stays pending).
 */

static void
ngx_http_registry_watch_writer(ngx_http_request_t *r)
{
    ngx_connection_t           *c;
    ngx_http_registry_ctx_t    *ctx;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_registry_watch_t  *w;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    w = ctx->data;

    if (c->write->timedout) {
        c->timedout = 1;
        ngx_log_error(NGX_LOG_WARN, c->log, NGX_ETIMEDOUT,
                      "registry: watch dropped: the client does not read");
        ngx_http_registry_watch_end(w, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ngx_http_output_filter(r, NULL) == NGX_ERROR
        || ngx_http_registry_watch_flush(w) != NGX_OK)
    {
        ngx_http_registry_watch_end(w, NGX_ERROR);
        return;
    }

    if (c->buffered) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        ngx_add_timer(c->write, clcf->send_timeout);
    }

    if (ngx_http_registry_watch_catch_up(w) != NGX_OK) {
        ngx_http_registry_watch_end(w, NGX_OK);
    }
}


/*
 * A watcher behind whose output went out reads the next changes from
 * the log: from its own resourceVersion, at most a backlog's worth.
 */

static ngx_int_t
ngx_http_registry_watch_catch_up(ngx_http_registry_watch_t *w)
{
    if (!w->behind || !w->live || w->querying || w->ended
        || w->request == NULL || w->unsent)
    {
        return NGX_OK;
    }

    w->behind = 0;
    w->live = 0;
    w->initial = 0;
    w->from = w->rv;

    return ngx_http_registry_watch_query(w);
}


/* the backlog given up: the log has it, read once the watcher is live */

static void
ngx_http_registry_watch_forget(ngx_http_registry_watch_t *w)
{
    ngx_queue_t                     *q;
    ngx_http_registry_watch_line_t  *l;

    while (!ngx_queue_empty(&w->backlog)) {
        q = ngx_queue_head(&w->backlog);
        ngx_queue_remove(q);

        l = ngx_queue_data(q, ngx_http_registry_watch_line_t, queue);
        w->unsent -= l->buf.end - l->buf.start;
        ngx_free(l);
    }

    w->behind = 1;
}


static void
ngx_http_registry_watch_timeout(ngx_event_t *ev)
{
    ngx_http_registry_watch_end(ev->data, NGX_OK);
}


/*
 * Ends a watch from outside its request's handlers: NGX_OK ends the
 * response, anything else closes it.
 */

static void
ngx_http_registry_watch_end(ngx_http_registry_watch_t *w, ngx_int_t rc)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_registry_ctx_t  *ctx;

    r = w->request;

    if (r == NULL || w->ended) {
        return;
    }

    w->ended = 1;
    c = r->connection;
    c->idle = 0;

    if (w->queued) {
        ngx_queue_remove(&w->queue);
        w->queued = 0;
    }

    if (w->timeout.timer_set) {
        ngx_del_timer(&w->timeout);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (w->querying && ctx) {
        /* the pending reply finds nobody waiting */
        ctx->next = NULL;
    }

    if (rc == NGX_OK) {
        rc = r->header_sent ? ngx_http_send_special(r, NGX_HTTP_LAST)
                            : ngx_http_registry_unavailable(r,
                                                  "redis: subscription lost");
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_registry_watch_free(ngx_queue_t *lines)
{
    ngx_queue_t  *q;

    while (!ngx_queue_empty(lines)) {
        q = ngx_queue_head(lines);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_registry_watch_line_t, queue));
    }
}


/* the worker's subscription: "<project> <rv> <event>" */

static void
ngx_http_registry_watch_published(ngx_uint_t event, u_char *message,
    size_t len)
{
    u_char                     *p, *last, *sp;
    uint64_t                    rv;
    ngx_str_t                   project;
    ngx_queue_t                *q, *next;
    ngx_http_registry_watch_t  *w;

    if (ngx_http_registry_watchers.next == NULL) {
        return;
    }

    if (event != NGX_HTTP_REGISTRY_SUB_MESSAGE) {
        for (q = ngx_queue_head(&ngx_http_registry_watchers);
             q != ngx_queue_sentinel(&ngx_http_registry_watchers);
             q = next)
        {
            next = ngx_queue_next(q);
            w = ngx_queue_data(q, ngx_http_registry_watch_t, queue);

            if (event == NGX_HTTP_REGISTRY_SUB_LOST) {
                /* changes may have been missed: clients watch again */
                ngx_http_registry_watch_end(w, NGX_OK);

            } else if (!w->live && !w->querying && !w->ended
                       && ngx_http_registry_watch_query(w) != NGX_OK)
            {
                ngx_http_registry_watch_end(w, NGX_OK);
            }
        }

        return;
    }

    last = message + len;

    sp = ngx_strlchr(message, last, ' ');
    if (sp == NULL) {
        return;
    }

    project.data = message;
    project.len = sp - message;

    p = sp + 1;
    sp = ngx_strlchr(p, last, ' ');
    if (sp == NULL) {
        return;
    }

    rv = (uint64_t) ngx_atoof(p, sp - p);
    p = sp + 1;

    for (q = ngx_queue_head(&ngx_http_registry_watchers);
         q != ngx_queue_sentinel(&ngx_http_registry_watchers);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_registry_watch_t, queue);

        if (w->project.len != project.len
            || ngx_strncmp(w->project.data, project.data, project.len) != 0)
        {
            continue;
        }

        if (!w->live) {
            if (w->behind) {
                continue;
            }

            if (ngx_http_registry_watch_line(w, &w->backlog, rv, p, last - p)
                != NGX_OK)
            {
                ngx_http_registry_watch_end(w, NGX_ERROR);

            } else if (w->unsent > NGX_HTTP_REGISTRY_WATCH_BACKLOG) {
                ngx_http_registry_watch_forget(w);
            }

            continue;
        }

        if (rv <= w->rv) {
            continue;
        }

        if (w->behind) {
            if (ngx_http_registry_watch_catch_up(w) != NGX_OK) {
                ngx_http_registry_watch_end(w, NGX_OK);
            }

            continue;
        }

        if (w->unsent
            && w->unsent + (last - p) + 1 > NGX_HTTP_REGISTRY_WATCH_BACKLOG)
        {
            /* a burst, or a slow client: sent from the log when it read */
            w->behind = 1;
            continue;
        }

        w->rv = rv;

        if (ngx_http_registry_watch_line(w, NULL, rv, p, last - p)
            != NGX_OK)
        {
            ngx_http_registry_watch_end(w, NGX_ERROR);
            continue;
        }

        ngx_http_run_posted_requests(w->request->connection);
    }
}
