
/*
 * ngx_http_registry_module: S3 through signed subrequests, the
 * machinery: the subrequest, its answer, the parent's wake-up, and the
 * filters that record or pass S3's response.  The operations are in
 * ngx_http_registry_s3.c.
 *
 * Every S3 operation is a subrequest into an internal location that
 * proxies to the S3 endpoint: nginx's upstream code does the connecting,
 * the timeouts and the streaming; this file signs the request, gives the
 * subrequest its own method, headers and body, records the answer and
 * wakes the parent.  The configuration must hold, in the server of the
 * registry locations:
 *
 *     registry_s3_endpoint  http://127.0.0.1:7480;
 *     registry_s3_location  /_registry_s3/;
 *
 *     location /_registry_s3/ {
 *         internal;
 *         proxy_pass                 http://127.0.0.1:7480/;
 *         proxy_http_version         1.1;
 *         proxy_set_header           Connection "";
 *         proxy_pass_request_headers on;
 *         proxy_pass_request_body    on;
 *         proxy_buffering            off;
 *         proxy_buffer_size          8k;
 *         proxy_next_upstream        off;
 *         proxy_intercept_errors     off;
 *         client_max_body_size       0;
 *     }
 *
 * Why:
 *   - the location prefix must equal registry_s3_location and proxy_pass
 *     must end with "/", so that /_registry_s3/<bucket>/<key> reaches S3
 *     as /<bucket>/<key> (path style), the URI that is signed;
 *   - proxy_pass must name the host:port of registry_s3_endpoint: the
 *     signature covers the Host header, and proxy sends $proxy_host.
 *     With an upstream{} block (for keepalive) add
 *     "proxy_set_header Host <host:port of the endpoint>;";
 *   - the signed headers (Authorization, x-amz-date,
 *     x-amz-content-sha256, Range) travel as the subrequest's request
 *     headers, hence proxy_pass_request_headers (the default); no
 *     proxy_set_header may name them, and no proxy_method, proxy_set_body
 *     or proxy_cache;
 *   - Content-Length comes from the subrequest's body length, and the
 *     find-config phase checks it against client_max_body_size: parts and
 *     objects are larger than the 1m default;
 *   - proxy_buffering off streams blobs to the client through one
 *     proxy_buffer_size buffer instead of spooling them to temp files;
 *     proxy_buffer_size must hold S3's response headers (RGW's are under
 *     1k);
 *   - proxy_next_upstream off: a retried request re-sends the body from
 *     offset 0 of its file, which is wrong for a part taken from the
 *     middle of an upload (and an endpoint name resolving to two
 *     addresses, like localhost, would retry);
 *   - proxy_intercept_errors off: S3's error bodies are read here;
 *   - proxy_http_version 1.1 with Connection "" lets an upstream{} block
 *     with keepalive reuse connections.
 *
 * Answers: status, ETag (unquoted) and Content-Length are recorded from
 * the response header; up to NGX_HTTP_REGISTRY_S3_BODY_MAX bytes of the
 * body (error documents, XML answers) by the body filter, which also
 * drops the bodies no one wants.  The body never goes through the
 * in-memory postpone filter, so subrequest_output_buffer_size plays no
 * part.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_S3_BODY_MAX      8192


/* one S3 subrequest; also the data of its post_subrequest handler */

typedef struct {
    ngx_http_request_t         *parent;
    ngx_http_registry_ctx_t    *ctx;
    ngx_buf_t                  *body;        /* recorded, bounded */
    off_t                       received;    /* body bytes seen */
    ngx_uint_t                  op;          /* for the metrics */
    uint64_t                    start;
    unsigned                    stream:1;
    unsigned                    passing:1;   /* body goes to the client */
    unsigned                    header:1;    /* S3's header arrived */
    unsigned                    done:1;
} ngx_http_registry_s3_sub_t;


static ngx_int_t ngx_http_registry_s3_request(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_s3_op_t *op);
static ngx_int_t ngx_http_registry_s3_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_registry_s3_finish(ngx_http_request_t *sr,
    ngx_http_registry_s3_sub_t *sub, ngx_int_t rc);
