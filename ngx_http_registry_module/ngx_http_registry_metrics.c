
/*
 * ngx_http_registry_module: metrics.  Counters, gauges and histograms
 * in one shared memory zone, made when a location has
 * "registry_metrics"; that location answers with their sums over the
 * instance's workers, in Prometheus' text exposition format.
 *
 * The request path only adds: ngx_atomic_fetch_add() into a row of
 * the zone (a shard) of its own worker, so workers do not fight over
 * cache lines and nothing is locked; a scrape sums the rows.  Gauges
 * that go up and down (watches) live in a row per process slot, which
 * the next process in that slot clears: what a killed worker held goes
 * when the master respawns it.
 *
 * Label values are fixed lists (routes, methods, status classes, S3
 * operations, ...): never a repository, a tag or a user.  Requests
 * are counted by a log-phase handler for "registry" locations, with
 * ctx->route as the router left it.
 */


#include "ngx_http_registry.h"


#define NGX_HTTP_REGISTRY_METRICS_SHARDS  32     /* rows, at most */
#define NGX_HTTP_REGISTRY_METRICS_LINE    256    /* longest line */
#define NGX_HTTP_REGISTRY_METRICS_BUCKETS 18     /* finite buckets */

/* slots of a histogram's child: its buckets, +Inf, the sum (usec) */
#define NGX_HTTP_REGISTRY_METRICS_HSLOTS                                      \
    (NGX_HTTP_REGISTRY_METRICS_BUCKETS + 2)

#define NGX_HTTP_REGISTRY_COUNTER     0
#define NGX_HTTP_REGISTRY_GAUGE       1
#define NGX_HTTP_REGISTRY_HISTOGRAM   2

#define NGX_HTTP_REGISTRY_SPARSE      1     /* children seen only */
#define NGX_HTTP_REGISTRY_DERIVED     2     /* computed when scraped */
#define NGX_HTTP_REGISTRY_PER_PROCESS 4     /* a gauge row per process */


typedef struct {
    const char                         *name;
    const char *const                  *values;
    ngx_uint_t                          n;
} ngx_http_registry_metric_label_t;


typedef struct {
    const char                         *name;
    const char                         *help;
    ngx_uint_t                          type;
    ngx_http_registry_metric_label_t   *labels[3];
    ngx_uint_t                          flags;
} ngx_http_registry_metric_t;


/* the zone */
typedef struct {
    ngx_uint_t                          nslots;    /* the layout, checked */
    ngx_uint_t                          ngauges;   /* at a reload */
    ngx_uint_t                          shards;
    ngx_uint_t                          stride;    /* slots of a row */
    ngx_atomic_t                       *slots;     /* shards rows */
    ngx_atomic_t                       *gauges;    /* NGX_MAX_PROCESSES */
} ngx_http_registry_metrics_shm_t;


static ngx_int_t ngx_http_registry_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_registry_metrics_log(ngx_http_request_t *r);
static ngx_atomic_int_t ngx_http_registry_metrics_value(
    ngx_atomic_int_t *sums, ngx_uint_t metric, ngx_uint_t child);
static u_char *ngx_http_registry_metrics_render(u_char *p,
    ngx_atomic_int_t *sums, ngx_uint_t metric, ngx_uint_t child);
static u_char *ngx_http_registry_metrics_labels(u_char *p,
    ngx_uint_t metric, ngx_uint_t child, const char *le);


static const char *const  ngx_http_registry_route_values[] = {
    "other", "base", "catalog", "tags", "manifest", "blob", "upload",
    "referrers", "token", "image_api", "watch"
};

#define NGX_HTTP_REGISTRY_ROUTE_LABEL_WATCH  10

/* route label of each NGX_HTTP_REGISTRY_ROUTE_* */
static const ngx_uint_t  ngx_http_registry_route_label[] = {
    0, 1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 9, 9, 9
};

static const char *const  ngx_http_registry_method_values[] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "other"
};

static const ngx_uint_t  ngx_http_registry_methods[] = {
    NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_POST, NGX_HTTP_PUT, NGX_HTTP_PATCH,
    NGX_HTTP_DELETE
};

static const char *const  ngx_http_registry_class_values[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "other"
};

