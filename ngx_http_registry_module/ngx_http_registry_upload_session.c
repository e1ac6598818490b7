
/*
 * Upload sessions in Redis (the keys: redis/KEYS.md; the protocol: the
 * top of uploads.c): a session made, loaded, appended to or moved on by
 * its parts; the claim of the request that writes its parts, renewed
 * while the request lives and released when it ends; and the record of
 * an object key in "objects:pending" before S3 sees a byte of it.
 */


#include "ngx_http_registry.h"

#include <openssl/rand.h>


/*
 * A claim lasts this long (seconds) from its last renewal; its request
 * renews it every RENEW ms, and ends itself when no renewal succeeded
 * for SAFE ms: before the claim can lapse in Redis.
 */
#define NGX_HTTP_REGISTRY_CLAIM_TIME   5
#define NGX_HTTP_REGISTRY_CLAIM_RENEW  1000
#define NGX_HTTP_REGISTRY_CLAIM_SAFE   3500
#define NGX_HTTP_REGISTRY_CLAIM_TICK   500

/* the most keys and arguments of a session function but upload_parts */
#define NGX_HTTP_REGISTRY_UPLOAD_ARGS  8


/* a renewal in flight may outlive its request: this is not in its pool */
struct ngx_http_registry_claim_s {
    ngx_http_registry_upload_t *up;           /* NULL: the request ended */
    ngx_msec_t                  sent;
    unsigned                    pending:1;
};


static ngx_int_t ngx_http_registry_upload_run(ngx_http_request_t *r,
    ngx_http_registry_step_pt next, const char *name, ngx_uint_t nkeys, ...);
static ngx_int_t ngx_http_registry_upload_pended(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_claimed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static void ngx_http_registry_upload_release(void *data);
static void ngx_http_registry_upload_tick(ngx_event_t *ev);
static void ngx_http_registry_upload_renewed(redisReply *reply, void *data);
static void ngx_http_registry_upload_stop(ngx_http_registry_upload_t *up);
static ngx_int_t ngx_http_registry_upload_sha(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *out);


/*
 * A session function (redis/upload_*.lua, whose header says what it
 * answers) as the operation a step waits for: its nkeys keys, then its
 * arguments, as a NULL-terminated list of ngx_str_t pointers.  An empty
 * key is left out: blob:D, which a request without a digest (PATCH)
 * lacks.  hiredis copies them at once.
 */

static ngx_int_t
ngx_http_registry_upload_run(ngx_http_request_t *r,
    ngx_http_registry_step_pt next, const char *name, ngx_uint_t nkeys, ...)
{
    va_list     ap;
    ngx_str_t  *s, args[NGX_HTTP_REGISTRY_UPLOAD_ARGS];
    ngx_uint_t  i, n, keys;

    n = 0;
    keys = nkeys;

    va_start(ap, nkeys);

    for (i = 0; (s = va_arg(ap, ngx_str_t *)) != NULL; i++) {

        if (i < nkeys && s->len == 0) {
            keys--;
            continue;
        }

        if (n == NGX_HTTP_REGISTRY_UPLOAD_ARGS) {
            va_end(ap);
            return NGX_ERROR;
        }

        args[n++] = *s;
    }

    va_end(ap);

    return ngx_http_registry_run(r, next, name, keys, args, n);
}


/* the state of a session, new or about to be loaded */

ngx_int_t
ngx_http_registry_upload_new(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *id)
{
    u_char                      *p;
    ngx_http_registry_upload_t  *up;
    u_char                       raw[NGX_HTTP_REGISTRY_ID_LEN / 2];

    up = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_upload_t));
    if (up == NULL) {
        return NGX_ERROR;
    }

    ctx->data = up;
    up->request = r;

    if (id->len == 0) {
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            return NGX_ERROR;
        }

        p = ngx_pnalloc(r->pool, NGX_HTTP_REGISTRY_ID_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        id->data = p;
        id->len = ngx_hex_dump(p, raw, sizeof(raw)) - p;
    }

    up->id = *id;
    up->claimed = ctx->digest;

    /* a new blob's; a session loaded brings its own */
    ngx_http_registry_hash_init(&up->sha);

    if (ngx_http_registry_keyf(r->pool, &up->key, "data/%V", id) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &up->session, "upload:%V", id)
           != NGX_OK
        || ngx_http_registry_keyf(r->pool, &up->etags, "upload:%V:etags", id)
           != NGX_OK
        || ngx_http_registry_keyf(r->pool, &up->tail_key, "upload:%V:tail",
                                  id)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a PATCH has no digest, and needs no blob:D */

    if (ctx->digest.len
        && ngx_http_registry_keyf(r->pool, &up->blob, "blob:%V",
                                  &ctx->digest)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    up->parts = ngx_array_create(r->pool, 1,
                                 sizeof(ngx_http_registry_s3_part_t));
    if (up->parts == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_upload_create(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next)
{
    ngx_str_t                       id, sha, expires;
    ngx_http_registry_upload_t     *up;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    ngx_str_null(&id);

    if (ngx_http_registry_upload_new(r, ctx, &id) != NGX_OK) {
        return NGX_ERROR;
    }

    up = ctx->data;

    if (ngx_http_registry_upload_sha(r, ctx, &sha) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &expires, "%T",
                                  mcf->upload_expires)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_upload_run(r, next, "upload_create", 1,
                                        &up->session, &ctx->repo, &sha,
                                        &expires, NULL);
}


/* the session's state, if it is R's: the reply of the load script */

ngx_int_t
ngx_http_registry_upload_load(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    return ngx_http_registry_upload_run(r, next, "upload_load", 3,
                                        &up->session, &up->etags,
                                        &up->tail_key, &ctx->repo, NULL);
}


/* ctx->digest of "from" linked in R too, if "from" has it: 1, else 0 */

ngx_int_t
ngx_http_registry_upload_mount(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *from,
    ngx_http_registry_step_pt next)
{
    ngx_str_t  from_blobs, blob, blobs, links, repos;

    if (ngx_http_registry_keyf(r->pool, &from_blobs, "repo:%V:blobs", from)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &blob, "blob:%V", &ctx->digest)
           != NGX_OK
        || ngx_http_registry_keyf(r->pool, &blobs, "repo:%V:blobs",
                                  &ctx->repo) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &links, "blob:%V:links",
                                  &ctx->digest) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&repos, "repos");

    return ngx_http_registry_upload_run(r, next, "upload_mount", 5,
                                        &from_blobs, &blob, &blobs, &links,
                                        &repos, &ctx->digest, &ctx->repo,
                                        NULL);
}


