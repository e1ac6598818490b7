
/*
 * Images and the Lua side of image streams.
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
 */


#include "ngx_http_registry.h"


/* a config blob larger than this is not read: no metadata then */
#define NGX_HTTP_REGISTRY_CONFIG_MAX     (1024 * 1024)

/* s3.c keeps at most this much of an answer's body: read in ranges */
#define NGX_HTTP_REGISTRY_CONFIG_CHUNK   8192


/* the config blob of a manifest being pushed, read in ranges */
typedef struct {
    ngx_http_registry_step_pt   next;
    ngx_str_t                   key;
    off_t                       size;
    u_char                     *buf;
    off_t                       got;
} ngx_http_registry_image_read_t;


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

    return ngx_http_registry_s3_run(r, ngx_http_registry_image_chunk, &op);
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