static const char *const  ngx_http_registry_s3_op_values[] = {
    "head_bucket", "head_object", "get_object", "put_object",
    "delete_object", "create_multipart_upload", "upload_part",
    "complete_multipart_upload", "abort_multipart_upload"
};

/* S3 outcomes: 2xx, 404, other 4xx, 5xx, no (whole) answer */
static const char *const  ngx_http_registry_s3_outcome_values[] = {
    "ok", "not_found", "client_error", "server_error", "failed"
};

static const char *const  ngx_http_registry_redis_error_values[] = {
    "error_reply", "no_reply", "not_connected"
};

static const char *const  ngx_http_registry_redis_conn_values[] = {
    "command", "subscriber"
};

static const char *const  ngx_http_registry_auth_values[] = {
    "allowed", "unauthorized", "denied", "unavailable", "error"
};

static const char *const  ngx_http_registry_event_values[] = {
    "push", "pull", "mount", "delete"
};

#define ngx_http_registry_label(name, values)                                 \
    { name, values, sizeof(values) / sizeof(values[0]) }

static ngx_http_registry_metric_label_t  ngx_http_registry_l_route =
    ngx_http_registry_label("route", ngx_http_registry_route_values);
static ngx_http_registry_metric_label_t  ngx_http_registry_l_method =
    ngx_http_registry_label("method", ngx_http_registry_method_values);
static ngx_http_registry_metric_label_t  ngx_http_registry_l_class =
    ngx_http_registry_label("status_class", ngx_http_registry_class_values);
static ngx_http_registry_metric_label_t  ngx_http_registry_l_s3_op =
    ngx_http_registry_label("operation", ngx_http_registry_s3_op_values);
static ngx_http_registry_metric_label_t  ngx_http_registry_l_s3_outcome =
    ngx_http_registry_label("outcome", ngx_http_registry_s3_outcome_values);
static ngx_http_registry_metric_label_t  ngx_http_registry_l_redis_error =
    ngx_http_registry_label("reason", ngx_http_registry_redis_error_values);
static ngx_http_registry_metric_label_t  ngx_http_registry_l_redis_conn =
    ngx_http_registry_label("connection", ngx_http_registry_redis_conn_values);
static ngx_http_registry_metric_label_t  ngx_http_registry_l_auth =
    ngx_http_registry_label("outcome", ngx_http_registry_auth_values);
static ngx_http_registry_metric_label_t  ngx_http_registry_l_event =
    ngx_http_registry_label("action", ngx_http_registry_event_values);


#define ngx_http_registry_counter(name, help)                                 \
    { name, help, NGX_HTTP_REGISTRY_COUNTER, { NULL }, 0 }


/* in the order of the NGX_HTTP_REGISTRY_METRIC_* enum */

