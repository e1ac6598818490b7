
/*
 * Authorization, as the OpenShift integrated registry does it.
 *
 * 1. An access-phase handler for "registry" locations.  It reads the
 *    client's credentials (Bearer T, or Basic with the password as T and
 *    the user name ignored), asks the location named by "registry_auth"
 *    through a subrequest whether T may do the request's action on its
 *    repository, and answers 401 (with the Bearer challenge) or 403 for
 *    a refusal.  Decisions are cached in a shared memory zone keyed by
 *    SHA-256(token "\n" repository "\n" action): never the token itself.
 *    For a cross-repository mount, pull on the source repository is asked
 *    too; a refusal only sets ctx->mount_denied (a new upload session is
 *    started, revealing nothing).
 *
 *    The subrequest is a GET with an empty body and only these headers:
 *
 *        Authorization: Bearer T     absent for anonymous requests
 *        X-Registry-Action           pull, push, delete, list or none
 *        X-Registry-Repository       <project>/<image> (pull, push, delete)
 *        X-Registry-Project          <project>
 *
 *    2xx allows; the answer may name the user (X-Registry-User) and, for
 *    "list" (the catalog), the projects the user may pull
 *    (X-Registry-Projects: "*" or "p1,p2").  401 and 403 refuse; 502,
 *    503 and 504 are 503 UNAVAILABLE (logged once per outage); anything
 *    else is a 500, logged.
 *
 * 2. GET /openshift/token: the token endpoint of the Docker token flow.
 *    The token is the user's own: with valid Basic credentials it answers
 *    {"token":T,"access_token":T}; without credentials the token
 *    "anonymous", which the registry treats as no credentials.
 *
 * 3. The default authorizer ("registry_authorizer"), backed by Redis, one
 *    EVAL per decision.  Layout (U = user, P = project, H = hex SHA-256
 *    of a token; tokens themselves are never stored):
 *
 *      auth:users              set of U
 *      auth:user:U             hash: created
 *      auth:user:U:tokens      set of H (revocation of all of U's tokens)
 *      auth:token:H            hash: user, sha (H again), created
 *      auth:projects           set of P
 *      auth:project:P          hash: public (1 or 0), created, creator
 *      auth:rb:P               set of U bound to a role in P
 *      auth:rb:P:U             set of U's roles in P
 *      auth:clusterroles:U     set of U's cluster roles
 *      auth:clusterusers       set of U with a cluster role
 *
 *    Project roles: registry-viewer (pull), registry-editor and
 *    system:image-builder (pull, push), registry-admin (pull, push,
 *    delete); OpenShift's view, edit and admin grant the same.  Cluster
 *    roles: system:registry (pull anywhere), system:image-pruner (delete
 *    anywhere), self-provisioner (push into an unknown project creates
 *    it, the pusher being its registry-admin), cluster-admin (all).  A
 *    public project lets anyone pull, anonymous included.
 *
 * Credentials never reach a log or an error body: only their hashes are
 * used as keys, and no message here prints a header.
 */


#include "ngx_http_registry.h"

#include <openssl/crypto.h>


#define NGX_HTTP_REGISTRY_AUTH_DATA   240   /* user + projects, cached */
#define NGX_HTTP_REGISTRY_AUTH_PROBE  8     /* slots tried per key */
#define NGX_HTTP_REGISTRY_AUTH_USER   255   /* longest user name kept */


/* a cached decision */
typedef struct {
    u_char                      key[SHA256_DIGEST_LENGTH];
    time_t                      expires;       /* 0: free */
    uint16_t                    status;
    uint8_t                     user_len;
    uint8_t                     projects_len;
    u_char                      data[NGX_HTTP_REGISTRY_AUTH_DATA];
} ngx_http_registry_auth_entry_t;


