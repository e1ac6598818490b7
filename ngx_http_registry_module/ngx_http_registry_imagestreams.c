
/*
 * The image API, the way OpenShift exposes image streams and images
 * (images.c keeps them), read-only and authorized like a pull of the
 * project; the router reads the URIs:
 *
 *   GET /apis/image.openshift.io/v1/namespaces/P/imagestreams[?watch=true]
 *   GET /apis/image.openshift.io/v1/namespaces/P/imagestreams/N
 *   GET /apis/image.openshift.io/v1/namespaces/P/imagestreamtags/N:T
 *   GET /apis/image.openshift.io/v1/images/D
 *
 * A watch is watch.c's.
 */


#include "ngx_http_registry.h"


static ngx_int_t ngx_http_registry_api_not_found(ngx_http_request_t *r,
    const char *kind, ngx_str_t *name);
static ngx_int_t ngx_http_registry_api_send(ngx_http_request_t *r,
    u_char *data, size_t len);
static ngx_int_t ngx_http_registry_api_listed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_tagged(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_api_imaged(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_uint_t ngx_http_registry_api_may_pull(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, redisReply *repo);








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

ngx_int_t
ngx_http_registry_api_streams_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t  watch;

    if (r->method == NGX_HTTP_GET
        && ngx_http_arg(r, (u_char *) "watch", 5, &watch) == NGX_OK
        && ((watch.len == 4 && ngx_strncmp(watch.data, "true", 4) == 0)
            || (watch.len == 1 && watch.data[0] == '1')))
    {
        return ngx_http_registry_watch_start(r, ctx);
    }

    return ngx_http_registry_run(r, ngx_http_registry_api_listed,
                                 "imagestreams_list", 0,
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


ngx_int_t
ngx_http_registry_api_stream_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    /* assembled from its parts by redis/lib.lua (is_whole) */

    return ngx_http_registry_run(r, ngx_http_registry_api_stream_got,
                                 "imagestream_get", 0, &ctx->repo, 1);
}


/* GET .../namespaces/P/imagestreamtags/N:T: an ImageStreamTag */

ngx_int_t
ngx_http_registry_api_tag_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t  args[2];

    args[0] = ctx->repo;
    args[1] = ctx->reference;

    return ngx_http_registry_run(r, ngx_http_registry_api_tagged,
                                 "imagestreamtag_get", 0, args, 2);
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

ngx_int_t
ngx_http_registry_api_image_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_run(r, ngx_http_registry_api_imaged,
                                 "image_get", 0,
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