static void ngx_http_registry_s3_wake(ngx_http_request_t *r);
static ngx_http_registry_s3_sub_t *ngx_http_registry_s3_sub(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_s3_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_s3_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_registry_s3_add_header(ngx_http_request_t *r,
    ngx_list_t *headers, char *name, ngx_str_t *value);
static ngx_uint_t ngx_http_registry_s3_method(ngx_str_t *method);
static ngx_uint_t ngx_http_registry_s3_operation(ngx_uint_t method,
    ngx_http_registry_s3_op_t *op);
static ngx_int_t ngx_http_registry_s3_valid_key(ngx_str_t *key);
static void ngx_http_registry_s3_unquote(ngx_str_t *etag);


/* S3 requests of this worker unanswered since the last answer */
static ngx_uint_t  ngx_http_registry_s3_unanswered;

static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


/*
 * The S3 operation a step waits for: next runs in the parent request
 * with the answer in ctx->s3.  An operation that cannot even be sent
 * (not signed, no memory) fails the request at once.
 */

ngx_int_t
ngx_http_registry_s3_run(ngx_http_request_t *r,
    ngx_http_registry_step_pt next, ngx_http_registry_s3_op_t *op)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    ctx->next = next;

    if (ngx_http_registry_s3_request(r, ctx, op) != NGX_OK) {
        ctx->next = NULL;
        return NGX_ERROR;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_s3_request(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_s3_op_t *op)
{
    off_t                           len;
    ngx_str_t                       uri, date, payload, authorization;
    ngx_uint_t                      flags, method;
    ngx_list_t                      headers;
    ngx_chain_t                    *cl;
    ngx_keyval_t                    extra[2];
    ngx_http_request_t             *sr;
    ngx_http_request_body_t        *rb;
    ngx_http_registry_sigv4_t       sv;
    ngx_http_post_subrequest_t     *ps;
    ngx_http_registry_s3_sub_t     *sub;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    method = ngx_http_registry_s3_method(&op->method);

    if (method == NGX_HTTP_UNKNOWN) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry: s3 method \"%V\" not supported",
                      &op->method);
        return NGX_ERROR;
    }

    if (op->key.len == 0 && method != NGX_HTTP_HEAD && !op->bucket) {
        /* the bucket itself: HeadBucket, and never DeleteBucket */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry: s3 %V without a key", &op->method);
        return NGX_ERROR;
    }

    if (op->stream && ctx->s3_header == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry: s3 stream without a header handler");
        return NGX_ERROR;
    }

    /* the Content-Length sent must be the length signed and sent */

    len = 0;

    for (cl = op->body; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len != (op->body ? op->body_len : 0)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry: s3 body of %O bytes announced as %O",
                      len, op->body_len);
        return NGX_ERROR;
    }

    ngx_memzero(&sv, sizeof(ngx_http_registry_sigv4_t));

    if (ngx_http_registry_s3_uri(r, &op->key, &uri, &sv.uri) != NGX_OK
        || ngx_http_registry_s3_date(r->pool, &date) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (op->payload_hash.len) {
        payload = op->payload_hash;

    } else {
        ngx_str_set(&payload, "UNSIGNED-PAYLOAD");
    }

    sv.method = op->method;
    sv.query = op->query;
    sv.host = mcf->s3.host;
    sv.amz_date = date;
    sv.payload_hash = payload;
    sv.region = mcf->s3.region;
    sv.access_key = mcf->s3.access_key;
    sv.secret_key = mcf->s3.secret_key;

    /* the extra signed headers, by name */

    sv.headers = extra;

    if (op->content_md5.len) {
        ngx_str_set(&extra[sv.nheaders].key, "content-md5");
        extra[sv.nheaders++].value = op->content_md5;
    }

    if (op->range.len) {
        ngx_str_set(&extra[sv.nheaders].key, "range");
        extra[sv.nheaders++].value = op->range;
    }

    if (ngx_http_registry_sigv4_sign(r->pool, &sv, &authorization, NULL)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: s3 request to \"%V\" cannot be signed",
                      &sv.uri);
        return NGX_ERROR;
    }

    /*
     * Everything that can fail comes before ngx_http_subrequest(): once
     * created, the subrequest runs, and half set up it would forward the
     * client's own headers and body.
     *
     * It gets a copy of the parent's headers_in: the client's Host,
     * Authorization, Range, Content-Length, Transfer-Encoding, cookies.
     * proxy_pass would forward all of them, so it gets a list of its own
     * that holds only what S3 must see.
     */

    if (ngx_list_init(&headers, r->pool, 4, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_registry_s3_add_header(r, &headers, "Authorization",
                                        &authorization)
        != NGX_OK
        || ngx_http_registry_s3_add_header(r, &headers, "x-amz-date", &date)
           != NGX_OK
        || ngx_http_registry_s3_add_header(r, &headers,
                                           "x-amz-content-sha256", &payload)
           != NGX_OK
        || (op->range.len
            && ngx_http_registry_s3_add_header(r, &headers, "Range",
                                               &op->range)
               != NGX_OK)
        || (op->content_md5.len
            && ngx_http_registry_s3_add_header(r, &headers, "Content-MD5",
                                               &op->content_md5)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    /*
     * A body of its own too, even an empty one: the inherited one is the
     * client's.  The proxy sends copies of the buffers, so op->body is
     * left as it is and can be sent again.
     */

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    rb->bufs = op->body;

    sub = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_s3_sub_t));
    if (sub == NULL) {
        return NGX_ERROR;
    }

    sub->parent = r;
    sub->ctx = ctx;
    sub->stream = op->stream;
    sub->op = ngx_http_registry_s3_operation(method, op);
    sub->start = ngx_http_registry_metrics_usec();

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_registry_s3_done;
    ps->data = sub;

    flags = op->stream ? 0 : NGX_HTTP_SUBREQUEST_IN_MEMORY;

    if (ngx_http_subrequest(r, &uri, op->query.len ? &op->query : NULL, &sr,
                            ps, flags)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->method = method;
    sr->method_name = op->method;

    /* with HEAD the proxy expects no body, whatever Content-Length says */
    sr->header_only = (method == NGX_HTTP_HEAD);

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    sr->headers_in.headers = headers;

    if (headers.last == &headers.part) {
        /* the copied list must append to its own first part */
        sr->headers_in.headers.last = &sr->headers_in.headers.part;
    }

    sr->headers_in.keep_alive_n = -1;

    if (method == NGX_HTTP_PUT || method == NGX_HTTP_POST) {
        sr->headers_in.content_length_n = op->body ? op->body_len : 0;

    } else {
        sr->headers_in.content_length_n = -1;
    }

    sr->request_body = rb;

    ngx_memzero(&ctx->s3, sizeof(ngx_http_registry_s3_result_t));
    ctx->s3.content_length = -1;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry s3 %V \"%V?%V\"", &op->method, &sv.uri,
                   &op->query);

    return NGX_OK;
}


