
/*
 * Client bodies: read through nginx (memory, or its temp file when
 * large), hashed while they arrive so nothing is read twice.
 */


#include "ngx_http_registry.h"


/*
 * An upload's SHA-256 state goes from request to request as the bytes
 * of OpenSSL's SHA256_CTX, which OpenSSL 3 still allows but marks
 * deprecated with the whole low-level SHA-256 API: this file alone uses
 * it.  The saved state starts with a version of that format.
 */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define NGX_HTTP_REGISTRY_SHA_VERSION  '1'


static void ngx_http_registry_body_done(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;


ngx_int_t
ngx_http_registry_read_body(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next)
{
    ngx_int_t  rc;

    ctx->next = next;
    ctx->body.reading = 1;
    ctx->body.starting = 1;
    ctx->body.bytes = 0;

    /* blobs may be large: let nginx spool them to its temp files */
    r->request_body_in_file_only = 0;
    r->request_body_in_single_buf = 0;

    /* ... which is how blobs always arrive: not worth a warning */
    r->request_body_file_log_level = 0;

    rc = ngx_http_read_client_request_body(r, ngx_http_registry_body_done);

    ctx->body.starting = 0;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->next = NULL;
        ctx->body.reading = 0;
        return rc;
    }

    /*
     * nginx's reader holds the request until its post handler runs; but
     * a read that fails (a bad chunk, a client gone) ends the request
     * without it, and that hold would keep the connection open for good.
     * It goes at once: the pending step's own hold keeps the request.
     */
    ngx_http_registry_release(r);

    if (!ctx->body.reading) {
        /* read at once: body_done left the next step to us */
        ctx->next = NULL;
        return next(r, ctx);
    }

    return NGX_DONE;
}


static void
ngx_http_registry_body_done(ngx_http_request_t *r)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (!ctx->body.reading) {
        return;
    }

    ctx->body.reading = 0;

    if (ctx->body.starting) {
        /* still inside ngx_http_read_client_request_body() */
        return;
    }

    ngx_http_registry_resume(r);
}


/*
 * The body as one string, at most max bytes (NGX_DECLINED if longer).
 * Used for manifests and sub-part chunks only, which are small.
 */

ngx_int_t
ngx_http_registry_body_bytes(ngx_http_request_t *r, ngx_str_t *out,
    size_t max)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    if (len > (off_t) max) {
        return NGX_DECLINED;
    }

    out->len = len;
    out->data = ngx_pnalloc(r->pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        if (b->last != b->pos) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx != NULL && ctx->body.reading && r == r->main) {

        for (cl = in; cl; cl = cl->next) {
            b = cl->buf;

            if (ngx_buf_in_memory(b)) {
                if (ctx->body.hash) {
                    SHA256_Update(ctx->body.hash, b->pos, b->last - b->pos);
                }

                ctx->body.bytes += b->last - b->pos;
            }
        }
    }

    return ngx_http_next_request_body_filter(r, in);
}


void
ngx_http_registry_hash_init(SHA256_CTX *sha)
{
    SHA256_Init(sha);
}


ngx_int_t
ngx_http_registry_hash_save(ngx_pool_t *pool, SHA256_CTX *sha,
    ngx_str_t *out)
{
    out->len = 1 + sizeof(SHA256_CTX);
    out->data = ngx_pnalloc(pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->data[0] = NGX_HTTP_REGISTRY_SHA_VERSION;
    ngx_memcpy(out->data + 1, sha, sizeof(SHA256_CTX));

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_hash_load(SHA256_CTX *sha, ngx_str_t *saved)
{
    if (saved->len != 1 + sizeof(SHA256_CTX)
        || saved->data[0] != NGX_HTTP_REGISTRY_SHA_VERSION)
    {
        return NGX_DECLINED;
    }

    ngx_memcpy(sha, saved->data + 1, sizeof(SHA256_CTX));

    return NGX_OK;
}


/*
 * SHA-256 of one buffer by the low-level API: OpenSSL 3's one-shot
 * SHA256() fetches the algorithm on every call, which the request path
 * (the auth cache key) pays for at every request.
 */

void
ngx_http_registry_hash_raw(u_char *data, size_t len, u_char *out)
{
    SHA256_CTX  sha;

    SHA256_Init(&sha);
    SHA256_Update(&sha, data, len);
    SHA256_Final(out, &sha);
}


/* the state goes on: a copy is finalized */

void
ngx_http_registry_hash_digest(SHA256_CTX *sha, u_char *digest)
{
    u_char      hash[SHA256_DIGEST_LENGTH];
    SHA256_CTX  final;

    final = *sha;
    SHA256_Final(hash, &final);

    ngx_memcpy(digest, "sha256:", 7);
    ngx_hex_dump(digest + 7, hash, SHA256_DIGEST_LENGTH);
}


ngx_int_t
ngx_http_registry_body_init(ngx_conf_t *cf)
{
    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_registry_body_filter;

    return NGX_OK;
}
