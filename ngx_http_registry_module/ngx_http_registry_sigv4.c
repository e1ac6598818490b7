
/*
 * ngx_http_registry_module: AWS Signature Version 4 for S3.
 *
 * Pure computations: the caller hands in the time, the parts of the
 * request and a pool for the results.  The only nginx function used is
 * ngx_pnalloc(), so that t/unit/sigv4_test.c can link this file alone.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_SIGV4_ALGORITHM    "AWS4-HMAC-SHA256"
#define NGX_HTTP_REGISTRY_SIGV4_TERMINATOR   "/s3/aws4_request"
#define NGX_HTTP_REGISTRY_SIGV4_UNSIGNED     "UNSIGNED-PAYLOAD"
#define NGX_HTTP_REGISTRY_SIGV4_HASH_LEN     32
#define NGX_HTTP_REGISTRY_SIGV4_SIG_LEN      64
#define NGX_HTTP_REGISTRY_SIGV4_MAX_HEADERS  16
#define NGX_HTTP_REGISTRY_SIGV4_MAX_KEY      256
#define NGX_HTTP_REGISTRY_SIGV4_MAX_EXPIRES  604800


typedef struct {
    ngx_str_t                  *name;
    ngx_str_t                  *value;
} ngx_http_registry_sigv4_header_t;


/*
 * The signing key depends only on the day, the region and the secret:
 * deriving it takes four HMACs, so each worker keeps the last one and
 * derives it again when the day (or the configuration) changes.  One
 * entry is enough as a registry talks to one S3 account.
 */

typedef struct {
    u_char                      date[8];
    u_char                      region[NGX_HTTP_REGISTRY_SIGV4_MAX_KEY];
    size_t                      region_len;
    u_char                      access_key[NGX_HTTP_REGISTRY_SIGV4_MAX_KEY];
    size_t                      access_key_len;
    u_char                      secret_key[NGX_HTTP_REGISTRY_SIGV4_MAX_KEY];
    size_t                      secret_key_len;
    u_char                      key[NGX_HTTP_REGISTRY_SIGV4_HASH_LEN];
    ngx_uint_t                  valid;
} ngx_http_registry_sigv4_cache_t;


static ngx_int_t ngx_http_registry_sigv4_check(ngx_http_registry_sigv4_t *sv);
static ngx_int_t ngx_http_registry_sigv4_signature(ngx_pool_t *pool,
    ngx_http_registry_sigv4_t *sv, ngx_str_t *query,
    ngx_http_registry_sigv4_header_t *headers, ngx_uint_t n,
    ngx_str_t *signed_headers, ngx_str_t *payload, u_char *signature);
static ngx_int_t ngx_http_registry_sigv4_signing_key(
    ngx_http_registry_sigv4_t *sv, u_char *key);
static ngx_int_t ngx_http_registry_sigv4_hmac(u_char *key, size_t key_len,
    u_char *data, size_t len, u_char *out);
static u_char *ngx_http_registry_sigv4_hex(u_char *dst, u_char *src,
    size_t len);
static ngx_int_t ngx_http_registry_sigv4_cmp(ngx_str_t *a, ngx_str_t *b);


static ngx_http_registry_sigv4_cache_t  ngx_http_registry_sigv4_cache;


