
/*
 * Authorization, as the OpenShift integrated registry does it: an
 * access-phase handler for "registry" locations.  It reads the client's
 * credentials (Bearer T, or Basic with the password as T and the user
 * name ignored), asks the location named by "registry_auth" through a
 * subrequest whether T may do the request's action on its repository,
 * and answers 401 (with the Bearer challenge) or 403 for a refusal.
 * Decisions are cached (auth_cache.c) keyed by SHA-256(token "\n"
 * repository "\n" action): never the token itself.  For a
 * cross-repository mount, pull on the source repository is asked too; a
 * refusal only sets ctx->mount_denied (a new upload session is started,
 * revealing nothing).
 *
 * The subrequest is a GET with an empty body and only these headers:
 *
 *     Authorization: Bearer T     absent for anonymous requests
 *     X-Registry-Action           pull, push, delete, list or none
 *     X-Registry-Repository       <project>/<image> (pull, push, delete)
 *     X-Registry-Project          <project>
 *
 * 2xx allows; the answer may name the user (X-Registry-User) and, for
 * "list" (the catalog), the projects the user may pull
 * (X-Registry-Projects: "*" or "p1,p2").  401 and 403 refuse; 502, 503
 * and 504 are 503 UNAVAILABLE (logged once per outage); anything else is
 * a 500, logged.  The default authorizer is in authorizer.c.
 *
 * Credentials never reach a log or an error body: only their hashes are
 * used as keys, and no message here prints a header.
 */


#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_AUTH_USER   255   /* longest user name kept */


/* a request's authorization, in ctx->auth */
typedef struct {
    ngx_str_t                   token;         /* empty: anonymous */

    /* the question being asked */
    ngx_str_t                   repo;
    ngx_str_t                   project;
    ngx_uint_t                  action;
    u_char                      key[SHA256_DIGEST_LENGTH];

    /* its answer */
    ngx_uint_t                  status;
    ngx_str_t                   user;
    ngx_str_t                   projects;

    ngx_str_t                   listable;      /* for the catalog */

    unsigned                    mount:1;       /* asking about "from" */
    unsigned                    asked:1;       /* answer not from cache */
    unsigned                    done:1;        /* the subrequest ended */
} ngx_http_registry_auth_t;


static ngx_int_t ngx_http_registry_auth_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_registry_auth_ask(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_auth_t *a);
static ngx_int_t ngx_http_registry_auth_decide(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_auth_t *a);
static ngx_uint_t ngx_http_registry_auth_unavailable(ngx_uint_t status);
static void ngx_http_registry_auth_count(ngx_http_registry_ctx_t *ctx,
    ngx_uint_t status);
static void ngx_http_registry_auth_outage(ngx_http_request_t *r,
    ngx_uint_t status);
static ngx_int_t ngx_http_registry_auth_refuse(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_registry_auth_subrequest(ngx_http_request_t *r,
    ngx_http_registry_auth_t *a);
static ngx_int_t ngx_http_registry_auth_push_header(ngx_http_request_t *sr,
    const char *name, ngx_str_t *value, ngx_table_elt_t **elt);
static ngx_int_t ngx_http_registry_auth_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_registry_auth_key(ngx_pool_t *pool,
    ngx_http_registry_auth_t *a);
static ngx_int_t ngx_http_registry_auth_user_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* indexed by NGX_HTTP_REGISTRY_ACTION_* (the authorizer reads them too) */
ngx_str_t  ngx_http_registry_auth_actions[] = {
    ngx_string("none"),
    ngx_string("pull"),
    ngx_string("push"),
    ngx_string("delete"),
    ngx_string("list")
};

/* what a client asks the token endpoint for, by action */
static const char  *ngx_http_registry_auth_scopes[] = {
    NULL, "pull", "pull,push", "delete", NULL
};


static ngx_str_t  ngx_http_registry_auth_user_name =
    ngx_string("registry_user");

/* the worker's requests refused since the authorizer stopped answering */
static ngx_uint_t  ngx_http_registry_auth_refused;


/* registry_auth LOCATION | off */

char *
ngx_http_registry_auth_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    ngx_str_t  *value;

    if (mcf->auth_location.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&mcf->auth_location, "");
        mcf->auth_location.len = 0;
        return NGX_CONF_OK;
    }

    if (value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "registry_auth \"%V\" must be a location "
                           "starting with \"/\", or \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->auth_location = value[1];

    return NGX_CONF_OK;
}



