
/*
 * Garbage collection (see gc.c): what a batch removes from S3.  Its
 * multipart uploads are aborted one by one, its objects deleted in one
 * DeleteObjects, and then, what S3 no longer holds is forgotten in Redis
 * (gc_forget.lua); anything S3 failed to remove stays marked there for
 * the next collection.  And the listing of multipart uploads under
 * data/ that gc_mpus.lua sorts out.
 */


#include "ngx_http_registry.h"

#include <openssl/evp.h>


#define NGX_HTTP_REGISTRY_GC_LIST  16   /* multipart uploads a page: the
                                           answer fits s3_request.c's 8k */


static ngx_int_t ngx_http_registry_gc_aborted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_delete(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_deleted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_forget(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_marked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_page(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_listed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static time_t ngx_http_registry_gc_iso_time(ngx_str_t *s);
static ngx_int_t ngx_http_registry_gc_s3(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_s3_op_t *op,
    ngx_http_registry_step_pt next);


/* a batch: its multipart uploads are aborted, one by one */

ngx_int_t
ngx_http_registry_gc_sweep(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_gc_t       *gc;
    ngx_http_registry_s3_op_t     op;
    ngx_http_registry_gc_item_t  *item;

    gc = ctx->data;
    item = gc->items->elts;

    while (!gc->dry && !gc->s3_down && gc->next < gc->items->nelts) {

        if (item[gc->next].mpu.len == 0) {
            gc->next++;
            continue;
        }

        if (ngx_http_registry_s3_op_abort(r, &op, &item[gc->next].mpu_key,
                                          &item[gc->next].mpu)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_registry_gc_s3(r, ctx, &op,
                                       ngx_http_registry_gc_aborted);
    }

    return ngx_http_registry_gc_delete(r, ctx);
}


static ngx_int_t
ngx_http_registry_gc_aborted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_gc_t       *gc;
    ngx_http_registry_gc_item_t  *item;

    gc = ctx->data;
    item = gc->items->elts;

    /* gone already is as good */

    if (ctx->s3.status != NGX_HTTP_NO_CONTENT
        && ctx->s3.status != NGX_HTTP_OK
        && ctx->s3.status != NGX_HTTP_NOT_FOUND)
    {
        item[gc->next].failed = 1;

        if (ctx->s3.status == 0
            || ctx->s3.status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
        {
            gc->s3_down = 1;
        }
    }

    gc->next++;

    return ngx_http_registry_gc_sweep(r, ctx);
}


/*
 * The objects of the batch go in one DeleteObjects (at most 1000 keys:
 * a batch is smaller), quiet: S3 lists only the keys it could not
 * delete.  Signed whole, with its Content-MD5 (AWS wants one).
 */

static ngx_int_t
ngx_http_registry_gc_delete(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                       *p, c, md5[16], sha[32];
    size_t                        len;
    ngx_buf_t                    *b;
    ngx_str_t                     raw, *k;
    ngx_uint_t                    i, j, n;
    ngx_chain_t                  *cl;
    ngx_http_registry_gc_t       *gc;
    ngx_http_registry_s3_op_t     op;
    ngx_http_registry_gc_item_t  *item;

    gc = ctx->data;
    item = gc->items->elts;

    len = sizeof("<Delete><Quiet>true</Quiet></Delete>") - 1;
    n = 0;

    for (i = 0; i < gc->items->nelts; i++) {
        k = &item[i].object;

        if (k->len == 0 || item[i].failed) {
            continue;
        }

        /* our keys need no XML escaping: anything else is left alone */

        for (j = 0; j < k->len; j++) {
            c = k->data[j];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '/' || c == '_'
                  || c == '.' || c == '-'))
            {
                break;
            }
        }

        if (j < k->len) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: gc leaves the object \"%V\": not a key "
                          "of the registry's", k);
            item[i].failed = 1;
            continue;
        }

        len += sizeof("<Object><Key></Key></Object>") - 1 + k->len;
        n++;
    }

    if (n == 0 || gc->dry || gc->s3_down) {
        return ngx_http_registry_gc_forget(r, ctx);
    }

    b = ngx_create_temp_buf(r->pool, len);
    cl = ngx_alloc_chain_link(r->pool);
    if (b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(b->last, "<Delete><Quiet>true</Quiet>",
                   sizeof("<Delete><Quiet>true</Quiet>") - 1);

    for (i = 0; i < gc->items->nelts; i++) {
        if (item[i].object.len && !item[i].failed) {
            p = ngx_sprintf(p, "<Object><Key>%V</Key></Object>",
                            &item[i].object);
        }
    }

    p = ngx_cpymem(p, "</Delete>", sizeof("</Delete>") - 1);

    b->last = p;
    b->last_buf = 1;
    cl->buf = b;
    cl->next = NULL;

    ngx_memzero(&op, sizeof(ngx_http_registry_s3_op_t));

    op.content_md5.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(16));
    op.payload_hash.data = ngx_pnalloc(r->pool, 2 * sizeof(sha));

    if (op.content_md5.data == NULL || op.payload_hash.data == NULL
        || EVP_Digest(b->pos, len, md5, NULL, EVP_md5(), NULL) != 1
        || EVP_Digest(b->pos, len, sha, NULL, EVP_sha256(), NULL) != 1)
    {
        return NGX_ERROR;
    }

    raw.data = md5;
    raw.len = sizeof(md5);
    ngx_encode_base64(&op.content_md5, &raw);

    op.payload_hash.len = ngx_hex_dump(op.payload_hash.data, sha,
                                       sizeof(sha))
                          - op.payload_hash.data;

    ngx_str_set(&op.method, "POST");
    ngx_str_set(&op.query, "delete=");
    op.bucket = 1;
    op.body = cl;
    op.body_len = len;

    return ngx_http_registry_gc_s3(r, ctx, &op,
                                   ngx_http_registry_gc_deleted);
}


