
/*
 * Blob uploads: POST (session, monolithic, mount), PATCH, PUT, GET and
 * DELETE of upload sessions.  This file holds the handlers and their
 * answers; the session in Redis and its claim are upload_session.c's,
 * the bytes to S3 and the commit upload_store.c's.
 *
 * A session lives in Redis (see the layout in ngx_http_registry.h), so any
 * worker of any host continues it.  Bytes go to S3 once, to the object
 * "data/<session id>": a key no client chooses, so no upload can replace
 * what another digest serves.  S3 refuses non-final parts under 5 MiB, so
 * smaller chunks wait in Redis (the "tail", always under 5 MiB) until
 * enough bytes make a part.  A blob small enough never becomes a
 * multipart upload: one PutObject at the end.  The SHA-256 state travels
 * in the session; the digest is checked before anything is visible.
 *
 * Only one request at a time writes a session's parts: it claims the
 * session ("busy": a token and a deadline) once its body is read, and
 * the claim ends with its commit, or with the request (a pool cleanup).
 * The deadline is short and renewed while the request lives, so the
 * claim of a request that could not release it (its worker died, Redis
 * was away) lapses within seconds; a request that cannot renew in time
 * stops writing before its claim may lapse.  A request that finds the
 * session claimed is told so (409), not that its range is wrong.  Every
 * object key is recorded in "objects:pending" before S3 sees a byte of
 * it (by the claim, or first thing for a monolithic push), and leaves
 * it when the blob is committed or the object deleted: no object is
 * ever unknown to Redis.  Part numbers follow the
 * committed parts, so a part whose commit failed is written over by the
 * next one: a multipart upload never holds a part that is not the
 * session's, which matters twice: S3 compares only ETags (MD5) when it
 * completes, and RGW, unlike AWS, refuses to complete with fewer parts
 * than were uploaded.  Appends to the tail give way to a claim, and a
 * final PUT keeps its claim until the blob is visible, so nothing moves
 * the session under it.
 */


#include "ngx_http_registry.h"


static ngx_int_t ngx_http_registry_uploads_post(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_streamed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_mounted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_loaded(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_write(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_content_range(
    ngx_http_request_t *r, ngx_http_registry_upload_t *up);
static ngx_int_t ngx_http_registry_upload_read(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_committed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_where(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_status(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t status);


/* POST /v2/<name>/blobs/uploads/: the project's quota first (quota.c) */

ngx_int_t
ngx_http_registry_uploads_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_quota_upload(r, ctx, 0,
                                          ngx_http_registry_uploads_post);
}


static ngx_int_t
ngx_http_registry_uploads_post(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_str_t                    from, id;
    ngx_http_registry_upload_t  *up;

    rc = ngx_http_registry_arg(r, "mount", &ctx->digest);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        if (ngx_http_registry_check_digest(&ctx->digest) != NGX_OK) {
            return ngx_http_registry_digest_error(r, &ctx->digest);
        }

        rc = ngx_http_registry_arg(r, "from", &from);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        /*
         * Without "from" nothing is mounted: a digest alone never opens
         * a blob of another repository.  Nor without pull rights on
         * "from" (decided in the access phase).  A new session starts
         * instead, revealing nothing.
         */

        if (rc == NGX_DECLINED || !ngx_http_registry_is_repo(&from)
            || ctx->mount_denied)
        {
            return ngx_http_registry_upload_create(r, ctx,
                                            ngx_http_registry_upload_created);
        }

        return ngx_http_registry_upload_mount(r, ctx, &from,
                                            ngx_http_registry_upload_mounted);
    }

    rc = ngx_http_registry_arg(r, "digest", &ctx->digest);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_registry_upload_create(r, ctx,
                                            ngx_http_registry_upload_created);
    }

    /* monolithic: the whole blob in this request, no session */

    ngx_str_null(&id);

    if (ngx_http_registry_check_digest(&ctx->digest) != NGX_OK) {
        return ngx_http_registry_digest_error(r, &ctx->digest);
    }

    if (ngx_http_registry_upload_new(r, ctx, &id) != NGX_OK) {
        return NGX_ERROR;
    }

    up = ctx->data;
    up->final = 1;
    up->monolithic = 1;

    /* to S3 while it arrives, instead of through nginx's temp file */
    up->stream = ngx_http_registry_s3_streamable(r);

    ctx->body.hash = &up->sha;

    return ngx_http_registry_upload_next(r, ctx);
}


/*
 * A streamed monolithic push ended: our object holds the body.  The rest
 * is as for a body read first (the digest is checked: a wrong one drops
 * the object), except that the PutObject is done.
 */

static ngx_int_t
ngx_http_registry_upload_streamed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->s3.status != NGX_HTTP_OK) {
        return ngx_http_registry_s3_failed(r, ctx);
    }

    /* a blob that exists meanwhile: the finish script tells */

    if (ctx->body.bytes != r->headers_in.content_length_n) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry: s3 stored %O bytes of %O", ctx->body.bytes,
                      r->headers_in.content_length_n);
        return ngx_http_registry_upload_cancel(r, ctx);
    }

    return ngx_http_registry_upload_read(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_UPLOADS_STARTED,
                                  0, 1);

    return ngx_http_registry_upload_status(r, ctx, NGX_HTTP_ACCEPTED);
}


