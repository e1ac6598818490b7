
/*
 * Blobs: HEAD, GET (streamed from S3, or a redirect to a presigned URL)
 * and DELETE of /v2/<name>/blobs/<digest>.  A blob is visible only
 * through a repository that links it.
 */


#include "ngx_http_registry.h"


typedef struct {
    off_t                       size;
    ngx_str_t                   key;
    off_t                       start;          /* the range served */
    off_t                       end;            /* exclusive */
    unsigned                    partial:1;
} ngx_http_registry_blob_t;


static ngx_int_t ngx_http_registry_blob_found(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_blob_range(ngx_http_request_t *r,
    ngx_http_registry_blob_t *blob);
static ngx_int_t ngx_http_registry_blob_headers(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_blob_t *blob);
static ngx_int_t ngx_http_registry_blob_s3_header(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_request_t *sr);
static ngx_int_t ngx_http_registry_blob_sent(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_blob_deleted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_blob_unlinked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);


static ngx_str_t  ngx_http_registry_octet_stream =
    ngx_string("application/octet-stream");


ngx_int_t
ngx_http_registry_blob_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t  args[4];

    if (ngx_http_registry_check_digest(&ctx->reference) != NGX_OK) {
        return ngx_http_registry_digest_error(r, &ctx->reference);
    }

    ctx->digest = ctx->reference;

    if (ngx_http_registry_keyf(r->pool, &args[0], "repo:%V:blobs",
                               &ctx->repo)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    args[2] = ctx->digest;

    if (r->method == NGX_HTTP_DELETE) {
        if (ngx_http_registry_keyf(r->pool, &args[1], "blob:%V:links",
                                   &ctx->digest)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        args[3] = ctx->repo;

        return ngx_http_registry_run(r, ngx_http_registry_blob_deleted,
                                     "blob_unlink", 2, args,
                                     4);
    }

    if (ngx_http_registry_keyf(r->pool, &args[1], "blob:%V", &ctx->digest)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_run(r, ngx_http_registry_blob_found,
                                 "blob_stat", 2, args, 3);
}


static ngx_int_t
ngx_http_registry_blob_found(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_str_t                   size, key, url;
    ngx_http_registry_blob_t   *blob;
    ngx_http_registry_s3_op_t   op;

    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ngx_http_registry_reply_str(ctx->reply, 0, &size) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 1, &key) != NGX_OK)
    {
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND, "BLOB_UNKNOWN",
                                       "blob unknown to registry");
    }

    blob = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_blob_t));
    if (blob == NULL) {
        return NGX_ERROR;
    }

    blob->size = ngx_atoof(size.data, size.len);
    if (blob->size == NGX_ERROR) {
        return NGX_ERROR;
    }

    blob->key.len = key.len;
    blob->key.data = ngx_pstrdup(r->pool, &key);
    if (blob->key.data == NULL) {
        return NGX_ERROR;
    }

    ctx->data = blob;

    rc = ngx_http_registry_blob_range(r, blob);

    if (rc == NGX_DECLINED) {
        return ngx_http_registry_error(r, NGX_HTTP_RANGE_NOT_SATISFIABLE,
                                       "BLOB_UNKNOWN",
                                       "requested range not satisfiable");
    }

    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_registry_event_blob(r, ctx, NGX_HTTP_REGISTRY_EVENT_PULL,
                                 blob->size);

    if (r->method == NGX_HTTP_HEAD || blob->size == 0
        || blob->start == blob->end)
    {
        rc = ngx_http_registry_blob_headers(r, ctx, blob);
        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            return rc;
        }

        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    if (ngx_http_registry_redirect(r)) {
        if (ngx_http_registry_s3_presign(r, &blob->key, &url) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_registry_add_header(r, "Docker-Content-Digest",
                                         &ctx->digest)
            != NGX_OK
            || ngx_http_registry_add_header(r, "Location", &url) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_registry_send(r, NGX_HTTP_TEMPORARY_REDIRECT, NULL,
                                      NULL, 0);
    }

    ngx_memzero(&op, sizeof(ngx_http_registry_s3_op_t));
    ngx_str_set(&op.method, "GET");
    op.key = blob->key;
    op.stream = 1;

    if (blob->partial) {
        if (ngx_http_registry_keyf(r->pool, &op.range, "bytes=%O-%O",
                                   blob->start, blob->end - 1)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ctx->s3_header = ngx_http_registry_blob_s3_header;

    return ngx_http_registry_s3_run(r, ngx_http_registry_blob_sent, &op);
}


/*
 * A single "bytes=" range; anything unparsable is ignored (RFC 9110).
 * NGX_DECLINED: not satisfiable.
 */

static ngx_int_t
ngx_http_registry_blob_range(ngx_http_request_t *r,
    ngx_http_registry_blob_t *blob)
{
    u_char     *p, *last, *dash;
    off_t       start, end;
    ngx_str_t   range;

    blob->start = 0;
    blob->end = blob->size;

    if (r->headers_in.range == NULL || r->method == NGX_HTTP_HEAD) {
        return NGX_OK;
    }

    range = r->headers_in.range->value;

    if (range.len < 7 || ngx_strncasecmp(range.data, (u_char *) "bytes=", 6)
                         != 0)
    {
        return NGX_OK;
    }

    p = range.data + 6;
    last = range.data + range.len;

    dash = ngx_strlchr(p, last, '-');
    if (dash == NULL || ngx_strlchr(p, last, ',') != NULL) {
        return NGX_OK;
    }

    if (dash == p) {
        /* suffix: the last N bytes */
        end = ngx_atoof(dash + 1, last - dash - 1);
        if (end == NGX_ERROR) {
            return NGX_OK;
        }

        if (end == 0) {
            goto unsatisfiable;
        }

        start = (end >= blob->size) ? 0 : blob->size - end;
        end = blob->size;

    } else {
        start = ngx_atoof(p, dash - p);
        if (start == NGX_ERROR) {
            return NGX_OK;
        }

        if (dash + 1 == last) {
            end = blob->size;

        } else {
            end = ngx_atoof(dash + 1, last - dash - 1);
            if (end == NGX_ERROR || end < start) {
                return NGX_OK;
            }

            end = (end >= blob->size) ? blob->size : end + 1;
        }

        if (start >= blob->size) {
            goto unsatisfiable;
        }
    }

    blob->start = start;
    blob->end = end;
    blob->partial = 1;

    return NGX_OK;

unsatisfiable:

    if (ngx_http_registry_keyf(r->pool, &range, "bytes */%O", blob->size)
        != NGX_OK
        || ngx_http_registry_add_header(r, "Content-Range", &range) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_registry_blob_headers(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_blob_t *blob)
{
    ngx_str_t         value;
    static ngx_str_t  api_version = ngx_string("registry/2.0");
    static ngx_str_t  bytes = ngx_string("bytes");

    if (ngx_http_registry_add_header(r, "Docker-Content-Digest",
                                     &ctx->digest)
        != NGX_OK
        || ngx_http_registry_add_header(r, "Docker-Distribution-API-Version",
                                        &api_version)
           != NGX_OK
        || ngx_http_registry_add_header(r, "Accept-Ranges", &bytes)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->headers_out.content_type = ngx_http_registry_octet_stream;
    r->headers_out.content_type_len = ngx_http_registry_octet_stream.len;
    r->headers_out.content_length_n = blob->end - blob->start;
    r->headers_out.status = NGX_HTTP_OK;

    if (blob->partial) {
        r->headers_out.status = NGX_HTTP_PARTIAL_CONTENT;

        if (ngx_http_registry_keyf(r->pool, &value, "bytes %O-%O/%O",
                                   blob->start, blob->end - 1, blob->size)
            != NGX_OK
            || ngx_http_registry_add_header(r, "Content-Range", &value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (r->method == NGX_HTTP_HEAD || blob->start == blob->end) {
        r->header_only = 1;
    }

    return ngx_http_send_header(r);
}


/* the S3 answer's header arrived: the client's header goes first */

static ngx_int_t
ngx_http_registry_blob_s3_header(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_request_t *sr)
{
    ngx_int_t                  rc;
    ngx_http_registry_blob_t  *blob;

    blob = ctx->data;

    if (sr->headers_out.status
        != (blob->partial ? NGX_HTTP_PARTIAL_CONTENT : NGX_HTTP_OK))
    {
        return NGX_ERROR;
    }

    /*
     * The client's Content-Length comes from the descriptor: bytes S3
     * would send beyond it (or fall short of) would break the response
     */

    if (sr->headers_out.content_length_n >= 0
        && sr->headers_out.content_length_n != blob->end - blob->start)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: blob %V: s3 sends %O bytes, not %O",
                      &ctx->digest, sr->headers_out.content_length_n,
                      blob->end - blob->start);
        return NGX_ERROR;
    }

    rc = ngx_http_registry_blob_headers(r, ctx, blob);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_blob_sent(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (r->header_sent) {
        if (ctx->s3.status != NGX_HTTP_OK
            && ctx->s3.status != NGX_HTTP_PARTIAL_CONTENT)
        {
            return NGX_ERROR;
        }

        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    if (ctx->s3.status == NGX_HTTP_NOT_FOUND) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: blob %V has a descriptor but no object",
                      &ctx->digest);
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND, "BLOB_UNKNOWN",
                                       "blob data is missing from storage");
    }

    return ngx_http_registry_s3_failed(r, ctx);
}


static ngx_int_t
ngx_http_registry_blob_deleted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ctx->reply->integer == 0) {
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND, "BLOB_UNKNOWN",
                                       "blob unknown to registry");
    }

    ngx_http_registry_event_blob(r, ctx, NGX_HTTP_REGISTRY_EVENT_DELETE, -1);

    /* a delete is a write: it waits for replicas as a push does */

    return ngx_http_registry_redis_durable(r,
                                           ngx_http_registry_blob_unlinked);
}


static ngx_int_t
ngx_http_registry_blob_unlinked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ngx_http_registry_add_header(r, "Docker-Content-Digest",
                                     &ctx->digest)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_send(r, NGX_HTTP_ACCEPTED, NULL, NULL, 0);
}