static ngx_http_registry_metric_t  ngx_http_registry_metrics[] = {

    { "registry_http_requests_total",
      "Requests to the registry's routes by route, method and status class.",
      NGX_HTTP_REGISTRY_COUNTER,
      { &ngx_http_registry_l_route, &ngx_http_registry_l_method,
        &ngx_http_registry_l_class },
      NGX_HTTP_REGISTRY_SPARSE },

    { "registry_http_request_duration_seconds",
      "Time from a request's first byte to its end, by route and method.",
      NGX_HTTP_REGISTRY_HISTOGRAM,
      { &ngx_http_registry_l_route, &ngx_http_registry_l_method },
      NGX_HTTP_REGISTRY_SPARSE },

    ngx_http_registry_counter("registry_blob_received_bytes_total",
        "Blob bytes received from clients on upload routes."),
    ngx_http_registry_counter("registry_blob_sent_bytes_total",
        "Blob bytes sent to clients by blob GETs (redirects send none)."),
    ngx_http_registry_counter("registry_manifest_pushes_total",
        "Manifests pushed (PUT answered 201)."),
    ngx_http_registry_counter("registry_manifest_pulls_total",
        "Manifests pulled (GET answered 200)."),
    ngx_http_registry_counter("registry_upload_sessions_started_total",
        "Upload sessions started."),
    ngx_http_registry_counter("registry_upload_sessions_committed_total",
        "Upload sessions committed as a blob."),
    ngx_http_registry_counter("registry_upload_sessions_cancelled_total",
        "Upload sessions deleted by their client, or dropped by a final PUT "
        "whose digest did not match."),
    ngx_http_registry_counter("registry_upload_sessions_expired_total",
        "Upload sessions found expired by the collector."),

    { "registry_upload_sessions_open",
      "Upload sessions started by this instance minus those it saw end "
      "(committed, cancelled, expired): sum it over the instances.",
      NGX_HTTP_REGISTRY_GAUGE, { NULL }, NGX_HTTP_REGISTRY_DERIVED },

    { "registry_s3_requests_total",
      "S3 requests by operation and outcome.",
      NGX_HTTP_REGISTRY_COUNTER,
      { &ngx_http_registry_l_s3_op, &ngx_http_registry_l_s3_outcome }, 0 },

    { "registry_s3_request_duration_seconds",
      "S3 request durations by operation.",
      NGX_HTTP_REGISTRY_HISTOGRAM, { &ngx_http_registry_l_s3_op }, 0 },

    ngx_http_registry_counter("registry_redis_commands_total",
        "Commands sent to Redis on the command connection."),

    { "registry_redis_errors_total",
      "Redis commands that failed: an error reply, no reply (a timeout, "
      "a lost connection), or not sent (Redis not connected).",
      NGX_HTTP_REGISTRY_COUNTER, { &ngx_http_registry_l_redis_error }, 0 },

    { "registry_redis_connection_losses_total",
      "Redis connections lost, or not made, once per outage.",
      NGX_HTTP_REGISTRY_COUNTER, { &ngx_http_registry_l_redis_conn }, 0 },

    { "registry_redis_reconnects_total",
      "Redis connections back after a loss.",
      NGX_HTTP_REGISTRY_COUNTER, { &ngx_http_registry_l_redis_conn }, 0 },

    { "registry_redis_command_duration_seconds",
      "Redis command round trips (answered ones).",
      NGX_HTTP_REGISTRY_HISTOGRAM, { NULL }, 0 },

    { "registry_auth_decisions_total",
      "Authorization decisions by outcome (cached or asked).",
      NGX_HTTP_REGISTRY_COUNTER, { &ngx_http_registry_l_auth }, 0 },

    ngx_http_registry_counter("registry_auth_cache_hits_total",
        "Authorization decisions found in the cache."),
    ngx_http_registry_counter("registry_auth_cache_misses_total",
        "Authorization decisions not in the cache."),
    ngx_http_registry_counter("registry_auth_cache_evictions_total",
        "Cached decisions replaced before they expired (a full cache)."),

    { "registry_events_total",
      "Events made, by action.",
      NGX_HTTP_REGISTRY_COUNTER, { &ngx_http_registry_l_event }, 0 },

    ngx_http_registry_counter("registry_webhook_deliveries_total",
        "Events a webhook answered with 2xx."),
    ngx_http_registry_counter("registry_webhook_retries_total",
        "Webhook deliveries tried again after a failure."),
    ngx_http_registry_counter("registry_webhook_drops_total",
        "Events a webhook never got (its attempts ran out, or not posted)."),
    ngx_http_registry_counter("registry_gc_runs_total",
        "Garbage collector runs."),
    ngx_http_registry_counter("registry_gc_reclaimed_bytes_total",
        "Bytes of S3 objects the collector deleted."),
    ngx_http_registry_counter("registry_gc_blobs_deleted_total",
        "Blobs the collector deleted."),

    { "registry_watches_active",
      "Image stream watches open now.",
      NGX_HTTP_REGISTRY_GAUGE, { NULL }, NGX_HTTP_REGISTRY_PER_PROCESS }
};


/* upper bounds of the buckets, microseconds and as printed */

static const uint64_t  ngx_http_registry_bucket_usec[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000
};

static const char *const  ngx_http_registry_bucket_le[] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60",
    "+Inf"
};


/* the layout: where each metric's slots are, in a row or a gauge row */
static ngx_uint_t  ngx_http_registry_metric_offset[NGX_HTTP_REGISTRY_METRICS];
static ngx_uint_t  ngx_http_registry_metric_children[NGX_HTTP_REGISTRY_METRICS];
static ngx_uint_t  ngx_http_registry_metrics_nslots;
static ngx_uint_t  ngx_http_registry_metrics_ngauges;
static ngx_uint_t  ngx_http_registry_metrics_nshards;