static ngx_int_t
ngx_http_registry_upload_mounted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ctx->reply->integer == 0) {
        return ngx_http_registry_upload_create(r, ctx,
                                            ngx_http_registry_upload_created);
    }

    return ngx_http_registry_upload_blob_created(r, ctx);
}


/* PATCH, PUT, GET and DELETE of /v2/<name>/blobs/uploads/<id> */

ngx_int_t
ngx_http_registry_upload_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                       i;
    ngx_int_t                    rc;
    ngx_http_registry_upload_t  *up;

    if (ctx->reference.len != NGX_HTTP_REGISTRY_ID_LEN) {
        return ngx_http_registry_upload_unknown(r);
    }

    for (i = 0; i < ctx->reference.len; i++) {
        if (!((ctx->reference.data[i] >= '0' && ctx->reference.data[i] <= '9')
              || (ctx->reference.data[i] >= 'a'
                  && ctx->reference.data[i] <= 'f')))
        {
            return ngx_http_registry_upload_unknown(r);
        }
    }

    if (r->method == NGX_HTTP_PUT) {
        rc = ngx_http_registry_arg(r, "digest", &ctx->digest);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST,
                                           "DIGEST_INVALID",
                                           "the digest parameter is "
                                           "required");
        }

        if (ngx_http_registry_check_digest(&ctx->digest) != NGX_OK) {
            return ngx_http_registry_digest_error(r, &ctx->digest);
        }
    }

    if (ngx_http_registry_upload_new(r, ctx, &ctx->reference) != NGX_OK) {
        return NGX_ERROR;
    }

    up = ctx->data;
    up->final = (r->method == NGX_HTTP_PUT);

    return ngx_http_registry_upload_load(r, ctx,
                                         ngx_http_registry_upload_loaded);
}


static ngx_int_t
ngx_http_registry_upload_loaded(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t                    n;
    ngx_str_t                    offset, sha, mpu, parts, tail;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ctx->reply->type != REDIS_REPLY_ARRAY) {
        return ngx_http_registry_upload_unknown(r);
    }

    if (ngx_http_registry_reply_str(ctx->reply, 0, &offset) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 1, &sha) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 2, &mpu) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 3, &parts) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 4, &tail) != NGX_OK)
    {
        return NGX_ERROR;
    }

    up->offset = ngx_atoof(offset.data, offset.len);
    up->tail_len = ngx_atoof(tail.data, tail.len);
    n = ngx_atoi(parts.data, parts.len);

    if (up->offset == NGX_ERROR || up->tail_len == NGX_ERROR
        || n == NGX_ERROR
        || ngx_http_registry_hash_load(&up->sha, &sha) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: upload session %V is damaged", &up->id);
        return ngx_http_registry_upload_unknown(r);
    }

    up->ncommitted = n;

    up->mpu.len = mpu.len;
    up->mpu.data = ngx_pstrdup(r->pool, &mpu);
    if (up->mpu.data == NULL) {
        return NGX_ERROR;
    }

    switch (r->method) {

    case NGX_HTTP_GET:
        return ngx_http_registry_upload_status(r, ctx, NGX_HTTP_NO_CONTENT);

    case NGX_HTTP_DELETE:
        return ngx_http_registry_upload_cancel(r, ctx);

    default: /* PATCH, PUT: the project's quota first (quota.c) */
        return ngx_http_registry_quota_upload(r, ctx, up->offset,
                                              ngx_http_registry_upload_write);
    }
}


