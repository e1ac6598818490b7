
/*
 * ngx_http_registry_module: responses.  Whole bodies sent from memory,
 * JSON documents, and the error bodies, chosen by route: the OCI error
 * body for the registry API, a Kubernetes Status for /apis.
 */


#include "ngx_http_registry.h"


static ngx_str_t  ngx_http_registry_json_type =
    ngx_string("application/json");


ngx_int_t
ngx_http_registry_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


/* 202 without a body; a step, so that it may follow a WAIT */

ngx_int_t
ngx_http_registry_accepted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    return ngx_http_registry_send(r, NGX_HTTP_ACCEPTED, NULL, NULL, 0);
}


/* sends a whole response held in memory; returns what finalize wants */

ngx_int_t
ngx_http_registry_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *content_type, u_char *data, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    static ngx_str_t  api_version = ngx_string("registry/2.0");

    /*
     * An answer given before the body was read (a refused chunk, an
     * unknown upload): the body is still consumed, else on a keep-alive
     * connection its bytes would be parsed as the next request.  A no-op
     * once the body was read or discarded.
     */

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_registry_add_header(r, "Docker-Distribution-API-Version",
                                     &api_version)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->headers_out.status = status;

    if (content_type != NULL) {
        r->headers_out.content_type = *content_type;
        r->headers_out.content_type_len = content_type->len;
    }

    if (len == 0 && data == NULL) {
        r->headers_out.content_length_n = 0;
        r->header_only = 1;

    } else {
        r->headers_out.content_length_n = len;
    }

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The OCI error body; the message is ours, never the client's input.
 * A 5xx is logged as an error, except 503: its cause (Redis lost, S3 not
 * answering) is logged where it is found, and an outage must not write
 * a line per refused request.
 */

ngx_int_t
ngx_http_registry_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    json_t      *body;
    ngx_uint_t   level;

    level = (status >= NGX_HTTP_INTERNAL_SERVER_ERROR
             && status != NGX_HTTP_SERVICE_UNAVAILABLE)
            ? NGX_LOG_ERR : NGX_LOG_INFO;

    if (r->header_sent) {
        /* a streamed response broke after its header: just end it */
        return NGX_ERROR;
    }

    if (ngx_http_registry_api_uri(r)) {
        /* Kubernetes clients read a Status, whoever refuses */

        ngx_log_error(level, r->connection->log, 0,
                      "registry: %ui %s: %s", status, code, message);

        return ngx_http_registry_api_status(r, status, message);
    }

    body = json_pack("{s:[{s:s,s:s}]}", "errors", "code", code,
                     "message", message);
    if (body == NULL) {
        return NGX_ERROR;
    }

    ngx_log_error(level, r->connection->log, 0,
                  "registry: %ui %s: %s", status, code, message);

    return ngx_http_registry_send_json(r, status, body);
}


ngx_int_t
ngx_http_registry_unavailable(ngx_http_request_t *r, const char *what)
{
    return ngx_http_registry_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "UNAVAILABLE", what);
}


/* a step got no usable Redis reply: 503, with Redis's error logged */

ngx_int_t
ngx_http_registry_redis_failed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->reply == NULL) {
        return ngx_http_registry_unavailable(r, "redis: no answer");
    }

    if (ctx->reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: redis error: %*s",
                      ctx->reply->len, ctx->reply->str);

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: unexpected redis reply type %d",
                      ctx->reply->type);
    }

    return ngx_http_registry_unavailable(r, "redis: error");
}


ngx_int_t
ngx_http_registry_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    return ngx_http_registry_send_json_as(r, status,
                                          &ngx_http_registry_json_type, json);
}


/* a JSON document as compact text in the pool; the document is released */

ngx_int_t
ngx_http_registry_json_text(ngx_pool_t *pool, json_t *json, ngx_str_t *out)
{
    char    *text;
    size_t   len;

    text = json_dumps(json, JSON_COMPACT);
    json_decref(json);

    if (text == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(text);

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, text, len);
    out->len = len;
    free(text);

    return NGX_OK;
}


/* sends a JSON document and releases it */

ngx_int_t
ngx_http_registry_send_json_as(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, json_t *json)
{
    ngx_str_t  text;

    if (ngx_http_registry_json_text(r->pool, json, &text) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_registry_send(r, status, type, text.data, text.len);
}


/* an S3 operation failed: 503 when S3 did not answer, 500 otherwise */

ngx_int_t
ngx_http_registry_s3_failed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    if (ctx->s3.status == 0 || ctx->s3.status == NGX_HTTP_BAD_GATEWAY
        || ctx->s3.status == NGX_HTTP_GATEWAY_TIME_OUT
        || ctx->s3.status == NGX_HTTP_SERVICE_UNAVAILABLE)
    {
        return ngx_http_registry_unavailable(r, "s3: no answer");
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: s3 answered %ui \"%V\"",
                  ctx->s3.status, &ctx->s3.error_code);

    return ngx_http_registry_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "UNKNOWN", "storage error");
}