/* the worker's rows; NULL: metrics are off */
static ngx_atomic_t  *ngx_http_registry_metrics_row;
static ngx_atomic_t  *ngx_http_registry_metrics_gauge;

static ngx_str_t  ngx_http_registry_metrics_zone_name =
    ngx_string("registry_metrics");

static ngx_str_t  ngx_http_registry_metrics_type =
    ngx_string("text/plain; version=0.0.4; charset=utf-8");


/*
 * postconfiguration: with a registry_metrics location, the zone (one
 * row per worker, up to NGX_HTTP_REGISTRY_METRICS_SHARDS) and the
 * log-phase handler that counts requests
 */

ngx_int_t
ngx_http_registry_metrics_init(ngx_conf_t *cf)
{
    size_t                          size;
    ngx_uint_t                      i, j, n, slots, gauges;
    ngx_core_conf_t                *ccf;
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_registry_metric_t     *m;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_registry_module);

    if (!mcf->metrics) {
        return NGX_OK;
    }

    slots = 0;
    gauges = 0;

    for (i = 0; i < NGX_HTTP_REGISTRY_METRICS; i++) {
        m = &ngx_http_registry_metrics[i];

        n = 1;

        for (j = 0; j < 3 && m->labels[j]; j++) {
            n *= m->labels[j]->n;
        }

        ngx_http_registry_metric_children[i] = n;

        if (m->flags & NGX_HTTP_REGISTRY_PER_PROCESS) {
            ngx_http_registry_metric_offset[i] = gauges;
            gauges += n;
            continue;
        }

        ngx_http_registry_metric_offset[i] = slots;

        if (m->type == NGX_HTTP_REGISTRY_HISTOGRAM) {
            n *= NGX_HTTP_REGISTRY_METRICS_HSLOTS;
        }

        if (!(m->flags & NGX_HTTP_REGISTRY_DERIVED)) {
            slots += n;
        }
    }

    ngx_http_registry_metrics_nslots = slots;
    ngx_http_registry_metrics_ngauges = gauges;

    /* rows as many as workers, if known by now */

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    n = (ccf->worker_processes > 0) ? (ngx_uint_t) ccf->worker_processes : 1;
    ngx_http_registry_metrics_nshards =
                             ngx_min(n, NGX_HTTP_REGISTRY_METRICS_SHARDS);

    /* rows on cache lines of their own */

    size = sizeof(ngx_http_registry_metrics_shm_t) + NGX_CPU_CACHE_LINE
           + ngx_http_registry_metrics_nshards
             * ngx_align(slots * sizeof(ngx_atomic_t), NGX_CPU_CACHE_LINE)
           + NGX_MAX_PROCESSES * gauges * sizeof(ngx_atomic_t);

    size = ngx_align(size, ngx_pagesize) + 8 * ngx_pagesize;

    mcf->metrics_zone = ngx_shared_memory_add(cf,
                                         &ngx_http_registry_metrics_zone_name,
                                         size, &ngx_http_registry_module);
    if (mcf->metrics_zone == NULL) {
        return NGX_ERROR;
    }

    if (mcf->metrics_zone->init) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used",
                           &ngx_http_registry_metrics_zone_name);
        return NGX_ERROR;
    }

    mcf->metrics_zone->init = ngx_http_registry_metrics_init_zone;
    mcf->metrics_zone->data = NULL;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_registry_metrics_log;

    return NGX_OK;
}