static ngx_int_t
ngx_http_registry_upload_write(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ngx_http_registry_upload_content_range(r, up) != NGX_OK) {
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    ctx->body.hash = &up->sha;

    if (up->final && up->offset == 0 && up->tail_len == 0
        && up->mpu.len == 0 && ngx_http_registry_s3_streamable(r))
    {
        /*
         * The whole blob in this PUT: the session is claimed first (no
         * other request may write data/<id> meanwhile), then the body
         * goes to S3 as it arrives.
         */
        up->total = r->headers_in.content_length_n;
        up->stream = 1;
    }

    return ngx_http_registry_upload_next(r, ctx);
}


/*
 * "Content-Range: <start>-<end>" (inclusive; "bytes " or "bytes=" and a
 * "/<size>" tolerated) must start exactly where the session is; a
 * repeated or out-of-order chunk is refused.
 */

static ngx_int_t
ngx_http_registry_upload_content_range(ngx_http_request_t *r,
    ngx_http_registry_upload_t *up)
{
    u_char           *p, *last, *dash, *slash;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_uint_t        i;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_OK;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Content-Range") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Range",
                               sizeof("Content-Range") - 1) == 0)
        {
            break;
        }
    }

    p = h[i].value.data;
    last = p + h[i].value.len;

    if (last - p > 6 && ngx_strncasecmp(p, (u_char *) "bytes", 5) == 0) {
        p += 6;
    }

    /* a complete length after a "/" says nothing we use */
    slash = ngx_strlchr(p, last, '/');
    if (slash != NULL) {
        last = slash;
    }

    dash = ngx_strlchr(p, last, '-');
    if (dash == NULL) {
        return NGX_DECLINED;
    }

    up->range_start = ngx_atoof(p, dash - p);
    up->range_end = ngx_atoof(dash + 1, last - dash - 1);

    if (up->range_start == NGX_ERROR || up->range_end == NGX_ERROR
        || up->range_end < up->range_start
        || up->range_start != up->offset)
    {
        return NGX_DECLINED;
    }

    if (r->headers_in.content_length_n >= 0
        && r->headers_in.content_length_n
           != up->range_end - up->range_start + 1)
    {
        return NGX_DECLINED;
    }

    up->has_range = 1;

    return NGX_OK;
}


/* the body is read (and hashed) */

static ngx_int_t
ngx_http_registry_upload_read(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                        n;
    u_char                       hex[NGX_HTTP_REGISTRY_DIGEST_LEN];
    ngx_http_registry_upload_t  *up;

    up = ctx->data;
    up->chunk_len = ctx->body.bytes;
    up->total = up->tail_len + up->chunk_len;

    if (up->has_range
        && up->chunk_len != up->range_end - up->range_start + 1)
    {
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    /*
     * Parts as equal as can be, none over S3's limit: over 5 MiB each,
     * since only more than 5 GiB is split.
     */

    n = (up->total + NGX_HTTP_REGISTRY_MAX_PART - 1)
        / NGX_HTTP_REGISTRY_MAX_PART;
    up->part_size = n ? (up->total + n - 1) / n : 0;

    if (up->ncommitted + n > NGX_HTTP_REGISTRY_S3_MAX_PARTS) {
        return ngx_http_registry_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "SIZE_INVALID",
                                       "too many parts: send larger chunks");
    }

    if (up->final) {
        ngx_http_registry_hash_digest(&up->sha, hex);

        if (up->claimed.len != sizeof(hex)
            || ngx_strncmp(up->claimed.data, hex, sizeof(hex)) != 0)
        {
            /* nothing is stored under that digest; the session ends */
            return ngx_http_registry_upload_cancel(r, ctx);
        }
    }

    return ngx_http_registry_upload_next(r, ctx);
}


/*
 * The one place that decides what an upload does next: the operation of
 * up->state has succeeded (a failure is answered where it is seen).
 */

