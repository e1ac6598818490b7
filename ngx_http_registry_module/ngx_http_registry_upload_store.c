
/*
 * The bytes of an upload to S3, and the commit that makes them a blob
 * (see the top of uploads.c): the tail and the body as parts of a
 * multipart upload, made, completed or aborted here, or as one
 * PutObject; then the finish script links the blob, and a duplicate or
 * a cancelled session's object is deleted.  Which of these runs, and
 * when, is up->state's (uploads.c).
 */


#include "ngx_http_registry.h"

static ngx_int_t ngx_http_registry_upload_recorded(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_tail_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_exists_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_etags_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_s3_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_finish(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_finished(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_delete(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next);
static ngx_int_t ngx_http_registry_upload_dropped(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_denied(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_chain_t *ngx_http_registry_upload_chain(ngx_http_request_t *r,
    ngx_http_registry_upload_t *up, off_t from, off_t len);


ngx_int_t
ngx_http_registry_upload_store(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    args[3];
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    switch (up->state) {

    case NGX_HTTP_REGISTRY_UPLOAD_EXISTS:
        ngx_str_set(&args[0], "EXISTS");

        return ngx_http_registry_call(r, ngx_http_registry_upload_exists_done,
                                      2, &args[0], &up->blob, NULL);

    case NGX_HTTP_REGISTRY_UPLOAD_ETAGS:
        ngx_str_set(&args[0], "LRANGE");
        ngx_str_set(&args[1], "0");
        ngx_str_set(&args[2], "-1");

        return ngx_http_registry_call(r, ngx_http_registry_upload_etags_done,
                                      4, &args[0], &up->etags, &args[1],
                                      &args[2], NULL);

    case NGX_HTTP_REGISTRY_UPLOAD_TAIL:
        ngx_str_set(&args[0], "GET");

        return ngx_http_registry_call(r, ngx_http_registry_upload_tail_done,
                                      2, &args[0], &up->tail_key, NULL);

    case NGX_HTTP_REGISTRY_UPLOAD_RECORD:
        return ngx_http_registry_upload_record_mpu(r, ctx,
                                        ngx_http_registry_upload_recorded);

    case NGX_HTTP_REGISTRY_UPLOAD_FINISH:
        return ngx_http_registry_upload_finish(r, ctx);

    default:
        return ngx_http_registry_upload_s3(r, ctx);
    }
}


/* the S3 operation of up->state */

static ngx_int_t
ngx_http_registry_upload_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                        len;
    ngx_int_t                    rc;
    ngx_uint_t                   number;
    ngx_chain_t                 *cl;
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    switch (up->state) {

    case NGX_HTTP_REGISTRY_UPLOAD_CREATE:
        rc = ngx_http_registry_s3_op_create_multipart(r, &op, &up->key);
        break;

    case NGX_HTTP_REGISTRY_UPLOAD_PART:
        len = ngx_min(up->part_size, up->total - up->sent);

        cl = ngx_http_registry_upload_chain(r, up, up->sent, len);
        if (cl == NGX_CHAIN_ERROR) {
            return NGX_ERROR;
        }

        number = up->ncommitted + up->parts->nelts + 1;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "registry upload %V part %ui: %O bytes",
                       &up->id, number, len);

        rc = ngx_http_registry_s3_op_upload_part(r, &op, &up->key, &up->mpu,
                                                 number, cl, len);
        break;

    case NGX_HTTP_REGISTRY_UPLOAD_PUT:
        cl = ngx_http_registry_upload_chain(r, up, 0, up->total);
        if (cl == NGX_CHAIN_ERROR) {
            return NGX_ERROR;
        }

        rc = ngx_http_registry_s3_op_put(r, &op, &up->key, cl, up->total,
                                         NULL);
        break;

    case NGX_HTTP_REGISTRY_UPLOAD_COMPLETE:
        if (up->committed) {
            /* the parts before ours, then ours */
            if (ngx_array_push_n(up->committed, up->parts->nelts) == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy((ngx_http_registry_s3_part_t *) up->committed->elts
                       + up->ncommitted,
                       up->parts->elts,
                       up->parts->nelts * sizeof(ngx_http_registry_s3_part_t));

            up->parts = up->committed;
        }

        rc = ngx_http_registry_s3_op_complete(r, &op, &up->key, &up->mpu,
                                              up->parts);
        break;

    case NGX_HTTP_REGISTRY_UPLOAD_DELETE:
        rc = ngx_http_registry_s3_op_delete(r, &op, &up->key);
        break;

    default: /* ABORT, CANCEL, DISCARD */
        rc = ngx_http_registry_s3_op_abort(r, &op, &up->key, &up->mpu);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_registry_s3_run(r, ngx_http_registry_upload_s3_done, &op);
}


/* S3's answer to the operation of up->state */

static ngx_int_t
ngx_http_registry_upload_s3_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                         len;
    size_t                        lens[3];
    ngx_str_t                     id;
    ngx_uint_t                    status;
    const char                   *argv[3];
    ngx_http_registry_upload_t   *up;
    ngx_http_registry_s3_part_t  *part;

    up = ctx->data;
    status = ctx->s3.status;

    switch (up->state) {

    case NGX_HTTP_REGISTRY_UPLOAD_CREATE:
        if (status != NGX_HTTP_OK
            || ngx_http_registry_s3_xml_value(r->pool, &ctx->s3.body,
                                              "UploadId", &id)
               != NGX_OK
            || id.len == 0)
        {
            return ngx_http_registry_s3_failed(r, ctx);
        }

        up->mpu.len = id.len;
        up->mpu.data = ngx_pstrdup(r->pool, &id);
        if (up->mpu.data == NULL) {
            return NGX_ERROR;
        }

        break;

    case NGX_HTTP_REGISTRY_UPLOAD_PART:
        if (status != NGX_HTTP_OK || ctx->s3.etag.len == 0) {
            return ngx_http_registry_s3_failed(r, ctx);
        }

        part = ngx_array_push(up->parts);
        if (part == NULL) {
            return NGX_ERROR;
        }

        part->number = up->ncommitted + up->parts->nelts;
        part->etag.len = ctx->s3.etag.len;
        part->etag.data = ngx_pstrdup(r->pool, &ctx->s3.etag);
        if (part->etag.data == NULL) {
            return NGX_ERROR;
        }

        len = ngx_min(up->part_size, up->total - up->sent);
        up->sent += len;

        break;

    case NGX_HTTP_REGISTRY_UPLOAD_ABORT:
        /* gone already is as good */
        if (status != NGX_HTTP_NO_CONTENT && status != NGX_HTTP_NOT_FOUND) {
            return ngx_http_registry_s3_failed(r, ctx);
        }

        break;

    case NGX_HTTP_REGISTRY_UPLOAD_CANCEL:
        /* the session goes whatever S3 said */
        break;

    case NGX_HTTP_REGISTRY_UPLOAD_DISCARD:
        return ngx_http_registry_unavailable(r, "redis: upload not recorded");

    case NGX_HTTP_REGISTRY_UPLOAD_DELETE:
        if (status != NGX_HTTP_NO_CONTENT && status != NGX_HTTP_NOT_FOUND) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "registry: s3 delete of %V answered %ui, the "
                          "object stays pending", &up->key, status);
            break;
        }

        argv[0] = "ZREM";
        lens[0] = sizeof("ZREM") - 1;
        argv[1] = "objects:pending";
        lens[1] = sizeof("objects:pending") - 1;
        argv[2] = (const char *) up->key.data;
        lens[2] = up->key.len;

        /* Redis away: the key stays pending, the collector finds none */
        (void) ngx_http_registry_redis_call(NULL, NULL, 3, argv, lens);

        break;

    default: /* PUT, COMPLETE */
        /* CompleteMultipartUpload may fail with 200 and an error body */
        if (status != NGX_HTTP_OK || ctx->s3.error_code.len) {
            return ngx_http_registry_s3_failed(r, ctx);
        }
    }

    return ngx_http_registry_upload_next(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_recorded(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply != NULL && ctx->reply->type == REDIS_REPLY_INTEGER
        && ctx->reply->integer == 1)
    {
        return ngx_http_registry_upload_next(r, ctx);
    }

    /*
     * Sent and unanswered (Redis lost meanwhile): the record may have
     * landed, and a retry would go on with an upload we had dropped.  It
     * stays; if nothing names it, the collector aborts it (an unrecorded
     * multipart upload).
     */

    if (ctx->reply == NULL && !up->mpu_unsent) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    /*
     * Redis is away or the claim lapsed: nothing names this multipart
     * upload, so it goes now, while S3 answers
     */

    return ngx_http_registry_upload_go(r, ctx,
                                       NGX_HTTP_REGISTRY_UPLOAD_DISCARD);
}


static ngx_int_t
ngx_http_registry_upload_tail_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    tail;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    /* the tail cannot change while we hold the session */

    if (ngx_http_registry_reply_str(ctx->reply, (ngx_uint_t) -1, &tail)
        != NGX_OK
        || (off_t) tail.len != up->tail_len)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: upload session %V lost its tail", &up->id);
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    up->tail.len = tail.len;
    up->tail.data = ngx_pnalloc(r->pool, tail.len);
    if (up->tail.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(up->tail.data, tail.data, tail.len);

    return ngx_http_registry_upload_next(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_exists_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    up->exists = (ctx->reply->integer != 0);

    return ngx_http_registry_upload_next(r, ctx);
}


/* the parts committed before us, each "N ETAG" */

static ngx_int_t
ngx_http_registry_upload_etags_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                       *sp;
    ngx_uint_t                    i;
    redisReply                   *e;
    ngx_http_registry_upload_t   *up;
    ngx_http_registry_s3_part_t  *part;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_ARRAY) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ctx->reply->elements != up->ncommitted) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: upload session %V lists %uz parts, "
                      "not %ui", &up->id, ctx->reply->elements,
                      up->ncommitted);
        return NGX_ERROR;
    }

    up->committed = ngx_array_create(r->pool,
                                     up->ncommitted + up->parts->nalloc + 1,
                                     sizeof(ngx_http_registry_s3_part_t));
    if (up->committed == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->reply->elements; i++) {
        e = ctx->reply->element[i];

        sp = (e->type == REDIS_REPLY_STRING)
             ? ngx_strlchr((u_char *) e->str, (u_char *) e->str + e->len, ' ')
             : NULL;

        if (sp == NULL) {
            return NGX_ERROR;
        }

        part = ngx_array_push(up->committed);
        if (part == NULL) {
            return NGX_ERROR;
        }

        part->number = ngx_atoi((u_char *) e->str, sp - (u_char *) e->str);
        part->etag.len = (u_char *) e->str + e->len - sp - 1;
        part->etag.data = ngx_pnalloc(r->pool, part->etag.len);

        if (part->number != i + 1 || part->etag.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(part->etag.data, sp + 1, part->etag.len);
    }

    return ngx_http_registry_upload_next(r, ctx);
}


