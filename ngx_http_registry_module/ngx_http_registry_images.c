
/*
 * Images and the Lua side of image streams.
 *
 * A manifest pushed by tag moves the image stream <project>/<image>: a
 * new entry at the head of the tag's history (created, image,
 * dockerImageReference, generation, pushedBy), bounded by
 * registry_history_depth.  The stream is kept in Redis by the Lua
 * helpers of redis/lib.lua (is_push, is_untag, is_forget), which run
 * inside the very functions that change repo:R:tags (manifests.c), so
 * the stream's tags are the tags list of the repository at every
 * moment.  It is kept in parts, one per tag, so a push reads and
 * writes one tag's history whatever the stream's size; the whole
 * object is assembled when read.  Every change takes the next
 * resourceVersion and its watch event (the stream's metadata and the
 * one tag that changed) is appended to a bounded Redis stream (the
 * watch log) and PUBLISHed, in the same function.
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


/* the Image of a manifest being pushed */

ngx_int_t
ngx_http_registry_image_prepare(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next)
{
    ngx_str_t                        args[4];
    ngx_uint_t                       nkeys, nargs;
    ngx_http_registry_manifest_t    *m;
    ngx_http_registry_image_read_t  *rd;

    m = ctx->data;

    rd = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_image_read_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    rd->next = next;
    m->image = rd;

    if (ngx_http_registry_keyf(r->pool, &args[0], "image:%V", &m->digest)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[1], "repo:%V:blobs",
                                  &ctx->repo)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* no config read: no blob:C, no C */

    nkeys = 2;
    nargs = 2;

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
        if (ngx_http_registry_keyf(r->pool, &args[2], "blob:%V",
                                   &m->config.digest)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        args[3] = m->config.digest;
        nkeys = 3;
        nargs = 4;
    }

    return ngx_http_registry_run(r, ngx_http_registry_image_checked,
                                 "image_check", nkeys, args, nargs);
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
 * when it was read.  Size is the manifest's (manifest_put.c counts it).
 */

static json_t *
ngx_http_registry_image_metadata(ngx_http_registry_manifest_t *m,
    json_t *config)
{
    size_t               i;
    json_t              *meta, *v;

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

    if (!m->type->index) {
        if (json_object_set_new(meta, "Id",
                                json_stringn((char *) m->config.digest.data,
                                             m->config.digest.len))
            != 0)
        {
            goto failed;
        }
    }

    if (json_object_set_new(meta, "Size", json_integer(m->size)) != 0) {
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