ngx_int_t
ngx_http_registry_upload_next(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_uint_t                   multipart;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    switch (up->state) {

    case NGX_HTTP_REGISTRY_UPLOAD_START:
        if (!up->stream) {
            return ngx_http_registry_upload_go(r, ctx,
                                               NGX_HTTP_REGISTRY_UPLOAD_BODY);
        }

        /* the key recorded or the session ours first: S3 writes at once */

        return ngx_http_registry_upload_go(r, ctx,
                   up->monolithic ? NGX_HTTP_REGISTRY_UPLOAD_PEND
                                  : NGX_HTTP_REGISTRY_UPLOAD_CLAIM);

    case NGX_HTTP_REGISTRY_UPLOAD_BODY:
        if (!up->final) {
            if (up->chunk_len == 0) {
                return ngx_http_registry_upload_status(r, ctx,
                                                       NGX_HTTP_ACCEPTED);
            }

            /* too few bytes for a part wait in the tail */

            return ngx_http_registry_upload_go(r, ctx,
                       up->total >= NGX_HTTP_REGISTRY_S3_MIN_PART
                       ? NGX_HTTP_REGISTRY_UPLOAD_CLAIM
                       : NGX_HTTP_REGISTRY_UPLOAD_SAVE);
        }

        if (up->stream) {
            /* claimed to stream it, but the blob exists */
            return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_FINISH);
        }

        /* the claim tells whether the blob exists too */

        return ngx_http_registry_upload_go(r, ctx,
                   up->monolithic ? NGX_HTTP_REGISTRY_UPLOAD_EXISTS
                                  : NGX_HTTP_REGISTRY_UPLOAD_CLAIM);

    case NGX_HTTP_REGISTRY_UPLOAD_PEND:
        if (up->stream) {
            return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_STREAM);
        }

        break;

    case NGX_HTTP_REGISTRY_UPLOAD_CLAIM:
        if (up->stream) {
            /* a blob that exists already is only read, never stored again */
            return ngx_http_registry_upload_go(r, ctx,
                       up->exists ? NGX_HTTP_REGISTRY_UPLOAD_BODY
                                  : NGX_HTTP_REGISTRY_UPLOAD_STREAM);
        }

        /* fall through */

    case NGX_HTTP_REGISTRY_UPLOAD_EXISTS:
        if (up->exists) {
            return ngx_http_registry_upload_go(r, ctx,
                       up->mpu.len ? NGX_HTTP_REGISTRY_UPLOAD_ABORT
                                   : NGX_HTTP_REGISTRY_UPLOAD_FINISH);
        }

        break;

    case NGX_HTTP_REGISTRY_UPLOAD_CREATE:
        if (!up->monolithic) {
            /* before the first part: a retry goes on with the same one */
            return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_RECORD);
        }

        break;

    case NGX_HTTP_REGISTRY_UPLOAD_STREAM:
    case NGX_HTTP_REGISTRY_UPLOAD_PUT:
    case NGX_HTTP_REGISTRY_UPLOAD_COMPLETE:
    case NGX_HTTP_REGISTRY_UPLOAD_ABORT:
        return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_FINISH);

    case NGX_HTTP_REGISTRY_UPLOAD_DELETE:
        return up->deleted(r, ctx);

    case NGX_HTTP_REGISTRY_UPLOAD_CANCEL:
        return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_FORGET);

    case NGX_HTTP_REGISTRY_UPLOAD_ETAGS:
    case NGX_HTTP_REGISTRY_UPLOAD_TAIL:
    case NGX_HTTP_REGISTRY_UPLOAD_RECORD:
    case NGX_HTTP_REGISTRY_UPLOAD_PART:
        break;

    default: /* SAVE, FINISH, DISCARD, FORGET: they answer */
        return NGX_ERROR;
    }

    /*
     * Our bytes to S3, once the session is ours (or, pushed in one
     * request, the blob is known not to exist): these steps in this
     * order, each when it is needed.  A PATCH's bytes go as parts; a
     * blob's as one PutObject, unless it is too large or parts hold
     * some.
     */

    multipart = !up->final || up->mpu.len
                || up->total > NGX_HTTP_REGISTRY_MAX_PART;

    if (up->state < NGX_HTTP_REGISTRY_UPLOAD_ETAGS
        && up->final && multipart && up->ncommitted)
    {
        return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_ETAGS);
    }

    if (up->state < NGX_HTTP_REGISTRY_UPLOAD_TAIL && up->tail_len) {
        return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_TAIL);
    }

    if (up->state < NGX_HTTP_REGISTRY_UPLOAD_PEND && up->monolithic) {
        /* a session's claim recorded the key */
        return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_PEND);
    }

    if (!multipart) {
        return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_PUT);
    }

    if (up->sent < up->total) {
        return ngx_http_registry_upload_go(r, ctx,
                   up->mpu.len ? NGX_HTTP_REGISTRY_UPLOAD_PART
                               : NGX_HTTP_REGISTRY_UPLOAD_CREATE);
    }

    /* the parts sent: the blob is theirs, or the session moves on */

    return ngx_http_registry_upload_go(r, ctx,
               up->final ? NGX_HTTP_REGISTRY_UPLOAD_COMPLETE
                         : NGX_HTTP_REGISTRY_UPLOAD_SAVE);
}


