
/*
 * ngx_http_registry_module: a client body streamed to S3 as it arrives.
 *
 * The subrequests of s3.c cannot do this: nginx reads a subrequest's
 * body in full before its upstream starts.  Here the main request itself
 * becomes an upstream request to the S3 endpoint (as memcached's module
 * does), with request_body_no_buffering, so nginx sends each buffer of
 * the client body to S3 as it reads it; the request body filter of
 * body.c still hashes it on the way.  S3's answer is read in memory and
 * never reaches the client (filters here drop it); when it is complete,
 * the request is held once more and ctx->next runs from a posted event,
 * after the upstream code has let go of the request, with ctx->s3.status
 * set.
 *
 * Only a plain http:// endpoint whose host is an IP address is used so
 * (no resolver, no TLS); ngx_http_registry_s3_streamable() says so.  A
 * failure to connect or a timeout is answered 503 like any S3 failure.
 */


#include "ngx_http_registry.h"


typedef struct {
    ngx_str_t                   key;
    ngx_http_status_t           status;
    ngx_event_t                 ev;
    uint64_t                    start;       /* for the metrics */
    unsigned                    swallow:1;   /* S3's answer is not sent */
} ngx_http_registry_stream_t;


static ngx_int_t ngx_http_registry_stream_create_request(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_stream_reinit_request(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_stream_process_status(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_stream_process_header(
    ngx_http_request_t *r);
static void ngx_http_registry_stream_abort_request(ngx_http_request_t *r);
static void ngx_http_registry_stream_finalize_request(ngx_http_request_t *r,
    ngx_int_t rc);
static ngx_int_t ngx_http_registry_stream_filter_init(void *data);
static ngx_int_t ngx_http_registry_stream_filter(void *data, ssize_t bytes);
static void ngx_http_registry_stream_continue(ngx_event_t *ev);
static void ngx_http_registry_stream_cleanup(void *data);
static ngx_http_registry_stream_t *ngx_http_registry_stream_get(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_stream_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_stream_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_uint_t
ngx_http_registry_s3_streamable(ngx_http_request_t *r)
{
    off_t                           len;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    len = r->headers_in.content_length_n;

    return mcf->s3_addr != NULL
           && r == r->main
           && r->request_body == NULL
           && !r->headers_in.chunked
           && r->http_version < NGX_HTTP_VERSION_20
           && len >= NGX_HTTP_REGISTRY_S3_MIN_PART
           && len <= (off_t) 5 * 1024 * 1024 * 1024;
}


ngx_int_t
ngx_http_registry_s3_stream_put(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *key,
    ngx_http_registry_step_pt next)
{
    ngx_int_t                        rc;
    ngx_pool_cleanup_t              *cln;
    ngx_http_upstream_t             *u;
    ngx_http_registry_stream_t      *st;
    ngx_http_registry_main_conf_t   *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_stream_t));
    if (st == NULL) {
        return NGX_ERROR;
    }

    /* a request terminated while the continuation is posted */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_registry_stream_cleanup;
    cln->data = st;

    st->key = *key;
    st->start = ngx_http_registry_metrics_usec();
    st->ev.handler = ngx_http_registry_stream_continue;
    st->ev.data = r;
    st->ev.log = r->connection->log;

    if (ngx_http_upstream_create(r) != NGX_OK) {
        return NGX_ERROR;
    }

    u = r->upstream;

    u->resolved = ngx_pcalloc(r->pool, sizeof(ngx_http_upstream_resolved_t));
    if (u->resolved == NULL) {
        return NGX_ERROR;
    }

    u->resolved->sockaddr = mcf->s3_addr->sockaddr;
    u->resolved->socklen = mcf->s3_addr->socklen;
    u->resolved->naddrs = 1;
    u->resolved->port = ngx_inet_get_port(mcf->s3_addr->sockaddr);
    u->resolved->host = mcf->s3.host;
    u->resolved->name = mcf->s3.host;

    ngx_str_set(&u->schema, "http://");
    u->output.tag = (ngx_buf_tag_t) &ngx_http_registry_module;
    u->conf = mcf->s3_upstream;

    u->create_request = ngx_http_registry_stream_create_request;
    u->reinit_request = ngx_http_registry_stream_reinit_request;
    u->process_header = ngx_http_registry_stream_process_status;
    u->abort_request = ngx_http_registry_stream_abort_request;
    u->finalize_request = ngx_http_registry_stream_finalize_request;
    u->input_filter_init = ngx_http_registry_stream_filter_init;
    u->input_filter = ngx_http_registry_stream_filter;
    u->input_filter_ctx = r;

    /*
     * S3's answer is ours to read, not the client's: the upstream code
     * "sends" it (subrequest_in_memory does not keep a main request's
     * header from the client), and the filters below drop it
     */
    st->swallow = 1;

    ngx_memzero(&ctx->s3, sizeof(ngx_http_registry_s3_result_t));
    ctx->s3.content_length = -1;
    ctx->stream = st;
    ctx->next = next;

    /* the body filter hashes while nginx forwards; no post handler here */
    ctx->body.reading = 1;
    ctx->body.bytes = 0;

    r->request_body_no_buffering = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_upstream_init);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        ctx->next = NULL;
        ctx->body.reading = 0;
        return rc;
    }

    /* the upstream code runs under the step's hold (see body.c) */
    ngx_http_registry_release(r);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_stream_create_request(ngx_http_request_t *r)
{
    size_t                           len;
    ngx_buf_t                       *b;
    ngx_str_t                        uri, date, authorization;
    ngx_chain_t                     *cl;
    ngx_http_registry_ctx_t         *ctx;
    ngx_http_registry_sigv4_t        sv;
    ngx_http_registry_stream_t      *st;
    ngx_http_registry_main_conf_t   *mcf;
    ngx_tm_t                         tm;
    u_char                           datebuf[sizeof("YYYYMMDDTHHMMSSZ")];

    static ngx_str_t  unsigned_payload = ngx_string("UNSIGNED-PAYLOAD");

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    st = ctx->stream;

    uri.len = 1 + mcf->s3.bucket.len + 1 + st->key.len;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(uri.data, "/%V/%V", &mcf->s3.bucket, &st->key);

    ngx_gmtime(ngx_time(), &tm);
    date.data = datebuf;
    date.len = ngx_sprintf(datebuf, "%4d%02d%02dT%02d%02d%02dZ",
                           tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                           tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec)
               - datebuf;

    ngx_memzero(&sv, sizeof(ngx_http_registry_sigv4_t));

    ngx_str_set(&sv.method, "PUT");
    sv.uri = uri;
    sv.host = mcf->s3.host;
    sv.amz_date = date;
    sv.payload_hash = unsigned_payload;
    sv.region = mcf->s3.region;
    sv.access_key = mcf->s3.access_key;
    sv.secret_key = mcf->s3.secret_key;

    if (ngx_http_registry_sigv4_sign(r->pool, &sv, &authorization, NULL)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: s3 stream to \"%V\" cannot be signed", &uri);
        return NGX_ERROR;
    }

    len = sizeof("PUT  HTTP/1.1" CRLF) - 1 + uri.len
          + sizeof("Host: " CRLF) - 1 + mcf->s3.host.len
          + sizeof("Authorization: " CRLF) - 1 + authorization.len
          + sizeof("x-amz-date: " CRLF) - 1 + date.len
          + sizeof("x-amz-content-sha256: " CRLF) - 1 + unsigned_payload.len
          + sizeof("Content-Length: " CRLF) - 1 + NGX_OFF_T_LEN
          + sizeof("Connection: close" CRLF) - 1
          + sizeof(CRLF) - 1;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_sprintf(b->last,
                          "PUT %V HTTP/1.1" CRLF
                          "Host: %V" CRLF
                          "Authorization: %V" CRLF
                          "x-amz-date: %V" CRLF
                          "x-amz-content-sha256: %V" CRLF
                          "Content-Length: %O" CRLF
                          "Connection: close" CRLF CRLF,
                          &uri, &mcf->s3.host, &authorization, &date,
                          &unsigned_payload, r->headers_in.content_length_n);

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    /* without buffering, the upstream code appends the body as it comes */
    r->upstream->request_bufs = cl;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry s3 stream PUT \"%V\"", &uri);

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_stream_reinit_request(ngx_http_request_t *r)
{
    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_stream_process_status(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_upstream_t         *u;
    ngx_http_registry_ctx_t     *ctx;
    ngx_http_registry_stream_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    st = ctx->stream;
    u = r->upstream;

    rc = ngx_http_parse_status_line(r, &u->buffer, &st->status);

    if (rc == NGX_AGAIN) {
        return rc;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: s3 stream: no valid status line");
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if (u->state && u->state->status == 0) {
        u->state->status = st->status.code;
    }

    /* status_line stays empty: the client's status is set by us */
    u->headers_in.status_n = st->status.code;
    ctx->s3.status = st->status.code;

    u->process_header = ngx_http_registry_stream_process_header;

    return ngx_http_registry_stream_process_header(r);
}


/*
 * Headers are parsed, not kept: nothing of S3's answer may go into the
 * client's headers (the upstream code copies what headers_in holds).
 */

static ngx_int_t
ngx_http_registry_stream_process_header(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_str_t                 name, value;
    ngx_http_upstream_t      *u;
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    u = r->upstream;

    for ( ;; ) {

        rc = ngx_http_parse_header_line(r, &u->buffer, 1);

        if (rc == NGX_OK) {
            name.data = r->header_name_start;
            name.len = r->header_name_end - r->header_name_start;
            value.data = r->header_start;
            value.len = r->header_end - r->header_start;

            if (name.len == sizeof("Content-Length") - 1
                && ngx_strncasecmp(name.data, (u_char *) "Content-Length",
                                   name.len) == 0)
            {
                u->headers_in.content_length_n = ngx_atoof(value.data,
                                                           value.len);
                ctx->s3.content_length = u->headers_in.content_length_n;
            }

            continue;
        }

        if (rc == NGX_HTTP_PARSE_HEADER_DONE) {
            return NGX_OK;
        }

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: s3 stream: invalid header");

        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }
}


static ngx_int_t
ngx_http_registry_stream_filter_init(void *data)
{
    ngx_http_request_t *r = data;

    ngx_http_upstream_t  *u;

    u = r->upstream;

    /* read to the end, or to the close (we asked for one) */
    u->length = u->headers_in.content_length_n;

    return NGX_OK;
}


/* S3's body (an error document, if any) is dropped as it comes */

static ngx_int_t
ngx_http_registry_stream_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t *r = data;

    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u->length > 0) {
        u->length -= ngx_min(u->length, (off_t) bytes);
    }

    /* the buffer is read into again from where it was */

    return NGX_OK;
}