/*
 * The subrequest is finalized.  This may run more than once (a streamed
 * subrequest with output still buffered is finalized again later), and
 * must do little: record, then make the parent's next run resume it.
 */

static ngx_int_t
ngx_http_registry_s3_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_registry_s3_sub_t *sub = data;

    ngx_uint_t  failed;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "registry s3 done s:%ui rc:%i done:%d",
                   sr->headers_out.status, rc, sub->done);

    failed = (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE);

    if (!sub->done) {
        sub->done = 1;

        ngx_http_registry_s3_finish(sr, sub, rc);

        ngx_http_registry_metrics_s3(sub->op, sub->ctx->s3.status,
                                     sub->start);

        /*
         * In the content phase the parent's write handler is the empty
         * one; finalizing the subrequest posts the parent, whose write
         * handler then runs from ngx_http_run_posted_requests().
         */

        sub->parent->write_event_handler = ngx_http_registry_s3_wake;
    }

    if (sub->passing) {
        if (failed || sub->ctx->s3.status == 0) {
            /*
             * part of the body is already on its way to the client: only
             * closing the connection tells the client it is incomplete
             */
            return NGX_ERROR;
        }

        return rc;
    }

    if (failed
        && rc != NGX_HTTP_REQUEST_TIME_OUT
        && rc != NGX_HTTP_CLIENT_CLOSED_REQUEST)
    {
        /*
         * S3 did not answer (502, 504) or nginx refused the subrequest
         * (413): the parent says so itself, so no error page of nginx's
         * may go out, to the client or into the answer
         */
        return NGX_OK;
    }

    return rc;
}


