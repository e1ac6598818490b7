
/*
 * Listings: GET /v2/<name>/tags/list and GET /v2/_catalog, both read in
 * lexical order from a zset of score 0 (repo:R:tagnames, repos) and paged
 * the same way: n limits, last is exclusive, a Link header names the next
 * page.  The catalog is filtered in Redis, before it is paged: a page, and
 * the "last" of its Link, hold only names the user may pull.
 */


#include "ngx_http_registry.h"


/* a larger n is served in pages of this size, each with its Link */
#define NGX_HTTP_REGISTRY_PAGE_MAX  10000


typedef struct {
    ngx_str_t                   path;      /* of this listing's URL */
    const char                 *field;     /* "tags" or "repositories" */
    ngx_int_t                   n;         /* -1: all */
} ngx_http_registry_page_t;


static ngx_int_t ngx_http_registry_list(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_page_t *page,
    ngx_str_t *key, ngx_str_t *repo, ngx_str_t *projects);
static ngx_int_t ngx_http_registry_list_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_list_link(ngx_http_request_t *r,
    ngx_http_registry_page_t *page, redisReply *last);




ngx_int_t
ngx_http_registry_tags_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                    *p;
    ngx_str_t                  key;
    ngx_http_registry_page_t  *page;

    static ngx_str_t  all = ngx_string("*");

    page = ngx_palloc(r->pool, sizeof(ngx_http_registry_page_t));
    if (page == NULL) {
        return NGX_ERROR;
    }

    page->field = "tags";

    page->path.len = sizeof("/v2//tags/list") - 1 + ctx->repo.len;
    key.len = sizeof("repo::tagnames") - 1 + ctx->repo.len;

    p = ngx_pnalloc(r->pool, page->path.len + key.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    page->path.data = p;
    p = ngx_cpymem(p, "/v2/", 4);
    p = ngx_cpymem(p, ctx->repo.data, ctx->repo.len);
    p = ngx_cpymem(p, "/tags/list", 10);

    key.data = p;
    p = ngx_cpymem(p, "repo:", 5);
    p = ngx_cpymem(p, ctx->repo.data, ctx->repo.len);
    ngx_memcpy(p, ":tagnames", 9);

    return ngx_http_registry_list(r, ctx, page, &key, &ctx->repo, &all);
}


ngx_int_t
ngx_http_registry_catalog_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                  projects;
    ngx_http_registry_page_t  *page;

    static ngx_str_t  key = ngx_string("repos");
    static ngx_str_t  none = ngx_string("");

    page = ngx_palloc(r->pool, sizeof(ngx_http_registry_page_t));
    if (page == NULL) {
        return NGX_ERROR;
    }

    page->field = "repositories";
    ngx_str_set(&page->path, "/v2/_catalog");

    ngx_http_registry_auth_listable(r, ctx, &projects);

    return ngx_http_registry_list(r, ctx, page, &key, &none, &projects);
}


/*
 * The paging both listings share: reads n and last, asks for n + 1
 * names so that the answer knows whether another page follows.
 */

static ngx_int_t
ngx_http_registry_list(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx,
    ngx_http_registry_page_t *page, ngx_str_t *key, ngx_str_t *repo,
    ngx_str_t *projects)
{
    ngx_int_t   rc;
    ngx_str_t   n, last, args[6];

    rc = ngx_http_registry_arg(r, "n", &n);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    page->n = -1;

    if (rc == NGX_OK) {
        page->n = ngx_atoi(n.data, n.len);

        if (page->n == NGX_ERROR) {
            return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST,
                                           "UNSUPPORTED",
                                           "n must be a non-negative "
                                           "integer");
        }

        if (page->n > NGX_HTTP_REGISTRY_PAGE_MAX) {
            page->n = NGX_HTTP_REGISTRY_PAGE_MAX;
        }
    }

    rc = ngx_http_registry_arg(r, "last", &last);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        /* hiredis copies len bytes from data: never from NULL */
        ngx_str_set(&last, "");
    }

    args[0] = *key;
    ngx_str_set(&args[1], "repos");
    args[2] = *repo;
    args[3] = last;
    ngx_str_set(&args[4], "");
    args[5] = *projects;

    if (page->n >= 0) {
        args[4].data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (args[4].data == NULL) {
            return NGX_ERROR;
        }

        args[4].len = ngx_sprintf(args[4].data, "%i", page->n + 1)
                      - args[4].data;
    }

    ctx->data = page;
    return ngx_http_registry_run(r, ngx_http_registry_list_done,
                                 "list_page", 2, args, 6);
}


static ngx_int_t
ngx_http_registry_list_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                     i, n;
    json_t                    *json, *list, *name;
    redisReply                *rp, *e;
    ngx_http_registry_page_t  *page;

    page = ctx->data;
    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->type == REDIS_REPLY_NIL) {
        return ngx_http_registry_error(r, NGX_HTTP_NOT_FOUND, "NAME_UNKNOWN",
                                       "repository name not known to "
                                       "registry");
    }

    if (rp->type != REDIS_REPLY_ARRAY) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    n = rp->elements;

    if (page->n >= 0 && n > (size_t) page->n) {
        /* the extra name only told that more remain */
        n = page->n;

        /* n=0 asks for nothing: a Link with n=0 would never advance */
        if (n > 0
            && ngx_http_registry_list_link(r, page, rp->element[n - 1])
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    json = json_object();
    if (json == NULL) {
        return NGX_ERROR;
    }

    if (ctx->route == NGX_HTTP_REGISTRY_ROUTE_TAGS
        && json_object_set_new(json, "name",
                               json_stringn((char *) ctx->repo.data,
                                            ctx->repo.len))
           != 0)
    {
        goto failed;
    }

    list = json_array();

    if (json_object_set_new(json, page->field, list) != 0) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        e = rp->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            json_decref(json);
            return ngx_http_registry_redis_failed(r, ctx);
        }

        name = json_stringn(e->str, e->len);

        if (json_array_append_new(list, name) != 0) {
            goto failed;
        }
    }

    return ngx_http_registry_send_json(r, NGX_HTTP_OK, json);

failed:

    json_decref(json);
    return NGX_ERROR;
}


/* Link: </v2/.../tags/list?n=N&last=LAST>; rel="next" */

static ngx_int_t
ngx_http_registry_list_link(ngx_http_request_t *r,
    ngx_http_registry_page_t *page, redisReply *last)
{
    u_char     *p;
    size_t      escape;
    ngx_str_t   link;

    if (last->type != REDIS_REPLY_STRING) {
        return NGX_ERROR;
    }

    escape = 2 * ngx_escape_uri(NULL, (u_char *) last->str, last->len,
                                NGX_ESCAPE_ARGS);

    link.len = sizeof("<?n=&last=>; rel=\"next\"") - 1 + page->path.len
               + NGX_INT_T_LEN + last->len + escape;

    p = ngx_pnalloc(r->pool, link.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    link.data = p;

    p = ngx_sprintf(p, "<%V?n=%i&last=", &page->path, page->n);
    p = (u_char *) ngx_escape_uri(p, (u_char *) last->str, last->len,
                                  NGX_ESCAPE_ARGS);
    p = ngx_cpymem(p, ">; rel=\"next\"", sizeof(">; rel=\"next\"") - 1);

    link.len = p - link.data;

    return ngx_http_registry_add_header(r, "Link", &link);
}


