
/*
 * The token endpoint and the default authorizer.
 *
 * GET /openshift/token: the token endpoint of the Docker token flow.  The
 * token is the user's own: with valid Basic credentials it answers
 * {"token":T,"access_token":T}; without credentials the token
 * "anonymous", which the registry treats as no credentials.
 *
 * The default authorizer ("registry_authorizer"), backed by Redis, one
 * call of the function authorize (redis/authorize.lua) per decision,
 * answering the access phase's subrequest (auth.c).  Tokens are stored
 * only as their SHA-256 (keys auth:*: redis/KEYS.md).
 *
 * Project roles: registry-viewer (pull), registry-editor and
 * system:image-builder (pull, push), registry-admin (pull, push,
 * delete); OpenShift's view, edit and admin grant the same.  Cluster
 * roles: system:registry (pull anywhere), system:image-pruner (delete
 * anywhere), self-provisioner (push into an unknown project creates
 * it, the pusher being its registry-admin), cluster-admin (all).  A
 * public project lets anyone pull, anonymous included.
 *
 * Credentials never reach a log or an error body: only their hashes are
 * stored, and no message here prints a header.
 */


#include "ngx_http_registry.h"

#include <openssl/crypto.h>


static ngx_int_t ngx_http_registry_authorizer_done(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_authorizer_answer(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *user, ngx_str_t *projects);




/*
 * The token in an Authorization header: "Bearer T", or "Basic" with
 * base64(user:T), the user name being ignored.  Exactly one colon is
 * accepted in the decoded pair: with more, "a:b:c" could be user "a:b"
 * or a password "b:c", and a name with a colon cannot be sent.  The
 * token "anonymous" is no token.  NGX_DECLINED: unreadable credentials.
 */

ngx_int_t
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


ngx_table_elt_t *
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
    ngx_str_t                 token, action, project, args[7], *hash;
    ngx_uint_t                i, nkeys;
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

    ngx_str_set(&project, "");

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

        project.data = h->value.data;
        project.len = ngx_strlchr(h->value.data,
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

    ngx_str_set(&args[0], "auth:users");
    ngx_str_set(&args[1], "auth:projects");

    if (ngx_http_registry_keyf(r->pool, &args[2], "auth:project:%V",
                               &project)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[3], "auth:rb:%V", &project)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nkeys = 4;

    /* anonymous: no token, no fifth key */

    if (hash->len) {
        if (ngx_http_registry_keyf(r->pool, &args[4], "auth:token:%V", hash)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        nkeys = 5;
    }

    args[nkeys] = project;
    args[nkeys + 1] = action;

    ctx->data = hash;
    ctx->next = ngx_http_registry_authorizer_done;

    if (ngx_http_registry_fcall(r, "authorize", nkeys, args, nkeys + 2)
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
    ngx_http_registry_hold(r);

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


