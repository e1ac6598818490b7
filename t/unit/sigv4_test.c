
/*
 * Drives ngx_http_registry_sigv4.c alone, without nginx: t/sigv4.t
 * compiles it with that file, runs it and compares what it prints
 * ("name value" lines) with the published AWS examples.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_registry.h"


#define AK      "AKIAIOSFODNN7EXAMPLE"
#define SK      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST    "examplebucket.s3.amazonaws.com"
#define DATE    "20130524T000000Z"
#define EMPTY   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


/* the one nginx function sigv4.c needs */

void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return malloc(size);
}


static void
set(ngx_str_t *s, const char *value)
{
    s->len = strlen(value);
    s->data = (u_char *) value;
}


static void
example(ngx_http_registry_sigv4_t *sv, const char *method, const char *uri,
    const char *payload)
{
    memset(sv, 0, sizeof(ngx_http_registry_sigv4_t));

    set(&sv->method, method);
    set(&sv->uri, uri);
    set(&sv->host, HOST);
    set(&sv->amz_date, DATE);
    set(&sv->payload_hash, payload);
    set(&sv->region, "us-east-1");
    set(&sv->access_key, AK);
    set(&sv->secret_key, SK);
}


static void
print(const char *name, ngx_int_t rc, ngx_str_t *s)
{
    if (rc != NGX_OK) {
        printf("%s ERROR\n", name);
        return;
    }

    printf("%s %.*s\n", name, (int) s->len, s->data);
}


int
main(void)
{
    u_char                      hash[32], hex[65], *p;
    size_t                      n;
    ngx_int_t                   rc;
    ngx_str_t                   auth, sig, query;
    ngx_uint_t                  i;
    ngx_keyval_t                h[3];
    ngx_http_registry_sigv4_t   sv;

    static const char  body[] = "Welcome to Amazon S3.";

    /* GET Object: GET /test.txt, Range: bytes=0-9, empty payload */

    example(&sv, "GET", "/test.txt", EMPTY);
    set(&h[0].key, "range");
    set(&h[0].value, "bytes=0-9");
    sv.headers = h;
    sv.nheaders = 1;

    rc = ngx_http_registry_sigv4_sign(NULL, &sv, &auth, &sig);
    print("get_signature", rc, &sig);
    print("get_authorization", rc, &auth);

    /* the same again: the cached signing key gives the same signature */

    rc = ngx_http_registry_sigv4_sign(NULL, &sv, NULL, &sig);
    print("get_signature_again", rc, &sig);

    /* a wrong secret with the same day, region and access key */

    set(&sv.secret_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ");
    rc = ngx_http_registry_sigv4_sign(NULL, &sv, NULL, &sig);
    print("get_signature_wrong_secret", rc, &sig);

    set(&sv.secret_key, SK);
    rc = ngx_http_registry_sigv4_sign(NULL, &sv, NULL, &sig);
    print("get_signature_secret_back", rc, &sig);

    /* PUT Object: PUT /test$file.text with Date and a storage class */

    if (EVP_Digest(body, sizeof(body) - 1, hash, NULL, EVP_sha256(), NULL)
        != 1)
    {
        return 1;
    }

    for (i = 0, p = hex; i < 32; i++) {
        p += sprintf((char *) p, "%02x", hash[i]);
    }

    example(&sv, "PUT", "/test%24file.text", (char *) hex);
    printf("put_payload %s\n", hex);

    /* given unsorted: the signer sorts */
    set(&h[0].key, "x-amz-storage-class");
    set(&h[0].value, "REDUCED_REDUNDANCY");
    set(&h[1].key, "date");
    set(&h[1].value, "Fri, 24 May 2013 00:00:00 GMT");
    sv.headers = h;
    sv.nheaders = 2;

    rc = ngx_http_registry_sigv4_sign(NULL, &sv, &auth, &sig);
    print("put_signature", rc, &sig);
    print("put_authorization", rc, &auth);

    /* query-string auth: GET /test.txt for 86400 s */

    example(&sv, "GET", "/test.txt", "");
    rc = ngx_http_registry_sigv4_presign(NULL, &sv, 86400, &query);
    print("presign_query", rc, &query);

    /* what must fail */

    example(&sv, "GET", "/test.txt", EMPTY);
    set(&sv.amz_date, "20130524");
    rc = ngx_http_registry_sigv4_sign(NULL, &sv, &auth, NULL);
    printf("bad_date %s\n", rc == NGX_ERROR ? "refused" : "accepted");

    example(&sv, "GET", "/test.txt", EMPTY);
    set(&h[0].key, "host");
    set(&h[0].value, HOST);
    sv.headers = h;
    sv.nheaders = 1;
    rc = ngx_http_registry_sigv4_sign(NULL, &sv, &auth, NULL);
    printf("host_twice %s\n", rc == NGX_ERROR ? "refused" : "accepted");

    example(&sv, "GET", "/test.txt", "");
    rc = ngx_http_registry_sigv4_sign(NULL, &sv, &auth, NULL);
    printf("no_payload_hash %s\n", rc == NGX_ERROR ? "refused" : "accepted");

    example(&sv, "GET", "/test.txt", "");
    rc = ngx_http_registry_sigv4_presign(NULL, &sv, 604801, &query);
    printf("presign_too_long %s\n", rc == NGX_ERROR ? "refused" : "accepted");

    /* the encoding of query values */

    n = ngx_http_registry_sigv4_escape(NULL, (u_char *) "a b/~$-_.Z9", 11);
    p = malloc(n + 1);
    ngx_http_registry_sigv4_escape(p, (u_char *) "a b/~$-_.Z9", 11);
    printf("escape %.*s %d\n", (int) n, p, (int) n);

    return 0;
}