static ngx_int_t
ngx_http_registry_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    u_char                           *p;
    size_t                            size, stride;
    ngx_slab_pool_t                  *shpool;
    ngx_http_registry_metrics_shm_t  *m, *old;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;
    old = data;

    stride = ngx_align(ngx_http_registry_metrics_nslots * sizeof(ngx_atomic_t),
                       NGX_CPU_CACHE_LINE)
             / sizeof(ngx_atomic_t);

    if (old) {
        /* a reload: the counts go on */

        if (old->nslots == ngx_http_registry_metrics_nslots
            && old->ngauges == ngx_http_registry_metrics_ngauges
            && old->shards == ngx_http_registry_metrics_nshards)
        {
            zone->data = old;
            return NGX_OK;
        }

        ngx_slab_free(shpool, old);
    }

    if (zone->shm.exists) {
        zone->data = shpool->data;
        return NGX_OK;
    }

    size = sizeof(ngx_http_registry_metrics_shm_t) + NGX_CPU_CACHE_LINE
           + ngx_http_registry_metrics_nshards * stride * sizeof(ngx_atomic_t)
           + NGX_MAX_PROCESSES * ngx_http_registry_metrics_ngauges
             * sizeof(ngx_atomic_t);

    p = ngx_slab_alloc(shpool, size);
    if (p == NULL) {
        ngx_log_error(NGX_LOG_EMERG, zone->shm.log, 0,
                      "registry_metrics zone \"%V\" is too small",
                      &zone->shm.name);
        return NGX_ERROR;
    }

    ngx_memzero(p, size);

    m = (ngx_http_registry_metrics_shm_t *) p;
    m->nslots = ngx_http_registry_metrics_nslots;
    m->ngauges = ngx_http_registry_metrics_ngauges;
    m->shards = ngx_http_registry_metrics_nshards;
    m->stride = stride;
    p = ngx_align_ptr(p + sizeof(ngx_http_registry_metrics_shm_t),
                      NGX_CPU_CACHE_LINE);
    m->slots = (ngx_atomic_t *) p;
    m->gauges = m->slots + m->shards * stride;

    shpool->data = m;
    zone->data = m;

    return NGX_OK;
}


/*
 * The worker's rows.  The shape comes from the zone: a worker respawned
 * after a failed reload runs with the old zone.  Its gauge row is its
 * process slot's, which only a dead process held before.
 */

void
ngx_http_registry_metrics_init_worker(ngx_cycle_t *cycle)
{
    ngx_uint_t                        i;
    ngx_http_registry_metrics_shm_t  *m;
    ngx_http_registry_main_conf_t    *mcf;

    ngx_http_registry_metrics_row = NULL;
    ngx_http_registry_metrics_gauge = NULL;

    if ((ngx_process != NGX_PROCESS_WORKER
         && ngx_process != NGX_PROCESS_SINGLE)
        || ngx_process_slot < 0 || ngx_process_slot >= NGX_MAX_PROCESSES)
    {
        return;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_registry_module);

    if (mcf == NULL || mcf->metrics_zone == NULL
        || mcf->metrics_zone->data == NULL)
    {
        return;
    }

    m = mcf->metrics_zone->data;

    ngx_http_registry_metrics_row = m->slots
                                    + (ngx_worker % m->shards) * m->stride;
    ngx_http_registry_metrics_gauge = m->gauges
                                      + ngx_process_slot * m->ngauges;

    for (i = 0; i < m->ngauges; i++) {
        ngx_http_registry_metrics_gauge[i] = 0;
    }
}


void
ngx_http_registry_metrics_add(ngx_uint_t metric, ngx_uint_t label,
    ngx_atomic_int_t n)
{
    ngx_atomic_t  *slot;

    if (ngx_http_registry_metrics_row == NULL
        || label >= ngx_http_registry_metric_children[metric])
    {
        return;
    }

    if (ngx_http_registry_metrics[metric].flags
        & NGX_HTTP_REGISTRY_PER_PROCESS)
    {
        slot = ngx_http_registry_metrics_gauge;

    } else {
        slot = ngx_http_registry_metrics_row;
    }

    slot += ngx_http_registry_metric_offset[metric] + label;

    (void) ngx_atomic_fetch_add(slot, n);
}


