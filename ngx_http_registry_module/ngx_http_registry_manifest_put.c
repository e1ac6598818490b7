
/*
 * PUT /v2/<name>/manifests/<ref>: the body is read (4 MiB at most),
 * validated with jansson, hashed, made into an Image object
 * (ngx_http_registry_image_prepare()), then stored with its tag and the
 * image stream's move in one function call (redis/manifest_put.lua).
 */


#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_MANIFEST_MAX  (4 * 1024 * 1024)


static ngx_int_t ngx_http_registry_manifest_put_body(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_manifest_parse(ngx_http_request_t *r,
    ngx_http_registry_manifest_t *m, const char **error);
static const char *ngx_http_registry_manifest_type(ngx_http_request_t *r,
    ngx_http_registry_manifest_t *m);
static const char *ngx_http_registry_descriptor(json_t *json,
    ngx_http_registry_descriptor_t *d);
static ngx_int_t ngx_http_registry_manifest_store(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_manifest_stored(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_manifest_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_manifest_blob_unknown(
    ngx_http_request_t *r, redisReply *digest);
static ngx_int_t ngx_http_registry_manifest_size_wrong(ngx_http_request_t *r,
    redisReply *rp);
static void ngx_http_registry_manifest_json_cleanup(void *data);


static ngx_http_registry_media_type_t  ngx_http_registry_manifest_types[] = {
    { ngx_string("application/vnd.docker.distribution.manifest.v2+json"),
      0 },
    { ngx_string("application/vnd.docker.distribution.manifest.list.v2+json"),
      1 },
    { ngx_string("application/vnd.oci.image.manifest.v1+json"), 0 },
    { ngx_string(NGX_HTTP_REGISTRY_OCI_INDEX), 1 },
    { ngx_null_string, 0 }
};




/* PUT: checks what can be checked before the body, then reads it */

ngx_int_t
ngx_http_registry_manifest_put(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t by_tag)
{
    ngx_http_registry_manifest_t  *m;

    if (r->headers_in.content_length_n > NGX_HTTP_REGISTRY_MANIFEST_MAX) {
        return ngx_http_registry_manifest_reject(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "SIZE_INVALID",
                   "manifest is larger than 4 MiB");
    }

    m = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_manifest_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    if (by_tag) {
        m->tag = ctx->reference;
    }

    ctx->data = m;

    return ngx_http_registry_read_body(r, ctx,
                                       ngx_http_registry_manifest_put_body);
}


static ngx_int_t
ngx_http_registry_manifest_put_body(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                        *p;
    ngx_int_t                      rc;
    const char                    *error;
    ngx_http_registry_manifest_t  *m;
    u_char                         hash[SHA256_DIGEST_LENGTH];

    m = ctx->data;

    /* a chunked body has no Content-Length to reject it early */

    rc = ngx_http_registry_body_bytes(r, &m->body,
                                      NGX_HTTP_REGISTRY_MANIFEST_MAX);

    if (rc == NGX_DECLINED) {
        return ngx_http_registry_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "SIZE_INVALID",
                                       "manifest is larger than 4 MiB");
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_registry_manifest_parse(r, m, &error);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST,
                                       "MANIFEST_INVALID", error);
    }

    /* the digest names the exact bytes, whatever their JSON says */

    SHA256(m->body.data, m->body.len, hash);

    p = ngx_pnalloc(r->pool, NGX_HTTP_REGISTRY_DIGEST_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    m->digest.data = p;
    p = ngx_cpymem(p, "sha256:", 7);
    p = ngx_hex_dump(p, hash, SHA256_DIGEST_LENGTH);
    m->digest.len = p - m->digest.data;

    if (m->tag.len == 0
        && (ctx->reference.len != m->digest.len
            || ngx_strncmp(ctx->reference.data, m->digest.data,
                           m->digest.len) != 0))
    {
        return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST,
                                       "DIGEST_INVALID",
                                       "the manifest's digest does not "
                                       "match the digest in the URL");
    }

    return ngx_http_registry_image_prepare(r, ctx,
                                           ngx_http_registry_manifest_store);
}


/*
 * Validates the manifest and extracts what is stored beside it.
 * NGX_DECLINED with *error set when the manifest is invalid.
 */

static ngx_int_t
ngx_http_registry_manifest_parse(ngx_http_request_t *r,
    ngx_http_registry_manifest_t *m, const char **error)
{
    char                            *text;
    size_t                           i, j, n;
    json_t                          *json, *v, *list;
    json_error_t                     err;
    ngx_pool_cleanup_t              *cln;
    ngx_http_registry_descriptor_t  *d, *refs, subject;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    json = json_loadb((const char *) m->body.data, m->body.len,
                      JSON_REJECT_DUPLICATES, &err);

    if (json == NULL) {
        *error = (json_error_code(&err) == json_error_duplicate_key)
                 ? "manifest has a duplicate key"
                 : "manifest is not valid JSON";
        return NGX_DECLINED;
    }

    cln->handler = ngx_http_registry_manifest_json_cleanup;
    cln->data = json;
    m->json = json;

    if (!json_is_object(json)) {
        *error = "manifest is not a JSON object";
        return NGX_DECLINED;
    }

    *error = ngx_http_registry_manifest_type(r, m);
    if (*error) {
        return NGX_DECLINED;
    }

    v = json_object_get(json, "schemaVersion");

    if (!json_is_integer(v) || json_integer_value(v) != 2) {
        *error = "manifest schemaVersion must be 2";
        return NGX_DECLINED;
    }

    if (m->type->index) {
        list = json_object_get(json, "manifests");

        if (!json_is_array(list)) {
            *error = "manifest list has no manifests array";
            return NGX_DECLINED;
        }

    } else {
        v = json_object_get(json, "config");

        if (v == NULL) {
            *error = "manifest has no config descriptor";
            return NGX_DECLINED;
        }

        *error = ngx_http_registry_descriptor(v, &m->config);
        if (*error) {
            return NGX_DECLINED;
        }

        list = json_object_get(json, "layers");

        if (!json_is_array(list)) {
            *error = "manifest has no layers array";
            return NGX_DECLINED;
        }
    }

    n = json_array_size(list);

    if (ngx_array_init(&m->refs, r->pool, n ? n : 1,
                       sizeof(ngx_http_registry_descriptor_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * The size as the Image counts it: an index, its manifests; an image,
     * its config and each distinct layer once
     */

    m->size = m->type->index ? 0 : m->config.size;
    refs = m->refs.elts;    /* room for n: it never moves */

    for (i = 0; i < n; i++) {
        d = ngx_array_push(&m->refs);
        if (d == NULL) {
            return NGX_ERROR;
        }

        *error = ngx_http_registry_descriptor(json_array_get(list, i), d);
        if (*error) {
            return NGX_DECLINED;
        }

        for (j = 0; !m->type->index && j < i; j++) {
            if (refs[j].digest.len == d->digest.len
                && ngx_strncmp(refs[j].digest.data, d->digest.data,
                               d->digest.len)
                   == 0)
            {
                break;
            }
        }

        if (m->type->index || j == i) {
            m->size += d->size;
        }
    }

    v = json_object_get(json, "subject");

    if (v != NULL) {
        *error = ngx_http_registry_descriptor(v, &subject);
        if (*error) {
            *error = "manifest subject is not a valid descriptor";
            return NGX_DECLINED;
        }

        m->subject = subject.digest;
    }

    /* what the referrers API lists the manifest as */

    v = json_object_get(json, "artifactType");

    if (v != NULL) {
        if (!json_is_string(v)) {
            *error = "manifest artifactType is not a string";
            return NGX_DECLINED;
        }

        m->artifact_type.data = (u_char *) json_string_value(v);
        m->artifact_type.len = json_string_length(v);

    } else if (!m->type->index) {
        m->artifact_type = m->config.media_type;
    }

    v = json_object_get(json, "annotations");

    if (v != NULL) {
        if (!json_is_object(v)) {
            *error = "manifest annotations are not an object";
            return NGX_DECLINED;
        }

        text = json_dumps(v, JSON_COMPACT);
        if (text == NULL) {
            return NGX_ERROR;
        }

        m->annotations.len = ngx_strlen(text);
        m->annotations.data = ngx_pnalloc(r->pool, m->annotations.len);
        if (m->annotations.data == NULL) {
            free(text);
            return NGX_ERROR;
        }

        ngx_memcpy(m->annotations.data, text, m->annotations.len);
        free(text);
    }

    return NGX_OK;
}


/*
 * The media type: the Content-Type header's, else the body's mediaType;
 * when both are given they must agree.  Returns an error message or NULL.
 */

static const char *
ngx_http_registry_manifest_type(ngx_http_request_t *r,
    ngx_http_registry_manifest_t *m)
{
    u_char                          *p, *last;
    json_t                          *v;
    ngx_str_t                        header, body, *type;
    ngx_http_registry_media_type_t  *t;

    static const char  schema1[] =
        "application/vnd.docker.distribution.manifest.v1";

    ngx_str_null(&header);
    ngx_str_null(&body);

    if (r->headers_in.content_type) {
        /* parameters such as "; charset=utf-8" do not name the type */

        header = r->headers_in.content_type->value;
        last = header.data + header.len;

        p = ngx_strlchr(header.data, last, ';');
        if (p != NULL) {
            header.len = p - header.data;
        }

        while (header.len && header.data[header.len - 1] == ' ') {
            header.len--;
        }
    }

    v = json_object_get(m->json, "mediaType");

    if (v != NULL) {
        if (!json_is_string(v)) {
            return "manifest mediaType is not a string";
        }

        body.data = (u_char *) json_string_value(v);
        body.len = json_string_length(v);
    }

    if (header.len && body.len
        && (header.len != body.len
            || ngx_strncasecmp(header.data, body.data, body.len) != 0))
    {
        return "Content-Type does not match the manifest's mediaType";
    }

    type = header.len ? &header : &body;

    if (type->len == 0) {
        v = json_object_get(m->json, "schemaVersion");

        if (json_is_integer(v) && json_integer_value(v) == 1) {
            return "schema 1 manifests are not supported";
        }

        return "manifest media type is missing: neither Content-Type nor "
               "mediaType names it";
    }

    for (t = ngx_http_registry_manifest_types; t->name.len; t++) {
        if (type->len == t->name.len
            && ngx_strncasecmp(type->data, t->name.data, t->name.len) == 0)
        {
            m->type = t;
            return NULL;
        }
    }

    if (type->len >= sizeof(schema1) - 1
        && ngx_strncasecmp(type->data, (u_char *) schema1,
                           sizeof(schema1) - 1) == 0)
    {
        return "schema 1 manifests are not supported";
    }

    return "unsupported manifest media type";
}


/* a descriptor: sha256 digest, size, optional mediaType; error or NULL */

static const char *
ngx_http_registry_descriptor(json_t *json, ngx_http_registry_descriptor_t *d)
{
    json_t  *v;

    if (!json_is_object(json)) {
        return "a descriptor is not an object";
    }

    ngx_str_null(&d->media_type);

    v = json_object_get(json, "mediaType");

    if (v != NULL) {
        if (!json_is_string(v)) {
            return "a descriptor mediaType is not a string";
        }

        d->media_type.data = (u_char *) json_string_value(v);
        d->media_type.len = json_string_length(v);
    }

    v = json_object_get(json, "digest");

    if (!json_is_string(v)) {
        return "a descriptor has no digest";
    }

    d->digest.data = (u_char *) json_string_value(v);
    d->digest.len = json_string_length(v);

    if (ngx_http_registry_check_digest(&d->digest) != NGX_OK) {
        return "a descriptor digest is not a valid sha256 digest";
    }

    v = json_object_get(json, "size");

    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return "a descriptor size is not a non-negative integer";
    }

    d->size = (off_t) json_integer_value(v);

    return NULL;
}


static ngx_int_t
ngx_http_registry_manifest_store(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                          *p;
    ngx_str_t                       *args, host;
    ngx_uint_t                       n, i;
    ngx_http_registry_manifest_t    *m;
    ngx_http_registry_descriptor_t  *d;
    ngx_http_registry_main_conf_t   *mcf;

    m = ctx->data;
    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    n = 20 + 2 * (m->refs.nelts + (m->type->index ? 0 : 1));

    args = ngx_palloc(r->pool, n * sizeof(ngx_str_t));
    if (args == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    args[0] = ctx->repo;
    args[1] = m->digest;
    args[2] = m->tag;
    args[3] = m->body;
    args[4] = m->type->name;
    args[5].data = p;
    args[5].len = ngx_sprintf(p, "%uz", m->body.len) - p;
    args[6] = m->artifact_type;
    args[7] = m->annotations;
    args[8] = m->subject;

    if (m->type->index) {
        ngx_str_set(&args[9], "manifests");

    } else {
        ngx_str_set(&args[9], "blobs");
    }

    /* what the image stream records of this push */

    args[10] = m->object;
    args[11] = ctx->project;
    args[12] = ctx->image;
    args[13] = ctx->user;

    if (ngx_http_registry_public_host(r, &host) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[14], "%V/%V", &host,
                                  &ctx->repo)
           != NGX_OK
        || ngx_http_registry_timestamp(r->pool, &args[15], 0) != NGX_OK
        || ngx_http_registry_uuid(r->pool, &args[16]) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[17], "%ui",
                                  mcf->history_depth)
           != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[18], "%ui",
                                  ngx_max(mcf->events_maxlen, 1))
           != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[19], "%O",
                                  m->type->index ? 0 : m->size)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    i = 20;

    if (!m->type->index) {
        args[i++] = m->config.digest;

        if (ngx_http_registry_keyf(r->pool, &args[i++], "%O",
                                   m->config.size)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    d = m->refs.elts;

    for (n = 0; n < m->refs.nelts; n++) {
        args[i++] = d[n].digest;

        if (ngx_http_registry_keyf(r->pool, &args[i++], "%O", d[n].size)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_registry_run(r, ngx_http_registry_manifest_stored,
                                 "manifest_put", 0, args, i);
}


static ngx_int_t
ngx_http_registry_manifest_stored(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    redisReply                    *rp;
    ngx_http_registry_event_t      ev;
    ngx_http_registry_manifest_t  *m;

    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->type == REDIS_REPLY_STRING) {
        return ngx_http_registry_manifest_blob_unknown(r, rp);
    }

    if (rp->type == REDIS_REPLY_ARRAY) {
        return ngx_http_registry_manifest_size_wrong(r, rp);
    }

    if (rp->type == REDIS_REPLY_STATUS) {
        /* the message of a quota the push would exceed */
        return ngx_http_registry_quota_denied(r, rp);
    }

    if (rp->type != REDIS_REPLY_INTEGER || rp->integer != 1) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    /*
     * Stored, the image stream moved with it.  The event goes out in the
     * background: it never delays nor fails the answer.
     */

    m = ctx->data;

    ngx_memzero(&ev, sizeof(ngx_http_registry_event_t));
    ev.action = NGX_HTTP_REGISTRY_EVENT_PUSH;
    ev.manifest = 1;
    ev.media_type = m->type->name;
    ev.digest = m->digest;
    ev.size = m->body.len;
    ev.tag = m->tag;

    ngx_http_registry_event(r, ctx, &ev);

    return ngx_http_registry_redis_durable(r,
                                           ngx_http_registry_manifest_created);
}


/* 201 for a stored manifest; a step, so it may follow an operation */

static ngx_int_t
ngx_http_registry_manifest_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                        *p;
    ngx_str_t                      location;
    ngx_http_registry_manifest_t  *m;

    m = ctx->data;

    location.len = sizeof("/v2//manifests/") - 1 + ctx->repo.len
                   + m->digest.len;

    p = ngx_pnalloc(r->pool, location.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    location.data = p;
    p = ngx_cpymem(p, "/v2/", 4);
    p = ngx_cpymem(p, ctx->repo.data, ctx->repo.len);
    p = ngx_cpymem(p, "/manifests/", 11);
    ngx_memcpy(p, m->digest.data, m->digest.len);

    if (ngx_http_registry_add_header(r, "Location", &location) != NGX_OK
        || ngx_http_registry_add_header(r, "Docker-Content-Digest",
                                        &m->digest)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (m->subject.len
        && ngx_http_registry_add_header(r, "OCI-Subject", &m->subject)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_send(r, NGX_HTTP_CREATED, NULL, NULL, 0);
}
/* 400 MANIFEST_BLOB_UNKNOWN naming the digest in "detail" */

static ngx_int_t
ngx_http_registry_manifest_blob_unknown(ngx_http_request_t *r,
    redisReply *digest)
{
    json_t  *body;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "registry: 400 MANIFEST_BLOB_UNKNOWN: %*s",
                  digest->len, digest->str);

    body = json_pack("{s:[{s:s,s:s,s:s%}]}", "errors",
                     "code", "MANIFEST_BLOB_UNKNOWN",
                     "message", "a manifest references a blob or manifest "
                                "unknown to the repository",
                     "detail", digest->str, (size_t) digest->len);
    if (body == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_registry_send_json(r, NGX_HTTP_BAD_REQUEST, body);
}


/* 400 MANIFEST_INVALID: {digest, stored size} of a descriptor's blob */

static ngx_int_t
ngx_http_registry_manifest_size_wrong(ngx_http_request_t *r, redisReply *rp)
{
    ngx_str_t  digest, size, msg;

    if (ngx_http_registry_reply_str(rp, 0, &digest) != NGX_OK
        || ngx_http_registry_reply_str(rp, 1, &size) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &msg,
                                  "the size of descriptor %V is not the "
                                  "blob's (%V bytes)%Z", &digest, &size)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "registry: 400 MANIFEST_INVALID: %s", msg.data);

    return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST,
                                   "MANIFEST_INVALID", (char *) msg.data);
}


/* an error before a PUT's body is read: the body is discarded first */

ngx_int_t
ngx_http_registry_manifest_reject(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    ngx_int_t  rc;

    if (r->method == NGX_HTTP_PUT) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_registry_error(r, status, code, message);
}


static void
ngx_http_registry_manifest_json_cleanup(void *data)
{
    json_decref(data);
}