static ngx_int_t
ngx_http_registry_gc_deleted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                       *p, *last, *end;
    ngx_str_t                    *body, error, key;
    ngx_uint_t                    i, whole;
    ngx_http_registry_gc_t       *gc;
    ngx_http_registry_gc_item_t  *item;

    gc = ctx->data;
    item = gc->items->elts;
    body = &ctx->s3.body;

    whole = (ctx->s3.status == NGX_HTTP_OK && ctx->s3.error_code.len == 0
             && body->len
             && ngx_strlcasestrn(body->data, body->data + body->len,
                                 (u_char *) "</DeleteResult>",
                                 sizeof("</DeleteResult>") - 2)
                != NULL);

    if (!whole) {
        /* the keys stay marked in objects:pending: the next collection */

        if (ctx->s3.status == 0
            || ctx->s3.status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
        {
            gc->s3_down = 1;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: gc: s3 DeleteObjects answered %ui, "
                      "retried by the next collection", ctx->s3.status);

        for (i = 0; i < gc->items->nelts; i++) {
            if (item[i].object.len) {
                item[i].failed = 1;
            }
        }

        return ngx_http_registry_gc_forget(r, ctx);
    }

    /* each <Error> names a key that is still there */

    p = body->data;
    last = body->data + body->len;

    for ( ;; ) {
        p = ngx_strlcasestrn(p, last, (u_char *) "<Error>",
                             sizeof("<Error>") - 2);
        if (p == NULL) {
            break;
        }

        end = ngx_strlcasestrn(p, last, (u_char *) "</Error>",
                               sizeof("</Error>") - 2);
        if (end == NULL) {
            break;
        }

        error.data = p;
        error.len = end - p;
        p = end;

        if (ngx_http_registry_s3_xml_value(r->pool, &error, "Key", &key)
            != NGX_OK)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: gc: s3 did not delete \"%V\", retried by "
                      "the next collection", &key);

        for (i = 0; i < gc->items->nelts; i++) {
            if (item[i].object.len == key.len
                && ngx_strncmp(item[i].object.data, key.data, key.len) == 0)
            {
                item[i].failed = 1;
            }
        }
    }

    return ngx_http_registry_gc_forget(r, ctx);
}


/* what S3 no longer holds leaves Redis (gc_forget.lua) */