ngx_int_t
ngx_http_registry_auth_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_variable_t        *var;
    ngx_http_core_main_conf_t  *cmcf;

    /* variables are resolved after postconfiguration: not too late */

    var = ngx_http_add_variable(cf, &ngx_http_registry_auth_user_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_registry_auth_user_variable;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_auth_handler;

    return NGX_OK;
}


/*
 * The access phase.  Runs again when the subrequest it started is done
 * (the parent is posted); NGX_AGAIN until then.
 */

static ngx_int_t
ngx_http_registry_auth_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_str_t                       from;
    ngx_http_registry_ctx_t        *ctx;
    ngx_http_registry_auth_t       *a;
    ngx_http_registry_loc_conf_t   *rlcf;
    ngx_http_registry_main_conf_t  *mcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (rlcf->handler != NGX_HTTP_REGISTRY_HANDLER_REGISTRY) {
        return NGX_DECLINED;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->auth_location.len == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_registry_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->auth_done) {
        return NGX_OK;
    }

    a = ctx->auth;

    if (a != NULL) {
        if (!a->done) {
            return NGX_AGAIN;
        }

        a->done = 0;

        return ngx_http_registry_auth_decide(r, ctx, a);
    }

    /*
     * A request the router refuses is answered by the content handler
     * with its error: there is nothing to protect, and parsing it again
     * there gives the same error.
     */

    if (ngx_http_registry_parse(r, ctx) != NGX_OK) {
        ctx->auth_done = 1;
        return NGX_DECLINED;
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_auth_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    ctx->auth = a;

    rc = ngx_http_registry_auth_credentials(r->pool,
                                            r->headers_in.authorization,
                                            &a->token);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_registry_auth_count(ctx, NGX_HTTP_UNAUTHORIZED);
        return ngx_http_registry_auth_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED);
    }

    if (ctx->route == NGX_HTTP_REGISTRY_ROUTE_TOKEN) {

        /* the anonymous token needs no check */

        if (a->token.len == 0) {
            ctx->auth_done = 1;
            return NGX_OK;
        }

        a->action = NGX_HTTP_REGISTRY_ACTION_NONE;

    } else {
        a->action = ctx->action;
        a->repo = ctx->repo;
        a->project = ctx->project;
    }

    /* a mount: pull on "from" is asked once push on the target is known */

    if (ctx->route == NGX_HTTP_REGISTRY_ROUTE_UPLOADS
        && r->method == NGX_HTTP_POST
        && ngx_http_arg(r, (u_char *) "mount", 5, &from) == NGX_OK)
    {
        rc = ngx_http_registry_arg(r, "from", &from);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK && ngx_http_registry_is_repo(&from)) {
            ctx->mount_from = from;
        }
    }

    return ngx_http_registry_auth_ask(r, ctx, a);
}


/* the cache's answer, else the authorizer's (NGX_AGAIN) */

static ngx_int_t
ngx_http_registry_auth_ask(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_auth_t *a)
{
    if (ngx_http_registry_auth_key(r->pool, a) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_registry_auth_cache_get(r, a->key, &a->status, &a->user,
                                         &a->projects)
        == NGX_OK)
    {
        a->asked = 0;
        return ngx_http_registry_auth_decide(r, ctx, a);
    }

    a->asked = 1;

    return ngx_http_registry_auth_subrequest(r, a);
}