static void
ngx_http_registry_s3_finish(ngx_http_request_t *sr,
    ngx_http_registry_s3_sub_t *sub, ngx_int_t rc)
{
    ngx_uint_t                      failed, level;
    ngx_str_t                       body, value;
    ngx_http_upstream_t            *u;
    ngx_http_registry_s3_result_t  *res;

    res = &sub->ctx->s3;

    failed = (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE
              || !sub->header);

    /*
     * After S3's header, a broken answer still finalizes the subrequest
     * with a success; the length tells: what Content-Length announced,
     * or, without one, the end of the chunked body.  A HEAD, or a body
     * refused by s3_header, is not read to the end on purpose.
     */

    if (!failed && !sr->header_only && (sub->passing || !sub->stream)) {

        if (res->content_length >= 0) {
            failed = (sub->received != res->content_length);

        } else {
            u = sr->upstream;
            failed = (u != NULL && !u->buffering && u->length > 0);
        }

        if (failed) {
            ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                          "registry: s3 answer to %V \"%V\" truncated "
                          "after %O bytes", &sr->method_name, &sr->uri,
                          sub->received);
        }
    }

    if (failed) {
        if (sub->header) {
            ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                          "registry: s3 %V \"%V\" failed after status %ui",
                          &sr->method_name, &sr->uri, res->status);

        } else {
            /*
             * S3 away: one line when the outage starts, not one per
             * request (nginx's upstream logs each connect error anyway)
             */
            if (rc == NGX_HTTP_CLIENT_CLOSED_REQUEST) {
                /* the client went away: not S3's fault */
                level = NGX_LOG_INFO;

            } else {
                level = ngx_http_registry_s3_unanswered++ ? NGX_LOG_INFO
                                                          : NGX_LOG_ERR;
            }

            ngx_log_error(level, sr->connection->log, 0,
                          "registry: s3 %V \"%V\" got no answer (%i)",
                          &sr->method_name, &sr->uri, rc);
        }

        /* nothing of a broken answer is to be trusted */
        ngx_memzero(res, sizeof(ngx_http_registry_s3_result_t));
        res->content_length = -1;
        return;
    }

    if (ngx_http_registry_s3_unanswered) {
        ngx_log_error(NGX_LOG_NOTICE, sr->connection->log, 0,
                      "registry: s3 answers again, %ui requests got no "
                      "answer meanwhile", ngx_http_registry_s3_unanswered);
        ngx_http_registry_s3_unanswered = 0;
    }

    if (sub->body) {
        body.data = sub->body->pos;
        body.len = sub->body->last - sub->body->pos;
        res->body = body;

    } else {
        ngx_str_null(&body);
    }

    /*
     * CompleteMultipartUpload (and CopyObject) may answer 200 and then
     * fail: the error is the body, whitespace kept the connection alive
     */

    if (res->status == NGX_HTTP_OK
        && sr->method == NGX_HTTP_POST
        && ngx_http_registry_s3_xml_value(sr->pool, &body, "Error", &value)
           == NGX_OK)
    {
        res->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (res->status >= NGX_HTTP_SPECIAL_RESPONSE) {
        if (ngx_http_registry_s3_xml_value(sr->pool, &body, "Code",
                                           &res->error_code)
            != NGX_OK
            || res->error_code.len == 0)
        {
            /* not NULL: "%V" copies from data even when it is empty */
            ngx_str_set(&res->error_code, "");
        }

        level = (res->status == NGX_HTTP_NOT_FOUND
                 || res->status == NGX_HTTP_RANGE_NOT_SATISFIABLE)
                ? NGX_LOG_INFO : NGX_LOG_ERR;

        ngx_log_error(level, sr->connection->log, 0,
                      "registry: s3 %V \"%V\" answered %ui \"%V\"",
                      &sr->method_name, &sr->uri, res->status,
                      &res->error_code);

        return;
    }

    /*
     * RGW leaves the ETag header of CompleteMultipartUpload empty; the
     * body has it (XML-escaped quotes on AWS)
     */

    if (res->etag.len == 0
        && ngx_http_registry_s3_xml_value(sr->pool, &body, "ETag", &value)
           == NGX_OK)
    {
        res->etag = value;
        ngx_http_registry_s3_unquote(&res->etag);
    }
}


static void
ngx_http_registry_s3_wake(ngx_http_request_t *r)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry s3 wake");

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_registry_resume(r);
}


/* our subrequests are known by their post_subrequest handler */

static ngx_http_registry_s3_sub_t *
ngx_http_registry_s3_sub(ngx_http_request_t *r)
{
    if (r == r->main
        || r->post_subrequest == NULL
        || r->post_subrequest->handler != ngx_http_registry_s3_done)
    {
        return NULL;
    }

    return r->post_subrequest->data;
}


