
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
 */


#include "ngx_http_registry.h"

#include <openssl/rand.h>


#define NGX_HTTP_REGISTRY_ID_LEN       32
#define NGX_HTTP_REGISTRY_SHA_VERSION  '1'
#define NGX_HTTP_REGISTRY_MAX_PART     ((off_t) 5 * 1024 * 1024 * 1024)


typedef struct {
    ngx_str_t                   id;
    ngx_str_t                   key;          /* the S3 object */
    ngx_str_t                   session;      /* upload:ID */
    ngx_str_t                   etags;        /* upload:ID:etags */
    ngx_str_t                   tail_key;     /* upload:ID:tail */
    ngx_str_t                   mpu;          /* multipart id, or empty */
    ngx_str_t                   created_mpu;  /* the one we created */
    ngx_str_t                   claimed;      /* the client's digest */
    ngx_str_t                   tail;         /* tail bytes, once loaded */
    ngx_str_t                   etag;         /* of the part just sent */
    ngx_array_t                *parts;        /* for the completion */

    off_t                       offset;       /* committed before us */
    off_t                       tail_len;
    off_t                       chunk_len;
    off_t                       range_start;
    off_t                       range_end;
    ngx_int_t                   partno;

    unsigned                    has_range:1;
    unsigned                    final:1;       /* PUT or monolithic */
    unsigned                    monolithic:1;  /* no session in Redis */
    unsigned                    checked:1;     /* existence known */
    unsigned                    exists:1;
    unsigned                    tail_loaded:1;
    unsigned                    part_sent:1;
    unsigned                    completed:1;
    unsigned                    stored:1;      /* object written */
    unsigned                    aborted:1;
    unsigned                    aborting:1;    /* s3_done awaits an abort */
} ngx_http_registry_upload_t;


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
static ngx_int_t ngx_http_registry_upload_drive(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_patch(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_finish(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_part(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_load_tail(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_chain_t *ngx_http_registry_upload_chain(ngx_http_request_t *r,
    ngx_http_registry_upload_t *up);
static ngx_int_t ngx_http_registry_upload_exists_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_tail_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_mpu_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_reserved(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_send_part(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_part_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_etags_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_s3_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_committed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_finished(ngx_http_request_t *r,
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
static ngx_int_t ngx_http_registry_upload_blob_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_upload_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_int_t built,
    ngx_http_registry_s3_op_t *op, ngx_http_registry_step_pt next);
static ngx_int_t ngx_http_registry_upload_eval(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, const char *script, ngx_uint_t nkeys,
    ngx_str_t *args, ngx_uint_t nargs, ngx_http_registry_step_pt next);
static ngx_int_t ngx_http_registry_upload_sha(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *out);


/* KEYS: upload:ID; ARGV: R, sha, expires */
static const char  ngx_http_registry_upload_create_lua[] =
    "redis.call('HSET', KEYS[1], 'repo', ARGV[1], 'offset', '0', "
    "           'sha', ARGV[2], 'partno', '0') "
    "redis.call('EXPIRE', KEYS[1], ARGV[3]) "
    "return 1";

/* KEYS: upload:ID, upload:ID:tail; ARGV: R */
static const char  ngx_http_registry_upload_load_lua[] =
    "local u = redis.call('HMGET', KEYS[1], 'repo', 'offset', 'sha', "
    "                     'mpu', 'partno') "
    "if not u[1] or u[1] ~= ARGV[1] then return false end "
    "return {u[2], u[3], u[4] or '', u[5] or '0', "
    "        tostring(redis.call('STRLEN', KEYS[2]))}";

/* KEYS: upload:ID, tail; ARGV: offset, new offset, sha, bytes, expires */
static const char  ngx_http_registry_upload_append_lua[] =
    "if redis.call('HGET', KEYS[1], 'offset') ~= ARGV[1] then return 0 end "
    "redis.call('APPEND', KEYS[2], ARGV[4]) "
    "redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'sha', ARGV[3]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[5]) "
    "redis.call('EXPIRE', KEYS[2], ARGV[5]) "
    "return 1";

/* KEYS: upload:ID; ARGV: multipart id we created, or "" */
static const char  ngx_http_registry_upload_reserve_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end "
    "if ARGV[1] ~= '' then redis.call('HSETNX', KEYS[1], 'mpu', ARGV[1]) end "
    "local n = redis.call('HINCRBY', KEYS[1], 'partno', 1) "
    "return {tostring(n), redis.call('HGET', KEYS[1], 'mpu') or ''}";

/* KEYS: upload:ID, etags, tail; ARGV: offset, new offset, sha, part, exp */
static const char  ngx_http_registry_upload_part_lua[] =
    "if redis.call('HGET', KEYS[1], 'offset') ~= ARGV[1] then return 0 end "
    "redis.call('RPUSH', KEYS[2], ARGV[4]) "
    "redis.call('DEL', KEYS[3]) "
    "redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'sha', ARGV[3]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[5]) "
    "redis.call('EXPIRE', KEYS[2], ARGV[5]) "
    "return 1";

/*
 * The blob becomes visible.  KEYS: blob:D, repo:R:blobs, blob:D:links,
 * blobs, repos, upload:ID, etags, tail; ARGV: D, R, size, S3 key or ""
 * (nothing stored: the blob existed), now.  Returns 1 when our object
 * became the blob's, 0 when the blob existed (ours is a duplicate).
 */
static const char  ngx_http_registry_upload_finish_lua[] =
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

        return ngx_http_registry_upload_eval(r, ctx,
                                            ngx_http_registry_upload_mount_lua,
                                            5, args, 7,
                                            ngx_http_registry_upload_mounted);
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
    up->claimed = ctx->digest;

    SHA256_Init(&ctx->sha);
    ctx->hash_body = 1;

    return ngx_http_registry_read_body(r, ctx, ngx_http_registry_upload_read);
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

    return ngx_http_registry_upload_eval(r, ctx,
                                         ngx_http_registry_upload_create_lua,
                                         1, args, 4,
                                         ngx_http_registry_upload_created);
}


static ngx_int_t
ngx_http_registry_upload_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    return ngx_http_registry_upload_status(r, ctx, NGX_HTTP_ACCEPTED);
}


static ngx_int_t
ngx_http_registry_upload_mounted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
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
    ngx_str_t                    args[3];
    ngx_http_registry_upload_t  *up;

    if (ctx->reference.len != NGX_HTTP_REGISTRY_ID_LEN) {
        goto unknown;
    }

    for (i = 0; i < ctx->reference.len; i++) {
        if (!((ctx->reference.data[i] >= '0' && ctx->reference.data[i] <= '9')
              || (ctx->reference.data[i] >= 'a'
                  && ctx->reference.data[i] <= 'f')))
        {
            goto unknown;
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
    up->claimed = ctx->digest;

    args[0] = up->session;
    args[1] = up->tail_key;
    args[2] = ctx->repo;

    return ngx_http_registry_upload_eval(r, ctx,
                                         ngx_http_registry_upload_load_lua,
                                         2, args, 3,
                                         ngx_http_registry_upload_loaded);

unknown:

    return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND,
                                   "BLOB_UPLOAD_UNKNOWN",
                                   "blob upload unknown to registry");
}


static ngx_int_t
ngx_http_registry_upload_loaded(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_str_t                    offset, sha, mpu, partno, tail;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    if (ctx->reply->type != REDIS_REPLY_ARRAY) {
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND,
                                       "BLOB_UPLOAD_UNKNOWN",
                                       "blob upload unknown to registry");
    }

    if (ngx_http_registry_reply_str(ctx->reply, 0, &offset) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 1, &sha) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 2, &mpu) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 3, &partno) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 4, &tail) != NGX_OK)
    {
        return NGX_ERROR;
    }

    up->offset = ngx_atoof(offset.data, offset.len);
    up->tail_len = ngx_atoof(tail.data, tail.len);
    up->partno = ngx_atoi(partno.data, partno.len);

    if (up->offset == NGX_ERROR || up->tail_len == NGX_ERROR
        || up->partno == NGX_ERROR
        || sha.len != 1 + sizeof(SHA256_CTX)
        || sha.data[0] != NGX_HTTP_REGISTRY_SHA_VERSION)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: upload session %V is damaged", &up->id);
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND,
                                       "BLOB_UPLOAD_UNKNOWN",
                                       "blob upload unknown to registry");
    }

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

    rc = ngx_http_registry_upload_content_range(r, up);
    if (rc != NGX_OK) {
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    ctx->hash_body = 1;

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


static ngx_int_t
ngx_http_registry_upload_read(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                       hash[SHA256_DIGEST_LENGTH];
    u_char                       hex[7 + 2 * SHA256_DIGEST_LENGTH];
    SHA256_CTX                   final;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;
    up->chunk_len = ctx->body_bytes;

    if (up->has_range
        && up->chunk_len != up->range_end - up->range_start + 1)
    {
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    if (up->chunk_len > NGX_HTTP_REGISTRY_MAX_PART) {
        return ngx_http_registry_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "SIZE_INVALID",
                                       "a chunk may hold at most 5 GiB");
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
            up->checked = 1;
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
    ngx_str_t                       a[8];
    ngx_http_registry_upload_t     *up;
    ngx_http_registry_main_conf_t  *mcf;

    up = ctx->data;
    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (up->chunk_len == 0) {
        return ngx_http_registry_upload_status(r, ctx, NGX_HTTP_ACCEPTED);
    }

    if (up->tail_len + up->chunk_len >= NGX_HTTP_REGISTRY_S3_MIN_PART
        && !up->part_sent)
    {
        return ngx_http_registry_upload_part(r, ctx);
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

    if (!up->part_sent) {

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

        return ngx_http_registry_upload_eval(r, ctx,
                                        ngx_http_registry_upload_append_lua,
                                        2, a, 7,
                                        ngx_http_registry_upload_committed);
    }

    a[1] = up->etags;
    a[2] = up->tail_key;

    if (ngx_http_registry_keyf(r->pool, &a[6], "%i %V", up->partno,
                               &up->etag)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_upload_eval(r, ctx,
                                         ngx_http_registry_upload_part_lua,
                                         3, a, 8,
                                         ngx_http_registry_upload_committed);
}


static ngx_int_t
ngx_http_registry_upload_committed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    if (ctx->reply->integer == 0) {
        /* another request moved the session on meanwhile */
        return ngx_http_registry_upload_range_error(r, ctx);
    }

    up->offset += up->chunk_len;

    return ngx_http_registry_upload_status(r, ctx, NGX_HTTP_ACCEPTED);
}


/* the last request of an upload: the blob is complete and checked */

static ngx_int_t
ngx_http_registry_upload_finish(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    args[13];
    ngx_chain_t                 *cl;
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    if (!up->checked) {
        /* a blob that exists already is not stored twice */
        if (ngx_http_registry_keyf(r->pool, &args[0], "blob:%V",
                                   &up->claimed)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ngx_str_set(&args[1], "EXISTS");

        return ngx_http_registry_call(r, ngx_http_registry_upload_exists_done,
                                      2, &args[1], &args[0], NULL);
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

        ngx_str_null(&up->key);
        goto finish;
    }

    if (up->mpu.len) {
        if (up->tail_len + up->chunk_len > 0 && !up->part_sent) {
            return ngx_http_registry_upload_part(r, ctx);
        }

        if (up->parts == NULL) {
            ngx_str_set(&args[0], "LRANGE");
            ngx_str_set(&args[1], "0");
            ngx_str_set(&args[2], "-1");

            return ngx_http_registry_call(r,
                                          ngx_http_registry_upload_etags_done,
                                          4, &args[0], &up->etags, &args[1],
                                          &args[2], NULL);
        }

        if (up->parts->nelts) {
            if (!up->completed) {
                up->completed = 1;

                return ngx_http_registry_upload_s3(r, ctx,
                           ngx_http_registry_s3_op_complete(r, &op, &up->key,
                                                            &up->mpu,
                                                            up->parts),
                           &op, ngx_http_registry_upload_s3_done);
            }

            goto finish;
        }

        /*
         * A multipart upload without a part (made for a part that never
         * got in) and no byte left: an empty blob, which S3 cannot make
         * of a multipart upload.  It goes; the object is put instead.
         */

        if (!up->aborted) {
            up->aborted = 1;
            up->aborting = 1;
            return ngx_http_registry_upload_s3(r, ctx,
                       ngx_http_registry_s3_op_abort(r, &op, &up->key,
                                                     &up->mpu),
                       &op, ngx_http_registry_upload_s3_done);
        }

        ngx_str_null(&up->mpu);
    }

    if (!up->stored) {
        if (up->tail_len && !up->tail_loaded) {
            goto load_tail;
        }

        cl = ngx_http_registry_upload_chain(r, up);
        if (cl == NGX_CHAIN_ERROR) {
            return NGX_ERROR;
        }

        up->stored = 1;

        return ngx_http_registry_upload_s3(r, ctx,
                   ngx_http_registry_s3_op_put(r, &op, &up->key, cl,
                                               up->tail_len + up->chunk_len,
                                               NULL),
                   &op, ngx_http_registry_upload_s3_done);
    }

finish:

    args[0].len = 0;

    if (ngx_http_registry_keyf(r->pool, &args[0], "blob:%V", &up->claimed)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[1], "repo:%V:blobs",
                                  &ctx->repo) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[2], "blob:%V:links",
                                  &up->claimed) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[10], "%O",
                                  up->offset + up->chunk_len) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[12], "%T", ngx_time())
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&args[3], "blobs");
    ngx_str_set(&args[4], "repos");
    args[5] = up->session;
    args[6] = up->etags;
    args[7] = up->tail_key;
    args[8] = up->claimed;
    args[9] = ctx->repo;
    args[11] = up->key;

    return ngx_http_registry_upload_eval(r, ctx,
                                         ngx_http_registry_upload_finish_lua,
                                         8, args, 13,
                                         ngx_http_registry_upload_finished);

load_tail:

    return ngx_http_registry_upload_load_tail(r, ctx);
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
ngx_http_registry_upload_exists_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    up->checked = 1;
    up->exists = (ctx->reply->integer != 0);

    return ngx_http_registry_upload_drive(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_tail_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    tail;
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    if (ngx_http_registry_reply_str(ctx->reply, (ngx_uint_t) -1, &tail)
        != NGX_OK
        || (off_t) tail.len != up->tail_len)
    {
        /* another request moved the session on meanwhile */
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


/* one part: the tail and this chunk, to the session's multipart upload */

static ngx_int_t
ngx_http_registry_upload_part(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    args[2];
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    if (up->tail_len && !up->tail_loaded) {
        return ngx_http_registry_upload_load_tail(r, ctx);
    }

    if (up->mpu.len == 0 && up->created_mpu.len == 0) {
        return ngx_http_registry_upload_s3(r, ctx,
                   ngx_http_registry_s3_op_create_multipart(r, &op, &up->key),
                   &op, ngx_http_registry_upload_mpu_done);
    }

    /* a part number of our own, whatever runs beside us */

    args[0] = up->session;
    args[1] = up->created_mpu;

    return ngx_http_registry_upload_eval(r, ctx,
                                         ngx_http_registry_upload_reserve_lua,
                                         1, args, 2,
                                         ngx_http_registry_upload_reserved);
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
           != NGX_OK)
    {
        return ngx_http_registry_s3_failed(r, ctx);
    }

    up->created_mpu.len = id.len;
    up->created_mpu.data = ngx_pstrdup(r->pool, &id);
    if (up->created_mpu.data == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_registry_upload_part(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_reserved(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    partno, mpu;
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    if (ctx->reply->type != REDIS_REPLY_ARRAY) {
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND,
                                       "BLOB_UPLOAD_UNKNOWN",
                                       "blob upload unknown to registry");
    }

    if (ngx_http_registry_reply_str(ctx->reply, 0, &partno) != NGX_OK
        || ngx_http_registry_reply_str(ctx->reply, 1, &mpu) != NGX_OK
        || mpu.len == 0)
    {
        return NGX_ERROR;
    }

    up->partno = ngx_atoi(partno.data, partno.len);

    if (up->partno == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (up->partno > NGX_HTTP_REGISTRY_S3_MAX_PARTS) {
        return ngx_http_registry_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "SIZE_INVALID",
                                       "too many parts: send larger chunks");
    }

    up->mpu.len = mpu.len;
    up->mpu.data = ngx_pstrdup(r->pool, &mpu);
    if (up->mpu.data == NULL) {
        return NGX_ERROR;
    }

    if (up->created_mpu.len
        && (up->created_mpu.len != mpu.len
            || ngx_strncmp(up->created_mpu.data, mpu.data, mpu.len) != 0))
    {
        /*
         * A request beside us created the session's multipart upload
         * first: ours would hold nothing and cost storage until
         * aborted.  Whatever S3 answers, the part goes on.
         */
        return ngx_http_registry_upload_s3(r, ctx,
                   ngx_http_registry_s3_op_abort(r, &op, &up->key,
                                                 &up->created_mpu),
                   &op, ngx_http_registry_upload_send_part);
    }

    return ngx_http_registry_upload_send_part(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_send_part(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_chain_t                 *cl;
    ngx_http_registry_upload_t  *up;
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    cl = ngx_http_registry_upload_chain(r, up);
    if (cl == NGX_CHAIN_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_registry_upload_s3(r, ctx,
               ngx_http_registry_s3_op_upload_part(r, &op, &up->key, &up->mpu,
                                             up->partno, cl,
                                             up->tail_len + up->chunk_len),
               &op, ngx_http_registry_upload_part_done);
}


static ngx_int_t
ngx_http_registry_upload_part_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_upload_t  *up;

    up = ctx->data;

    if (ctx->s3.status != NGX_HTTP_OK || ctx->s3.etag.len == 0) {
        return ngx_http_registry_s3_failed(r, ctx);
    }

    up->etag.len = ctx->s3.etag.len;
    up->etag.data = ngx_pstrdup(r->pool, &ctx->s3.etag);
    if (up->etag.data == NULL) {
        return NGX_ERROR;
    }

    up->part_sent = 1;

    return ngx_http_registry_upload_drive(r, ctx);
}


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
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    up->parts = ngx_array_create(r->pool, ctx->reply->elements + 1,
                                 sizeof(ngx_http_registry_s3_part_t));
    if (up->parts == NULL) {
        return NGX_ERROR;
    }

    /* each entry is "N ETAG" */

    for (i = 0; i < ctx->reply->elements; i++) {
        e = ctx->reply->element[i];

        sp = (e->type == REDIS_REPLY_STRING)
             ? ngx_strlchr((u_char *) e->str, (u_char *) e->str + e->len, ' ')
             : NULL;

        if (sp == NULL) {
            return NGX_ERROR;
        }

        part = ngx_array_push(up->parts);
        if (part == NULL) {
            return NGX_ERROR;
        }

        part->number = ngx_atoi((u_char *) e->str, sp - (u_char *) e->str);
        part->etag.len = (u_char *) e->str + e->len - sp - 1;
        part->etag.data = ngx_pnalloc(r->pool, part->etag.len);

        if (part->number == (ngx_uint_t) NGX_ERROR
            || part->etag.data == NULL)
        {
            return NGX_ERROR;
        }

        ngx_memcpy(part->etag.data, sp + 1, part->etag.len);
    }

    if (up->part_sent) {
        part = ngx_array_push(up->parts);
        if (part == NULL) {
            return NGX_ERROR;
        }

        part->number = up->partno;
        part->etag = up->etag;
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
    ngx_http_registry_s3_op_t    op;

    up = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    if (ctx->reply->integer == 0 && up->key.len) {
        /*
         * The blob was committed by another upload while we stored ours:
         * the bytes are the same (both hash to the digest); ours go.
         */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "registry: blob %V stored twice, dropping %V",
                      &up->claimed, &up->key);

        return ngx_http_registry_upload_s3(r, ctx,
                   ngx_http_registry_s3_op_delete(r, &op, &up->key),
                   &op, ngx_http_registry_upload_blob_created);
    }

    if (ctx->reply->integer < 0) {
        return NGX_ERROR;
    }

    return ngx_http_registry_upload_blob_created(r, ctx);
}


static ngx_int_t
ngx_http_registry_upload_blob_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t  location;

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

    return ngx_http_registry_send(r, NGX_HTTP_CREATED, NULL, NULL, 0);
}


/* DELETE of a session, or the end of one whose digest was wrong */

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
        return ngx_http_registry_unavailable(r, "redis: no answer");
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


/* the bytes of a part or object: the tail, then the client's body */

static ngx_chain_t *
ngx_http_registry_upload_chain(ngx_http_request_t *r,
    ngx_http_registry_upload_t *up)
{
    ngx_buf_t    *b;
    ngx_chain_t  *head, **ll, *cl, *in;

    head = NULL;
    ll = &head;

    if (up->tail.len) {
        cl = ngx_http_registry_memory_chain(r->pool, &up->tail);
        if (cl == NULL) {
            return NGX_CHAIN_ERROR;
        }

        *ll = cl;
        ll = &cl->next;
    }

    for (in = r->request_body ? r->request_body->bufs : NULL;
         in;
         in = in->next)
    {
        if (ngx_buf_size(in->buf) == 0) {
            continue;
        }

        /* a shadow, so the S3 send leaves the client's buffers as they are */
        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            return NGX_CHAIN_ERROR;
        }

        *b = *in->buf;
        b->last_buf = 0;
        b->last_in_chain = 0;

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
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


static ngx_int_t
ngx_http_registry_upload_eval(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, const char *script, ngx_uint_t nkeys,
    ngx_str_t *args, ngx_uint_t nargs, ngx_http_registry_step_pt next)
{
    ctx->next = next;

    if (ngx_http_registry_eval(r, script, nkeys, args, nargs) != NGX_OK) {
        ctx->next = NULL;
        return ngx_http_registry_unavailable(r, "redis: not connected");
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