static ngx_int_t
ngx_http_registry_auth_decide(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_auth_t *a)
{
    u_char                         *slash;
    ngx_uint_t                      allowed;
    ngx_http_registry_main_conf_t  *mcf;

    allowed = (a->status >= NGX_HTTP_OK
               && a->status < NGX_HTTP_SPECIAL_RESPONSE);

    if (a->asked) {
        ngx_http_registry_auth_cache_put(r, a->key, a->status, &a->user,
                                         &a->projects);
        ngx_http_registry_auth_outage(r, a->status);
    }

    ngx_http_registry_auth_count(ctx, a->status);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "registry auth: %V on \"%V\": %ui%s",
                   &ngx_http_registry_auth_actions[a->action], &a->repo,
                   a->status, a->asked ? "" : " (cached)");

    if (a->mount) {
        /* the upload handler starts a new session instead of mounting */
        ctx->mount_denied = allowed ? 0 : 1;
        ctx->auth_done = 1;
        return NGX_OK;
    }

    if (allowed) {
        ctx->user = a->user;
        a->listable = a->projects;

        if (ctx->mount_from.len) {
            slash = ngx_strlchr(ctx->mount_from.data,
                                ctx->mount_from.data + ctx->mount_from.len,
                                '/');

            a->mount = 1;
            a->action = NGX_HTTP_REGISTRY_ACTION_PULL;
            a->repo = ctx->mount_from;
            a->project.data = ctx->mount_from.data;
            a->project.len = slash - ctx->mount_from.data;

            return ngx_http_registry_auth_ask(r, ctx, a);
        }

        ctx->auth_done = 1;
        return NGX_OK;
    }

    if (a->status == NGX_HTTP_UNAUTHORIZED
        || (a->status == NGX_HTTP_FORBIDDEN
            && ctx->route == NGX_HTTP_REGISTRY_ROUTE_TOKEN))
    {
        return ngx_http_registry_auth_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED);
    }

    if (a->status == NGX_HTTP_FORBIDDEN) {
        ctx->user = a->user;
        return ngx_http_registry_auth_refuse(r, ctx, NGX_HTTP_FORBIDDEN);
    }

    if (ngx_http_registry_auth_unavailable(a->status)) {
        /* logged once per outage, by ngx_http_registry_auth_outage() */
        return ngx_http_registry_auth_refuse(r, ctx,
                                             NGX_HTTP_SERVICE_UNAVAILABLE);
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "registry: authorizer \"%V\" answered %ui",
                  &mcf->auth_location, a->status);

    return ngx_http_registry_auth_refuse(r, ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/* 502, 503, 504: the authorizer (or its Redis) cannot answer now */

static ngx_uint_t
ngx_http_registry_auth_unavailable(ngx_uint_t status)
{
    return status == NGX_HTTP_BAD_GATEWAY
           || status == NGX_HTTP_SERVICE_UNAVAILABLE
           || status == NGX_HTTP_GATEWAY_TIME_OUT;
}


/* a decision's outcome, for the metrics, as decide() acts on it */

static void
ngx_http_registry_auth_count(ngx_http_registry_ctx_t *ctx, ngx_uint_t status)
{
    ngx_uint_t  outcome;

    if (status >= NGX_HTTP_OK && status < NGX_HTTP_SPECIAL_RESPONSE) {
        outcome = NGX_HTTP_REGISTRY_AUTH_ALLOWED;

    } else if (status == NGX_HTTP_UNAUTHORIZED
               || (status == NGX_HTTP_FORBIDDEN
                   && ctx->route == NGX_HTTP_REGISTRY_ROUTE_TOKEN))
    {
        outcome = NGX_HTTP_REGISTRY_AUTH_UNAUTHORIZED;

    } else if (status == NGX_HTTP_FORBIDDEN) {
        outcome = NGX_HTTP_REGISTRY_AUTH_DENIED;

    } else if (ngx_http_registry_auth_unavailable(status)) {
        outcome = NGX_HTTP_REGISTRY_AUTH_UNAVAILABLE;

    } else {
        outcome = NGX_HTTP_REGISTRY_AUTH_ERROR;
    }

    ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_AUTH_DECISIONS,
                                  outcome, 1);
}


/*
 * A worker's view of the authorizer's outages.  Every request it cannot
 * decide is refused with 503, and an outage may see thousands a second:
 * only its start and its end are logged, with how many were refused.
 */

static void
ngx_http_registry_auth_outage(ngx_http_request_t *r, ngx_uint_t status)
{
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (ngx_http_registry_auth_unavailable(status)) {

        if (ngx_http_registry_auth_refused++ == 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "registry: authorizer \"%V\" answered %ui, "
                          "requests whose decision is not cached get 503 "
                          "until it answers again", &mcf->auth_location,
                          status);
        }

        return;
    }

    if (ngx_http_registry_auth_refused) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "registry: authorizer \"%V\" answers again, "
                      "%ui requests got 503 meanwhile",
                      &mcf->auth_location, ngx_http_registry_auth_refused);
        ngx_http_registry_auth_refused = 0;
    }
}


/*
 * Answers a refused request from the access phase.  The body is
 * discarded (an upload may be large); the response is sent here, so the
 * phase engine is told NGX_DONE once the request is finalized.
 */