/*
 * The blob is stored (or existed: then nothing was) and checked: it
 * becomes visible, and the session ends.
 */

static ngx_int_t
ngx_http_registry_upload_finish(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    args[16];
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ngx_http_registry_keyf(r->pool, &args[0], "blob:%V", &up->claimed)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[1], "repo:%V:blobs",
                                  &ctx->repo) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[2], "blob:%V:links",
                                  &up->claimed) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[11], "%O",
                                  up->offset + up->chunk_len) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[13], "%T", ngx_time())
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&args[3], "blobs");
    ngx_str_set(&args[4], "repos");
    args[5] = up->session;
    args[6] = up->etags;
    args[7] = up->tail_key;
    ngx_str_set(&args[8], "objects:pending");
    args[9] = up->claimed;
    args[10] = ctx->repo;
    args[15] = up->key;

    /* empty strings, never NULL ones, for hiredis */

    if (up->token.len) {
        args[14] = up->token;

    } else {
        ngx_str_set(&args[14], "");
    }

    /* our object holds the blob, unless the blob existed before us */

    if (up->exists) {
        ngx_str_set(&args[12], "");

    } else {
        args[12] = up->key;
    }

    return ngx_http_registry_run(r, ngx_http_registry_upload_finished,
                                 "upload_finish", 9, args,
                                 16);
}


