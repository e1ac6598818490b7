
/*
 * Blob uploads: POST (session, monolithic, mount), PATCH, PUT, GET and
 * DELETE of upload sessions.
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

#include <openssl/rand.h>


#define NGX_HTTP_REGISTRY_ID_LEN       32
#define NGX_HTTP_REGISTRY_SHA_VERSION  '1'

/* S3's largest part and object of a single PUT */
#ifndef NGX_HTTP_REGISTRY_MAX_PART
#define NGX_HTTP_REGISTRY_MAX_PART     ((off_t) 5 * 1024 * 1024 * 1024)
#endif

/*
 * A claim lasts this long (seconds) from its last renewal; its request
 * renews it every RENEW ms, and ends itself when no renewal succeeded
 * for SAFE ms: before the claim can lapse in Redis.
 */
#define NGX_HTTP_REGISTRY_CLAIM_TIME   5
#define NGX_HTTP_REGISTRY_CLAIM_RENEW  1000
#define NGX_HTTP_REGISTRY_CLAIM_SAFE   3500
#define NGX_HTTP_REGISTRY_CLAIM_TICK   500


typedef struct ngx_http_registry_upload_s  ngx_http_registry_upload_t;


/* a renewal in flight may outlive its request: this is not in its pool */
typedef struct {
    ngx_http_registry_upload_t *up;           /* NULL: the request ended */
    ngx_msec_t                  sent;
    unsigned                    pending:1;
} ngx_http_registry_claim_t;


struct ngx_http_registry_upload_s {
    ngx_http_request_t         *request;
    ngx_str_t                   id;
    ngx_str_t                   key;          /* the S3 object */
    ngx_str_t                   session;      /* upload:ID */
    ngx_str_t                   etags;        /* upload:ID:etags */
    ngx_str_t                   tail_key;     /* upload:ID:tail */
    ngx_str_t                   blob;         /* blob:D of the claim */
    ngx_str_t                   mpu;          /* multipart id, or empty */
    ngx_str_t                   claimed;      /* the client's digest */
    ngx_str_t                   tail;         /* tail bytes, once loaded */
    ngx_str_t                   token;        /* our claim on the session */
    ngx_array_t                *committed;    /* parts before us, loaded */
    ngx_array_t                *parts;        /* the parts we sent */
    ngx_http_registry_step_pt   deleted;      /* after our object went */

    ngx_http_registry_claim_t  *claim;        /* while locked */
    ngx_event_t                 renew;        /* ticks while locked */
    ngx_msec_t                  claim_until;  /* stop writing after */

    ngx_uint_t                  ncommitted;   /* parts before us */
    off_t                       offset;       /* committed before us */
    off_t                       tail_len;
    off_t                       chunk_len;
    off_t                       total;        /* tail + chunk: ours to send */
    off_t                       sent;         /* of total, in parts */
    off_t                       part_size;
    off_t                       range_start;
    off_t                       range_end;

    unsigned                    has_range:1;
    unsigned                    final:1;       /* PUT or monolithic */
    unsigned                    monolithic:1;  /* no session in Redis */
    unsigned                    locked:1;      /* the session is ours */
    unsigned                    streaming:1;   /* claimed, to stream next */
    unsigned                    checked:1;     /* existence known */
    unsigned                    exists:1;
    unsigned                    tail_loaded:1;
    unsigned                    multipart:1;   /* parts, not one PUT */
    unsigned                    completed:1;
    unsigned                    stored:1;      /* an object was written */
    unsigned                    aborted:1;
    unsigned                    aborting:1;    /* s3_done awaits an abort */
    unsigned                    pending:1;     /* key in objects:pending */
};