static void
ngx_http_registry_stream_abort_request(ngx_http_request_t *r)
{
    return;
}


/*
 * The upstream code ends.  With rc 0, S3 answered (whatever it said):
 * the request is held, and the answer is handled once the upstream code
 * has finalized its part.  Without an answer (502, 504) too: the error
 * page nginx then makes is swallowed and the step answers 503.
 */

static void
ngx_http_registry_stream_finalize_request(ngx_http_request_t *r,
    ngx_int_t rc)
{
    ngx_http_registry_ctx_t     *ctx;
    ngx_http_registry_stream_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    st = ctx->stream;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry s3 stream done rc:%i s:%ui", rc, ctx->s3.status);

    if (ctx->next == NULL) {
        st->swallow = 0;
        return;
    }

    if (!r->upstream->header_sent) {
        /*
         * S3 did not answer (refused, timed out): nginx's own error page
         * is swallowed like an answer, and the waiting step sees no
         * answer, which it reports as 503 with an OCI error body.
         */
        ngx_memzero(&ctx->s3, sizeof(ngx_http_registry_s3_result_t));
    }

    ngx_http_registry_metrics_s3(NGX_HTTP_REGISTRY_S3_PUT_OBJECT,
                                 ctx->s3.status, st->start);

    ngx_http_registry_hold(r);
    ngx_post_event(&st->ev, &ngx_posted_events);
}