static ngx_int_t
ngx_http_registry_upload_finished(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    msg;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply != NULL && ctx->reply->type == REDIS_REPLY_STRING) {
        /* over the project's storage quota (quota.c): nothing stays */
        ngx_http_registry_upload_unlock(up);

        if (ngx_http_registry_keyf(r->pool, &msg, "%*s%Z",
                                   ctx->reply->len, ctx->reply->str)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ctx->error_message = (char *) msg.data;

        return up->exists ? ngx_http_registry_upload_denied(r, ctx)
                          : ngx_http_registry_upload_delete(r, ctx,
                                ngx_http_registry_upload_denied);
    }

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (ctx->reply->integer == -1 && up->mpu.len == 0) {
        /*
         * The collector took the blob since we found it (gc.c): our
         * bytes are stored after all, still under our claim, as if the
         * check had found none
         */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: blob %V collected meanwhile, stored again",
                      &up->claimed);
        up->exists = 0;
        up->state = NGX_HTTP_REGISTRY_UPLOAD_EXISTS;
        return ngx_http_registry_upload_next(r, ctx);
    }

    /* the session is gone with the claim, or was not ours any more */
    ngx_http_registry_upload_unlock(up);

    switch (ctx->reply->integer) {

    case 1:
        return ngx_http_registry_upload_blob_created(r, ctx);

    case 0:
        if (up->exists) {
            /* as we knew: nothing of ours was stored */
            return ngx_http_registry_upload_blob_created(r, ctx);
        }

        /*
         * The blob was committed by another upload while we stored ours:
         * the bytes are the same (both hash to the digest); ours go.
         */

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: blob %V stored twice, dropping %V",
                      &up->claimed, &up->key);

        return ngx_http_registry_upload_delete(r, ctx,
                   ngx_http_registry_upload_blob_created);

    case -2:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: upload %V was cancelled while it ended",
                      &up->id);

        if (up->exists) {
            return ngx_http_registry_upload_unknown(r);
        }

        return ngx_http_registry_upload_delete(r, ctx,
                   ngx_http_registry_upload_dropped);

    default:
        /* collected, our multipart upload aborted (gc.c): start again */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: blob %V vanished while linked",
                      &up->claimed);
        return ngx_http_registry_upload_unknown(r);
    }
}