static ngx_int_t ngx_http_registry_upload_new(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *id);
static ngx_int_t ngx_http_registry_upload_create(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_mounted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_loaded(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_content_range(
    ngx_http_request_t *r, ngx_http_registry_upload_t *up);
static ngx_int_t ngx_http_registry_upload_read(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_streamed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_drive(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_patch(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_finish(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_claim(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_claimed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static void ngx_http_registry_upload_release(void *data);
static void ngx_http_registry_upload_unlock(ngx_http_registry_upload_t *up);
static void ngx_http_registry_upload_tick(ngx_event_t *ev);
static void ngx_http_registry_upload_renewed(redisReply *reply, void *data);
static void ngx_http_registry_upload_stop(ngx_http_registry_upload_t *up);
static ngx_int_t ngx_http_registry_upload_pend(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_pended(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_delete(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next);
static ngx_int_t ngx_http_registry_upload_deleted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_busy(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_registry_upload_send(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_mpu_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_part_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_load_tail(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_tail_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_exists_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_etags_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_s3_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_committed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_finished(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_dropped(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_cancel(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_forget(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_forgotten(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_status(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_registry_upload_range_error(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_unknown(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_upload_blob_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_chain_t *ngx_http_registry_upload_chain(ngx_http_request_t *r,
    ngx_http_registry_upload_t *up, off_t from, off_t len);
static ngx_int_t ngx_http_registry_upload_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_int_t built,
    ngx_http_registry_s3_op_t *op, ngx_http_registry_step_pt next);
static ngx_int_t ngx_http_registry_upload_sha(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *out);


/*
 * Lua shared by the scripts: "busy" is "<token> <deadline>", the
 * deadline in Redis's own clock, so that hosts need not agree on time.
 */
#define NGX_HTTP_REGISTRY_BUSY_LUA                                           \
    "local function taken(b) "                                               \
    "  if not b then return false end "                                      \
    "  local d = tonumber(string.match(b, ' (%d+)$')) "                      \
    "  return d ~= nil and d > tonumber(redis.call('TIME')[1]) "             \
    "end "                                                                   \
    "local function ours(b, t) "                                             \
    "  return b ~= false and b ~= nil and string.sub(b, 1, #t + 1) "         \
    "         == t .. ' ' "                                                  \
    "end "                                                                   \
    "local function busy(b) "                                                \
    "  local d = tonumber(string.match(b, ' (%d+)$')) "                      \
    "  return {'busy', d - tonumber(redis.call('TIME')[1])} "                \
    "end "

/* KEYS: upload:ID; ARGV: R, sha, expires */
static const char  ngx_http_registry_upload_create_lua[] =
    "redis.call('HSET', KEYS[1], 'repo', ARGV[1], 'offset', '0', "
    "           'sha', ARGV[2]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[3]) "
    "return 1";

/*
 * KEYS: upload:ID, etags, tail; ARGV: R.
 * Returns offset, sha, mpu, committed parts, tail length.
 */
static const char  ngx_http_registry_upload_load_lua[] =
    "local u = redis.call('HMGET', KEYS[1], 'repo', 'offset', 'sha', "
    "                     'mpu') "
    "if not u[1] or u[1] ~= ARGV[1] then return false end "
    "return {u[2], u[3], u[4] or '', "
    "        tostring(redis.call('LLEN', KEYS[2])), "
    "        tostring(redis.call('STRLEN', KEYS[3]))}";

/*
 * KEYS: upload:ID, tail; ARGV: offset, new offset, sha, bytes, expires.
 * -1: no session; 0: moved on; {"busy", seconds left}: claimed by
 * another request.
 */
static const char  ngx_http_registry_upload_append_lua[] =
    NGX_HTTP_REGISTRY_BUSY_LUA
    "local u = redis.call('HMGET', KEYS[1], 'offset', 'busy') "
    "if not u[1] then return -1 end "
    "if u[1] ~= ARGV[1] then return 0 end "
    "if taken(u[2]) then return busy(u[2]) end "
    "redis.call('APPEND', KEYS[2], ARGV[4]) "
    "redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'sha', ARGV[3]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[5]) "
    "redis.call('EXPIRE', KEYS[2], ARGV[5]) "
    "return 1";

/*
 * KEYS: upload:ID, etags, objects:pending[, blob:D]; ARGV: offset, token,
 * seconds, S3 key.  -1: no session; 0: moved on; {"busy", seconds left}:
 * claimed by another request; else {committed parts, whether blob:D
 * exists}.  The key is recorded as pending: parts may follow.
 */
static const char  ngx_http_registry_upload_claim_lua[] =
    NGX_HTTP_REGISTRY_BUSY_LUA
    "local u = redis.call('HMGET', KEYS[1], 'offset', 'busy') "
    "if not u[1] then return -1 end "
    "if u[1] ~= ARGV[1] then return 0 end "
    "if taken(u[2]) then return busy(u[2]) end "
    "local now = tonumber(redis.call('TIME')[1]) "
    "redis.call('ZADD', KEYS[3], now, ARGV[4]) "
    "redis.call('HSET', KEYS[1], 'busy', "
    "           ARGV[2] .. ' ' .. (now + tonumber(ARGV[3]))) "
    "local e = 0 "
    "if KEYS[4] then e = redis.call('EXISTS', KEYS[4]) end "
    "return {redis.call('LLEN', KEYS[2]), e}";

/* KEYS: upload:ID; ARGV: token, seconds.  1: renewed; 0: not ours */
static const char  ngx_http_registry_upload_renew_lua[] =
    NGX_HTTP_REGISTRY_BUSY_LUA
    "if not ours(redis.call('HGET', KEYS[1], 'busy'), ARGV[1]) then "
    "  return 0 "
    "end "
    "redis.call('HSET', KEYS[1], 'busy', ARGV[1] .. ' ' .. "
    "           (tonumber(redis.call('TIME')[1]) + tonumber(ARGV[2]))) "
    "return 1";

/* KEYS: objects:pending; ARGV: S3 key (before a monolithic push) */
static const char  ngx_http_registry_upload_pend_lua[] =
    "redis.call('ZADD', KEYS[1], redis.call('TIME')[1], ARGV[1]) "
    "return 1";

/* KEYS: upload:ID; ARGV: token */
static const char  ngx_http_registry_upload_release_lua[] =
    NGX_HTTP_REGISTRY_BUSY_LUA
    "if ours(redis.call('HGET', KEYS[1], 'busy'), ARGV[1]) then "
    "  redis.call('HDEL', KEYS[1], 'busy') "
    "end "
    "return 1";

/*
 * Parts in, the claim ends.  KEYS: upload:ID, etags, tail; ARGV: offset,
 * new offset, sha, token, expires, mpu, then "N ETAG" of each part.
 */
static const char  ngx_http_registry_upload_parts_lua[] =
    NGX_HTTP_REGISTRY_BUSY_LUA
    "local u = redis.call('HMGET', KEYS[1], 'offset', 'busy') "
    "if not u[1] then return -1 end "
    "if u[1] ~= ARGV[1] or not ours(u[2], ARGV[4]) then return 0 end "
    "for i = 7, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end "
    "redis.call('DEL', KEYS[3]) "
    "redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'sha', ARGV[3], "
    "           'mpu', ARGV[6]) "
    "redis.call('HDEL', KEYS[1], 'busy') "
    "redis.call('EXPIRE', KEYS[1], ARGV[5]) "
    "redis.call('EXPIRE', KEYS[2], ARGV[5]) "
    "return 1";

/*
 * The blob becomes visible.  KEYS: blob:D, repo:R:blobs, blob:D:links,
 * blobs, repos, upload:ID, etags, tail, objects:pending; ARGV: D, R,
 * size, S3 key or "" (nothing stored: the blob existed), now, token or
 * "" (monolithic), S3 key.  Returns 1 when our object became the blob's,
 * 0 when the blob existed (ours is a duplicate), -1 when it vanished
 * (nothing stored), -2 when the session is no longer ours (cancelled
 * meanwhile).  The key stops being pending when it is the blob's, or
 * when nothing was stored (a duplicate stays pending until deleted).
 */
static const char  ngx_http_registry_upload_finish_lua[] =
    NGX_HTTP_REGISTRY_BUSY_LUA
    "if ARGV[6] ~= '' "
    "   and not ours(redis.call('HGET', KEYS[6], 'busy'), ARGV[6]) then "
    "  return -2 "
    "end "
    "local fresh = 0 "
    "if redis.call('EXISTS', KEYS[1]) == 0 then "
    "  if ARGV[4] == '' then return -1 end "
    "  redis.call('HSET', KEYS[1], 'size', ARGV[3], 'key', ARGV[4], "
    "             'created', ARGV[5]) "
    "  redis.call('SADD', KEYS[4], ARGV[1]) "
    "  fresh = 1 "
    "end "
    "redis.call('SADD', KEYS[2], ARGV[1]) "
    "redis.call('SADD', KEYS[3], ARGV[2]) "
    "redis.call('ZADD', KEYS[5], 0, ARGV[2]) "
    "redis.call('DEL', KEYS[6], KEYS[7], KEYS[8]) "
    "if fresh == 1 or ARGV[4] == '' then "
    "  redis.call('ZREM', KEYS[9], ARGV[7]) "
    "end "
    "return fresh";

/* KEYS: repo:F:blobs, blob:D, repo:R:blobs, blob:D:links, repos; ARGV: D, R */
static const char  ngx_http_registry_upload_mount_lua[] =
    "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 "
    "   or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end "
    "redis.call('SADD', KEYS[3], ARGV[1]) "
    "redis.call('SADD', KEYS[4], ARGV[2]) "
    "redis.call('ZADD', KEYS[5], 0, ARGV[2]) "
    "return 1";


/* POST /v2/<name>/blobs/uploads/ */

ngx_int_t
ngx_http_registry_uploads_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_str_t                    from, args[7], id;
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
            return ngx_http_registry_upload_create(r, ctx);
        }

        if (ngx_http_registry_keyf(r->pool, &args[0], "repo:%V:blobs",
                                   &from) != NGX_OK
            || ngx_http_registry_keyf(r->pool, &args[1], "blob:%V",
                                      &ctx->digest) != NGX_OK
            || ngx_http_registry_keyf(r->pool, &args[2], "repo:%V:blobs",
                                      &ctx->repo) != NGX_OK
            || ngx_http_registry_keyf(r->pool, &args[3], "blob:%V:links",
                                      &ctx->digest) != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_str_set(&args[4], "repos");
        args[5] = ctx->digest;
        args[6] = ctx->repo;

        return ngx_http_registry_run(r, ngx_http_registry_upload_mounted,
                                     ngx_http_registry_upload_mount_lua, 5,
                                     args, 7);
    }

    rc = ngx_http_registry_arg(r, "digest", &ctx->digest);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_registry_upload_create(r, ctx);
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

    SHA256_Init(&ctx->sha);
    ctx->hash_body = 1;

    if (ngx_http_registry_s3_streamable(r)) {
        /* to S3 while it arrives, instead of through nginx's temp file */
        up->streaming = 1;
        return ngx_http_registry_upload_pend(r, ctx);
    }

    return ngx_http_registry_read_body(r, ctx, ngx_http_registry_upload_read);
}


/*
 * A monolithic push records its object key before S3 sees a byte of it
 * (a session's claim does it for sessions): if Redis fails after S3, the
 * object is still known.  No record, no write: 503.
 */

static ngx_int_t
ngx_http_registry_upload_pend(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    args[2];
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    ngx_str_set(&args[0], "objects:pending");
    args[1] = up->key;

    return ngx_http_registry_run(r, ngx_http_registry_upload_pended,
                                 ngx_http_registry_upload_pend_lua, 1, args,
                                 2);
}


static ngx_int_t
ngx_http_registry_upload_pended(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    up->pending = 1;

    if (up->streaming) {
        up->streaming = 0;
        return ngx_http_registry_s3_stream_put(r, ctx, &up->key,
                                          ngx_http_registry_upload_streamed);
    }

    return ngx_http_registry_upload_drive(r, ctx);
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
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->s3.status != NGX_HTTP_OK) {
        return ngx_http_registry_s3_failed(r, ctx);
    }

    up->stored = 1;
    up->checked = 1;    /* a blob that exists meanwhile: FINISH tells */

    if (ctx->body_bytes != r->headers_in.content_length_n) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry: s3 stored %O bytes of %O", ctx->body_bytes,
                      r->headers_in.content_length_n);
        return ngx_http_registry_upload_cancel(r, ctx);
    }

    return ngx_http_registry_upload_read(r, ctx);
}


/* the state of a session, new or about to be loaded */

static ngx_int_t
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


static ngx_int_t
ngx_http_registry_upload_create(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                       id, args[4];
    ngx_http_registry_upload_t     *up;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    ngx_str_null(&id);

    if (ngx_http_registry_upload_new(r, ctx, &id) != NGX_OK) {
        return NGX_ERROR;
    }

    up = ctx->data;

    SHA256_Init(&ctx->sha);

    args[0] = up->session;
    args[1] = ctx->repo;

    if (ngx_http_registry_upload_sha(r, ctx, &args[2]) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[3], "%T",
                                  mcf->upload_expires)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_run(r, ngx_http_registry_upload_created,
                                 ngx_http_registry_upload_create_lua, 1, args,
                                 4);
}


static ngx_int_t
ngx_http_registry_upload_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

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
        return ngx_http_registry_upload_create(r, ctx);
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
    ngx_str_t                    args[4];
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

    args[0] = up->session;
    args[1] = up->etags;
    args[2] = up->tail_key;
    args[3] = ctx->repo;

    return ngx_http_registry_run(r, ngx_http_registry_upload_loaded,
                                 ngx_http_registry_upload_load_lua, 3, args, 4);
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
        || sha.len != 1 + sizeof(SHA256_CTX)
        || sha.data[0] != NGX_HTTP_REGISTRY_SHA_VERSION)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: upload session %V is damaged", &up->id);
        return ngx_http_registry_upload_unknown(r);
    }

    up->ncommitted = n;

    ngx_memcpy(&ctx->sha, sha.data + 1, sizeof(SHA256_CTX));

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

    default: /* PATCH, PUT */
        break;
    }

    if (ngx_http_registry_upload_content_range(r, up) != NGX_OK) {
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    ctx->hash_body = 1;

    if (up->final && up->offset == 0 && up->tail_len == 0
        && up->mpu.len == 0 && ngx_http_registry_s3_streamable(r))
    {
        /*
         * The whole blob in this PUT: the session is claimed first (no
         * other request may write data/<id> meanwhile), then the body
         * goes to S3 as it arrives.
         */
        up->total = r->headers_in.content_length_n;
        up->streaming = 1;

        return ngx_http_registry_upload_claim(r, ctx);
    }

    return ngx_http_registry_read_body(r, ctx, ngx_http_registry_upload_read);
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
    u_char                       hash[SHA256_DIGEST_LENGTH];
    u_char                       hex[7 + 2 * SHA256_DIGEST_LENGTH];
    SHA256_CTX                   final;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;
    up->chunk_len = ctx->body_bytes;
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
        final = ctx->sha;
        SHA256_Final(hash, &final);

        ngx_memcpy(hex, "sha256:", 7);
        ngx_hex_dump(hex + 7, hash, SHA256_DIGEST_LENGTH);

        if (up->claimed.len != sizeof(hex)
            || ngx_strncmp(up->claimed.data, hex, sizeof(hex)) != 0)
        {
            /* nothing is stored under that digest; the session ends */
            return ngx_http_registry_upload_cancel(r, ctx);
        }
    }

    return ngx_http_registry_upload_drive(r, ctx);
}


/* the next thing this request needs done; each completion comes back */

static ngx_int_t
ngx_http_registry_upload_drive(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    return up->final ? ngx_http_registry_upload_finish(r, ctx)
                     : ngx_http_registry_upload_patch(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_patch(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                          n;
    ngx_str_t                      *a;
    ngx_uint_t                      i;
    ngx_http_registry_upload_t     *up;
    ngx_http_registry_s3_part_t    *part;
    ngx_http_registry_main_conf_t  *mcf;

    up = ctx->data;
    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (up->chunk_len == 0) {
        return ngx_http_registry_upload_status(r, ctx, NGX_HTTP_ACCEPTED);
    }

    if (up->total >= NGX_HTTP_REGISTRY_S3_MIN_PART
        && up->sent < up->total)
    {
        if (!up->locked) {
            return ngx_http_registry_upload_claim(r, ctx);
        }

        return ngx_http_registry_upload_send(r, ctx);
    }

    n = up->locked ? 6 + up->parts->nelts : 7;

    a = ngx_palloc(r->pool, (3 + n) * sizeof(ngx_str_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    a[0] = up->session;

    if (ngx_http_registry_keyf(r->pool, &a[3], "%O", up->offset) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &a[4], "%O",
                                  up->offset + up->chunk_len)
           != NGX_OK
        || ngx_http_registry_upload_sha(r, ctx, &a[5]) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &a[7], "%T", mcf->upload_expires)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!up->locked) {

        /* too small for a part: the bytes wait in the tail */

        a[1] = up->tail_key;
        a[2] = a[3];
        a[3] = a[4];
        a[4] = a[5];
        a[6] = a[7];

        if (ngx_http_registry_body_bytes(r, &a[5],
                                         NGX_HTTP_REGISTRY_S3_MIN_PART)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_registry_run(r, ngx_http_registry_upload_committed,
                                     ngx_http_registry_upload_append_lua, 2, a,
                                     7);
    }

    /* the parts sent: the session moves on, the claim ends */

    a[1] = up->etags;
    a[2] = up->tail_key;
    a[6] = up->token;
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

    return ngx_http_registry_run(r, ngx_http_registry_upload_committed,
                                 ngx_http_registry_upload_parts_lua, 3, a,
                                 3 + n);
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


/*
 * The last request of an upload: the blob is complete and checked.  A
 * blob that exists already is only linked; else our bytes become an
 * object, in one PutObject or by completing the multipart upload.
 */

static ngx_int_t
ngx_http_registry_upload_finish(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    args[16], cmd;
    ngx_chain_t                 *cl;
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    if (!up->monolithic && !up->locked) {
        /* tells whether the blob exists too */
        return ngx_http_registry_upload_claim(r, ctx);
    }

    if (!up->checked) {
        ngx_str_set(&cmd, "EXISTS");

        return ngx_http_registry_call(r, ngx_http_registry_upload_exists_done,
                                      2, &cmd, &up->blob, NULL);
    }

    if (up->exists) {
        if (up->mpu.len && !up->aborted) {
            up->aborted = 1;
            up->aborting = 1;
            return ngx_http_registry_upload_s3(r, ctx,
                       ngx_http_registry_s3_op_abort(r, &op, &up->key,
                                                     &up->mpu),
                       &op, ngx_http_registry_upload_s3_done);
        }

        goto finish;
    }

    if (up->mpu.len == 0 && up->total <= NGX_HTTP_REGISTRY_MAX_PART) {

        if (!up->stored) {
            if (up->tail_len && !up->tail_loaded) {
                return ngx_http_registry_upload_load_tail(r, ctx);
            }

            if (!up->pending) {
                return ngx_http_registry_upload_pend(r, ctx);
            }

            cl = ngx_http_registry_upload_chain(r, up, 0, up->total);
            if (cl == NGX_CHAIN_ERROR) {
                return NGX_ERROR;
            }

            up->stored = 1;

            return ngx_http_registry_upload_s3(r, ctx,
                       ngx_http_registry_s3_op_put(r, &op, &up->key, cl,
                                                   up->total, NULL),
                       &op, ngx_http_registry_upload_s3_done);
        }

        goto finish;
    }

    /* multipart */

    up->multipart = 1;

    if (up->ncommitted && up->committed == NULL) {
        ngx_str_set(&args[0], "LRANGE");
        ngx_str_set(&args[1], "0");
        ngx_str_set(&args[2], "-1");

        return ngx_http_registry_call(r, ngx_http_registry_upload_etags_done,
                                      4, &args[0], &up->etags, &args[1],
                                      &args[2], NULL);
    }

    if (up->sent < up->total) {
        return ngx_http_registry_upload_send(r, ctx);
    }

    if (!up->completed) {
        up->completed = 1;

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

        up->stored = 1;

        return ngx_http_registry_upload_s3(r, ctx,
                   ngx_http_registry_s3_op_complete(r, &op, &up->key,
                                                    &up->mpu, up->parts),
                   &op, ngx_http_registry_upload_s3_done);
    }

finish:

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

    if (up->stored) {
        args[12] = up->key;

    } else {
        ngx_str_set(&args[12], "");
    }

    return ngx_http_registry_run(r, ngx_http_registry_upload_finished,
                                 ngx_http_registry_upload_finish_lua, 9, args,
                                 16);
}


/*
 * The session becomes ours until we commit or end: see the top of the
 * file.  A PUT learns on the way whether the blob exists.
 */

static ngx_int_t
ngx_http_registry_upload_claim(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                      *p;
    ngx_str_t                    args[8];
    ngx_uint_t                   nkeys;
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

    args[0] = up->session;
    args[1] = up->etags;
    ngx_str_set(&args[2], "objects:pending");
    nkeys = 3;

    if (up->final) {
        args[nkeys++] = up->blob;
    }

    if (ngx_http_registry_keyf(r->pool, &args[nkeys], "%O", up->offset)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[nkeys + 2], "%d",
                                  NGX_HTTP_REGISTRY_CLAIM_TIME)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    args[nkeys + 1] = up->token;
    args[nkeys + 3] = up->key;

    claim->sent = ngx_current_msec;

    return ngx_http_registry_run(r, ngx_http_registry_upload_claimed,
                                 ngx_http_registry_upload_claim_lua, nkeys,
                                 args, nkeys + 4);
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
    up->pending = 1;
    up->claim_until = up->claim->sent + NGX_HTTP_REGISTRY_CLAIM_SAFE;

    up->renew.handler = ngx_http_registry_upload_tick;
    up->renew.data = up;
    up->renew.log = r->connection->log;
    up->renew.cancelable = 1;

    ngx_add_timer(&up->renew, NGX_HTTP_REGISTRY_CLAIM_TICK);

    /* parts committed since the session was loaded cannot be: same offset */
    up->ncommitted = (ngx_uint_t) reply->element[0]->integer;

    if (up->final) {
        up->checked = 1;
        up->exists = (reply->element[1]->integer != 0);
    }

    if (up->streaming) {
        up->streaming = 0;

        /* a blob that exists already is only read, never stored again */
        return up->exists
               ? ngx_http_registry_read_body(r, ctx,
                                             ngx_http_registry_upload_read)
               : ngx_http_registry_s3_stream_put(r, ctx, &up->key,
                                          ngx_http_registry_upload_streamed);
    }

    return ngx_http_registry_upload_drive(r, ctx);
}


/* the request ends without its commit: the session is free again */

static void
ngx_http_registry_upload_release(void *data)
{
    ngx_http_registry_upload_t *up = data;

    size_t                      lens[5];
    const char                 *argv[5];
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

    argv[0] = "EVAL";
    lens[0] = sizeof("EVAL") - 1;
    argv[1] = ngx_http_registry_upload_release_lua;
    lens[1] = sizeof(ngx_http_registry_upload_release_lua) - 1;
    argv[2] = "1";
    lens[2] = 1;
    argv[3] = (const char *) up->session.data;
    lens[3] = up->session.len;
    argv[4] = (const char *) up->token.data;
    lens[4] = up->token.len;

    /* hiredis copies the command at once; if Redis is away, the deadline */
    (void) ngx_http_registry_redis_call(NULL, NULL, 5, argv, lens);
}


/* the claim ended (committed, released): no more renewals */

static void
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

    size_t                      lens[6];
    u_char                      secs[NGX_INT_T_LEN];
    const char                 *argv[6];
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

    argv[0] = "EVAL";
    lens[0] = sizeof("EVAL") - 1;
    argv[1] = ngx_http_registry_upload_renew_lua;
    lens[1] = sizeof(ngx_http_registry_upload_renew_lua) - 1;
    argv[2] = "1";
    lens[2] = 1;
    argv[3] = (const char *) up->session.data;
    lens[3] = up->session.len;
    argv[4] = (const char *) up->token.data;
    lens[4] = up->token.len;
    argv[5] = (const char *) secs;
    lens[5] = ngx_sprintf(secs, "%d", NGX_HTTP_REGISTRY_CLAIM_TIME) - secs;

    claim->sent = ngx_current_msec;

    if (ngx_http_registry_redis_call(ngx_http_registry_upload_renewed, claim,
                                     6, argv, lens)
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


/* the next part of ours to S3, the multipart upload made first if need be */

static ngx_int_t
ngx_http_registry_upload_send(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                        len;
    ngx_uint_t                   number;
    ngx_chain_t                 *cl;
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    if (up->tail_len && !up->tail_loaded) {
        return ngx_http_registry_upload_load_tail(r, ctx);
    }

    if (up->mpu.len == 0) {
        if (!up->pending) {
            /* a monolithic push over 5 GiB: no claim recorded the key */
            return ngx_http_registry_upload_pend(r, ctx);
        }

        return ngx_http_registry_upload_s3(r, ctx,
                   ngx_http_registry_s3_op_create_multipart(r, &op, &up->key),
                   &op, ngx_http_registry_upload_mpu_done);
    }

    len = ngx_min(up->part_size, up->total - up->sent);

    cl = ngx_http_registry_upload_chain(r, up, up->sent, len);
    if (cl == NGX_CHAIN_ERROR) {
        return NGX_ERROR;
    }

    number = up->ncommitted + up->parts->nelts + 1;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry upload %V part %ui: %O bytes",
                   &up->id, number, len);

    return ngx_http_registry_upload_s3(r, ctx,
               ngx_http_registry_s3_op_upload_part(r, &op, &up->key, &up->mpu,
                                                   number, cl, len),
               &op, ngx_http_registry_upload_part_done);
}


static ngx_int_t
ngx_http_registry_upload_mpu_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    id;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->s3.status != NGX_HTTP_OK
        || ngx_http_registry_s3_xml_value(r->pool, &ctx->s3.body, "UploadId",
                                          &id)
           != NGX_OK
        || id.len == 0)
    {
        return ngx_http_registry_s3_failed(r, ctx);
    }

    /* recorded in the session with the first part's commit */

    up->mpu.len = id.len;
    up->mpu.data = ngx_pstrdup(r->pool, &id);
    if (up->mpu.data == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_registry_upload_send(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_part_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                         len;
    ngx_http_registry_upload_t   *up;
    ngx_http_registry_s3_part_t  *part;

    up = ctx->data;

    if (ctx->s3.status != NGX_HTTP_OK || ctx->s3.etag.len == 0) {
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

    return ngx_http_registry_upload_drive(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_load_tail(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    get;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    ngx_str_set(&get, "GET");

    return ngx_http_registry_call(r, ngx_http_registry_upload_tail_done, 2,
                                  &get, &up->tail_key, NULL);
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
    up->tail_loaded = 1;

    return ngx_http_registry_upload_drive(r, ctx);
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

    up->checked = 1;
    up->exists = (ctx->reply->integer != 0);

    return ngx_http_registry_upload_drive(r, ctx);
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

    return ngx_http_registry_upload_drive(r, ctx);
}


/* S3 answered PutObject, CompleteMultipartUpload or an abort */

static ngx_int_t
ngx_http_registry_upload_s3_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (up->aborting) {
        up->aborting = 0;

        /* gone already is as good */
        if (ctx->s3.status == NGX_HTTP_NO_CONTENT
            || ctx->s3.status == NGX_HTTP_NOT_FOUND)
        {
            return ngx_http_registry_upload_drive(r, ctx);
        }

        return ngx_http_registry_s3_failed(r, ctx);
    }

    /* CompleteMultipartUpload may fail with 200 and an error body */
    if (ctx->s3.status != NGX_HTTP_OK || ctx->s3.error_code.len) {
        return ngx_http_registry_s3_failed(r, ctx);
    }

    return ngx_http_registry_upload_drive(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_finished(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    /* the session is gone with the claim, or was not ours any more */
    ngx_http_registry_upload_unlock(up);

    switch (ctx->reply->integer) {

    case 1:
        return ngx_http_registry_upload_blob_created(r, ctx);

    case 0:
        if (!up->stored) {
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

        if (!up->stored) {
            return ngx_http_registry_upload_unknown(r);
        }

        return ngx_http_registry_upload_delete(r, ctx,
                   ngx_http_registry_upload_dropped);

    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: blob %V vanished while linked",
                      &up->claimed);
        return NGX_ERROR;
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
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;
    up->deleted = next;

    return ngx_http_registry_upload_s3(r, ctx,
               ngx_http_registry_s3_op_delete(r, &op, &up->key),
               &op, ngx_http_registry_upload_deleted);
}


static ngx_int_t
ngx_http_registry_upload_deleted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                       lens[3];
    const char                  *argv[3];
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->s3.status == NGX_HTTP_NO_CONTENT
        || ctx->s3.status == NGX_HTTP_NOT_FOUND)
    {
        argv[0] = "ZREM";
        lens[0] = sizeof("ZREM") - 1;
        argv[1] = "objects:pending";
        lens[1] = sizeof("objects:pending") - 1;
        argv[2] = (const char *) up->key.data;
        lens[2] = up->key.len;

        /* Redis away: the key stays pending, the collector finds none */
        (void) ngx_http_registry_redis_call(NULL, NULL, 3, argv, lens);

    } else {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "registry: s3 delete of %V answered %ui, the object "
                      "stays pending", &up->key, ctx->s3.status);
    }

    return up->deleted(r, ctx);
}


/* another request holds the session: not a range error, and not long */

static ngx_int_t
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


static ngx_int_t
ngx_http_registry_upload_dropped(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_upload_unknown(r);
}


static ngx_int_t
ngx_http_registry_upload_blob_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    off_t                        size;
    ngx_str_t                    location;
    ngx_http_registry_upload_t  *up;

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

    ngx_http_registry_event_blob(r, ctx, NGX_HTTP_REGISTRY_EVENT_PUSH, size);

    return ngx_http_registry_send(r, NGX_HTTP_CREATED, NULL, NULL, 0);
}


/*
 * DELETE of a session, or the end of one whose digest was wrong: whoever
 * holds it loses it, and its multipart upload goes.
 */

static ngx_int_t
ngx_http_registry_upload_cancel(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    if (up->mpu.len && !up->aborted) {
        up->aborted = 1;
        return ngx_http_registry_upload_s3(r, ctx,
                   ngx_http_registry_s3_op_abort(r, &op, &up->key, &up->mpu),
                   &op, ngx_http_registry_upload_forget);
    }

    if (up->monolithic && up->stored) {
        /* a streamed push stored the object before its digest was known */
        up->stored = 0;
        return ngx_http_registry_upload_delete(r, ctx,
                   ngx_http_registry_upload_forget);
    }

    return ngx_http_registry_upload_forget(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_forget(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    del;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (up->monolithic) {
        return ngx_http_registry_upload_forgotten(r, ctx);
    }

    ngx_str_set(&del, "DEL");

    return ngx_http_registry_call(r, ngx_http_registry_upload_forgotten, 4,
                                  &del, &up->session, &up->etags,
                                  &up->tail_key, NULL);
}


static ngx_int_t
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

    return ngx_http_registry_send(r, status, NULL, NULL, 0);
}


static ngx_int_t
ngx_http_registry_upload_range_error(ngx_http_request_t *r,
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
        || ngx_http_registry_add_header(r, "Range", &range) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_error(r, NGX_HTTP_RANGE_NOT_SATISFIABLE,
                                   "BLOB_UPLOAD_INVALID",
                                   "chunk does not start where the upload "
                                   "ends");
}


static ngx_int_t
ngx_http_registry_upload_unknown(ngx_http_request_t *r)
{
    return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND,
                                   "BLOB_UPLOAD_UNKNOWN",
                                   "blob upload unknown to registry");
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


static ngx_int_t
ngx_http_registry_upload_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_int_t built,
    ngx_http_registry_s3_op_t *op, ngx_http_registry_step_pt next)
{
    if (built != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->next = next;

    if (ngx_http_registry_s3_request(r, ctx, op) != NGX_OK) {
        ctx->next = NULL;
        return NGX_ERROR;
    }

    return NGX_DONE;
}


/* the hash state as kept in Redis: a format version, then the context */

static ngx_int_t
ngx_http_registry_upload_sha(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *out)
{
    out->len = 1 + sizeof(SHA256_CTX);
    out->data = ngx_pnalloc(r->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->data[0] = NGX_HTTP_REGISTRY_SHA_VERSION;
    ngx_memcpy(out->data + 1, &ctx->sha, sizeof(SHA256_CTX));

    return NGX_OK;
}