/* the one place up->state changes: its operation starts */

ngx_int_t
ngx_http_registry_upload_go(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_upload_state_e state)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;
    up->state = state;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry upload %V state %d", &up->id, state);

    switch (state) {

    case NGX_HTTP_REGISTRY_UPLOAD_BODY:
        return ngx_http_registry_read_body(r, ctx,
                                           ngx_http_registry_upload_read);

    case NGX_HTTP_REGISTRY_UPLOAD_STREAM:
        return ngx_http_registry_s3_stream_put(r, ctx, &up->key,
                                          ngx_http_registry_upload_streamed);

    case NGX_HTTP_REGISTRY_UPLOAD_CLAIM:
        return ngx_http_registry_upload_claim(r, ctx);

    case NGX_HTTP_REGISTRY_UPLOAD_PEND:
        return ngx_http_registry_upload_pend(r, ctx);

    case NGX_HTTP_REGISTRY_UPLOAD_SAVE:
        return ngx_http_registry_upload_save(r, ctx,
                                          ngx_http_registry_upload_committed);

    case NGX_HTTP_REGISTRY_UPLOAD_FORGET:
        return ngx_http_registry_upload_forget(r, ctx);

    default:
        /* the bytes to S3 and the commit */
        return ngx_http_registry_upload_store(r, ctx);
    }
}


/*
 * DELETE of a session, or the end of one whose digest was wrong: whoever
 * holds it loses it, and its multipart upload goes.
 */

ngx_int_t
ngx_http_registry_upload_cancel(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (up->mpu.len) {
        return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_CANCEL);
    }

    if (up->monolithic && up->state == NGX_HTTP_REGISTRY_UPLOAD_STREAM) {
        /* a streamed push stored the object before its digest was known */
        up->deleted = ngx_http_registry_upload_forget;

        return ngx_http_registry_upload_go(r, ctx,
                                           NGX_HTTP_REGISTRY_UPLOAD_DELETE);
    }

    return ngx_http_registry_upload_go(r, ctx,
                                       NGX_HTTP_REGISTRY_UPLOAD_FORGET);
}


static ngx_int_t
ngx_http_registry_upload_committed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply != NULL && ctx->reply->type == REDIS_REPLY_ARRAY) {
        return ngx_http_registry_upload_busy(r, ctx, ctx->reply);
    }

    if (ctx->reply != NULL && ctx->reply->type == REDIS_REPLY_STRING) {
        /* "full": the tails of all sessions hold registry_upload_tails */
        return ngx_http_registry_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                       "TOOMANYREQUESTS",
                                       "too many bytes wait in unfinished "
                                       "uploads: retry later, or send "
                                       "chunks of 5 MiB or more");
    }

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ctx->reply->integer < 0) {
        return ngx_http_registry_upload_unknown(r);
    }

    if (ctx->reply->integer == 0) {
        /* another request moved the session on meanwhile */
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    /* the parts script ended the claim */
    ngx_http_registry_upload_unlock(up);

    up->offset += up->chunk_len;

    return ngx_http_registry_upload_status(r, ctx, NGX_HTTP_ACCEPTED);
}


/* another request holds the session: not a range error, and not long */