static ngx_int_t
ngx_http_registry_auth_refuse(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t status)
{
    ngx_int_t  rc;

    ctx->auth_done = 1;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    switch (status) {

    case NGX_HTTP_UNAUTHORIZED:
        if (ngx_http_registry_auth_challenge(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_http_registry_error(r, status, "UNAUTHORIZED",
                                     "authentication required");
        break;

    case NGX_HTTP_FORBIDDEN:
        rc = ngx_http_registry_error(r, status, "DENIED",
                                     "requested access to the resource "
                                     "is denied");
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        rc = ngx_http_registry_unavailable(r, "authorizer unavailable");
        break;

    default:
        rc = ngx_http_registry_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "UNKNOWN", "authorization failed");
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * The question as a GET subrequest to the auth location: a fresh header
 * list (the client's other headers, its cookies included, are not the
 * authorizer's business) and an empty body (the client's is read later
 * by the content handler, and may be gigabytes).
 */

static ngx_int_t
ngx_http_registry_auth_subrequest(ngx_http_request_t *r,
    ngx_http_registry_auth_t *a)
{
    u_char                         *p;
    ngx_str_t                       bearer;
    ngx_http_request_t             *sr;
    ngx_http_post_subrequest_t     *ps;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_registry_auth_done;
    ps->data = a;

    if (ngx_http_subrequest(r, &mcf->auth_location, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (sr->request_body == NULL) {
        return NGX_ERROR;
    }

    sr->header_only = 1;
    sr->method = NGX_HTTP_GET;
    sr->method_name = ngx_http_core_get_method;

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 4,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->headers_in.content_length_n = -1;
    sr->headers_in.keep_alive_n = -1;
    sr->headers_in.host = r->headers_in.host;
    sr->headers_in.server = r->headers_in.server;

    if (a->token.len) {
        bearer.len = sizeof("Bearer ") - 1 + a->token.len;
        bearer.data = ngx_pnalloc(r->pool, bearer.len);
        if (bearer.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(bearer.data, "Bearer ", sizeof("Bearer ") - 1);
        ngx_memcpy(p, a->token.data, a->token.len);

        if (ngx_http_registry_auth_push_header(sr, "Authorization", &bearer,
                                               &sr->headers_in.authorization)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_registry_auth_push_header(sr, "X-Registry-Action",
                                   &ngx_http_registry_auth_actions[a->action],
                                   NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (a->repo.len
        && (ngx_http_registry_auth_push_header(sr, "X-Registry-Repository",
                                               &a->repo, NULL)
            != NGX_OK
            || ngx_http_registry_auth_push_header(sr, "X-Registry-Project",
                                                  &a->project, NULL)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    a->done = 0;
    a->status = 0;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_registry_auth_push_header(ngx_http_request_t *sr, const char *name,
    ngx_str_t *value, ngx_table_elt_t **elt)
{
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(name);

    h->key.data = (u_char *) name;
    h->key.len = len;
    h->value = *value;

    /* the proxy module matches headers by their lowercase key and hash */

    h->lowcase_key = ngx_pnalloc(sr->pool, len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, h->key.data, len);

    if (elt) {
        *elt = h;
    }

    return NGX_OK;
}


/*
 * The subrequest is finalized: this may run twice (once with the status
 * a handler returned, once more after nginx answered it), the last call
 * tells the outcome.
 */

static ngx_int_t
ngx_http_registry_auth_done(ngx_http_request_t *r, void *data, ngx_int_t rc)
{
    ngx_http_registry_auth_t *a = data;

    ngx_table_elt_t  *h;

    a->done = 1;
    a->status = r->headers_out.status;

    if (a->status == 0 && rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        a->status = rc;
    }

    ngx_str_null(&a->user);
    ngx_str_null(&a->projects);

    h = ngx_http_registry_auth_find(&r->headers_out.headers,
                                    "X-Registry-User");

    if (h && h->value.len <= NGX_HTTP_REGISTRY_AUTH_USER) {
        a->user.data = ngx_pstrdup(r->pool, &h->value);
        if (a->user.data == NULL) {
            a->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return rc;
        }

        a->user.len = h->value.len;
    }

    h = ngx_http_registry_auth_find(&r->headers_out.headers,
                                    "X-Registry-Projects");

    if (h && h->value.len) {
        a->projects.data = ngx_pstrdup(r->pool, &h->value);
        if (a->projects.data == NULL) {
            a->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return rc;
        }

        a->projects.len = h->value.len;
    }

    return rc;
}


/*
 * WWW-Authenticate: Bearer realm="R",service="S",scope="repository:N:A"
 * The realm and service default to this host's token endpoint and name.
 */

ngx_int_t
ngx_http_registry_auth_challenge(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    u_char                         *p, c;
    size_t                          len, i;
    ngx_str_t                       host, realm, service, value;
    const char                     *scope;
    ngx_http_core_srv_conf_t       *cscf;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    /* the Host header as sent, port included, if it is a plain host */

    ngx_str_null(&host);

    if (r->headers_in.host) {
        host = r->headers_in.host->value;

        for (i = 0; i < host.len; i++) {
            c = host.data[i];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '.' || c == '-'
                  || c == ':' || c == '[' || c == ']' || c == '_'))
            {
                ngx_str_null(&host);
                break;
            }
        }
    }

    if (host.len == 0) {
        cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
        host = cscf->server_name;
    }

    realm = mcf->auth_realm;

    if (realm.len == 0) {
        realm.len = sizeof("https:///openshift/token") - 1 + host.len;
        realm.data = ngx_pnalloc(r->pool, realm.len);
        if (realm.data == NULL) {
            return NGX_ERROR;
        }

        realm.len = ngx_sprintf(realm.data, "%s://%V/openshift/token",
#if (NGX_HTTP_SSL)
                                r->connection->ssl ? "https" :
#endif
                                "http", &host)
                    - realm.data;
    }

    service = mcf->auth_service.len ? mcf->auth_service : host;

    scope = NULL;

    if (ctx->route == NGX_HTTP_REGISTRY_ROUTE_CATALOG) {
        scope = "registry:catalog:*";

    } else if (ctx->repo.len && ctx->action < 5) {
        scope = ngx_http_registry_auth_scopes[ctx->action];
    }

    len = sizeof("Bearer realm=\"\",service=\"\",scope=\"repository::\"") - 1
          + realm.len + service.len + ctx->repo.len
          + sizeof("registry:catalog:*") - 1;

    value.data = ngx_pnalloc(r->pool, len);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(value.data, "Bearer realm=\"%V\",service=\"%V\"",
                    &realm, &service);

    if (ctx->route == NGX_HTTP_REGISTRY_ROUTE_CATALOG) {
        p = ngx_sprintf(p, ",scope=\"%s\"", scope);

    } else if (scope != NULL) {
        p = ngx_sprintf(p, ",scope=\"repository:%V:%s\"", &ctx->repo, scope);
    }

    value.len = p - value.data;

    return ngx_http_registry_add_header(r, "WWW-Authenticate", &value);
}


/* the cache key: SHA-256(token "\n" repository "\n" action) */

static ngx_int_t
ngx_http_registry_auth_key(ngx_pool_t *pool, ngx_http_registry_auth_t *a)
{
    u_char     *p, *text;
    ngx_str_t  *action;

    action = &ngx_http_registry_auth_actions[a->action];

    text = ngx_pnalloc(pool, a->token.len + a->repo.len + action->len + 2);
    if (text == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(text, "%V\n%V\n%V", &a->token, &a->repo, action);

    ngx_http_registry_hash_raw(text, p - text, a->key);

    return NGX_OK;
}


/*
 * The image API's filter: with authorization on, a repository is shown
 * only when the authorizer's "list" answer named its project (or "*").
 */

ngx_uint_t
ngx_http_registry_auth_may_list(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, u_char *name, size_t len)
{
    u_char                         *p, *last, *slash, *comma;
    size_t                          plen;
    ngx_http_registry_auth_t       *a;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->auth_location.len == 0
        || ctx->action != NGX_HTTP_REGISTRY_ACTION_LIST)
    {
        return 1;
    }

    a = ctx->auth;

    if (a == NULL || a->listable.len == 0) {
        return 0;
    }

    if (a->listable.len == 1 && a->listable.data[0] == '*') {
        return 1;
    }

    slash = ngx_strlchr(name, name + len, '/');
    plen = slash ? (size_t) (slash - name) : len;

    p = a->listable.data;
    last = p + a->listable.len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        if ((size_t) (comma - p) == plen && ngx_strncmp(p, name, plen) == 0) {
            return 1;
        }

        p = comma + 1;
    }

    return 0;
}


/*
 * The catalog's filter as its listing script takes it: "*" when every
 * repository may be listed, else the projects whose repositories may be
 * ("p1,p2"; "" for none).
 */

void
ngx_http_registry_auth_listable(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *projects)
{
    ngx_http_registry_auth_t       *a;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    ngx_str_set(projects, "*");

    if (mcf->auth_location.len == 0
        || ctx->action != NGX_HTTP_REGISTRY_ACTION_LIST)
    {
        return;
    }

    a = ctx->auth;

    if (a == NULL || a->listable.len == 0) {
        ngx_str_set(projects, "");
        return;
    }

    *projects = a->listable;
}


/* $registry_user: the user the authorizer named, for the access log */

static ngx_int_t
ngx_http_registry_auth_user_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_registry_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_registry_module);

    if (ctx == NULL || ctx->user.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->user.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ctx->user.data;

    return NGX_OK;
}
