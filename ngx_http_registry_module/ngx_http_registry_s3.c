
/*
 * ngx_http_registry_module: S3 operations.  Builders that fill an
 * ngx_http_registry_s3_op_t for ngx_http_registry_s3_run()
 * (ngx_http_registry_s3_request.c), presigned GET URLs for redirects,
 * and the reading of S3's XML answers.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_S3_EMPTY_SHA256                                     \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


static ngx_int_t ngx_http_registry_s3_upload_query(ngx_http_request_t *r,
    ngx_str_t *query, ngx_uint_t part, ngx_str_t *upload_id);


ngx_int_t
ngx_http_registry_s3_presign(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *url)
{
    u_char                         *p;
    size_t                          len;
    time_t                          expires;
    ngx_str_t                       uri, date, query, endpoint;
    ngx_http_registry_sigv4_t       sv;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (key->len == 0) {
        return NGX_ERROR;
    }

    ngx_memzero(&sv, sizeof(ngx_http_registry_sigv4_t));

    if (ngx_http_registry_s3_uri(r, key, &uri, &sv.uri) != NGX_OK
        || ngx_http_registry_s3_date(r->pool, &date) != NGX_OK)
    {
        return NGX_ERROR;
    }

    expires = mcf->s3.presign_expires;

    if (expires <= 0) {
        expires = 300;
    }

    if (expires > 604800) {
        /* the longest SigV4 allows */
        expires = 604800;
    }

    ngx_str_set(&sv.method, "GET");
    sv.host = mcf->s3.host;
    sv.amz_date = date;
    sv.region = mcf->s3.region;
    sv.access_key = mcf->s3.access_key;
    sv.secret_key = mcf->s3.secret_key;

    if (ngx_http_registry_sigv4_presign(r->pool, &sv, expires, &query)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    endpoint = mcf->s3.endpoint;

    while (endpoint.len && endpoint.data[endpoint.len - 1] == '/') {
        endpoint.len--;
    }

    len = endpoint.len + sv.uri.len + 1 + query.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    url->data = p;

    p = ngx_cpymem(p, endpoint.data, endpoint.len);
    p = ngx_cpymem(p, sv.uri.data, sv.uri.len);
    *p++ = '?';
    p = ngx_cpymem(p, query.data, query.len);

    url->len = p - url->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_s3_op_get(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_str_t *range,
    ngx_uint_t stream)
{
    ngx_memzero(op, sizeof(ngx_http_registry_s3_op_t));

    ngx_str_set(&op->method, "GET");
    op->key = *key;
    ngx_str_set(&op->payload_hash, NGX_HTTP_REGISTRY_S3_EMPTY_SHA256);
    op->stream = stream ? 1 : 0;

    if (range) {
        op->range = *range;
    }

    return NGX_OK;
}



ngx_int_t
ngx_http_registry_s3_op_delete(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key)
{
    ngx_memzero(op, sizeof(ngx_http_registry_s3_op_t));

    ngx_str_set(&op->method, "DELETE");
    op->key = *key;
    ngx_str_set(&op->payload_hash, NGX_HTTP_REGISTRY_S3_EMPTY_SHA256);

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_s3_op_put(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_chain_t *body,
    off_t len, ngx_str_t *sha256)
{
    ngx_memzero(op, sizeof(ngx_http_registry_s3_op_t));

    ngx_str_set(&op->method, "PUT");
    op->key = *key;
    op->body = body;
    op->body_len = len;

    if (sha256) {
        op->payload_hash = *sha256;

    } else if (len == 0) {
        ngx_str_set(&op->payload_hash, NGX_HTTP_REGISTRY_S3_EMPTY_SHA256);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_s3_op_create_multipart(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key)
{
    ngx_memzero(op, sizeof(ngx_http_registry_s3_op_t));

    ngx_str_set(&op->method, "POST");
    op->key = *key;
    ngx_str_set(&op->query, "uploads=");
    ngx_str_set(&op->payload_hash, NGX_HTTP_REGISTRY_S3_EMPTY_SHA256);

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_s3_op_upload_part(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_str_t *upload_id,
    ngx_uint_t part, ngx_chain_t *body, off_t len)
{
    ngx_memzero(op, sizeof(ngx_http_registry_s3_op_t));

    if (part == 0 || part > NGX_HTTP_REGISTRY_S3_MAX_PARTS) {
        return NGX_ERROR;
    }

    ngx_str_set(&op->method, "PUT");
    op->key = *key;
    op->body = body;
    op->body_len = len;

    return ngx_http_registry_s3_upload_query(r, &op->query, part, upload_id);
}


ngx_int_t
ngx_http_registry_s3_op_complete(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_str_t *upload_id,
    ngx_array_t *parts)
{
    u_char                       *p, hash[32];
    size_t                        len;
    ngx_buf_t                    *b;
    ngx_uint_t                    i;
    ngx_chain_t                  *cl;
    ngx_http_registry_s3_part_t  *part;

    ngx_memzero(op, sizeof(ngx_http_registry_s3_op_t));

    if (parts->nelts == 0 || parts->nelts > NGX_HTTP_REGISTRY_S3_MAX_PARTS) {
        return NGX_ERROR;
    }

    part = parts->elts;

    len = sizeof("<CompleteMultipartUpload></CompleteMultipartUpload>") - 1;

    for (i = 0; i < parts->nelts; i++) {
        len += sizeof("<Part><PartNumber>10000</PartNumber>"
                      "<ETag>\"\"</ETag></Part>") - 1
               + part[i].etag.len;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(b->last, "<CompleteMultipartUpload>",
                   sizeof("<CompleteMultipartUpload>") - 1);

    for (i = 0; i < parts->nelts; i++) {
        p = ngx_sprintf(p, "<Part><PartNumber>%ui</PartNumber>"
                           "<ETag>\"%V\"</ETag></Part>",
                        part[i].number, &part[i].etag);
    }

    p = ngx_cpymem(p, "</CompleteMultipartUpload>",
                   sizeof("</CompleteMultipartUpload>") - 1);

    b->last = p;
    b->last_buf = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    /* a small body: signed, so that S3 refuses it damaged */

    if (EVP_Digest(b->pos, b->last - b->pos, hash, NULL, EVP_sha256(), NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    op->payload_hash.data = ngx_pnalloc(r->pool, 2 * sizeof(hash));
    if (op->payload_hash.data == NULL) {
        return NGX_ERROR;
    }

    op->payload_hash.len = ngx_hex_dump(op->payload_hash.data, hash,
                                        sizeof(hash))
                           - op->payload_hash.data;

    ngx_str_set(&op->method, "POST");
    op->key = *key;
    op->body = cl;
    op->body_len = b->last - b->pos;

    return ngx_http_registry_s3_upload_query(r, &op->query, 0, upload_id);
}


ngx_int_t
ngx_http_registry_s3_op_abort(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_str_t *upload_id)
{
    ngx_memzero(op, sizeof(ngx_http_registry_s3_op_t));

    ngx_str_set(&op->method, "DELETE");
    op->key = *key;
    ngx_str_set(&op->payload_hash, NGX_HTTP_REGISTRY_S3_EMPTY_SHA256);

    return ngx_http_registry_s3_upload_query(r, &op->query, 0, upload_id);
}


/* "[partNumber=N&]uploadId=X", canonical: sorted, X encoded */

static ngx_int_t
ngx_http_registry_s3_upload_query(ngx_http_request_t *r, ngx_str_t *query,
    ngx_uint_t part, ngx_str_t *upload_id)
{
    u_char  *p;
    size_t   len;

    if (upload_id->len == 0) {
        return NGX_ERROR;
    }

    len = sizeof("partNumber=&uploadId=") - 1 + NGX_INT_T_LEN
          + ngx_http_registry_sigv4_escape(NULL, upload_id->data,
                                           upload_id->len);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    query->data = p;

    if (part) {
        p = ngx_sprintf(p, "partNumber=%ui&", part);
    }

    p = ngx_cpymem(p, "uploadId=", sizeof("uploadId=") - 1);
    p += ngx_http_registry_sigv4_escape(p, upload_id->data, upload_id->len);

    query->len = p - query->data;

    return NGX_OK;
}


/*
 * The text of the first element named tag: enough for the few flat
 * documents S3 answers with (no namespaces prefixes, no CDATA).  The
 * five predefined entities and character references are decoded.
 */

ngx_int_t
ngx_http_registry_s3_xml_value(ngx_pool_t *pool, ngx_str_t *xml,
    const char *tag, ngx_str_t *value)
{
    u_char    *p, *q, *last, *start, *end, *d;
    size_t     n, len;
    ngx_int_t  c;

    if (xml->len == 0) {
        /* data may be NULL: no pointer arithmetic on it */
        return NGX_DECLINED;
    }

    n = ngx_strlen(tag);
    last = xml->data + xml->len;

    for (p = xml->data; /* void */ ; p++) {
        p = ngx_strlchr(p, last, '<');

        if (p == NULL || (size_t) (last - p) < n + 2) {
            return NGX_DECLINED;
        }

        if (ngx_strncmp(p + 1, tag, n) == 0
            && (p[n + 1] == '>' || p[n + 1] == '/' || p[n + 1] == ' '))
        {
            break;
        }
    }

    p = ngx_strlchr(p + n + 1, last, '>');
    if (p == NULL) {
        return NGX_DECLINED;
    }

    if (p[-1] == '/') {
        /* <Tag/> */
        ngx_str_null(value);
        return NGX_OK;
    }

    start = p + 1;

    for (end = start; /* void */ ; end++) {
        end = ngx_strlchr(end, last, '<');

        if (end == NULL || (size_t) (last - end) < n + 3) {
            return NGX_DECLINED;
        }

        if (end[1] == '/' && ngx_strncmp(end + 2, tag, n) == 0
            && end[n + 2] == '>')
        {
            break;
        }
    }

    len = end - start;

    if (ngx_strlchr(start, end, '&') == NULL) {
        value->data = start;
        value->len = len;
        return NGX_OK;
    }

    d = ngx_pnalloc(pool, len);
    if (d == NULL) {
        return NGX_ERROR;
    }

    value->data = d;

    for (p = start; p < end; /* void */ ) {

        if (*p != '&') {
            *d++ = *p++;
            continue;
        }

        q = ngx_strlchr(p, end, ';');

        if (q == NULL) {
            *d++ = *p++;
            continue;
        }

        n = q - p + 1;
        c = -1;

        if (n == 6 && ngx_strncmp(p, "&quot;", 6) == 0) {
            c = '"';

        } else if (n == 5 && ngx_strncmp(p, "&amp;", 5) == 0) {
            c = '&';

        } else if (n == 4 && ngx_strncmp(p, "&lt;", 4) == 0) {
            c = '<';

        } else if (n == 4 && ngx_strncmp(p, "&gt;", 4) == 0) {
            c = '>';

        } else if (n == 6 && ngx_strncmp(p, "&apos;", 6) == 0) {
            c = '\'';

        } else if (n > 3 && p[1] == '#' && (p[2] == 'x' || p[2] == 'X')) {
            c = ngx_hextoi(p + 3, n - 4);

        } else if (n > 3 && p[1] == '#') {
            c = ngx_atoi(p + 2, n - 3);
        }

        if (c < 0 || c > 0x7f) {
            /* kept as written: S3 sends no such thing in what is read */
            *d++ = *p++;
            continue;
        }

        *d++ = (u_char) c;
        p = q + 1;
    }

    value->len = d - value->data;

    return NGX_OK;
}