/*
 * A monolithic push records its object key before S3 sees a byte of it
 * (a session's claim does it for sessions): if Redis fails after S3, the
 * object is still known.  No record, no write: 503.
 */

ngx_int_t
ngx_http_registry_upload_pend(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    pending;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    ngx_str_set(&pending, "objects:pending");

    return ngx_http_registry_upload_run(r, ngx_http_registry_upload_pended,
                                        "upload_pend", 1, &pending,
                                        &up->key, NULL);
}


static ngx_int_t
ngx_http_registry_upload_pended(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    return ngx_http_registry_upload_next(r, ctx);
}


/*
 * The session's multipart upload, once S3 gave its id; then next, with
 * ctx->reply NULL when Redis could not be asked.
 */

ngx_int_t
ngx_http_registry_upload_record_mpu(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next)
{
    ngx_str_t                    args[3];
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    args[0] = up->session;
    args[1] = up->token;
    args[2] = up->mpu;

    ctx->next = next;

    if (ngx_http_registry_fcall(r, "upload_mpu", 1, args, 3) != NGX_OK)
    {
        /* Redis away: next learns it from the missing reply */
        ctx->next = NULL;
        ctx->reply = NULL;
        up->mpu_unsent = 1;
        return next(r, ctx);
    }

    return NGX_DONE;
}


/*
 * The session becomes ours until we commit or end: see the top of the
 * file.  A PUT learns on the way whether the blob exists.
 */

