
/*
 * Manifests: GET, HEAD and DELETE of /v2/<name>/manifests/<ref>, and the
 * referrers API; PUT is in manifest_put.c.  Each operation is one FCALL of
 * a Lua script, so the keys it reads or changes are seen and changed
 * together, in one round trip.  Manifests are stored and served byte for
 * byte.
 */


#include "ngx_http_registry.h"


static ngx_int_t ngx_http_registry_manifest_get(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t by_tag);
static ngx_int_t ngx_http_registry_manifest_got(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_manifest_delete(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t by_tag);
static ngx_int_t ngx_http_registry_manifest_deleted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_referrers_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static json_t *ngx_http_registry_referrer(redisReply *e);










ngx_int_t
ngx_http_registry_manifest_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_uint_t  by_tag;

    /*
     * A reference with a ":" can only be a digest.  A malformed one is
     * 400 on a write; a read finds no manifest by it: 404 (as the OCI
     * conformance suite expects for ".INVALID_MANIFEST_NAME").
     */

    by_tag = (ngx_strlchr(ctx->reference.data,
                          ctx->reference.data + ctx->reference.len, ':')
              == NULL);

    if (by_tag ? ngx_http_registry_is_tag(&ctx->reference)
               : ngx_http_registry_check_digest(&ctx->reference) == NGX_OK)
    {
        /* a well-formed reference */

    } else if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_http_registry_manifest_reject(r, NGX_HTTP_NOT_FOUND,
                                           "MANIFEST_UNKNOWN",
                                           "manifest unknown to registry");

    } else if (by_tag) {
        return ngx_http_registry_manifest_reject(r,
                   NGX_HTTP_BAD_REQUEST, "MANIFEST_INVALID",
                   "invalid tag: must match "
                   "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}");

    } else {
        if (r->method == NGX_HTTP_PUT) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        return ngx_http_registry_digest_error(r, &ctx->reference);
    }

    switch (r->method) {

    case NGX_HTTP_GET:
    case NGX_HTTP_HEAD:
        return ngx_http_registry_manifest_get(r, ctx, by_tag);

    case NGX_HTTP_PUT:
        return ngx_http_registry_manifest_put(r, ctx, by_tag);

    default: /* NGX_HTTP_DELETE, as the router allows no other */
        return ngx_http_registry_manifest_delete(r, ctx, by_tag);
    }
}


/*
 * GET and HEAD: the hottest path of the registry.  One round trip, no
 * JSON, and one copy of the body (the reply dies when the step returns).
 */

static ngx_int_t
ngx_http_registry_manifest_get(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t by_tag)
{
    ngx_str_t  args[5];

    if (ngx_http_registry_keyf(r->pool, &args[0], "repo:%V:tags",
                               &ctx->repo)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[1], "repo:%V:manifests",
                                  &ctx->repo)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    args[2] = ctx->reference;

    if (by_tag) {
        ngx_str_set(&args[3], "t");

    } else {
        ngx_str_set(&args[3], "d");
    }

    if (r->method == NGX_HTTP_HEAD) {
        ngx_str_set(&args[4], "size");

    } else {
        ngx_str_set(&args[4], "body");
    }

    return ngx_http_registry_run(r, ngx_http_registry_manifest_got,
                                 "manifest_get", 2, args, 5);
}


static ngx_int_t
ngx_http_registry_manifest_got(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                     *p;
    off_t                       size;
    ngx_str_t                   digest, type;
    redisReply                 *rp, **e;
    ngx_http_registry_event_t   ev;

    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->type == REDIS_REPLY_NIL) {
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND,
                                       "MANIFEST_UNKNOWN",
                                       "manifest unknown to registry");
    }

    e = rp->element;

    if (rp->type != REDIS_REPLY_ARRAY || rp->elements != 3
        || e[0]->type != REDIS_REPLY_STRING
        || e[1]->type != REDIS_REPLY_STRING
        || e[2]->type != REDIS_REPLY_STRING)
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    /* one allocation for the digest, the type and the body */

    p = ngx_pnalloc(r->pool, e[0]->len + e[1]->len
                             + (r->method == NGX_HTTP_HEAD ? 0 : e[2]->len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    digest.data = p;
    digest.len = e[0]->len;
    p = ngx_cpymem(p, e[0]->str, e[0]->len);

    type.data = p;
    type.len = e[1]->len;
    p = ngx_cpymem(p, e[1]->str, e[1]->len);

    if (ngx_http_registry_add_header(r, "Docker-Content-Digest", &digest)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (r->method == NGX_HTTP_HEAD) {
        size = ngx_atoof((u_char *) e[2]->str, e[2]->len);
        if (size == NGX_ERROR) {
            return ngx_http_registry_redis_failed(r, ctx);
        }

        /* no data: ngx_http_registry_send() sends the header only */
        return ngx_http_registry_send(r, NGX_HTTP_OK, &type, NULL,
                                      (size_t) size);
    }

    ngx_memcpy(p, e[2]->str, e[2]->len);

    ngx_memzero(&ev, sizeof(ngx_http_registry_event_t));
    ev.action = NGX_HTTP_REGISTRY_EVENT_PULL;
    ev.manifest = 1;
    ev.media_type = type;
    ev.digest = digest;
    ev.size = e[2]->len;

    if (ngx_strlchr(ctx->reference.data,
                    ctx->reference.data + ctx->reference.len, ':')
        == NULL)
    {
        ev.tag = ctx->reference;
    }

    ngx_http_registry_event(r, ctx, &ev);

    return ngx_http_registry_send(r, NGX_HTTP_OK, &type, p, e[2]->len);
}




static ngx_int_t
ngx_http_registry_manifest_delete(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t by_tag)
{
    ngx_str_t                       args[5];
    ngx_http_registry_main_conf_t  *mcf;


    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    args[0] = ctx->repo;
    args[1] = ctx->reference;
    args[2] = ctx->project;
    args[3] = ctx->image;

    if (ngx_http_registry_keyf(r->pool, &args[4], "%ui",
                               ngx_max(mcf->events_maxlen, 1))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_run(r, ngx_http_registry_manifest_deleted,
                                 by_tag ? "manifest_untag"
                                        : "manifest_delete",
                                 0, args, 5);
}


static ngx_int_t
ngx_http_registry_manifest_deleted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    redisReply                 *rp;
    ngx_http_registry_event_t   ev;

    rp = ctx->reply;

    if (rp == NULL
        || (rp->type != REDIS_REPLY_INTEGER && rp->type != REDIS_REPLY_STRING))
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->type == REDIS_REPLY_INTEGER && rp->integer == 0) {
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND,
                                       "MANIFEST_UNKNOWN",
                                       "manifest unknown to registry");
    }

    ngx_memzero(&ev, sizeof(ngx_http_registry_event_t));
    ev.action = NGX_HTTP_REGISTRY_EVENT_DELETE;
    ev.manifest = 1;
    ev.size = -1;

    if (rp->type == REDIS_REPLY_STRING) {
        /* untagged: the digest the tag named (the reply dies soon) */

        ev.tag = ctx->reference;
        ev.digest.len = rp->len;
        ev.digest.data = ngx_pnalloc(r->pool, rp->len);
        if (ev.digest.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ev.digest.data, rp->str, rp->len);

    } else {
        ev.digest = ctx->reference;
    }

    ngx_http_registry_event(r, ctx, &ev);

    /* a delete is a write: it waits for replicas as a push does */

    return ngx_http_registry_redis_durable(r, ngx_http_registry_accepted);
}