void
ngx_http_registry_metrics_observe(ngx_uint_t metric, ngx_uint_t label,
    uint64_t usec)
{
    ngx_uint_t     i;
    ngx_atomic_t  *slot;

    if (ngx_http_registry_metrics_row == NULL
        || label >= ngx_http_registry_metric_children[metric])
    {
        return;
    }

    slot = ngx_http_registry_metrics_row
           + ngx_http_registry_metric_offset[metric]
           + label * NGX_HTTP_REGISTRY_METRICS_HSLOTS;

    for (i = 0; i < NGX_HTTP_REGISTRY_METRICS_BUCKETS; i++) {
        if (usec <= ngx_http_registry_bucket_usec[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&slot[i], 1);
    (void) ngx_atomic_fetch_add(&slot[NGX_HTTP_REGISTRY_METRICS_BUCKETS + 1],
                                (ngx_atomic_int_t) usec);
}


uint64_t
ngx_http_registry_metrics_usec(void)
{
    struct timespec  ts;

    if (ngx_http_registry_metrics_row == NULL) {
        return 0;
    }

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


void
ngx_http_registry_metrics_s3(ngx_uint_t op, ngx_uint_t status,
    uint64_t start)
{
    ngx_uint_t  outcome;

    if (ngx_http_registry_metrics_row == NULL) {
        return;
    }

    if (status >= 200 && status < 300) {
        outcome = 0;

    } else if (status == NGX_HTTP_NOT_FOUND) {
        outcome = 1;

    } else if (status >= 400 && status < 500) {
        outcome = 2;

    } else if (status >= 500 && status < 600) {
        outcome = 3;

    } else {
        outcome = 4;
    }

    ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_S3_REQUESTS,
                         op * ngx_http_registry_l_s3_outcome.n + outcome, 1);
    ngx_http_registry_metrics_observe(NGX_HTTP_REGISTRY_METRIC_S3_DURATION,
                               op, ngx_http_registry_metrics_usec() - start);
}


/* every request of a registry location, once, at its end */

static ngx_int_t
ngx_http_registry_metrics_log(ngx_http_request_t *r)
{
    off_t                          sent;
    ngx_uint_t                     route, method, status, sclass;
    ngx_msec_int_t                 ms;
    ngx_time_t                    *tp;
    ngx_http_registry_ctx_t       *ctx;
    ngx_http_registry_loc_conf_t  *rlcf;

    if (ngx_http_registry_metrics_row == NULL || r != r->main) {
        return NGX_OK;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_registry_module);

    if (rlcf->handler != NGX_HTTP_REGISTRY_HANDLER_REGISTRY) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);

    route = 0;

    if (ctx != NULL) {
        if (ctx->watch) {
            route = NGX_HTTP_REGISTRY_ROUTE_LABEL_WATCH;

        } else if (ctx->route < sizeof(ngx_http_registry_route_label)
                                / sizeof(ngx_uint_t))
        {
            route = ngx_http_registry_route_label[ctx->route];
        }
    }

    /* the order of ngx_http_registry_method_values */

    for (method = 0; method < 6; method++) {
        if (r->method == ngx_http_registry_methods[method]) {
            break;
        }
    }

    /* as $status has it */
    status = r->err_status ? r->err_status : r->headers_out.status;
    sclass = (status >= 100 && status < 600) ? status / 100 - 1 : 5;

    method += route * ngx_http_registry_l_method.n;

    ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_HTTP_REQUESTS,
                                  method * ngx_http_registry_l_class.n
                                  + sclass, 1);

    /* as $request_time has it */
    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));

    ngx_http_registry_metrics_observe(NGX_HTTP_REGISTRY_METRIC_HTTP_DURATION,
                                      method,
                                      (uint64_t) ngx_max(ms, 0) * 1000);

    if (ctx == NULL) {
        return NGX_OK;
    }

    switch (ctx->route) {

    case NGX_HTTP_REGISTRY_ROUTE_BLOB:
        if (r->method == NGX_HTTP_GET
            && (status == NGX_HTTP_OK || status == NGX_HTTP_PARTIAL_CONTENT))
        {
            /* as $body_bytes_sent has it */
            sent = r->connection->sent - r->header_size;

            if (sent > 0) {
                ngx_http_registry_metrics_add(
                    NGX_HTTP_REGISTRY_METRIC_BLOB_SENT, 0, sent);
            }
        }

        break;

    case NGX_HTTP_REGISTRY_ROUTE_UPLOADS:
    case NGX_HTTP_REGISTRY_ROUTE_UPLOAD:
        if (ctx->body.bytes > 0) {
            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_BLOB_RECEIVED, 0, ctx->body.bytes);
        }

        break;

    case NGX_HTTP_REGISTRY_ROUTE_MANIFEST:
        if (r->method == NGX_HTTP_GET && status == NGX_HTTP_OK) {
            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_MANIFEST_PULLS, 0, 1);

        } else if (r->method == NGX_HTTP_PUT && status == NGX_HTTP_CREATED) {
            ngx_http_registry_metrics_add(
                NGX_HTTP_REGISTRY_METRIC_MANIFEST_PUSHES, 0, 1);
        }

        break;
    }

    return NGX_OK;
}