static ngx_int_t
ngx_http_registry_gc_forget(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                    *args;
    ngx_uint_t                    i, n, ids;
    ngx_http_registry_gc_t       *gc;
    ngx_http_registry_gc_item_t  *item;

    gc = ctx->data;
    item = gc->items->elts;

    if (gc->dry) {
        ctx->reply = NULL;
        return ngx_http_registry_gc_counted(r, ctx);
    }

    args = ngx_palloc(r->pool, (2 + 2 * gc->items->nelts) * sizeof(ngx_str_t));
    if (args == NULL) {
        return NGX_ERROR;
    }

    args[0] = gc->token;
    n = 2;

    for (i = 0; i < gc->items->nelts; i++) {
        if (item[i].phase == NGX_HTTP_REGISTRY_GC_UPLOADS
            && !item[i].failed && !gc->s3_down)
        {
            args[n++] = item[i].name;
        }
    }

    ids = n - 2;

    for (i = 0; i < gc->items->nelts; i++) {
        if (item[i].object.len && !item[i].failed && !gc->s3_down) {
            args[n++] = item[i].object;
        }
    }

    if (n == 2) {
        ctx->reply = NULL;
        return ngx_http_registry_gc_counted(r, ctx);
    }

    if (ngx_http_registry_keyf(r->pool, &args[1], "%ui", ids) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_registry_run(r, ngx_http_registry_gc_counted,
                                 "gc_forget", 0, args, n);
}


/*
 * The multipart uploads S3 lists under data/, a page at a time: from
 * where the last collection stopped (gc:mpus), for a dry run from the
 * start.
 */

ngx_int_t
ngx_http_registry_gc_list(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                args[4];
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;

    if (gc->pages || gc->dry) {
        return ngx_http_registry_gc_page(r, ctx);
    }

    ngx_str_set(&args[0], "HMGET");
    ngx_str_set(&args[1], "gc:mpus");
    ngx_str_set(&args[2], "key");
    ngx_str_set(&args[3], "id");

    return ngx_http_registry_call(r, ngx_http_registry_gc_marked, 4,
                                  &args[0], &args[1], &args[2], &args[3]);
}


static ngx_int_t
ngx_http_registry_gc_marked(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_uint_t               i;
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;

    if (ctx->reply == NULL || ctx->reply->type != REDIS_REPLY_ARRAY) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    for (i = 0; i < 2; i++) {
        if (ngx_http_registry_gc_copy(r->pool, ctx->reply, i, &gc->marker[i])
            != NGX_OK)
        {
            ngx_str_null(&gc->marker[i]);
        }
    }

    return ngx_http_registry_gc_page(r, ctx);
}


/* a page of ListMultipartUploads under data/ */

static ngx_int_t
ngx_http_registry_gc_page(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                     *p;
    size_t                      len;
    ngx_http_registry_gc_t     *gc;
    ngx_http_registry_s3_op_t   op;

    gc = ctx->data;

    len = sizeof("key-marker=&max-uploads=16&prefix=data%2F"
                 "&upload-id-marker=&uploads=") - 1
          + ngx_http_registry_sigv4_escape(NULL, gc->marker[0].data,
                                           gc->marker[0].len)
          + ngx_http_registry_sigv4_escape(NULL, gc->marker[1].data,
                                           gc->marker[1].len);

    ngx_memzero(&op, sizeof(ngx_http_registry_s3_op_t));

    op.query.data = ngx_pnalloc(r->pool, len);
    if (op.query.data == NULL) {
        return NGX_ERROR;
    }

    /* canonical: sorted, escaped */

    p = op.query.data;

    if (gc->marker[0].len) {
        p = ngx_cpymem(p, "key-marker=", sizeof("key-marker=") - 1);
        p += ngx_http_registry_sigv4_escape(p, gc->marker[0].data,
                                            gc->marker[0].len);
        *p++ = '&';
    }

    p = ngx_sprintf(p, "max-uploads=%d&prefix=data%%2F&",
                    NGX_HTTP_REGISTRY_GC_LIST);

    if (gc->marker[0].len) {
        p = ngx_cpymem(p, "upload-id-marker=",
                       sizeof("upload-id-marker=") - 1);
        p += ngx_http_registry_sigv4_escape(p, gc->marker[1].data,
                                            gc->marker[1].len);
        *p++ = '&';
    }

    p = ngx_cpymem(p, "uploads=", sizeof("uploads=") - 1);
    op.query.len = p - op.query.data;

    ngx_str_set(&op.method, "GET");
    ngx_str_set(&op.payload_hash, "e3b0c44298fc1c149afbf4c8996fb924"
                                  "27ae41e4649b934ca495991b7852b855");
    op.bucket = 1;

    gc->pages++;

    return ngx_http_registry_gc_s3(r, ctx, &op, ngx_http_registry_gc_listed);
}


/* the page's uploads go to gc_mpus.lua, which says which to abort */

static ngx_int_t
ngx_http_registry_gc_listed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                  *p, *last, *end;
    time_t                   t;
    ngx_str_t               *body, upload, v, *args;
    ngx_uint_t               n, max;
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;
    body = &ctx->s3.body;

    if (ctx->s3.status != NGX_HTTP_OK || body->len == 0
        || ngx_strlcasestrn(body->data, body->data + body->len,
                            (u_char *) "</ListMultipartUploadsResult>",
                            sizeof("</ListMultipartUploadsResult>") - 2)
           == NULL)
    {
        if (ctx->s3.status == 0
            || ctx->s3.status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
        {
            gc->s3_down = 1;
            gc->phase = NGX_HTTP_REGISTRY_GC_DONE;

        } else {
            /* not an answer to read (cut at the bound of s3_request.c) */
            gc->phase++;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: gc: s3 ListMultipartUploads answered %ui",
                      ctx->s3.status);

        return ngx_http_registry_gc_run(r, ctx);
    }

    ngx_str_null(&gc->marker[0]);
    ngx_str_null(&gc->marker[1]);

    if (ngx_http_registry_s3_xml_value(r->pool, body, "IsTruncated", &v)
        == NGX_OK
        && v.len == 4 && ngx_strncmp(v.data, "true", 4) == 0
        && (ngx_http_registry_s3_xml_value(r->pool, body, "NextKeyMarker",
                                           &gc->marker[0])
            != NGX_OK
            || ngx_http_registry_s3_xml_value(r->pool, body,
                                              "NextUploadIdMarker",
                                              &gc->marker[1])
               != NGX_OK))
    {
        ngx_str_null(&gc->marker[0]);
    }

    /* copies: the answer lives in the subrequest's buffer */

    if (gc->marker[0].len) {
        v = gc->marker[0];
        gc->marker[0].data = ngx_pstrdup(r->pool, &v);
        v = gc->marker[1];
        gc->marker[1].data = ngx_pstrdup(r->pool, &v);

        if (gc->marker[0].data == NULL || gc->marker[1].data == NULL) {
            return NGX_ERROR;
        }
    }

    max = 4 + 3 * NGX_HTTP_REGISTRY_GC_LIST;

    args = ngx_palloc(r->pool, max * sizeof(ngx_str_t));
    if (args == NULL) {
        return NGX_ERROR;
    }

    args[0] = gc->token;

    if (ngx_http_registry_keyf(r->pool, &args[1], "%T", gc->orphan_age)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    args[2] = gc->marker[0];
    args[3] = gc->marker[1];
    n = 4;

    p = body->data;
    last = body->data + body->len;

    while (n + 3 <= max) {
        p = ngx_strlcasestrn(p, last, (u_char *) "<Upload>",
                             sizeof("<Upload>") - 2);
        if (p == NULL) {
            break;
        }

        end = ngx_strlcasestrn(p, last, (u_char *) "</Upload>",
                               sizeof("</Upload>") - 2);
        if (end == NULL) {
            break;
        }

        upload.data = p;
        upload.len = end - p;
        p = end;

        if (ngx_http_registry_s3_xml_value(r->pool, &upload, "Key", &args[n])
            != NGX_OK
            || ngx_http_registry_s3_xml_value(r->pool, &upload, "UploadId",
                                              &args[n + 1])
               != NGX_OK
            || ngx_http_registry_s3_xml_value(r->pool, &upload, "Initiated",
                                              &v)
               != NGX_OK)
        {
            continue;
        }

        t = ngx_http_registry_gc_iso_time(&v);

        if (t == (time_t) NGX_ERROR
            || ngx_http_registry_keyf(r->pool, &args[n + 2], "%T", t)
               != NGX_OK)
        {
            continue;
        }

        n += 3;
    }

    return ngx_http_registry_run(r, ngx_http_registry_gc_batch, "gc_mpus", 0,
                                 args, n);
}


/* "2026-01-02T03:04:05[.000]Z", as S3 writes times */

static time_t
ngx_http_registry_gc_iso_time(ngx_str_t *s)
{
    u_char     *p;
    ngx_int_t   y, m, d, hh, mm, ss;

    p = s->data;

    if (s->len < 20 || p[4] != '-' || p[7] != '-' || p[10] != 'T'
        || p[13] != ':' || p[16] != ':')
    {
        return (time_t) NGX_ERROR;
    }

    y = ngx_atoi(p, 4);
    m = ngx_atoi(p + 5, 2);
    d = ngx_atoi(p + 8, 2);
    hh = ngx_atoi(p + 11, 2);
    mm = ngx_atoi(p + 14, 2);
    ss = ngx_atoi(p + 17, 2);

    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31 || hh < 0 || hh > 23
        || mm < 0 || mm > 59 || ss < 0 || ss > 60)
    {
        return (time_t) NGX_ERROR;
    }

    /* days since the epoch of a proleptic Gregorian date */

    if (m <= 2) {
        y--;
        m += 12;
    }

    return (time_t) (365 * y + y / 4 - y / 100 + y / 400
                     + (153 * (m - 3) + 2) / 5 + d - 719469)
           * 86400 + hh * 3600 + mm * 60 + ss;
}


static ngx_int_t
ngx_http_registry_gc_s3(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx,
    ngx_http_registry_s3_op_t *op, ngx_http_registry_step_pt next)
{
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;
    gc->ops++;

    return ngx_http_registry_s3_run(r, next, op);
}
