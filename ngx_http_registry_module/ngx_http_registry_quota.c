
/*
 * Quotas, per project (quota:P: storage, imagestreams, image-size; set by
 * scripts/registry quota set).  Storage counts each blob once per project
 * (project:P:blobs and project:P:storage, kept by the functions that link
 * and unlink blobs); the commit of an upload refuses a blob that would
 * exceed it, atomically (upload_finish.lua), and removes its bytes.  The
 * checks here come earlier, before bytes are stored: a POST (its
 * Content-Length, for a monolithic push), a PATCH or PUT (the session's
 * bytes and its Content-Length).  A manifest is checked by the step that
 * stores it (manifest_put.lua: the image's size, and a new image
 * stream).  A refusal is 403 DENIED with a message naming the quota.
 */


#include "ngx_http_registry.h"


static ngx_int_t ngx_http_registry_quota_checked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);


/*
 * An upload that adds its Content-Length to the stored bytes of its
 * session; a mount is checked by its own function (upload_mount.lua).
 */

ngx_int_t
ngx_http_registry_quota_upload(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, off_t stored,
    ngx_http_registry_step_pt next)
{
    off_t      bytes;
    ngx_str_t  args[3], v;

    if (ngx_http_arg(r, (u_char *) "mount", 5, &v) == NGX_OK) {
        return next(r, ctx);
    }

    args[0] = ctx->repo;

    /* a blob the project holds already adds nothing */

    if (ctx->digest.len) {
        args[1] = ctx->digest;

    } else if (ngx_http_registry_arg(r, "digest", &args[1]) != NGX_OK
               || ngx_http_registry_check_digest(&args[1]) != NGX_OK)
    {
        ngx_str_set(&args[1], "");
    }

    bytes = stored + ngx_max(r->headers_in.content_length_n, 0);

    if (ngx_http_registry_keyf(r->pool, &args[2], "%O", bytes) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->after = next;

    return ngx_http_registry_run(r, ngx_http_registry_quota_checked,
                                 "quota_check", 0, args, 3);
}


static ngx_int_t
ngx_http_registry_quota_checked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_STRING) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ctx->reply->len == 0) {
        return ctx->after(r, ctx);
    }

    return ngx_http_registry_quota_denied(r, ctx->reply);
}


/* 403 DENIED, with the message a function gave */

ngx_int_t
ngx_http_registry_quota_denied(ngx_http_request_t *r, redisReply *rp)
{
    ngx_int_t   rc;
    ngx_str_t   msg;

    if (ngx_http_registry_keyf(r->pool, &msg, "%*s%Z", rp->len, rp->str)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "registry: 403 DENIED: %s", msg.data);

    /* a body not read yet is not stored either */

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_registry_error(r, NGX_HTTP_FORBIDDEN, "DENIED",
                                   (char *) msg.data);
}