static void
ngx_http_registry_stream_continue(ngx_event_t *ev)
{
    ngx_http_request_t *r = ev->data;

    ngx_connection_t         *c;
    ngx_http_registry_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    ((ngx_http_registry_stream_t *) ctx->stream)->swallow = 0;

    r->headers_out.status_line.len = 0;
    r->headers_out.status_line.data = NULL;
    r->headers_out.content_length_n = -1;
    r->headers_out.content_type.len = 0;
    r->err_status = 0;

    if (r->reading_body) {
        /* S3 answered before the body ended: the rest is not read */
        r->keepalive = 0;
        ctx->s3.status = ctx->s3.status ? ctx->s3.status
                                        : NGX_HTTP_BAD_GATEWAY;
    }

    ctx->body.reading = 0;

    ngx_http_registry_resume(r);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_registry_stream_cleanup(void *data)
{
    ngx_http_registry_stream_t *st = data;

    if (st->ev.posted) {
        ngx_delete_posted_event(&st->ev);
    }
}


static ngx_http_registry_stream_t *
ngx_http_registry_stream_get(ngx_http_request_t *r)
{
    ngx_http_registry_ctx_t     *ctx;
    ngx_http_registry_stream_t  *st;

    if (r != r->main) {
        return NULL;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    if (ctx == NULL || ctx->stream == NULL) {
        return NULL;
    }

    st = ctx->stream;

    return st->swallow ? st : NULL;
}


static ngx_int_t
ngx_http_registry_stream_header_filter(ngx_http_request_t *r)
{
    if (ngx_http_registry_stream_get(r) != NULL) {
        return NGX_OK;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_registry_stream_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t  *cl;

    if (ngx_http_registry_stream_get(r) == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    return NGX_OK;
}


/* the endpoint as an address, and the upstream settings of the stream */

ngx_int_t
ngx_http_registry_stream_init(ngx_conf_t *cf)
{
    u_char                         *host;
    ngx_int_t                       rc;
    ngx_addr_t                     *addr;
    ngx_hash_init_t                 hash;
    ngx_http_upstream_conf_t       *conf;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_registry_module);

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_registry_stream_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_registry_stream_body_filter;

    if (!mcf->s3.stream
        || mcf->s3.endpoint.len < 7
        || ngx_strncasecmp(mcf->s3.endpoint.data, (u_char *) "http://", 7)
           != 0)
    {
        return NGX_OK;
    }

    addr = ngx_pcalloc(cf->pool, sizeof(ngx_addr_t));
    if (addr == NULL) {
        return NGX_ERROR;
    }

    host = mcf->s3.host.data;

    rc = ngx_parse_addr_port(cf->pool, addr, host, mcf->s3.host.len);

    if (rc == NGX_DECLINED) {
        /* a name: the stream path is off, the subrequests still work */
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_inet_get_port(addr->sockaddr) == 0) {
        ngx_inet_set_port(addr->sockaddr, 80);
    }

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_conf_t));
    if (conf == NULL) {
        return NGX_ERROR;
    }

    conf->connect_timeout = 10000;
    conf->send_timeout = 60000;
    conf->read_timeout = 60000;
    conf->send_lowat = 0;
    conf->buffer_size = 4096;
    conf->next_upstream = 0;
    conf->next_upstream_tries = 1;
    conf->next_upstream_timeout = 0;
    conf->ignore_client_abort = 0;
    conf->intercept_errors = 0;
    ngx_str_set(&conf->module, "registry");

    hash.hash = &conf->hide_headers_hash;
    hash.key = ngx_hash_key_lc;
    hash.max_size = 64;
    hash.bucket_size = ngx_align(64, ngx_cacheline_size);
    hash.name = "registry_s3_hide_headers_hash";
    hash.pool = cf->pool;
    hash.temp_pool = NULL;

    if (ngx_hash_init(&hash, NULL, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    mcf->s3_addr = addr;
    mcf->s3_upstream = conf;

    return NGX_OK;
}