ngx_int_t
ngx_http_registry_sigv4_sign(ngx_pool_t *pool, ngx_http_registry_sigv4_t *sv,
    ngx_str_t *authorization, ngx_str_t *signature)
{
    u_char                            *p;
    size_t                             len;
    ngx_int_t                          rc;
    ngx_str_t                          signed_headers;
    ngx_uint_t                         i, j, n;
    ngx_http_registry_sigv4_header_t   h[NGX_HTTP_REGISTRY_SIGV4_MAX_HEADERS];
    ngx_http_registry_sigv4_header_t   t;
    u_char                             sig[NGX_HTTP_REGISTRY_SIGV4_SIG_LEN];

    static ngx_str_t  host = ngx_string("host");
    static ngx_str_t  content = ngx_string("x-amz-content-sha256");
    static ngx_str_t  date = ngx_string("x-amz-date");

    if (ngx_http_registry_sigv4_check(sv) != NGX_OK
        || sv->payload_hash.len == 0
        || sv->nheaders > NGX_HTTP_REGISTRY_SIGV4_MAX_HEADERS - 3)
    {
        return NGX_ERROR;
    }

    h[0].name = &host;
    h[0].value = &sv->host;
    h[1].name = &content;
    h[1].value = &sv->payload_hash;
    h[2].name = &date;
    h[2].value = &sv->amz_date;
    n = 3;

    for (i = 0; i < sv->nheaders; i++) {
        h[n].name = &sv->headers[i].key;
        h[n].value = &sv->headers[i].value;
        n++;
    }

    /*
     * the canonical headers are sorted by name; the extra headers come
     * sorted already, but merging them with the three fixed ones is the
     * same insertion sort, and it costs nothing to trust no one
     */

    for (i = 1; i < n; i++) {
        t = h[i];

        for (j = i; j > 0; j--) {
            rc = ngx_http_registry_sigv4_cmp(h[j - 1].name, t.name);

            if (rc == 0) {
                /* a header signed twice would not match what is sent */
                return NGX_ERROR;
            }

            if (rc < 0) {
                break;
            }

            h[j] = h[j - 1];
        }

        h[j] = t;
    }

    len = 0;

    for (i = 0; i < n; i++) {
        len += h[i].name->len + 1;
    }

    signed_headers.data = ngx_pnalloc(pool, len);
    if (signed_headers.data == NULL) {
        return NGX_ERROR;
    }

    p = signed_headers.data;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ';';
        }

        p = ngx_cpymem(p, h[i].name->data, h[i].name->len);
    }

    signed_headers.len = p - signed_headers.data;

    if (ngx_http_registry_sigv4_signature(pool, sv, &sv->query, h, n,
                                          &signed_headers, &sv->payload_hash,
                                          sig)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (signature) {
        signature->data = ngx_pnalloc(pool, sizeof(sig));
        if (signature->data == NULL) {
            return NGX_ERROR;
        }

        signature->len = sizeof(sig);
        ngx_memcpy(signature->data, sig, sizeof(sig));
    }

    if (authorization == NULL) {
        return NGX_OK;
    }

    len = sizeof(NGX_HTTP_REGISTRY_SIGV4_ALGORITHM " Credential=") - 1
          + sv->access_key.len + 1 + 8 + 1 + sv->region.len
          + sizeof(NGX_HTTP_REGISTRY_SIGV4_TERMINATOR) - 1
          + sizeof(", SignedHeaders=") - 1 + signed_headers.len
          + sizeof(", Signature=") - 1 + sizeof(sig);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    authorization->data = p;

    p = ngx_cpymem(p, NGX_HTTP_REGISTRY_SIGV4_ALGORITHM " Credential=",
                   sizeof(NGX_HTTP_REGISTRY_SIGV4_ALGORITHM " Credential=")
                   - 1);
    p = ngx_cpymem(p, sv->access_key.data, sv->access_key.len);
    *p++ = '/';
    p = ngx_cpymem(p, sv->amz_date.data, 8);
    *p++ = '/';
    p = ngx_cpymem(p, sv->region.data, sv->region.len);
    p = ngx_cpymem(p, NGX_HTTP_REGISTRY_SIGV4_TERMINATOR,
                   sizeof(NGX_HTTP_REGISTRY_SIGV4_TERMINATOR) - 1);
    p = ngx_cpymem(p, ", SignedHeaders=", sizeof(", SignedHeaders=") - 1);
    p = ngx_cpymem(p, signed_headers.data, signed_headers.len);
    p = ngx_cpymem(p, ", Signature=", sizeof(", Signature=") - 1);
    p = ngx_cpymem(p, sig, sizeof(sig));

    authorization->len = p - authorization->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_sigv4_presign(ngx_pool_t *pool,
    ngx_http_registry_sigv4_t *sv, time_t expires, ngx_str_t *query)
{
    u_char                            *p, *last, digits[NGX_INT_T_LEN];
    size_t                             len, nd;
    ngx_str_t                          canonical, signed_headers, payload;
    ngx_http_registry_sigv4_header_t   h;

    static ngx_str_t  host = ngx_string("host");

    if (ngx_http_registry_sigv4_check(sv) != NGX_OK
        || expires < 1 || expires > NGX_HTTP_REGISTRY_SIGV4_MAX_EXPIRES)
    {
        return NGX_ERROR;
    }

    last = digits + sizeof(digits);
    p = last;

    do {
        *--p = (u_char) ('0' + expires % 10);
        expires /= 10;
    } while (expires);

    nd = last - p;

    /*
     * The X-Amz-* parameters in their canonical (sorted) order; the extra
     * parameters in sv->query must sort after them (lowercase names do).
     * Room is left at the end for "&X-Amz-Signature=" and the signature.
     */

    len = sizeof("X-Amz-Algorithm=" NGX_HTTP_REGISTRY_SIGV4_ALGORITHM
                 "&X-Amz-Credential=") - 1
          + ngx_http_registry_sigv4_escape(NULL, sv->access_key.data,
                                           sv->access_key.len)
          + 3 + 8 + 3
          + ngx_http_registry_sigv4_escape(NULL, sv->region.data,
                                           sv->region.len)
          + sizeof("%2Fs3%2Faws4_request") - 1
          + sizeof("&X-Amz-Date=") - 1 + sv->amz_date.len
          + sizeof("&X-Amz-Expires=") - 1 + nd
          + sizeof("&X-Amz-SignedHeaders=host") - 1
          + (sv->query.len ? 1 + sv->query.len : 0)
          + sizeof("&X-Amz-Signature=") - 1
          + NGX_HTTP_REGISTRY_SIGV4_SIG_LEN;

    canonical.data = ngx_pnalloc(pool, len);
    if (canonical.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(canonical.data,
                   "X-Amz-Algorithm=" NGX_HTTP_REGISTRY_SIGV4_ALGORITHM
                   "&X-Amz-Credential=",
                   sizeof("X-Amz-Algorithm=" NGX_HTTP_REGISTRY_SIGV4_ALGORITHM
                          "&X-Amz-Credential=") - 1);
    p += ngx_http_registry_sigv4_escape(p, sv->access_key.data,
                                        sv->access_key.len);
    p = ngx_cpymem(p, "%2F", 3);
    p = ngx_cpymem(p, sv->amz_date.data, 8);
    p = ngx_cpymem(p, "%2F", 3);
    p += ngx_http_registry_sigv4_escape(p, sv->region.data, sv->region.len);
    p = ngx_cpymem(p, "%2Fs3%2Faws4_request",
                   sizeof("%2Fs3%2Faws4_request") - 1);
    p = ngx_cpymem(p, "&X-Amz-Date=", sizeof("&X-Amz-Date=") - 1);
    p = ngx_cpymem(p, sv->amz_date.data, sv->amz_date.len);
    p = ngx_cpymem(p, "&X-Amz-Expires=", sizeof("&X-Amz-Expires=") - 1);
    p = ngx_cpymem(p, last - nd, nd);
    p = ngx_cpymem(p, "&X-Amz-SignedHeaders=host",
                   sizeof("&X-Amz-SignedHeaders=host") - 1);

    if (sv->query.len) {
        *p++ = '&';
        p = ngx_cpymem(p, sv->query.data, sv->query.len);
    }

    canonical.len = p - canonical.data;

    h.name = &host;
    h.value = &sv->host;

    signed_headers.len = sizeof("host") - 1;
    signed_headers.data = (u_char *) "host";

    payload.len = sizeof(NGX_HTTP_REGISTRY_SIGV4_UNSIGNED) - 1;
    payload.data = (u_char *) NGX_HTTP_REGISTRY_SIGV4_UNSIGNED;

    p = ngx_cpymem(p, "&X-Amz-Signature=", sizeof("&X-Amz-Signature=") - 1);

    if (ngx_http_registry_sigv4_signature(pool, sv, &canonical, &h, 1,
                                          &signed_headers, &payload, p)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    query->data = canonical.data;
    query->len = p + NGX_HTTP_REGISTRY_SIGV4_SIG_LEN - canonical.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_sigv4_check(ngx_http_registry_sigv4_t *sv)
{
    /* "20130524T000000Z": the scope takes its first eight characters */

    if (sv->amz_date.len != 16
        || sv->amz_date.data[8] != 'T'
        || sv->amz_date.data[15] != 'Z')
    {
        return NGX_ERROR;
    }

    if (sv->method.len == 0
        || sv->uri.len == 0
        || sv->uri.data[0] != '/'
        || sv->host.len == 0
        || sv->region.len == 0
        || sv->access_key.len == 0
        || sv->secret_key.len == 0
        || sv->secret_key.len > NGX_HTTP_REGISTRY_SIGV4_MAX_KEY - 4)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Hashes the canonical request, signs the string to sign with the day's
 * key and writes the 64 hex digits of the signature.
 */

static ngx_int_t
ngx_http_registry_sigv4_signature(ngx_pool_t *pool,
    ngx_http_registry_sigv4_t *sv, ngx_str_t *query,
    ngx_http_registry_sigv4_header_t *headers, ngx_uint_t n,
    ngx_str_t *signed_headers, ngx_str_t *payload, u_char *signature)
{
    u_char      *p, *canonical, *sts;
    size_t       len;
    ngx_uint_t   i;
    u_char       hash[NGX_HTTP_REGISTRY_SIGV4_HASH_LEN];
    u_char       key[NGX_HTTP_REGISTRY_SIGV4_HASH_LEN];
    u_char       mac[NGX_HTTP_REGISTRY_SIGV4_HASH_LEN];

    len = sv->method.len + 1 + sv->uri.len + 1 + query->len + 1
          + 1 + signed_headers->len + 1 + payload->len;

    for (i = 0; i < n; i++) {
        len += headers[i].name->len + 1 + headers[i].value->len + 1;
    }

    canonical = ngx_pnalloc(pool, len);
    if (canonical == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(canonical, sv->method.data, sv->method.len);
    *p++ = '\n';
    p = ngx_cpymem(p, sv->uri.data, sv->uri.len);
    *p++ = '\n';
    /* memcpy() from a NULL source is undefined even for 0 bytes */
    if (query->len) {
        p = ngx_cpymem(p, query->data, query->len);
    }

    *p++ = '\n';

    for (i = 0; i < n; i++) {
        p = ngx_cpymem(p, headers[i].name->data, headers[i].name->len);
        *p++ = ':';
        p = ngx_cpymem(p, headers[i].value->data, headers[i].value->len);
        *p++ = '\n';
    }

    *p++ = '\n';
    p = ngx_cpymem(p, signed_headers->data, signed_headers->len);
    *p++ = '\n';
    p = ngx_cpymem(p, payload->data, payload->len);

    if (EVP_Digest(canonical, p - canonical, hash, NULL, EVP_sha256(), NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    len = sizeof(NGX_HTTP_REGISTRY_SIGV4_ALGORITHM "\n") - 1
          + sv->amz_date.len + 1 + 8 + 1 + sv->region.len
          + sizeof(NGX_HTTP_REGISTRY_SIGV4_TERMINATOR "\n") - 1
          + NGX_HTTP_REGISTRY_SIGV4_SIG_LEN;

    sts = ngx_pnalloc(pool, len);
    if (sts == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(sts, NGX_HTTP_REGISTRY_SIGV4_ALGORITHM "\n",
                   sizeof(NGX_HTTP_REGISTRY_SIGV4_ALGORITHM "\n") - 1);
    p = ngx_cpymem(p, sv->amz_date.data, sv->amz_date.len);
    *p++ = '\n';
    p = ngx_cpymem(p, sv->amz_date.data, 8);
    *p++ = '/';
    p = ngx_cpymem(p, sv->region.data, sv->region.len);
    p = ngx_cpymem(p, NGX_HTTP_REGISTRY_SIGV4_TERMINATOR "\n",
                   sizeof(NGX_HTTP_REGISTRY_SIGV4_TERMINATOR "\n") - 1);
    p = ngx_http_registry_sigv4_hex(p, hash, sizeof(hash));

    if (ngx_http_registry_sigv4_signing_key(sv, key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_registry_sigv4_hmac(key, sizeof(key), sts, p - sts, mac)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_registry_sigv4_hex(signature, mac, sizeof(mac));

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_sigv4_signing_key(ngx_http_registry_sigv4_t *sv,
    u_char *key)
{
    u_char                           *p;
    u_char                            secret[NGX_HTTP_REGISTRY_SIGV4_MAX_KEY];
    u_char                            k1[NGX_HTTP_REGISTRY_SIGV4_HASH_LEN];
    u_char                            k2[NGX_HTTP_REGISTRY_SIGV4_HASH_LEN];
    ngx_http_registry_sigv4_cache_t  *c;

    c = &ngx_http_registry_sigv4_cache;

    if (c->valid
        && ngx_memcmp(c->date, sv->amz_date.data, 8) == 0
        && c->region_len == sv->region.len
        && ngx_memcmp(c->region, sv->region.data, sv->region.len) == 0
        && c->access_key_len == sv->access_key.len
        && ngx_memcmp(c->access_key, sv->access_key.data,
                      sv->access_key.len) == 0
        && c->secret_key_len == sv->secret_key.len
        && ngx_memcmp(c->secret_key, sv->secret_key.data,
                      sv->secret_key.len) == 0)
    {
        ngx_memcpy(key, c->key, NGX_HTTP_REGISTRY_SIGV4_HASH_LEN);
        return NGX_OK;
    }

    p = ngx_cpymem(secret, "AWS4", 4);
    p = ngx_cpymem(p, sv->secret_key.data, sv->secret_key.len);

    if (ngx_http_registry_sigv4_hmac(secret, p - secret, sv->amz_date.data,
                                     8, k1)
        != NGX_OK
        || ngx_http_registry_sigv4_hmac(k1, sizeof(k1), sv->region.data,
                                        sv->region.len, k2)
           != NGX_OK
        || ngx_http_registry_sigv4_hmac(k2, sizeof(k2), (u_char *) "s3", 2,
                                        k1)
           != NGX_OK
        || ngx_http_registry_sigv4_hmac(k1, sizeof(k1),
                                        (u_char *) "aws4_request",
                                        sizeof("aws4_request") - 1, key)
           != NGX_OK)
    {
        c->valid = 0;
        return NGX_ERROR;
    }

    ngx_memzero(secret, sizeof(secret));

    /* a region or an access key too long to remember is merely not cached */

    if (sv->region.len > sizeof(c->region)
        || sv->access_key.len > sizeof(c->access_key))
    {
        c->valid = 0;
        return NGX_OK;
    }

    ngx_memcpy(c->date, sv->amz_date.data, 8);
    ngx_memcpy(c->region, sv->region.data, sv->region.len);
    c->region_len = sv->region.len;
    ngx_memcpy(c->access_key, sv->access_key.data, sv->access_key.len);
    c->access_key_len = sv->access_key.len;
    ngx_memcpy(c->secret_key, sv->secret_key.data, sv->secret_key.len);
    c->secret_key_len = sv->secret_key.len;
    ngx_memcpy(c->key, key, NGX_HTTP_REGISTRY_SIGV4_HASH_LEN);
    c->valid = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_sigv4_hmac(u_char *key, size_t key_len, u_char *data,
    size_t len, u_char *out)
{
    unsigned int  n;

    if (HMAC(EVP_sha256(), key, (int) key_len, data, len, out, &n) == NULL
        || n != NGX_HTTP_REGISTRY_SIGV4_HASH_LEN)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static u_char *
ngx_http_registry_sigv4_hex(u_char *dst, u_char *src, size_t len)
{
    static u_char  hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


/*
 * URI-encodes as SigV4 wants it: everything but the unreserved
 * characters of RFC 3986, with uppercase hex digits.  With dst NULL it
 * only counts the bytes needed.
 */

size_t
ngx_http_registry_sigv4_escape(u_char *dst, u_char *src, size_t len)
{
    u_char   c;
    size_t   n;

    static u_char  hex[] = "0123456789ABCDEF";

    n = 0;

    while (len--) {
        c = *src++;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9')
            || c == '-' || c == '_' || c == '.' || c == '~')
        {
            if (dst) {
                *dst++ = c;
            }

            n++;
            continue;
        }

        if (dst) {
            *dst++ = '%';
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 0xf];
        }

        n += 3;
    }

    return n;
}


static ngx_int_t
ngx_http_registry_sigv4_cmp(ngx_str_t *a, ngx_str_t *b)
{
    ngx_int_t  rc;

    rc = ngx_memcmp(a->data, b->data, ngx_min(a->len, b->len));

    if (rc != 0) {
        return rc;
    }

    return (ngx_int_t) a->len - (ngx_int_t) b->len;
}