/*
 * Our object goes (a duplicate, a wrong digest, a cancelled session);
 * once S3 says it is gone, its key stops being pending.  A failed
 * delete leaves the key pending for the collector; next runs anyway.
 */

static ngx_int_t
ngx_http_registry_upload_delete(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;
    up->deleted = next;

    return ngx_http_registry_upload_go(r, ctx,
                                       NGX_HTTP_REGISTRY_UPLOAD_DELETE);
}


static ngx_int_t
ngx_http_registry_upload_dropped(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_upload_unknown(r);
}


static ngx_int_t
ngx_http_registry_upload_denied(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_error(r, NGX_HTTP_FORBIDDEN, "DENIED",
                                   ctx->error_message);
}


/*
 * Bytes [from, from + len) of what this request sends: the tail, then
 * the client's body (memory or nginx's temp file), as shadow buffers so
 * that the S3 send leaves the client's as they are.
 */

static ngx_chain_t *
ngx_http_registry_upload_chain(ngx_http_request_t *r,
    ngx_http_registry_upload_t *up, off_t from, off_t len)
{
    off_t         pos, size, skip, take, end;
    ngx_buf_t    *b;
    ngx_str_t     piece;
    ngx_chain_t  *head, **ll, *cl, *in;

    head = NULL;
    ll = &head;
    end = from + len;

    if ((off_t) up->tail.len > from) {
        piece.data = up->tail.data + from;
        piece.len = ngx_min((off_t) up->tail.len, end) - from;

        cl = ngx_http_registry_memory_chain(r->pool, &piece);
        if (cl == NULL) {
            return NGX_CHAIN_ERROR;
        }

        *ll = cl;
        ll = &cl->next;
    }

    pos = up->tail.len;

    for (in = r->request_body ? r->request_body->bufs : NULL;
         in && pos < end;
         in = in->next)
    {
        size = ngx_buf_size(in->buf);

        if (size == 0 || pos + size <= from) {
            pos += size;
            continue;
        }

        skip = (from > pos) ? from - pos : 0;
        take = ngx_min(size - skip, end - pos - skip);

        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            return NGX_CHAIN_ERROR;
        }

        *b = *in->buf;
        b->last_buf = 0;
        b->last_in_chain = 0;

        if (ngx_buf_in_memory(b)) {
            b->pos += skip;
            b->last = b->pos + take;
            b->in_file = 0;

        } else {
            b->file_pos += skip;
            b->file_last = b->file_pos + take;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;

        pos += size;
    }

    *ll = NULL;

    return head;
}
