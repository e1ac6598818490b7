
/*
 * The router: maps a /v2/ or /apis/ URI to a route, checks the
 * repository name and the reference, and hands the request to the file
 * that owns the route.
 */


#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_API_PREFIX  "/apis/image.openshift.io/v1/"


typedef ngx_int_t (*ngx_http_registry_route_pt)(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);


typedef struct {
    ngx_uint_t                  route;
    ngx_uint_t                  methods;
    ngx_uint_t                  needs_body;    /* methods that read one */
    ngx_http_registry_route_pt  handler;
    const char                 *allow;
} ngx_http_registry_route_t;


static ngx_int_t ngx_http_registry_base(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_parse_api(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_check_name(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_uint_t ngx_http_registry_is_component(u_char *p, u_char *last);


static ngx_http_registry_route_t  ngx_http_registry_routes[] = {

    { NGX_HTTP_REGISTRY_ROUTE_BASE,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_base, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_CATALOG,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_catalog_handler, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_TAGS,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_tags_handler, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_MANIFEST,
      NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PUT|NGX_HTTP_DELETE, NGX_HTTP_PUT,
      ngx_http_registry_manifest_handler, "GET, HEAD, PUT, DELETE" },

    { NGX_HTTP_REGISTRY_ROUTE_BLOB,
      NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE, 0,
      ngx_http_registry_blob_handler, "GET, HEAD, DELETE" },

    { NGX_HTTP_REGISTRY_ROUTE_UPLOADS,
      NGX_HTTP_POST, NGX_HTTP_POST,
      ngx_http_registry_uploads_handler, "POST" },

    { NGX_HTTP_REGISTRY_ROUTE_UPLOAD,
      NGX_HTTP_GET|NGX_HTTP_PATCH|NGX_HTTP_PUT|NGX_HTTP_DELETE,
      NGX_HTTP_PATCH|NGX_HTTP_PUT,
      ngx_http_registry_upload_handler, "GET, PATCH, PUT, DELETE" },

    { NGX_HTTP_REGISTRY_ROUTE_REFERRERS,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_referrers_handler, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_TOKEN,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_token_handler, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_API_STREAMS,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_api_streams_handler, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_API_STREAM,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_api_stream_handler, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_API_TAG,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_api_tag_handler, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_API_IMAGE,
      NGX_HTTP_GET|NGX_HTTP_HEAD, 0,
      ngx_http_registry_api_image_handler, "GET, HEAD" },

    { NGX_HTTP_REGISTRY_ROUTE_NONE, 0, 0, NULL, NULL }
};


ngx_int_t
ngx_http_registry_route(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t                   rc;
    ngx_str_t                   allow;
    ngx_http_registry_route_t  *rt;

    if (ctx->route == NGX_HTTP_REGISTRY_ROUTE_NONE
        && ngx_http_registry_parse(r, ctx) != NGX_OK)
    {
        return ngx_http_registry_error(r, ctx->error_status,
                                       ctx->error_code, ctx->error_message);
    }

    for (rt = ngx_http_registry_routes; rt->handler; rt++) {
        if (rt->route == ctx->route) {
            break;
        }
    }

    if (rt->handler == NULL) {
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND, "UNSUPPORTED",
                                       "no such endpoint");
    }

    if (!(r->method & rt->methods)) {
        allow.data = (u_char *) rt->allow;
        allow.len = ngx_strlen(rt->allow);

        if (ngx_http_registry_add_header(r, "Allow", &allow) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_registry_error(r, NGX_HTTP_NOT_ALLOWED,
                                       "UNSUPPORTED",
                                       "method not allowed on this endpoint");
    }

    if (!(r->method & rt->needs_body)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return rt->handler(r, ctx);
}


static ngx_int_t
ngx_http_registry_base(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx)
{
    static ngx_str_t  type = ngx_string("application/json");

    return ngx_http_registry_send(r, NGX_HTTP_OK, &type, (u_char *) "{}", 2);
}


static ngx_int_t
ngx_http_registry_parse_fail(ngx_http_registry_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *message)
{
    ctx->route = NGX_HTTP_REGISTRY_ROUTE_NONE;
    ctx->error_status = status;
    ctx->error_code = code;
    ctx->error_message = message;

    return NGX_DECLINED;
}


/*
 * Sets the route, repository, reference and action of a request, or, for
 * a request that cannot be served, the error to answer (NGX_DECLINED).
 * Sends nothing: the access phase uses it before the content handler.
 */

ngx_int_t
ngx_http_registry_parse(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx)
{
    u_char     *start, *end, *p, *name_end, *seg[4];
    ngx_int_t   n;
    ngx_str_t   uri;

    uri = r->uri;

    if (uri.len == sizeof("/openshift/token") - 1
        && ngx_strncmp(uri.data, "/openshift/token", uri.len) == 0)
    {
        ctx->route = NGX_HTTP_REGISTRY_ROUTE_TOKEN;
        return NGX_OK;
    }

    if (ngx_http_registry_api_uri(r)) {
        return ngx_http_registry_parse_api(r, ctx);
    }

    if (uri.len < 3 || ngx_strncmp(uri.data, "/v2", 3) != 0
        || (uri.len > 3 && uri.data[3] != '/'))
    {
        return ngx_http_registry_parse_fail(ctx, NGX_HTTP_NOT_FOUND,
                                            "UNSUPPORTED",
                                            "no such endpoint");
    }

    if (uri.len <= 4) {
        ctx->route = NGX_HTTP_REGISTRY_ROUTE_BASE;
        return NGX_OK;
    }

    start = uri.data + 4;
    end = uri.data + uri.len;

    if (end - start == 8 && ngx_strncmp(start, "_catalog", 8) == 0) {
        ctx->route = NGX_HTTP_REGISTRY_ROUTE_CATALOG;
        ctx->action = NGX_HTTP_REGISTRY_ACTION_LIST;
        return NGX_OK;
    }

    /*
     * References and upload ids never hold a "/", so the route is read
     * from the right: the last segments, and the name before them.
     * seg[0] is the start of the last segment, seg[1] of the one before.
     */

    n = 0;
    p = end;
    name_end = NULL;

    if (p[-1] == '/') {
        /* ".../blobs/uploads/": an empty last segment */
        seg[n++] = p;
        p--;
    }

    while (n < 4 && p > start) {
        while (p > start && p[-1] != '/') {
            p--;
        }

        seg[n++] = p;

        if (p == start) {
            break;
        }

        p--;
    }

#define ngx_http_registry_seg_is(i, s)                                        \
    (n > i && (size_t) ((i ? seg[i - 1] - 1 : end) - seg[i]) == sizeof(s) - 1 \
     && ngx_strncmp(seg[i], s, sizeof(s) - 1) == 0)

    if (ngx_http_registry_seg_is(0, "list")
        && ngx_http_registry_seg_is(1, "tags"))
    {
        ctx->route = NGX_HTTP_REGISTRY_ROUTE_TAGS;
        ctx->action = NGX_HTTP_REGISTRY_ACTION_PULL;
        name_end = seg[1] - 1;

    } else if (ngx_http_registry_seg_is(1, "uploads")
               && ngx_http_registry_seg_is(2, "blobs"))
    {
        ctx->route = (seg[0] == end) ? NGX_HTTP_REGISTRY_ROUTE_UPLOADS
                                     : NGX_HTTP_REGISTRY_ROUTE_UPLOAD;
        ctx->action = NGX_HTTP_REGISTRY_ACTION_PUSH;
        name_end = seg[2] - 1;

    } else if (ngx_http_registry_seg_is(0, "uploads")
               && ngx_http_registry_seg_is(1, "blobs"))
    {
        ctx->route = NGX_HTTP_REGISTRY_ROUTE_UPLOADS;
        ctx->action = NGX_HTTP_REGISTRY_ACTION_PUSH;
        name_end = seg[1] - 1;
        seg[0] = end;

    } else if (ngx_http_registry_seg_is(1, "manifests")) {
        ctx->route = NGX_HTTP_REGISTRY_ROUTE_MANIFEST;
        name_end = seg[1] - 1;

    } else if (ngx_http_registry_seg_is(1, "blobs")) {
        ctx->route = NGX_HTTP_REGISTRY_ROUTE_BLOB;
        name_end = seg[1] - 1;

    } else if (ngx_http_registry_seg_is(1, "referrers")) {
        ctx->route = NGX_HTTP_REGISTRY_ROUTE_REFERRERS;
        ctx->action = NGX_HTTP_REGISTRY_ACTION_PULL;
        name_end = seg[1] - 1;

    } else {
        return ngx_http_registry_parse_fail(ctx, NGX_HTTP_NOT_FOUND,
                                            "UNSUPPORTED",
                                            "no such endpoint");
    }

#undef ngx_http_registry_seg_is

    if (name_end <= start) {
        return ngx_http_registry_parse_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                            "NAME_INVALID",
                                            "repository name is missing");
    }

    ctx->repo.data = start;
    ctx->repo.len = name_end - start;

    if (ctx->route != NGX_HTTP_REGISTRY_ROUTE_TAGS
        && ctx->route != NGX_HTTP_REGISTRY_ROUTE_UPLOADS)
    {
        ctx->reference.data = seg[0];
        ctx->reference.len = end - seg[0];
    }

    if (ctx->action == NGX_HTTP_REGISTRY_ACTION_NONE) {
        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            ctx->action = NGX_HTTP_REGISTRY_ACTION_PULL;

        } else if (r->method == NGX_HTTP_DELETE) {
            ctx->action = NGX_HTTP_REGISTRY_ACTION_DELETE;

        } else {
            ctx->action = NGX_HTTP_REGISTRY_ACTION_PUSH;
        }
    }

    return ngx_http_registry_check_name(r, ctx);
}


/*
 * /apis/image.openshift.io/v1/...: the route, with ctx's project,
 * repository, reference and action; NGX_DECLINED with ctx->error_* set
 * when the URI names nothing that can exist (404, as Kubernetes
 * answers).  The list of a project's streams is authorized as a pull of
 * <project>/imagestreams: the authorizer decides by project.
 */

static ngx_int_t
ngx_http_registry_parse_api(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char      *p, *last, *colon;
    ngx_str_t    seg[5];
    ngx_uint_t   n, route;

    p = r->uri.data + sizeof(NGX_HTTP_REGISTRY_API_PREFIX) - 1;
    last = r->uri.data + r->uri.len;

    if (r->uri.len < sizeof(NGX_HTTP_REGISTRY_API_PREFIX) - 1
        || ngx_strncmp(r->uri.data, NGX_HTTP_REGISTRY_API_PREFIX,
                       sizeof(NGX_HTTP_REGISTRY_API_PREFIX) - 1)
           != 0)
    {
        goto not_found;
    }

    for (n = 0; p < last; n++) {
        if (n == 5) {
            goto not_found;
        }

        seg[n].data = p;

        while (p < last && *p != '/') {
            p++;
        }

        seg[n].len = p - seg[n].data;

        if (seg[n].len == 0) {
            goto not_found;
        }

        if (p < last) {
            p++;

            if (p == last) {
                goto not_found;
            }
        }
    }

#define ngx_http_registry_seg_is(i, s)                                        \
    (seg[i].len == sizeof(s) - 1 && ngx_strncmp(seg[i].data, s, seg[i].len) \
                                    == 0)

    ngx_str_null(&ctx->image);
    ngx_str_null(&ctx->reference);

    if (n == 2 && ngx_http_registry_seg_is(0, "images")) {
        if (ngx_http_registry_check_digest(&seg[1]) != NGX_OK) {
            goto not_found;
        }

        ctx->route = NGX_HTTP_REGISTRY_ROUTE_API_IMAGE;
        ctx->action = NGX_HTTP_REGISTRY_ACTION_LIST;
        ctx->reference = seg[1];
        ngx_str_null(&ctx->repo);
        ngx_str_null(&ctx->project);

        return NGX_OK;
    }

    if (n < 3 || !ngx_http_registry_seg_is(0, "namespaces")) {
        goto not_found;
    }

    ctx->project = seg[1];

    if (n == 3 && ngx_http_registry_seg_is(2, "imagestreams")) {
        route = NGX_HTTP_REGISTRY_ROUTE_API_STREAMS;
        ngx_str_set(&ctx->image, "imagestreams");

    } else if (n == 4 && ngx_http_registry_seg_is(2, "imagestreams")) {
        route = NGX_HTTP_REGISTRY_ROUTE_API_STREAM;
        ctx->image = seg[3];

    } else if (n == 4 && ngx_http_registry_seg_is(2, "imagestreamtags")) {
        route = NGX_HTTP_REGISTRY_ROUTE_API_TAG;

        colon = ngx_strlchr(seg[3].data, seg[3].data + seg[3].len, ':');
        if (colon == NULL) {
            goto not_found;
        }

        ctx->image.data = seg[3].data;
        ctx->image.len = colon - seg[3].data;
        ctx->reference.data = colon + 1;
        ctx->reference.len = seg[3].data + seg[3].len - colon - 1;

        if (!ngx_http_registry_is_tag(&ctx->reference)) {
            goto not_found;
        }

    } else {
        goto not_found;
    }

#undef ngx_http_registry_seg_is

    if (ngx_http_registry_keyf(r->pool, &ctx->repo, "%V/%V", &ctx->project,
                               &ctx->image)
        != NGX_OK)
    {
        return ngx_http_registry_parse_fail(ctx,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            "UNKNOWN", "out of memory");
    }

    if (!ngx_http_registry_is_repo(&ctx->repo)) {
        goto not_found;
    }

    if (route == NGX_HTTP_REGISTRY_ROUTE_API_STREAMS) {
        ngx_str_null(&ctx->image);
    }

    ctx->route = route;
    ctx->action = NGX_HTTP_REGISTRY_ACTION_PULL;

    return NGX_OK;

not_found:

    return ngx_http_registry_parse_fail(ctx, NGX_HTTP_NOT_FOUND,
                                        "NAME_UNKNOWN",
                                        "the server could not find the "
                                        "requested resource");
}


/*
 * A repository is exactly <project>/<image>, each a path component of
 * the OCI grammar: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
 */

static ngx_int_t
ngx_http_registry_check_name(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char  *slash, *last;

    static const char  *msg =
        "repository name must be of the format <project>/<name>, "
        "each lowercase letters and digits separated by '.', '_', '__' "
        "or '-'";

    if (!ngx_http_registry_is_repo(&ctx->repo)) {
        return ngx_http_registry_parse_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                            "NAME_INVALID", msg);
    }

    last = ctx->repo.data + ctx->repo.len;
    slash = ngx_strlchr(ctx->repo.data, last, '/');

    ctx->project.data = ctx->repo.data;
    ctx->project.len = slash - ctx->repo.data;
    ctx->image.data = slash + 1;
    ctx->image.len = last - slash - 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_registry_is_repo(ngx_str_t *name)
{
    u_char  *slash, *last;

    last = name->data + name->len;
    slash = ngx_strlchr(name->data, last, '/');

    return name->len <= 255 && slash != NULL
           && ngx_http_registry_is_component(name->data, slash)
           && ngx_http_registry_is_component(slash + 1, last);
}


static ngx_uint_t
ngx_http_registry_is_component(u_char *p, u_char *last)
{
    u_char  *start, *sep;

    if (p == last) {
        return 0;
    }

    start = p;

    while (p < last) {

        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) {
            p++;
            continue;
        }

        /* a separator run sits between two alphanumerics */

        sep = p;

        while (p < last && (*p == '.' || *p == '_' || *p == '-')) {
            p++;
        }

        if (sep == start || p == last
            || !((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
        {
            return 0;
        }

        if (p - sep == 1) {
            continue;
        }

        if (p - sep == 2 && sep[0] == '_' && sep[1] == '_') {
            continue;
        }

        while (sep < p && *sep == '-') {
            sep++;
        }

        if (sep != p) {
            return 0;
        }
    }

    return 1;
}


/* tags: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127} */

ngx_int_t
ngx_http_registry_is_tag(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len > 128 || s->data[0] == '.'
        || s->data[0] == '-')
    {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (!((s->data[i] >= 'a' && s->data[i] <= 'z')
              || (s->data[i] >= 'A' && s->data[i] <= 'Z')
              || (s->data[i] >= '0' && s->data[i] <= '9')
              || s->data[i] == '_' || s->data[i] == '.'
              || s->data[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * NGX_OK for sha256:<64 lowercase hex>, NGX_DECLINED for a well-formed
 * digest of another algorithm, NGX_ERROR for anything else.
 */

ngx_int_t
ngx_http_registry_check_digest(ngx_str_t *s)
{
    size_t   i, hex;
    u_char  *colon, c;

    colon = ngx_strlchr(s->data, s->data + s->len, ':');
    if (colon == NULL || colon == s->data) {
        return NGX_ERROR;
    }

    for (i = 0; s->data + i < colon; i++) {
        c = s->data[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '+' || c == '.' || c == '_' || c == '-'))
        {
            return NGX_ERROR;
        }
    }

    hex = s->data + s->len - colon - 1;

    if (hex == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < hex; i++) {
        c = colon[1 + i];
        if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'))) {
            if (colon - s->data == 6
                && ngx_strncmp(s->data, "sha256", 6) == 0)
            {
                return NGX_ERROR;
            }

            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || c == '=' || c == '_' || c == '-'))
            {
                return NGX_ERROR;
            }
        }
    }

    if (colon - s->data == 6 && ngx_strncmp(s->data, "sha256", 6) == 0) {
        return (hex == 64) ? NGX_OK : NGX_ERROR;
    }

    return NGX_DECLINED;
}


/* answers the error an invalid digest deserves */

ngx_int_t
ngx_http_registry_digest_error(ngx_http_request_t *r, ngx_str_t *digest)
{
    switch (ngx_http_registry_check_digest(digest)) {

    case NGX_DECLINED:
        return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST,
                                       "UNSUPPORTED",
                                       "only sha256 digests are supported");

    default:
        return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST,
                                       "DIGEST_INVALID",
                                       "invalid digest");
    }
}


/* an unescaped query argument; NGX_DECLINED when absent */

ngx_int_t
ngx_http_registry_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    u_char     *dst, *src;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, raw.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    value->data = dst;
    src = raw.data;

    ngx_unescape_uri(&dst, &src, raw.len, NGX_UNESCAPE_URI);

    value->len = dst - value->data;

    return NGX_OK;
}
