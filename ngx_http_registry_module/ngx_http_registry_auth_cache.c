
/*
 * The shared-memory cache of the authorizer's decisions
 * ("registry_auth_cache"): a fixed table filled once, open addressing,
 * bounded probing, keyed by a SHA-256 the caller computes (auth.c: of the
 * token, the repository and the action; never the token itself).
 */


#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_AUTH_DATA   240   /* user + projects, cached */
#define NGX_HTTP_REGISTRY_AUTH_PROBE  8     /* slots tried per key */


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


static ngx_int_t ngx_http_registry_auth_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


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

static ngx_uint_t
ngx_http_registry_auth_slot(ngx_http_registry_auth_table_t *t, u_char *key)
{
    uint32_t  h;

    h = ((uint32_t) key[0] << 24) | ((uint32_t) key[1] << 16)
        | ((uint32_t) key[2] << 8) | key[3];

    return h % t->n;
}


/*
 * NGX_OK with the decision cached for the key: its status, the user and
 * the project list (allocated in the request's pool), else NGX_DECLINED.
 */

ngx_int_t
ngx_http_registry_auth_cache_get(ngx_http_request_t *r, u_char *key,
    ngx_uint_t *status, ngx_str_t *user, ngx_str_t *projects)
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

    slot = ngx_http_registry_auth_slot(t, key);

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_REGISTRY_AUTH_PROBE; i++) {
        e = &t->entries[(slot + i) % t->n];

        if (e->expires > now
            && ngx_memcmp(e->key, key, SHA256_DIGEST_LENGTH) == 0)
        {
            *status = e->status;
            user_len = e->user_len;
            projects_len = e->projects_len;
            ngx_memcpy(buf, e->data, user_len + projects_len);
            found = 1;
            break;
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    ngx_http_registry_metrics_add(found
                                  ? NGX_HTTP_REGISTRY_METRIC_AUTH_CACHE_HITS
                                  : NGX_HTTP_REGISTRY_METRIC_AUTH_CACHE_MISSES,
                                  0, 1);

    if (!found) {
        return NGX_DECLINED;
    }

    ngx_str_null(user);
    ngx_str_null(projects);

    if (user_len + projects_len) {
        user->data = ngx_pnalloc(r->pool, user_len + projects_len);
        if (user->data == NULL) {
            return NGX_DECLINED;
        }

        ngx_memcpy(user->data, buf, user_len + projects_len);

        user->len = user_len;
        projects->data = user->data + user_len;
        projects->len = projects_len;
    }

    return NGX_OK;
}


/*
 * Only clear answers are kept (2xx, 401, 403), and only when the user
 * name and the project list fit in an entry.  In a full probe window the
 * entry closest to expiry makes room.
 */

void
ngx_http_registry_auth_cache_put(ngx_http_request_t *r, u_char *key,
    ngx_uint_t status, ngx_str_t *user, ngx_str_t *projects)
{
    time_t                           now;
    ngx_uint_t                       i, slot, evicted;
    ngx_slab_pool_t                 *shpool;
    ngx_http_registry_auth_entry_t  *e, *victim;
    ngx_http_registry_auth_table_t  *t;
    ngx_http_registry_main_conf_t   *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->auth_zone == NULL || mcf->auth_valid == 0) {
        return;
    }

    if (!((status >= NGX_HTTP_OK && status < NGX_HTTP_SPECIAL_RESPONSE)
          || status == NGX_HTTP_UNAUTHORIZED
          || status == NGX_HTTP_FORBIDDEN))
    {
        return;
    }

    if (user->len > 255 || projects->len > 255
        || user->len + projects->len > NGX_HTTP_REGISTRY_AUTH_DATA)
    {
        return;
    }

    shpool = (ngx_slab_pool_t *) mcf->auth_zone->shm.addr;
    t = mcf->auth_zone->data;
    now = ngx_time();

    slot = ngx_http_registry_auth_slot(t, key);
    victim = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    for (i = 0; i < NGX_HTTP_REGISTRY_AUTH_PROBE; i++) {
        e = &t->entries[(slot + i) % t->n];

        if (ngx_memcmp(e->key, key, SHA256_DIGEST_LENGTH) == 0
            || e->expires <= now)
        {
            victim = e;
            break;
        }

        if (victim == NULL || e->expires < victim->expires) {
            victim = e;
        }
    }

    /* a live decision of another key makes room */
    evicted = (victim->expires > now
               && ngx_memcmp(victim->key, key, SHA256_DIGEST_LENGTH) != 0);

    ngx_memcpy(victim->key, key, SHA256_DIGEST_LENGTH);
    victim->expires = now + mcf->auth_valid;
    victim->status = (uint16_t) status;
    victim->user_len = (uint8_t) user->len;
    victim->projects_len = (uint8_t) projects->len;
    /* an empty user or list may have a NULL data: no memcpy() from it */

    if (user->len) {
        ngx_memcpy(victim->data, user->data, user->len);
    }

    if (projects->len) {
        ngx_memcpy(victim->data + user->len, projects->data,
                   projects->len);
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (evicted) {
        ngx_http_registry_metrics_add(
            NGX_HTTP_REGISTRY_METRIC_AUTH_CACHE_EVICTIONS, 0, 1);
    }
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