/* the whole zone: a fixed table, open addressing, bounded probing */
typedef struct {
    ngx_uint_t                       n;
    ngx_http_registry_auth_entry_t  *entries;
} ngx_http_registry_auth_table_t;


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
static ngx_int_t ngx_http_registry_auth_challenge(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_auth_credentials(ngx_pool_t *pool,
    ngx_table_elt_t *h, ngx_str_t *token);
static ngx_table_elt_t *ngx_http_registry_auth_find(ngx_list_t *headers,
    const char *name);
static void ngx_http_registry_auth_key(ngx_http_registry_auth_t *a);
static ngx_int_t ngx_http_registry_auth_cache_get(ngx_http_request_t *r,
    ngx_http_registry_auth_t *a);
static void ngx_http_registry_auth_cache_put(ngx_http_request_t *r,
    ngx_http_registry_auth_t *a);
static ngx_int_t ngx_http_registry_auth_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_registry_authorizer_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_authorizer_answer(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *user, ngx_str_t *projects);
static ngx_int_t ngx_http_registry_auth_user_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* indexed by NGX_HTTP_REGISTRY_ACTION_* */
static ngx_str_t  ngx_http_registry_auth_actions[] = {
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


/*
 * The default authorizer's decision.  ARGV: the token's hex SHA-256
 * ("" for anonymous), the project, the action.  Returns {status, user,
 * projects (list only), the stored hash of the token}; the caller
 * compares that hash with its own in constant time.
 */

static const char  ngx_http_registry_authorizer_lua[] =
    "local h, p, action = ARGV[1], ARGV[2], ARGV[3]\n"
    "local user, sha = '', ''\n"
    "if h ~= '' then\n"
    "  local t = redis.call('HMGET', 'auth:token:' .. h, 'user', 'sha')\n"
    "  if not t[1] or redis.call('SISMEMBER', 'auth:users', t[1]) == 0"
    " then\n"
    "    return {401, '', '', ''}\n"
    "  end\n"
    "  user, sha = t[1], t[2] or ''\n"
    "end\n"
    "local function cluster(role)\n"
    "  return user ~= '' and redis.call('SISMEMBER',"
    " 'auth:clusterroles:' .. user, role) == 1\n"
    "end\n"
    "if action == 'none' then\n"
    "  if user == '' then return {401, '', '', ''} end\n"
    "  return {200, user, '', sha}\n"
    "end\n"
    "local grants = {\n"
    "  ['registry-viewer'] = {pull = true},\n"
    "  ['view'] = {pull = true},\n"
    "  ['registry-editor'] = {pull = true, push = true},\n"
    "  ['system:image-builder'] = {pull = true, push = true},\n"
    "  ['edit'] = {pull = true, push = true},\n"
    "  ['registry-admin'] = {pull = true, push = true, delete = true},\n"
    "  ['admin'] = {pull = true, push = true, delete = true}\n"
    "}\n"
    "local function rights(proj, c)\n"
    "  if user ~= '' then\n"
    "    for _, role in ipairs(redis.call('SMEMBERS',"
    " 'auth:rb:' .. proj .. ':' .. user)) do\n"
    "      for k in pairs(grants[role] or {}) do c[k] = true end\n"
    "    end\n"
    "  end\n"
    "  if redis.call('HGET', 'auth:project:' .. proj, 'public') == '1'"
    " then\n"
    "    c.pull = true\n"
    "  end\n"
    "  return c\n"
    "end\n"
    "local admin = cluster('cluster-admin')\n"
    "if action == 'list' then\n"
    "  if user == '' then return {401, '', '', ''} end\n"
    "  if admin or cluster('system:registry') then\n"
    "    return {200, user, '*', sha}\n"
    "  end\n"
    "  local out = {}\n"
    "  for _, proj in ipairs(redis.call('SMEMBERS', 'auth:projects')) do\n"
    "    if rights(proj, {}).pull then out[#out + 1] = proj end\n"
    "  end\n"
    "  table.sort(out)\n"
    "  return {200, user, table.concat(out, ','), sha}\n"
    "end\n"
    "local c = {}\n"
    "if admin then c = {pull = true, push = true, delete = true} end\n"
    "if cluster('system:registry') then c.pull = true end\n"
    "if cluster('system:image-pruner') then c.delete = true end\n"
    "if redis.call('SISMEMBER', 'auth:projects', p) == 1 then\n"
    "  rights(p, c)\n"
    "elseif user ~= '' and (admin or cluster('self-provisioner')) then\n"
    "  if action == 'push' then\n"
    "    local now = redis.call('TIME')[1]\n"
    "    redis.call('SADD', 'auth:projects', p)\n"
    "    redis.call('HSET', 'auth:project:' .. p, 'public', '0',"
    " 'created', now, 'creator', user)\n"
    "    redis.call('SADD', 'auth:rb:' .. p, user)\n"
    "    redis.call('SADD', 'auth:rb:' .. p .. ':' .. user,"
    " 'registry-admin')\n"
    "  end\n"
    "  c.pull = true\n"
    "  c.push = true\n"
    "end\n"
    "if c[action] then return {200, user, '', sha} end\n"
    "if user == '' then return {401, '', '', ''} end\n"
    "return {403, user, '', sha}\n";


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


/* registry_auth_cache zone=NAME:SIZE [valid=TIME] */

char *
ngx_http_registry_auth_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_main_conf_t *mcf = conf;

    u_char      *p;
    ssize_t      size;
    ngx_str_t   *value, name, s;
    ngx_int_t    valid;
    ngx_uint_t   i;

    if (mcf->auth_zone != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_str_null(&name);
    size = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            name.data = value[i].data + 5;

            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL || p == name.data) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone \"%V\", expected "
                                   "zone=NAME:SIZE", &value[i]);
                return NGX_CONF_ERROR;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "valid=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            valid = ngx_parse_time(&s, 1);

            if (valid == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid time \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            mcf->auth_valid = (time_t) valid;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have the \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    mcf->auth_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_registry_module);
    if (mcf->auth_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (mcf->auth_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    mcf->auth_zone->init = ngx_http_registry_auth_init_zone;
    mcf->auth_zone->data = mcf;

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
    ngx_http_registry_auth_key(a);

    if (ngx_http_registry_auth_cache_get(r, a) == NGX_OK) {
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
        ngx_http_registry_auth_cache_put(r, a);
        ngx_http_registry_auth_outage(r, a->status);
    }

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

static ngx_int_t
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


/*
 * The token in an Authorization header: "Bearer T", or "Basic" with
 * base64(user:T), the user name being ignored.  Exactly one colon is
 * accepted in the decoded pair: with more, "a:b:c" could be user "a:b"
 * or a password "b:c", and a name with a colon cannot be sent.  The
 * token "anonymous" is no token.  NGX_DECLINED: unreadable credentials.
 */

static ngx_int_t
ngx_http_registry_auth_credentials(ngx_pool_t *pool, ngx_table_elt_t *h,
    ngx_str_t *token)
{
    u_char     *colon, *last;
    size_t      i;
    ngx_str_t   v, decoded;

    ngx_str_null(token);

    if (h == NULL) {
        return NGX_OK;
    }

    v = h->value;

    if (v.len > 7 && ngx_strncasecmp(v.data, (u_char *) "Bearer ", 7) == 0) {
        v.data += 7;
        v.len -= 7;

        while (v.len && v.data[0] == ' ') {
            v.data++;
            v.len--;
        }

        *token = v;

    } else if (v.len > 6
               && ngx_strncasecmp(v.data, (u_char *) "Basic ", 6) == 0)
    {
        v.data += 6;
        v.len -= 6;

        while (v.len && v.data[0] == ' ') {
            v.data++;
            v.len--;
        }

        decoded.data = ngx_pnalloc(pool, ngx_base64_decoded_length(v.len));
        if (decoded.data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_decode_base64(&decoded, &v) != NGX_OK) {
            return NGX_DECLINED;
        }

        last = decoded.data + decoded.len;
        colon = ngx_strlchr(decoded.data, last, ':');

        if (colon == NULL || ngx_strlchr(colon + 1, last, ':') != NULL) {
            return NGX_DECLINED;
        }

        token->data = colon + 1;
        token->len = last - colon - 1;

    } else {
        return NGX_DECLINED;
    }

    while (token->len && token->data[token->len - 1] == ' ') {
        token->len--;
    }

    if (token->len == 0) {
        return NGX_DECLINED;
    }

    /* printable, no spaces: it goes into a header and into JSON */

    for (i = 0; i < token->len; i++) {
        if (token->data[i] <= ' ' || token->data[i] >= 0x7f
            || token->data[i] == '"' || token->data[i] == '\\')
        {
            return NGX_DECLINED;
        }
    }

    if (token->len == sizeof("anonymous") - 1
        && ngx_strncmp(token->data, "anonymous", token->len) == 0)
    {
        ngx_str_null(token);
    }

    return NGX_OK;
}


static ngx_table_elt_t *
ngx_http_registry_auth_find(ngx_list_t *headers, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash != 0 && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


/* the cache key: SHA-256(token "\n" repository "\n" action) */

static void
ngx_http_registry_auth_key(ngx_http_registry_auth_t *a)
{
    SHA256_CTX  sha;

    SHA256_Init(&sha);
    SHA256_Update(&sha, a->token.data, a->token.len);
    SHA256_Update(&sha, "\n", 1);
    SHA256_Update(&sha, a->repo.data, a->repo.len);
    SHA256_Update(&sha, "\n", 1);
    SHA256_Update(&sha, ngx_http_registry_auth_actions[a->action].data,
                  ngx_http_registry_auth_actions[a->action].len);
    SHA256_Final(a->key, &sha);
}


static ngx_uint_t
ngx_http_registry_auth_slot(ngx_http_registry_auth_table_t *t, u_char *key)
{
    uint32_t  h;

    h = ((uint32_t) key[0] << 24) | ((uint32_t) key[1] << 16)
        | ((uint32_t) key[2] << 8) | key[3];

    return h % t->n;
}


static ngx_int_t
ngx_http_registry_auth_cache_get(ngx_http_request_t *r,
    ngx_http_registry_auth_t *a)
{
    u_char                           buf[NGX_HTTP_REGISTRY_AUTH_DATA];
    time_t                           now;
    size_t                           user_len, projects_len;
    ngx_uint_t                       i, slot, found;
    ngx_slab_pool_t                 *shpool;
    ngx_http_registry_auth_entry_t  *e;
    ngx_http_registry_auth_table_t  *t;
    ngx_http_registry_main_conf_t   *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->auth_zone == NULL || mcf->auth_valid == 0) {
        return NGX_DECLINED;
    }

    shpool = (ngx_slab_pool_t *) mcf->auth_zone->shm.addr;
    t = mcf->auth_zone->data;
    now = ngx_time();

    found = 0;
    user_len = 0;
    projects_len = 0;

    slot = ngx_http_registry_auth_slot(t, a->key);

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_REGISTRY_AUTH_PROBE; i++) {
        e = &t->entries[(slot + i) % t->n];

        if (e->expires > now
            && ngx_memcmp(e->key, a->key, SHA256_DIGEST_LENGTH) == 0)
        {
            a->status = e->status;
            user_len = e->user_len;
            projects_len = e->projects_len;
            ngx_memcpy(buf, e->data, user_len + projects_len);
            found = 1;
            break;
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (!found) {
        return NGX_DECLINED;
    }

    ngx_str_null(&a->user);
    ngx_str_null(&a->projects);

    if (user_len + projects_len) {
        a->user.data = ngx_pnalloc(r->pool, user_len + projects_len);
        if (a->user.data == NULL) {
            return NGX_DECLINED;
        }

        ngx_memcpy(a->user.data, buf, user_len + projects_len);

        a->user.len = user_len;
        a->projects.data = a->user.data + user_len;
        a->projects.len = projects_len;
    }

    return NGX_OK;
}


/*
 * Only clear answers are kept (2xx, 401, 403), and only when the user
 * name and the project list fit in an entry.  In a full probe window the
 * entry closest to expiry makes room.
 */

static void
ngx_http_registry_auth_cache_put(ngx_http_request_t *r,
    ngx_http_registry_auth_t *a)
{
    time_t                           now;
    ngx_uint_t                       i, slot;
    ngx_slab_pool_t                 *shpool;
    ngx_http_registry_auth_entry_t  *e, *victim;
    ngx_http_registry_auth_table_t  *t;
    ngx_http_registry_main_conf_t   *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->auth_zone == NULL || mcf->auth_valid == 0) {
        return;
    }

    if (!((a->status >= NGX_HTTP_OK && a->status < NGX_HTTP_SPECIAL_RESPONSE)
          || a->status == NGX_HTTP_UNAUTHORIZED
          || a->status == NGX_HTTP_FORBIDDEN))
    {
        return;
    }

    if (a->user.len > 255 || a->projects.len > 255
        || a->user.len + a->projects.len > NGX_HTTP_REGISTRY_AUTH_DATA)
    {
        return;
    }

    shpool = (ngx_slab_pool_t *) mcf->auth_zone->shm.addr;
    t = mcf->auth_zone->data;
    now = ngx_time();

    slot = ngx_http_registry_auth_slot(t, a->key);
    victim = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_REGISTRY_AUTH_PROBE; i++) {
        e = &t->entries[(slot + i) % t->n];

        if (ngx_memcmp(e->key, a->key, SHA256_DIGEST_LENGTH) == 0
            || e->expires <= now)
        {
            victim = e;
            break;
        }

        if (victim == NULL || e->expires < victim->expires) {
            victim = e;
        }
    }

    ngx_memcpy(victim->key, a->key, SHA256_DIGEST_LENGTH);
    victim->expires = now + mcf->auth_valid;
    victim->status = (uint16_t) a->status;
    victim->user_len = (uint8_t) a->user.len;
    victim->projects_len = (uint8_t) a->projects.len;
    /* an empty user or list may have a NULL data: no memcpy() from it */

    if (a->user.len) {
        ngx_memcpy(victim->data, a->user.data, a->user.len);
    }

    if (a->projects.len) {
        ngx_memcpy(victim->data + a->user.len, a->projects.data,
                   a->projects.len);
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


static ngx_int_t
ngx_http_registry_auth_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                           size;
    ngx_slab_pool_t                 *shpool;
    ngx_http_registry_auth_table_t  *t;

    if (data) {
        /* a reload with the same zone: the decisions stay */
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    /* the table takes every free page, allocated once */

    size = shpool->pfree * ngx_pagesize;

    for ( ;; ) {
        if (size < sizeof(ngx_http_registry_auth_table_t)
                   + NGX_HTTP_REGISTRY_AUTH_PROBE
                     * sizeof(ngx_http_registry_auth_entry_t))
        {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "registry_auth_cache zone \"%V\" is too small",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

        t = ngx_slab_alloc(shpool, size);
        if (t != NULL) {
            break;
        }

        size -= ngx_pagesize;
    }

    ngx_memzero(t, size);

    t->entries = (ngx_http_registry_auth_entry_t *)
                     ((u_char *) t + sizeof(ngx_http_registry_auth_table_t));
    t->n = (size - sizeof(ngx_http_registry_auth_table_t))
           / sizeof(ngx_http_registry_auth_entry_t);

    shpool->data = t;
    shm_zone->data = t;

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


/* GET /openshift/token: the access phase has checked the credentials */

ngx_int_t
ngx_http_registry_token_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_str_t   token;
    json_t     *json;

    static ngx_str_t  no_store = ngx_string("no-store");

    rc = ngx_http_registry_auth_credentials(r->pool,
                                            r->headers_in.authorization,
                                            &token);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        if (ngx_http_registry_auth_challenge(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_registry_error(r, NGX_HTTP_UNAUTHORIZED,
                                       "UNAUTHORIZED",
                                       "authentication required");
    }

    if (token.len == 0) {
        ngx_str_set(&token, "anonymous");
    }

    json = json_pack("{s:s%,s:s%}",
                     "token", (char *) token.data, token.len,
                     "access_token", (char *) token.data, token.len);
    if (json == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_registry_add_header(r, "Cache-Control", &no_store)
        != NGX_OK)
    {
        json_decref(json);
        return NGX_ERROR;
    }

    return ngx_http_registry_send_json(r, NGX_HTTP_OK, json);
}


/*
 * The default authorizer: a content handler, normally run as the
 * subrequest above.  Answers 200 (X-Registry-User, X-Registry-Projects),
 * 401 or 403 with no body; 400 for a question it cannot read.
 */

ngx_int_t
ngx_http_registry_authorizer_handler(ngx_http_request_t *r)
{
    u_char                   *hex;
    ngx_int_t                 rc;
    ngx_str_t                 token, action, args[3], *hash;
    ngx_uint_t                i;
    ngx_table_elt_t          *h;
    ngx_http_registry_ctx_t  *ctx;
    u_char                    digest[SHA256_DIGEST_LENGTH];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_registry_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_http_registry_auth_find(&r->headers_in.headers,
                                    "X-Registry-Action");
    if (h == NULL) {
        return ngx_http_registry_authorizer_answer(r, NGX_HTTP_BAD_REQUEST,
                                                   NULL, NULL);
    }

    action = h->value;

    for (i = 0; i < 5; i++) {
        if (action.len == ngx_http_registry_auth_actions[i].len
            && ngx_strncmp(action.data, ngx_http_registry_auth_actions[i].data,
                           action.len) == 0)
        {
            break;
        }
    }

    if (i == 5) {
        return ngx_http_registry_authorizer_answer(r, NGX_HTTP_BAD_REQUEST,
                                                   NULL, NULL);
    }

    /* the project comes from the repository, which must be well formed */

    ngx_str_set(&args[1], "");

    if (i == NGX_HTTP_REGISTRY_ACTION_PULL
        || i == NGX_HTTP_REGISTRY_ACTION_PUSH
        || i == NGX_HTTP_REGISTRY_ACTION_DELETE)
    {
        h = ngx_http_registry_auth_find(&r->headers_in.headers,
                                        "X-Registry-Repository");

        if (h == NULL || !ngx_http_registry_is_repo(&h->value)) {
            return ngx_http_registry_authorizer_answer(r,
                                                       NGX_HTTP_BAD_REQUEST,
                                                       NULL, NULL);
        }

        args[1].data = h->value.data;
        args[1].len = ngx_strlchr(h->value.data,
                                  h->value.data + h->value.len, '/')
                      - h->value.data;
    }

    h = ngx_http_registry_auth_find(&r->headers_in.headers, "Authorization");

    rc = ngx_http_registry_auth_credentials(r->pool, h, &token);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_registry_authorizer_answer(r, NGX_HTTP_UNAUTHORIZED,
                                                   NULL, NULL);
    }

    /* only the hash of the token travels to Redis */

    hash = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (hash == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(hash, "");

    if (token.len) {
        hex = ngx_pnalloc(r->pool, 2 * SHA256_DIGEST_LENGTH);
        if (hex == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        SHA256(token.data, token.len, digest);

        hash->data = hex;
        hash->len = ngx_hex_dump(hex, digest, SHA256_DIGEST_LENGTH) - hex;
    }

    args[0] = *hash;
    args[2] = action;

    ctx->data = hash;
    ctx->next = ngx_http_registry_authorizer_done;

    if (ngx_http_registry_eval(r, ngx_http_registry_authorizer_lua, 0,
                               args, 3)
        != NGX_OK)
    {
        ctx->next = NULL;

        /* the connection's loss is logged once, in the redis code */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "registry authorizer: redis not connected");

        return ngx_http_registry_authorizer_answer(r,
                                               NGX_HTTP_SERVICE_UNAVAILABLE,
                                               NULL, NULL);
    }

    /* held until the reply finalizes the request */
    r->main->count++;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_registry_authorizer_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t    user, projects, sha, *hash;
    ngx_uint_t   status;
    redisReply  *rp;

    rp = ctx->reply;
    hash = ctx->data;

    if (rp == NULL) {
        /* a timeout or a lost connection, logged where it is seen */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "registry authorizer: no answer from redis");

        return ngx_http_registry_authorizer_answer(r,
                                               NGX_HTTP_SERVICE_UNAVAILABLE,
                                               NULL, NULL);
    }

    if (rp->type == REDIS_REPLY_ERROR) {
        /* LOADING, BUSY, OOM...: Redis cannot answer now */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry authorizer: redis error: %*s",
                      rp->len, rp->str);

        return ngx_http_registry_authorizer_answer(r,
                                               NGX_HTTP_SERVICE_UNAVAILABLE,
                                               NULL, NULL);
    }

    if (rp->type != REDIS_REPLY_ARRAY || rp->elements != 4
        || rp->element[0]->type != REDIS_REPLY_INTEGER
        || ngx_http_registry_reply_str(rp, 1, &user) != NGX_OK
        || ngx_http_registry_reply_str(rp, 2, &projects) != NGX_OK
        || ngx_http_registry_reply_str(rp, 3, &sha) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry authorizer: unexpected redis reply");
        goto failed;
    }

    status = (ngx_uint_t) rp->element[0]->integer;

    /*
     * Redis found the token's record by its hash; the record holds the
     * hash again, compared here in constant time, so that a record
     * whose key and content disagree never grants anything.
     */

    if (status != NGX_HTTP_UNAUTHORIZED && hash->len
        && (sha.len != hash->len
            || CRYPTO_memcmp(sha.data, hash->data, hash->len) != 0))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "registry authorizer: token record of user \"%V\" "
                      "does not match its key", &user);
        status = NGX_HTTP_UNAUTHORIZED;
        ngx_str_null(&user);
        ngx_str_null(&projects);
    }

    /* the reply is freed when this step returns: copy what is kept */

    if (user.len) {
        user.data = ngx_pstrdup(r->pool, &user);
        if (user.data == NULL) {
            goto failed;
        }
    }

    if (projects.len) {
        projects.data = ngx_pstrdup(r->pool, &projects);
        if (projects.data == NULL) {
            goto failed;
        }
    }

    return ngx_http_registry_authorizer_answer(r, status, &user, &projects);

failed:

    return ngx_http_registry_authorizer_answer(r,
                                             NGX_HTTP_INTERNAL_SERVER_ERROR,
                                             NULL, NULL);
}


static ngx_int_t
ngx_http_registry_authorizer_answer(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *user, ngx_str_t *projects)
{
    if (user && user->len
        && ngx_http_registry_add_header(r, "X-Registry-User", user)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (projects && projects->len
        && ngx_http_registry_add_header(r, "X-Registry-Projects", projects)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_send(r, status, NULL, NULL, 0);
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