/* GET /v2/<name>/referrers/<digest>[?artifactType=T] */

ngx_int_t
ngx_http_registry_referrers_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_str_t   args[2];

    if (ngx_http_registry_check_digest(&ctx->reference) != NGX_OK) {
        return ngx_http_registry_digest_error(r, &ctx->reference);
    }

    if (ngx_http_registry_keyf(r->pool, &args[0], "repo:%V:referrers:%V",
                               &ctx->repo, &ctx->reference)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_registry_arg(r, "artifactType", &args[1]);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_str_null(&args[1]);
    }

    /* the filter is what the answer says it applied */

    ctx->data = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (ctx->data == NULL) {
        return NGX_ERROR;
    }

    *(ngx_str_t *) ctx->data = args[1];

    return ngx_http_registry_run(r, ngx_http_registry_referrers_done,
                                 "referrers", 1, args, 2);
}


static ngx_int_t
ngx_http_registry_referrers_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t       i;
    json_t      *index, *list, *desc;
    ngx_str_t   *filter;
    redisReply  *rp;

    static ngx_str_t  type = ngx_string(NGX_HTTP_REGISTRY_OCI_INDEX);
    static ngx_str_t  applied = ngx_string("artifactType");

    rp = ctx->reply;

    if (rp == NULL || rp->type != REDIS_REPLY_ARRAY) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    list = json_array();
    if (list == NULL) {
        return NGX_ERROR;
    }

    index = json_pack("{s:i,s:s,s:o}", "schemaVersion", 2,
                      "mediaType", NGX_HTTP_REGISTRY_OCI_INDEX,
                      "manifests", list);
    if (index == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < rp->elements; i++) {
        desc = ngx_http_registry_referrer(rp->element[i]);

        if (desc == NULL || json_array_append_new(list, desc) != 0) {
            json_decref(index);
            return NGX_ERROR;
        }
    }

    filter = ctx->data;

    if (filter->len
        && ngx_http_registry_add_header(r, "OCI-Filters-Applied", &applied)
           != NGX_OK)
    {
        json_decref(index);
        return NGX_ERROR;
    }

    return ngx_http_registry_send_json_as(r, NGX_HTTP_OK, &type, index);
}


/* {digest, type, size, artifactType, annotations} to a descriptor */

static json_t *
ngx_http_registry_referrer(redisReply *e)
{
    size_t   i;
    off_t    size;
    json_t  *desc, *v;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 5) {
        return NULL;
    }

    for (i = 0; i < 5; i++) {
        if (e->element[i]->type != REDIS_REPLY_STRING) {
            return NULL;
        }
    }

    size = ngx_atoof((u_char *) e->element[2]->str, e->element[2]->len);
    if (size == NGX_ERROR) {
        return NULL;
    }

    desc = json_object();
    if (desc == NULL) {
        return NULL;
    }

    if (json_object_set_new(desc, "mediaType",
                            json_stringn(e->element[1]->str,
                                         e->element[1]->len))
        != 0
        || json_object_set_new(desc, "digest",
                               json_stringn(e->element[0]->str,
                                            e->element[0]->len))
           != 0
        || json_object_set_new(desc, "size", json_integer(size)) != 0)
    {
        goto failed;
    }

    if (e->element[3]->len
        && json_object_set_new(desc, "artifactType",
                               json_stringn(e->element[3]->str,
                                            e->element[3]->len))
           != 0)
    {
        goto failed;
    }

    if (e->element[4]->len) {
        /* stored by the PUT as JSON text of an object */

        v = json_loadb(e->element[4]->str, e->element[4]->len, 0, NULL);

        if (v != NULL && json_object_set_new(desc, "annotations", v) != 0) {
            goto failed;
        }
    }

    return desc;

failed:

    json_decref(desc);
    return NULL;
}
