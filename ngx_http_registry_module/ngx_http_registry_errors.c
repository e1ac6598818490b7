
/*
 * nginx's own error pages in registry locations.
 *
 * When nginx itself refuses a request there (a bad chunked body, a body
 * over client_max_body_size: found while it reads the body, so it
 * finalizes the request with the status; or a bare status a handler
 * returned), ngx_http_special_response_handler() sends its HTML page
 * with r->err_status set.  The module's own answers never have it set
 * (ngx_http_send_header() would put err_status in place of their
 * status).  These filters send the OCI error body instead, a Status
 * under /apis/; the status and the headers stay nginx's, so does its
 * Connection: close after a 400 or a 413, and nginx still discards or
 * closes as it decided.  Statuses not listed keep nginx's page.
 */


#include "ngx_http_registry.h"


typedef struct {
    ngx_uint_t                  status;
    const char                 *code;      /* NULL: by route */
    const char                 *message;
} ngx_http_registry_error_page_t;


static ngx_int_t ngx_http_registry_errors_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_errors_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_http_registry_error_page_t  ngx_http_registry_error_pages[] = {
    { NGX_HTTP_BAD_REQUEST, NULL, "invalid request body" },
    { NGX_HTTP_UNAUTHORIZED, "UNAUTHORIZED", "authentication required" },
    { NGX_HTTP_FORBIDDEN, "DENIED", "access denied" },
    { NGX_HTTP_NOT_FOUND, "UNSUPPORTED", "no such endpoint" },
    { NGX_HTTP_NOT_ALLOWED, "UNSUPPORTED", "method not allowed" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "SIZE_INVALID",
      "request body too large" },
    { 429, "TOOMANYREQUESTS", "too many requests" },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "UNKNOWN", "internal error" },
    { NGX_HTTP_BAD_GATEWAY, "UNAVAILABLE", "bad gateway" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", "service unavailable" },
    { NGX_HTTP_GATEWAY_TIME_OUT, "UNAVAILABLE", "gateway timeout" },
    { 0, NULL, NULL }
};


static ngx_str_t  ngx_http_registry_errors_json_type =
    ngx_string("application/json");

static ngx_str_t  ngx_http_registry_errors_api_version =
    ngx_string("registry/2.0");


/*
 * A 400 nginx makes in a registry location is a body it could not read:
 * the code the spec names for a bad body of the route (an upload's, a
 * manifest's); other routes take no body, so the request as a whole is
 * one the registry does not support.
 */

static const char *
ngx_http_registry_errors_bad_request(ngx_http_registry_ctx_t *ctx)
{
    switch (ctx->route) {

    case NGX_HTTP_REGISTRY_ROUTE_UPLOADS:
    case NGX_HTTP_REGISTRY_ROUTE_UPLOAD:
        return "BLOB_UPLOAD_INVALID";

    case NGX_HTTP_REGISTRY_ROUTE_MANIFEST:
        return "MANIFEST_INVALID";

    default:
        return "UNSUPPORTED";
    }
}


static ngx_int_t
ngx_http_registry_errors_header_filter(ngx_http_request_t *r)
{
    json_t                          *json;
    const char                      *code;
    ngx_http_registry_ctx_t         *ctx;
    ngx_http_registry_loc_conf_t    *lcf;
    ngx_http_registry_error_page_t  *page;

    if (r != r->main || r->err_status == 0) {
        return ngx_http_next_header_filter(r);
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (lcf == NULL || lcf->handler != NGX_HTTP_REGISTRY_HANDLER_REGISTRY) {
        return ngx_http_next_header_filter(r);
    }

    for (page = ngx_http_registry_error_pages; page->status; page++) {
        if (page->status == r->headers_out.status) {
            break;
        }
    }

    if (page->status == 0) {
        return ngx_http_next_header_filter(r);
    }

    /* none yet when nginx refused before the content handler (a 413) */
    ctx = ngx_http_registry_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    code = page->code ? page->code : ngx_http_registry_errors_bad_request(ctx);

    if (ngx_http_registry_api_uri(r)) {
        json = ngx_http_registry_api_status_json(page->status, page->message);

    } else {
        json = json_pack("{s:[{s:s,s:s}]}", "errors", "code", code,
                         "message", page->message);
    }

    if (json == NULL
        || ngx_http_registry_json_text(r->pool, json, &ctx->error_body)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_registry_add_header(r, "Docker-Distribution-API-Version",
                                     &ngx_http_registry_errors_api_version)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->error_page = 1;

    r->headers_out.content_type = ngx_http_registry_errors_json_type;
    r->headers_out.content_type_len = ngx_http_registry_errors_json_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = ctx->error_body.len;

    return ngx_http_next_header_filter(r);
}


/* nginx's page is dropped; the OCI body goes in its place, once */

static ngx_int_t
ngx_http_registry_errors_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                *b;
    ngx_chain_t              *cl, out;
    ngx_http_registry_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    if (ctx == NULL || !ctx->error_page) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
    }

    if (ctx->error_body.data == NULL) {
        /* sent: what follows can only be the writer's flush */
        return ngx_http_next_body_filter(r, NULL);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->error_body.data;
    b->last = b->pos + ctx->error_body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    ctx->error_body.data = NULL;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


ngx_int_t
ngx_http_registry_errors_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_registry_errors_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_registry_errors_body_filter;

    return NGX_OK;
}