/* the "registry_metrics" location: every metric, summed over the rows */

ngx_int_t
ngx_http_registry_metrics_handler(ngx_http_request_t *r)
{
    u_char                           *buf, *p;
    size_t                            size;
    ngx_int_t                         rc;
    ngx_uint_t                        i, s, c, lines;
    ngx_atomic_t                     *row;
    ngx_atomic_int_t                 *sums, *gauges;
    ngx_http_registry_metric_t       *m;
    ngx_http_registry_metrics_shm_t  *shm;
    ngx_http_registry_main_conf_t    *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->metrics_zone == NULL || mcf->metrics_zone->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    shm = mcf->metrics_zone->data;

    sums = ngx_pcalloc(r->pool, (shm->nslots + shm->ngauges)
                                * sizeof(ngx_atomic_int_t));
    if (sums == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    gauges = sums + shm->nslots;

    for (s = 0; s < shm->shards; s++) {
        row = shm->slots + s * shm->stride;

        for (i = 0; i < shm->nslots; i++) {
            sums[i] += (ngx_atomic_int_t) row[i];
        }
    }

    for (s = 0; s < NGX_MAX_PROCESSES; s++) {
        row = shm->gauges + s * shm->ngauges;

        for (i = 0; i < shm->ngauges; i++) {
            gauges[i] += (ngx_atomic_int_t) row[i];
        }
    }

    /* room for what is rendered: HELP and TYPE, then the children */

    size = 0;

    for (i = 0; i < NGX_HTTP_REGISTRY_METRICS; i++) {
        m = &ngx_http_registry_metrics[i];

        size += 2 * NGX_HTTP_REGISTRY_METRICS_LINE + ngx_strlen(m->help);
        lines = (m->type == NGX_HTTP_REGISTRY_HISTOGRAM)
                ? NGX_HTTP_REGISTRY_METRICS_BUCKETS + 3 : 1;

        for (c = 0; c < ngx_http_registry_metric_children[i]; c++) {
            if (!(m->flags & NGX_HTTP_REGISTRY_SPARSE)
                || ngx_http_registry_metrics_value(sums, i, c) != 0)
            {
                size += lines * NGX_HTTP_REGISTRY_METRICS_LINE;
            }
        }
    }

    buf = ngx_pnalloc(r->pool, size);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = buf;

    for (i = 0; i < NGX_HTTP_REGISTRY_METRICS; i++) {
        m = &ngx_http_registry_metrics[i];

        p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help,
                        m->name,
                        m->type == NGX_HTTP_REGISTRY_COUNTER ? "counter"
                        : m->type == NGX_HTTP_REGISTRY_GAUGE ? "gauge"
                        : "histogram");

        for (c = 0; c < ngx_http_registry_metric_children[i]; c++) {
            if (!(m->flags & NGX_HTTP_REGISTRY_SPARSE)
                || ngx_http_registry_metrics_value(sums, i, c) != 0)
            {
                p = ngx_http_registry_metrics_render(p, sums, i, c);
            }
        }
    }

    return ngx_http_registry_send(r, NGX_HTTP_OK,
                                  &ngx_http_registry_metrics_type,
                                  buf, p - buf);
}


/* a counter's or a gauge's value, a histogram's count */