static ngx_int_t
ngx_http_registry_s3_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_registry_s3_sub_t     *sub;
    ngx_http_registry_s3_result_t  *res;

    sub = ngx_http_registry_s3_sub(r);

    if (sub == NULL) {
        return ngx_http_next_header_filter(r);
    }

    if (sub->done || sub->header) {
        /* nginx's own error page after the answer: nobody wants it */
        return NGX_OK;
    }

    sub->header = 1;

    res = &sub->ctx->s3;

    res->status = r->headers_out.status;
    res->content_length = r->headers_out.content_length_n;

    /*
     * a copy: with proxy_buffering off the header's buffer is reused for
     * the body
     */

    if (r->headers_out.etag && r->headers_out.etag->value.len) {
        res->etag.len = r->headers_out.etag->value.len;
        res->etag.data = ngx_pstrdup(r->pool, &r->headers_out.etag->value);
        if (res->etag.data == NULL) {
            return NGX_ERROR;
        }

        ngx_http_registry_s3_unquote(&res->etag);
    }

    if (!sub->stream) {
        return ngx_http_next_header_filter(r);
    }

    rc = sub->ctx->s3_header(sub->parent, sub->ctx, r);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry s3 stream header s:%ui rc:%i",
                   res->status, rc);

    if (rc == NGX_OK) {
        sub->passing = 1;
        return ngx_http_next_header_filter(r);
    }

    /*
     * The client gets something else.  An error body is small and read
     * for its <Code>; a refused success may be a whole blob: not read.
     */

    if (res->status < NGX_HTTP_SPECIAL_RESPONSE) {
        r->header_only = 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_s3_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                       n;
    ngx_buf_t                   *b;
    ngx_chain_t                 *cl;
    ngx_http_registry_s3_sub_t  *sub;

    sub = ngx_http_registry_s3_sub(r);

    if (sub == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    if (sub->passing) {
        for (cl = in; cl; cl = cl->next) {
            sub->received += ngx_buf_size(cl->buf);
        }

        return ngx_http_next_body_filter(r, in);
    }

    /*
     * Nothing of an unwanted body goes further: it is consumed here, and
     * its beginning recorded for the answer.
     */

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (sub->done) {
            goto consume;
        }

        if (b->in_file && !ngx_buf_in_memory(b)) {
            sub->received += b->file_last - b->file_pos;
            goto consume;
        }

        n = b->last - b->pos;
        sub->received += n;

        if (n == 0) {
            goto consume;
        }

        if (sub->body == NULL) {
            sub->body = ngx_create_temp_buf(r->pool,
                                            NGX_HTTP_REGISTRY_S3_BODY_MAX);
            if (sub->body == NULL) {
                return NGX_ERROR;
            }
        }

        n = ngx_min(n, (size_t) (sub->body->end - sub->body->last));
        sub->body->last = ngx_cpymem(sub->body->last, b->pos, n);

    consume:

        b->pos = b->last;

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    return NGX_OK;
}


/* a request header as the proxy wants it: hashed, with its lowercase name */

static ngx_int_t
ngx_http_registry_s3_add_header(ngx_http_request_t *r, ngx_list_t *headers,
    char *name, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->key.len = ngx_strlen(name);
    h->key.data = (u_char *) name;
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(r->pool, h->key.len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, h->key.data, h->key.len);

    return NGX_OK;
}


/* "20130524T000000Z" */

ngx_int_t
ngx_http_registry_s3_date(ngx_pool_t *pool, ngx_str_t *date)
{
    ngx_tm_t  tm;

    date->data = ngx_pnalloc(pool, sizeof("YYYYMMDDTHHMMSSZ") - 1);
    if (date->data == NULL) {
        return NGX_ERROR;
    }

    ngx_gmtime(ngx_time(), &tm);

    date->len = ngx_sprintf(date->data, "%4d%02d%02dT%02d%02d%02dZ",
                            tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                            tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec)
                - date->data;

    return NGX_OK;
}


/*
 * The subrequest's URI, location + "<bucket>/<key>", and the URI S3 sees
 * and that is signed, "/<bucket>/<key>": its tail.  Keys are restricted
 * to characters that neither SigV4 nor the proxy's escaping change, so
 * the two agree on the encoded path.
 */

ngx_int_t
ngx_http_registry_s3_uri(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *uri, ngx_str_t *canonical)
{
    u_char                         *p;
    size_t                          len;
    ngx_str_t                      *location;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    location = &mcf->s3.location;

    if (location->len == 0 || mcf->s3.bucket.len == 0) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry: s3 location or bucket not configured");
        return NGX_ERROR;
    }

    if (ngx_http_registry_s3_valid_key(key) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "registry: invalid s3 key \"%V\"", key);
        return NGX_ERROR;
    }

    len = location->len + 1 + mcf->s3.bucket.len
          + (key->len ? 1 + key->len : 0);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    uri->data = p;

    p = ngx_cpymem(p, location->data, location->len);

    if (p[-1] != '/') {
        *p++ = '/';
    }

    canonical->data = p - 1;

    p = ngx_cpymem(p, mcf->s3.bucket.data, mcf->s3.bucket.len);

    if (key->len) {
        *p++ = '/';
        p = ngx_cpymem(p, key->data, key->len);
    }

    uri->len = p - uri->data;
    canonical->len = p - canonical->data;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_registry_s3_method(ngx_str_t *method)
{
    static struct {
        ngx_str_t   name;
        ngx_uint_t  method;
    } methods[] = {
        { ngx_string("GET"), NGX_HTTP_GET },
        { ngx_string("HEAD"), NGX_HTTP_HEAD },
        { ngx_string("PUT"), NGX_HTTP_PUT },
        { ngx_string("POST"), NGX_HTTP_POST },
        { ngx_string("DELETE"), NGX_HTTP_DELETE },
        { ngx_null_string, NGX_HTTP_UNKNOWN }
    };

    ngx_uint_t  i;

    for (i = 0; methods[i].name.len; i++) {
        if (methods[i].name.len == method->len
            && ngx_strncmp(methods[i].name.data, method->data, method->len)
               == 0)
        {
            break;
        }
    }

    return methods[i].method;
}