ngx_int_t
ngx_http_registry_upload_claim(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                      *p;
    ngx_str_t                    pending, offset, secs;
    ngx_pool_cleanup_t          *cln;
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_claim_t   *claim;
    u_char                       raw[NGX_HTTP_REGISTRY_ID_LEN / 2];

    up = ctx->data;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_HTTP_REGISTRY_ID_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    up->token.data = p;
    up->token.len = ngx_hex_dump(p, raw, sizeof(raw)) - p;

    /* registered first: once Redis has the claim, nothing may fail */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    claim = up->claim;

    if (claim == NULL) {
        claim = ngx_calloc(sizeof(ngx_http_registry_claim_t),
                           r->connection->log);
        if (claim == NULL) {
            return NGX_ERROR;
        }

        claim->up = up;
        up->claim = claim;
    }

    cln->handler = ngx_http_registry_upload_release;
    cln->data = up;

    ngx_str_set(&pending, "objects:pending");

    if (ngx_http_registry_keyf(r->pool, &offset, "%O", up->offset) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &secs, "%d",
                                  NGX_HTTP_REGISTRY_CLAIM_TIME)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    claim->sent = ngx_current_msec;

    /* no digest, no blob:D (a PATCH): up->blob is empty, left out */

    return ngx_http_registry_upload_run(r, ngx_http_registry_upload_claimed,
                                        "upload_claim", 4, &up->session,
                                        &up->etags, &pending, &up->blob,
                                        &offset, &up->token, &secs,
                                        &up->key, NULL);
}


static ngx_int_t
ngx_http_registry_upload_claimed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    redisReply                  *reply;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;
    reply = ctx->reply;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (reply->type == REDIS_REPLY_INTEGER) {
        if (reply->integer < 0) {
            return ngx_http_registry_upload_unknown(r);
        }

        /* moved on */
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_ERROR;
    }

    if (reply->element[0]->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_upload_busy(r, ctx, reply);
    }

    /* ours until we commit or end; renewed meanwhile */

    up->locked = 1;
    up->claim_until = up->claim->sent + NGX_HTTP_REGISTRY_CLAIM_SAFE;

    up->renew.handler = ngx_http_registry_upload_tick;
    up->renew.data = up;
    up->renew.log = r->connection->log;
    up->renew.cancelable = 1;

    ngx_add_timer(&up->renew, NGX_HTTP_REGISTRY_CLAIM_TICK);

    /* parts committed since the session was loaded cannot be: same offset */
    up->ncommitted = (ngx_uint_t) reply->element[0]->integer;

    if (up->final) {
        up->exists = (reply->element[1]->integer != 0);
    }

    return ngx_http_registry_upload_next(r, ctx);
}


/* the request ends without its commit: the session is free again */

static void
ngx_http_registry_upload_release(void *data)
{
    ngx_http_registry_upload_t *up = data;

    ngx_str_t                   args[2];
    ngx_uint_t                  locked;
    ngx_http_registry_claim_t  *claim;

    locked = up->locked;
    ngx_http_registry_upload_unlock(up);

    claim = up->claim;

    if (claim != NULL) {
        up->claim = NULL;
        claim->up = NULL;

        if (!claim->pending) {
            ngx_free(claim);
        }
    }

    if (!locked) {
        return;
    }

    args[0] = up->session;
    args[1] = up->token;

    /* hiredis copies the command at once; if Redis is away, the deadline */
    (void) ngx_http_registry_redis_fcall(NULL, NULL, "upload_release", 1,
                                         args, 2);
}


/* the claim ended (committed, released): no more renewals */

void
ngx_http_registry_upload_unlock(ngx_http_registry_upload_t *up)
{
    up->locked = 0;

    if (up->renew.timer_set) {
        ngx_del_timer(&up->renew);
    }
}


/*
 * Every tick while the claim is ours: renew it now and then; if no
 * renewal succeeded for too long (Redis away), end the request before
 * the claim can lapse, so that no other request's parts are written
 * over by ours.
 */

static void
ngx_http_registry_upload_tick(ngx_event_t *ev)
{
    ngx_http_registry_upload_t *up = ev->data;

    u_char                      secs[NGX_INT_T_LEN];
    ngx_str_t                   args[3];
    ngx_http_registry_claim_t  *claim;

    if (!up->locked) {
        return;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - up->claim_until) >= 0) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "registry: upload %V: its claim could not be renewed "
                      "(Redis unavailable), the request ends", &up->id);
        ngx_http_registry_upload_stop(up);
        return;
    }

    ngx_add_timer(&up->renew, NGX_HTTP_REGISTRY_CLAIM_TICK);

    claim = up->claim;

    if (claim->pending
        || ngx_current_msec - claim->sent < NGX_HTTP_REGISTRY_CLAIM_RENEW)
    {
        return;
    }

    args[0] = up->session;
    args[1] = up->token;
    args[2].data = secs;
    args[2].len = ngx_sprintf(secs, "%d", NGX_HTTP_REGISTRY_CLAIM_TIME) - secs;

    claim->sent = ngx_current_msec;

    if (ngx_http_registry_redis_fcall(ngx_http_registry_upload_renewed, claim,
                                      "upload_renew", 1, args, 3)
        == NGX_OK)
    {
        claim->pending = 1;
    }
}