static ngx_atomic_int_t
ngx_http_registry_metrics_value(ngx_atomic_int_t *sums, ngx_uint_t metric,
    ngx_uint_t child)
{
    ngx_uint_t                   i;
    ngx_atomic_int_t             v, *slot;
    ngx_http_registry_metric_t  *m;

    m = &ngx_http_registry_metrics[metric];

    if (m->flags & NGX_HTTP_REGISTRY_DERIVED) {
        /* the only one: sessions open */
        slot = sums;

        return slot[ngx_http_registry_metric_offset[
                                   NGX_HTTP_REGISTRY_METRIC_UPLOADS_STARTED]]
               - slot[ngx_http_registry_metric_offset[
                                 NGX_HTTP_REGISTRY_METRIC_UPLOADS_COMMITTED]]
               - slot[ngx_http_registry_metric_offset[
                                 NGX_HTTP_REGISTRY_METRIC_UPLOADS_CANCELLED]]
               - slot[ngx_http_registry_metric_offset[
                                   NGX_HTTP_REGISTRY_METRIC_UPLOADS_EXPIRED]];
    }

    if (m->flags & NGX_HTTP_REGISTRY_PER_PROCESS) {
        return sums[ngx_http_registry_metrics_nslots
                    + ngx_http_registry_metric_offset[metric] + child];
    }

    if (m->type != NGX_HTTP_REGISTRY_HISTOGRAM) {
        return sums[ngx_http_registry_metric_offset[metric] + child];
    }

    slot = sums + ngx_http_registry_metric_offset[metric]
           + child * NGX_HTTP_REGISTRY_METRICS_HSLOTS;
    v = 0;

    for (i = 0; i <= NGX_HTTP_REGISTRY_METRICS_BUCKETS; i++) {
        v += slot[i];
    }

    return v;
}


static u_char *
ngx_http_registry_metrics_render(u_char *p, ngx_atomic_int_t *sums,
    ngx_uint_t metric, ngx_uint_t child)
{
    ngx_uint_t                   i;
    ngx_atomic_int_t             v, *slot;
    ngx_http_registry_metric_t  *m;

    m = &ngx_http_registry_metrics[metric];

    if (m->type != NGX_HTTP_REGISTRY_HISTOGRAM) {
        p = ngx_sprintf(p, "%s", m->name);
        p = ngx_http_registry_metrics_labels(p, metric, child, NULL);

        return ngx_sprintf(p, " %A\n",
                     ngx_http_registry_metrics_value(sums, metric, child));
    }

    slot = sums + ngx_http_registry_metric_offset[metric]
           + child * NGX_HTTP_REGISTRY_METRICS_HSLOTS;
    v = 0;

    for (i = 0; i <= NGX_HTTP_REGISTRY_METRICS_BUCKETS; i++) {
        v += slot[i];

        p = ngx_sprintf(p, "%s_bucket", m->name);
        p = ngx_http_registry_metrics_labels(p, metric, child,
                                             ngx_http_registry_bucket_le[i]);
        p = ngx_sprintf(p, " %A\n", v);
    }

    p = ngx_sprintf(p, "%s_sum", m->name);
    p = ngx_http_registry_metrics_labels(p, metric, child, NULL);
    p = ngx_sprintf(p, " %uA.%06uA\n",
                    (ngx_atomic_uint_t) slot[i] / 1000000,
                    (ngx_atomic_uint_t) slot[i] % 1000000);

    p = ngx_sprintf(p, "%s_count", m->name);
    p = ngx_http_registry_metrics_labels(p, metric, child, NULL);

    return ngx_sprintf(p, " %A\n", v);
}


/* {a="x",b="y",le="z"}: the child's label values, last label fastest */

static u_char *
ngx_http_registry_metrics_labels(u_char *p, ngx_uint_t metric,
    ngx_uint_t child, const char *le)
{
    ngx_int_t                          j;
    ngx_uint_t                         n, index[3];
    ngx_http_registry_metric_t        *m;
    ngx_http_registry_metric_label_t  *l;

    m = &ngx_http_registry_metrics[metric];

    for (n = 0; n < 3 && m->labels[n]; n++) { /* void */ }

    if (n == 0 && le == NULL) {
        return p;
    }

    for (j = n - 1; j >= 0; j--) {
        index[j] = child % m->labels[j]->n;
        child /= m->labels[j]->n;
    }

    *p++ = '{';

    for (j = 0; j < (ngx_int_t) n; j++) {
        l = m->labels[j];
        p = ngx_sprintf(p, "%s%s=\"%s\"", j ? "," : "", l->name,
                        l->values[index[j]]);
    }

    if (le) {
        p = ngx_sprintf(p, "%sle=\"%s\"", n ? "," : "", le);
    }

    *p++ = '}';

    return p;
}