/* [A-Za-z0-9_.-] segments joined by "/", none empty, "." or ".." */

/* what an operation is, for the metrics: s3.c's queries tell */

static ngx_uint_t
ngx_http_registry_s3_operation(ngx_uint_t method,
    ngx_http_registry_s3_op_t *op)
{
    ngx_uint_t  upload;

    upload = (op->query.len
              && ngx_strlcasestrn(op->query.data,
                                  op->query.data + op->query.len,
                                  (u_char *) "uploadId=", 9 - 1)
                 != NULL);

    switch (method) {

    case NGX_HTTP_HEAD:
        return op->key.len ? NGX_HTTP_REGISTRY_S3_HEAD_OBJECT
                           : NGX_HTTP_REGISTRY_S3_HEAD_BUCKET;

    case NGX_HTTP_GET:
        return NGX_HTTP_REGISTRY_S3_GET_OBJECT;

    case NGX_HTTP_PUT:
        return upload ? NGX_HTTP_REGISTRY_S3_UPLOAD_PART
                      : NGX_HTTP_REGISTRY_S3_PUT_OBJECT;

    case NGX_HTTP_POST:
        return upload ? NGX_HTTP_REGISTRY_S3_COMPLETE_MULTIPART
                      : NGX_HTTP_REGISTRY_S3_CREATE_MULTIPART;

    default: /* DELETE */
        return upload ? NGX_HTTP_REGISTRY_S3_ABORT_MULTIPART
                      : NGX_HTTP_REGISTRY_S3_DELETE_OBJECT;
    }
}


static ngx_int_t
ngx_http_registry_s3_valid_key(ngx_str_t *key)
{
    u_char   c, *p, *last, *segment;

    if (key->len == 0) {
        /* the bucket itself; data may be NULL */
        return NGX_OK;
    }

    last = key->data + key->len;
    segment = key->data;

    for (p = key->data; p <= last; p++) {

        if (p == last || *p == '/') {
            if (p == segment
                || (p - segment == 1 && segment[0] == '.')
                || (p - segment == 2 && segment[0] == '.'
                    && segment[1] == '.'))
            {
                return NGX_ERROR;
            }

            segment = p + 1;
            continue;
        }

        c = *p;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')
        {
            continue;
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ETags are compared and kept without their quotes */

static void
ngx_http_registry_s3_unquote(ngx_str_t *etag)
{
    while (etag->len && (etag->data[0] == '"' || etag->data[0] == ' ')) {
        etag->data++;
        etag->len--;
    }

    while (etag->len && (etag->data[etag->len - 1] == '"'
                         || etag->data[etag->len - 1] == ' '))
    {
        etag->len--;
    }
}


ngx_int_t
ngx_http_registry_s3_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_registry_s3_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_registry_s3_body_filter;

    return NGX_OK;
}