static void
ngx_http_registry_upload_renewed(redisReply *reply, void *data)
{
    ngx_http_registry_claim_t *claim = data;

    ngx_http_registry_upload_t  *up;

    claim->pending = 0;
    up = claim->up;

    if (up == NULL) {
        /* the request ended meanwhile */
        ngx_free(claim);
        return;
    }

    if (!up->locked || reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        /* committed meanwhile; or Redis away: the tick decides */
        return;
    }

    if (reply->integer == 1) {
        up->claim_until = claim->sent + NGX_HTTP_REGISTRY_CLAIM_SAFE;
        return;
    }

    ngx_log_error(NGX_LOG_ERR, up->renew.log, 0,
                  "registry: upload %V: its claim was lost, the request ends",
                  &up->id);

    up->locked = 0;
    ngx_http_registry_upload_stop(up);
}


/*
 * The request stops writing now, whatever it waits for (an S3 part, a
 * Redis reply): it is terminated, which closes its S3 connection; the
 * client sees its connection closed and asks GET where the upload is.
 */

static void
ngx_http_registry_upload_stop(ngx_http_registry_upload_t *up)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = up->request;
    c = r->connection;

    ngx_http_finalize_request(r, NGX_ERROR);
    ngx_http_run_posted_requests(c);
}


/*
 * A PATCH's bytes committed: appended to the tail when too few for a
 * part, else the parts we sent listed, which ends our claim.
 */

ngx_int_t
ngx_http_registry_upload_save(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next)
{
    ngx_str_t                      *a, offset, moved, sha, expires, bytes;
    ngx_str_t                       tails;
    ngx_uint_t                      i;
    ngx_http_registry_upload_t     *up;
    ngx_http_registry_s3_part_t    *part;
    ngx_http_registry_main_conf_t  *mcf;

    up = ctx->data;
    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (ngx_http_registry_keyf(r->pool, &offset, "%O", up->offset) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &moved, "%O",
                                  up->offset + up->chunk_len)
           != NGX_OK
        || ngx_http_registry_upload_sha(r, ctx, &sha) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &expires, "%T",
                                  mcf->upload_expires)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!up->locked) {

        /* too small for a part: the bytes wait in the tail */

        /* and the bound of all tails (upload_append.lua, "full") */

        if (ngx_http_registry_body_bytes(r, &bytes,
                                         NGX_HTTP_REGISTRY_S3_MIN_PART)
            != NGX_OK
            || ngx_http_registry_keyf(r->pool, &tails, "%uz",
                                      mcf->upload_tails)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_registry_upload_run(r, next, "upload_append", 2,
                                            &up->session, &up->tail_key,
                                            &offset, &moved, &sha, &bytes,
                                            &expires, &tails, NULL);
    }

    /* the parts sent: the session moves on, the claim ends */

    a = ngx_palloc(r->pool, (9 + up->parts->nelts) * sizeof(ngx_str_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    a[0] = up->session;
    a[1] = up->etags;
    a[2] = up->tail_key;
    a[3] = offset;
    a[4] = moved;
    a[5] = sha;
    a[6] = up->token;
    a[7] = expires;
    a[8] = up->mpu;

    part = up->parts->elts;

    for (i = 0; i < up->parts->nelts; i++) {
        if (ngx_http_registry_keyf(r->pool, &a[9 + i], "%ui %V",
                                   part[i].number, &part[i].etag)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_registry_run(r, next, "upload_parts", 3, a,
                                 9 + up->parts->nelts);
}


ngx_int_t
ngx_http_registry_upload_forget(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    args[3];
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (up->monolithic) {
        return ngx_http_registry_upload_forgotten(r, ctx);
    }

    args[0] = up->session;
    args[1] = up->etags;
    args[2] = up->tail_key;

    return ngx_http_registry_run(r, ngx_http_registry_upload_forgotten,
                                 "upload_forget", 3, args, 3);
}


/* the hash state as kept in Redis (see body.c) */

static ngx_int_t
ngx_http_registry_upload_sha(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *out)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    return ngx_http_registry_hash_save(r->pool, &up->sha, out);
}