ngx_int_t
ngx_http_registry_upload_busy(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, redisReply *reply)
{
    long long                    left;
    ngx_str_t                    location, range, after;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_ERROR;
    }

    left = reply->element[1]->integer;
    left = ngx_max(left, 1);

    if (ngx_http_registry_keyf(r->pool, &location, "/v2/%V/blobs/uploads/%V",
                               &ctx->repo, &up->id)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &range, "0-%O",
                                  up->offset ? up->offset - 1 : 0)
           != NGX_OK
        || ngx_http_registry_keyf(r->pool, &after, "%L", (int64_t) left)
           != NGX_OK
        || ngx_http_registry_add_header(r, "Location", &location) != NGX_OK
        || ngx_http_registry_add_header(r, "Range", &range) != NGX_OK
        || ngx_http_registry_add_header(r, "Retry-After", &after) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_error(r, NGX_HTTP_CONFLICT,
                                   "BLOB_UPLOAD_INVALID",
                                   "another request is writing to this "
                                   "upload: retry shortly");
}


ngx_int_t
ngx_http_registry_upload_blob_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                        size;
    ngx_str_t                    location;
    ngx_http_registry_upload_t  *up;

    if (!ctx->durable) {
        return ngx_http_registry_redis_durable(r,
                                         ngx_http_registry_upload_blob_created);
    }

    if (ngx_http_registry_keyf(r->pool, &location, "/v2/%V/blobs/%V",
                               &ctx->repo, &ctx->digest)
        != NGX_OK
        || ngx_http_registry_add_header(r, "Location", &location) != NGX_OK
        || ngx_http_registry_add_header(r, "Docker-Content-Digest",
                                        &ctx->digest)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a mount has no upload state: the event looks the size up */
    up = ctx->data;
    size = (up && up->final) ? up->offset + up->chunk_len : -1;

    if (up && up->final && !up->monolithic) {
        ngx_http_registry_metrics_add(
            NGX_HTTP_REGISTRY_METRIC_UPLOADS_COMMITTED, 0, 1);
    }

    ngx_http_registry_event_blob(r, ctx, NGX_HTTP_REGISTRY_EVENT_PUSH, size);

    return ngx_http_registry_send(r, NGX_HTTP_CREATED, NULL, NULL, 0);
}


ngx_int_t
ngx_http_registry_upload_forgotten(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (!up->monolithic
        && (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER))
    {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    /* a session ends here only if this DEL took it */

    if (!up->monolithic && ctx->reply->integer > 0) {
        ngx_http_registry_metrics_add(
            NGX_HTTP_REGISTRY_METRIC_UPLOADS_CANCELLED, 0, 1);
    }

    if (up->final) {
        return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST,
                                       "DIGEST_INVALID",
                                       "provided digest did not match "
                                       "uploaded content");
    }

    return ngx_http_registry_send(r, NGX_HTTP_NO_CONTENT, NULL, NULL, 0);
}


/* 202/204 with where the session is and what it holds */

static ngx_int_t
ngx_http_registry_upload_status(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t status)
{
    if (ngx_http_registry_upload_where(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_registry_send(r, status, NULL, NULL, 0);
}


/* 416, with where the session is, so the client can go on from there */

ngx_int_t
ngx_http_registry_upload_range_error(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ngx_http_registry_upload_where(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_registry_error(r, NGX_HTTP_RANGE_NOT_SATISFIABLE,
                                   "BLOB_UPLOAD_INVALID",
                                   "chunk does not start where the upload "
                                   "ends");
}


ngx_int_t
ngx_http_registry_upload_unknown(ngx_http_request_t *r)
{
    return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND,
                                   "BLOB_UPLOAD_UNKNOWN",
                                   "blob upload unknown to registry");
}


/* Location, Range and Docker-Upload-UUID: the session, and its bytes */

static ngx_int_t
ngx_http_registry_upload_where(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    location, range;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ngx_http_registry_keyf(r->pool, &location, "/v2/%V/blobs/uploads/%V",
                               &ctx->repo, &up->id)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &range, "0-%O",
                                  up->offset ? up->offset - 1 : 0)
           != NGX_OK
        || ngx_http_registry_add_header(r, "Location", &location) != NGX_OK
        || ngx_http_registry_add_header(r, "Range", &range) != NGX_OK
        || ngx_http_registry_add_header(r, "Docker-Upload-UUID", &up->id)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
