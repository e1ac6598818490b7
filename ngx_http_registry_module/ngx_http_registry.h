
/*
 * ngx_http_registry_module: an OCI distribution registry inside nginx.
 * Types and functions shared by the files of the module.
 */


#ifndef _NGX_HTTP_REGISTRY_H_INCLUDED_
#define _NGX_HTTP_REGISTRY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <openssl/sha.h>
#include <jansson.h>


#define NGX_HTTP_REGISTRY_DIGEST_LEN   71   /* "sha256:" + 64 hex */
#define NGX_HTTP_REGISTRY_S3_MIN_PART  (5 * 1024 * 1024)
#define NGX_HTTP_REGISTRY_S3_MAX_PARTS 10000


typedef struct ngx_http_registry_ctx_s  ngx_http_registry_ctx_t;


/* the keys in Redis, their owners and lifetimes: redis/KEYS.md */

/*
 * A step of a request's state machine.  It runs when the operation it
 * waited for has completed and returns NGX_DONE while another operation is
 * pending, NGX_OK or an HTTP status when the response is complete or must
 * be finalized, NGX_ERROR on failure.
 */
typedef ngx_int_t (*ngx_http_registry_step_pt)(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);


typedef struct {
    ngx_str_t                   endpoint;      /* http://host:port */
    ngx_str_t                   host;          /* host[:port], signed */
    ngx_str_t                   region;
    ngx_str_t                   bucket;
    ngx_str_t                   access_key;
    ngx_str_t                   secret_key;
    ngx_str_t                   location;      /* internal proxy_pass uri */
    ngx_flag_t                  redirect;
    ngx_flag_t                  stream;        /* monolithic PUTs streamed */
    time_t                      presign_expires;
} ngx_http_registry_s3_conf_t;


typedef struct {
    ngx_str_t                   redis;         /* as written */
    ngx_str_t                   redis_master;  /* Sentinel: its name */
    ngx_array_t                *redis_addrs;   /* the server, or the
                                                  sentinels (..._addr_t) */
    ngx_shm_zone_t             *redis_known;   /* Sentinel: the master
                                                  named last */
    ngx_msec_t                  redis_timeout;
    ngx_str_t                   redis_password; /* empty: no AUTH */
    ngx_uint_t                  redis_wait;    /* replicas; 0: no WAIT */
    ngx_msec_t                  redis_wait_timeout;

    ngx_http_registry_s3_conf_t s3;

    ngx_str_t                   auth_location; /* empty: auth off */
    ngx_str_t                   auth_realm;
    ngx_str_t                   auth_service;
    ngx_shm_zone_t             *auth_zone;
    time_t                      auth_valid;

    time_t                      upload_expires;
    size_t                      upload_tails;   /* bytes, all sessions */
    ngx_uint_t                  history_depth;
    ngx_uint_t                  events_maxlen;  /* 0: no Redis streams */
    ngx_array_t                *event_webhooks; /* of ..._webhook_t */
    ngx_flag_t                  events_pull;
    ngx_msec_t                  watch_timeout;
    ngx_str_t                   public_host;    /* for references */
    ngx_flag_t                  enabled;        /* a registry location */
    ngx_flag_t                  metrics;        /* a registry_metrics one */
    ngx_shm_zone_t             *metrics_zone;

    /* streamed PUTs (stream.c); NULL: the endpoint is not an IP */
    ngx_addr_t                 *s3_addr;
    ngx_http_upstream_conf_t   *s3_upstream;

    struct ngx_http_registry_gc_conf_s  *gc;    /* registry_gc, or NULL */
} ngx_http_registry_main_conf_t;


typedef struct {
    ngx_str_t                   location;
    ngx_uint_t                  attempts;
} ngx_http_registry_webhook_t;


typedef struct {
    ngx_uint_t                  handler;       /* which content handler */
} ngx_http_registry_loc_conf_t;

#define NGX_HTTP_REGISTRY_HANDLER_NONE        0
#define NGX_HTTP_REGISTRY_HANDLER_REGISTRY    1
#define NGX_HTTP_REGISTRY_HANDLER_HEALTH      2
#define NGX_HTTP_REGISTRY_HANDLER_AUTHORIZER  3
#define NGX_HTTP_REGISTRY_HANDLER_METRICS     4
#define NGX_HTTP_REGISTRY_HANDLER_GC          5


/* what an S3 operation asks for */
typedef struct {
    ngx_str_t                   method;
    ngx_str_t                   key;           /* object key, [A-Za-z0-9/_.-] */
    ngx_str_t                   query;         /* canonical: sorted, encoded */
    ngx_chain_t                *body;          /* memory or file buffers */
    off_t                       body_len;
    ngx_str_t                   payload_hash;  /* hex; empty: UNSIGNED */
    ngx_str_t                   range;         /* "bytes=a-b" or empty */
    ngx_str_t                   content_md5;   /* base64, or empty */
    unsigned                    stream:1;      /* body goes to the client */
    unsigned                    bucket:1;      /* no key: DeleteObjects,
                                                  ListMultipartUploads */
} ngx_http_registry_s3_op_t;


/* what an S3 operation answered */
typedef struct {
    ngx_uint_t                  status;        /* 0: no answer (S3 down) */
    ngx_str_t                   etag;
    off_t                       content_length;
    ngx_str_t                   body;          /* in memory, bounded */
    ngx_str_t                   error_code;    /* <Code> of an error body */
} ngx_http_registry_s3_result_t;


/* called when the S3 response header of a streamed GET arrives */
typedef ngx_int_t (*ngx_http_registry_s3_header_pt)(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_request_t *sr);


enum {
    NGX_HTTP_REGISTRY_ROUTE_NONE = 0,
    NGX_HTTP_REGISTRY_ROUTE_BASE,
    NGX_HTTP_REGISTRY_ROUTE_CATALOG,
    NGX_HTTP_REGISTRY_ROUTE_TAGS,
    NGX_HTTP_REGISTRY_ROUTE_MANIFEST,
    NGX_HTTP_REGISTRY_ROUTE_BLOB,
    NGX_HTTP_REGISTRY_ROUTE_UPLOADS,           /* POST .../blobs/uploads/ */
    NGX_HTTP_REGISTRY_ROUTE_UPLOAD,            /* .../blobs/uploads/ID */
    NGX_HTTP_REGISTRY_ROUTE_REFERRERS,
    NGX_HTTP_REGISTRY_ROUTE_TOKEN,
    NGX_HTTP_REGISTRY_ROUTE_API_STREAMS,       /* namespaces/P/imagestreams */
    NGX_HTTP_REGISTRY_ROUTE_API_STREAM,        /* .../imagestreams/N */
    NGX_HTTP_REGISTRY_ROUTE_API_TAG,           /* .../imagestreamtags/N:T */
    NGX_HTTP_REGISTRY_ROUTE_API_IMAGE          /* images/D */
};


enum {
    NGX_HTTP_REGISTRY_ACTION_NONE = 0,
    NGX_HTTP_REGISTRY_ACTION_PULL,
    NGX_HTTP_REGISTRY_ACTION_PUSH,
    NGX_HTTP_REGISTRY_ACTION_DELETE,
    NGX_HTTP_REGISTRY_ACTION_LIST
};


/* a client body on its way in (body.c; stream.c when it goes to S3) */
typedef struct {
    SHA256_CTX                     *hash;      /* updated with it, if set */
    off_t                           bytes;     /* seen by the filter */
    unsigned                        reading:1;
    unsigned                        starting:1; /* nginx's reader starts */
} ngx_http_registry_body_t;


struct ngx_http_registry_ctx_s {
    ngx_http_registry_step_pt       next;

    ngx_uint_t                      route;
    ngx_str_t                       repo;       /* project/image */
    ngx_str_t                       project;
    ngx_str_t                       image;
    ngx_str_t                       reference;  /* tag, digest or upload id */
    ngx_uint_t                      action;
    ngx_str_t                       user;       /* named by the authorizer */
    ngx_str_t                       mount_from; /* ?from= of a mount */
    void                           *auth;       /* auth.c's state */

    /* a request the router refuses */
    ngx_uint_t                      error_status;
    const char                     *error_code;
    const char                     *error_message;

    /* the last Redis reply; valid only while the step runs */
    redisReply                     *reply;
    ngx_uint_t                      reply_conn; /* the connection it came
                                                   on (redis.c) */
    ngx_http_registry_step_pt       durable_next;

    /* the last S3 answer */
    ngx_http_registry_s3_result_t   s3;
    ngx_http_registry_s3_header_pt  s3_header;

    ngx_str_t                       digest;     /* of a blob */

    void                           *data;       /* per-handler state */
    ngx_http_registry_body_t        body;
    void                           *stream;     /* stream.c's state */
    ngx_http_registry_step_pt       after;      /* quota.c: once checked */

    /* errors.c: nginx's own error page, sent as this instead */
    ngx_str_t                       error_body;

    unsigned                        auth_done:1;
    unsigned                        mount_denied:1; /* no pull on from */
    unsigned                        error_page:1;
    unsigned                        watch:1;    /* metrics: a watch */
    unsigned                        durable:1;  /* WAIT said so */
};


/* a manifest's media type, and whether it lists manifests (an index) */
typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      index;
} ngx_http_registry_media_type_t;


typedef struct {
    ngx_str_t                       media_type;
    ngx_str_t                       digest;
    off_t                           size;
} ngx_http_registry_descriptor_t;


/*
 * A manifest being pushed, kept in ctx->data until the answer
 * (manifest_put.c); images.c makes its Image object from it.
 */
typedef struct {
    json_t                         *json;      /* freed with the pool */
    ngx_str_t                       body;
    ngx_str_t                       digest;    /* sha256 of body */
    ngx_str_t                       tag;       /* empty: pushed by digest */
    ngx_http_registry_media_type_t *type;
    ngx_str_t                       artifact_type;
    ngx_str_t                       annotations;   /* JSON text or empty */
    ngx_str_t                       subject;       /* digest or empty */
    ngx_http_registry_descriptor_t  config;        /* image manifests */
    ngx_array_t                     refs;      /* layers, or manifests[] */
    off_t                           size;      /* as its Image counts it */
    ngx_str_t                       object;    /* Image JSON, or empty */
    void                           *image;     /* images.c's state */
} ngx_http_registry_manifest_t;


extern ngx_module_t  ngx_http_registry_module;


/*
 * Module core (module.c).  ngx_http_registry_hold() keeps the request
 * while something of ours may still use it, ngx_http_registry_release()
 * gives that back (the request ends with the last hold); the content
 * handlers hold it while a step is pending.
 */
ngx_http_registry_ctx_t *ngx_http_registry_get_ctx(ngx_http_request_t *r);
void ngx_http_registry_resume(ngx_http_request_t *r);
void ngx_http_registry_hold(ngx_http_request_t *r);
void ngx_http_registry_release(ngx_http_request_t *r);
ngx_uint_t ngx_http_registry_redirect(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_keyf(ngx_pool_t *pool, ngx_str_t *key,
    const char *fmt, ...);
ngx_chain_t *ngx_http_registry_memory_chain(ngx_pool_t *pool, ngx_str_t *s);

/*
 * Responses (response.c): bodies from memory, JSON, and the error
 * bodies: OCI's, or a Kubernetes Status under /apis.
 */
ngx_int_t ngx_http_registry_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
ngx_int_t ngx_http_registry_accepted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *content_type, u_char *data, size_t len);
ngx_int_t ngx_http_registry_send_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json);
ngx_int_t ngx_http_registry_send_json_as(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, json_t *json);
ngx_int_t ngx_http_registry_json_text(ngx_pool_t *pool, json_t *json,
    ngx_str_t *out);
ngx_int_t ngx_http_registry_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message);
ngx_int_t ngx_http_registry_unavailable(ngx_http_request_t *r,
    const char *what);
ngx_int_t ngx_http_registry_redis_failed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_s3_failed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);

/*
 * Core helpers (util.c).  ngx_http_registry_api_uri() tells an /apis/
 * URI, whose errors are Kubernetes' Status, which
 * ngx_http_registry_api_status() sends.
 */
ngx_int_t ngx_http_registry_public_host(ngx_http_request_t *r,
    ngx_str_t *host);
ngx_int_t ngx_http_registry_timestamp(ngx_pool_t *pool, ngx_str_t *ts,
    ngx_uint_t msec);
ngx_int_t ngx_http_registry_uuid(ngx_pool_t *pool, ngx_str_t *uuid);
ngx_uint_t ngx_http_registry_api_uri(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_api_status(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);
json_t *ngx_http_registry_api_status_json(ngx_uint_t status,
    const char *message);

/*
 * Metrics (metrics.c): counters, gauges and histograms in the shared
 * memory zone that "registry_metrics" makes, summed over the workers of
 * the instance when that location is asked (Prometheus' text format).
 * Any file adds to them: an atomic add into its worker's own row, no
 * lock; without "registry_metrics" nothing is kept.  label: the label
 * value's index below (0 for a metric without labels).  Histograms take
 * microseconds; ngx_http_registry_metrics_usec() is a monotonic clock
 * (0 when metrics are off).  Requests, their durations, blob bytes and
 * manifest pushes and pulls are counted by metrics.c's log handler.
 */
enum {
    NGX_HTTP_REGISTRY_METRIC_HTTP_REQUESTS = 0,   /* metrics.c */
    NGX_HTTP_REGISTRY_METRIC_HTTP_DURATION,       /* metrics.c */
    NGX_HTTP_REGISTRY_METRIC_BLOB_RECEIVED,       /* bytes, metrics.c */
    NGX_HTTP_REGISTRY_METRIC_BLOB_SENT,           /* bytes, metrics.c */
    NGX_HTTP_REGISTRY_METRIC_MANIFEST_PUSHES,     /* metrics.c */
    NGX_HTTP_REGISTRY_METRIC_MANIFEST_PULLS,      /* metrics.c */
    NGX_HTTP_REGISTRY_METRIC_UPLOADS_STARTED,
    NGX_HTTP_REGISTRY_METRIC_UPLOADS_COMMITTED,
    NGX_HTTP_REGISTRY_METRIC_UPLOADS_CANCELLED,
    NGX_HTTP_REGISTRY_METRIC_UPLOADS_EXPIRED,
    NGX_HTTP_REGISTRY_METRIC_UPLOADS_OPEN,        /* derived: none adds */
    NGX_HTTP_REGISTRY_METRIC_S3_REQUESTS,         /* metrics_s3() */
    NGX_HTTP_REGISTRY_METRIC_S3_DURATION,         /* metrics_s3() */
    NGX_HTTP_REGISTRY_METRIC_REDIS_COMMANDS,
    NGX_HTTP_REGISTRY_METRIC_REDIS_ERRORS,        /* _REDIS_ERROR_* */
    NGX_HTTP_REGISTRY_METRIC_REDIS_LOSSES,        /* _REDIS_CONN_* */
    NGX_HTTP_REGISTRY_METRIC_REDIS_RECONNECTS,    /* _REDIS_CONN_* */
    NGX_HTTP_REGISTRY_METRIC_REDIS_DURATION,
    NGX_HTTP_REGISTRY_METRIC_AUTH_DECISIONS,      /* _AUTH_* */
    NGX_HTTP_REGISTRY_METRIC_AUTH_CACHE_HITS,
    NGX_HTTP_REGISTRY_METRIC_AUTH_CACHE_MISSES,
    NGX_HTTP_REGISTRY_METRIC_AUTH_CACHE_EVICTIONS,
    NGX_HTTP_REGISTRY_METRIC_EVENTS,              /* EVENT_* - 1 */
    NGX_HTTP_REGISTRY_METRIC_WEBHOOK_DELIVERIES,
    NGX_HTTP_REGISTRY_METRIC_WEBHOOK_RETRIES,
    NGX_HTTP_REGISTRY_METRIC_WEBHOOK_DROPS,
    NGX_HTTP_REGISTRY_METRIC_GC_RUNS,
    NGX_HTTP_REGISTRY_METRIC_GC_RECLAIMED_BYTES,
    NGX_HTTP_REGISTRY_METRIC_GC_BLOBS_DELETED,
    NGX_HTTP_REGISTRY_METRIC_WATCHES,             /* gauge: +1, -1 */
    NGX_HTTP_REGISTRY_METRICS
};

/* labels: Redis errors, Redis connections, authorization outcomes */
#define NGX_HTTP_REGISTRY_REDIS_ERROR_REPLY    0   /* -ERR ... */
#define NGX_HTTP_REGISTRY_REDIS_NO_REPLY       1   /* timeout, loss */
#define NGX_HTTP_REGISTRY_REDIS_NOT_CONNECTED  2   /* refused at once */
#define NGX_HTTP_REGISTRY_REDIS_CONN_COMMAND   0
#define NGX_HTTP_REGISTRY_REDIS_CONN_SUB       1
#define NGX_HTTP_REGISTRY_AUTH_ALLOWED         0
#define NGX_HTTP_REGISTRY_AUTH_UNAUTHORIZED    1
#define NGX_HTTP_REGISTRY_AUTH_DENIED          2
#define NGX_HTTP_REGISTRY_AUTH_UNAVAILABLE     3
#define NGX_HTTP_REGISTRY_AUTH_ERROR           4

/* S3 operations, for ngx_http_registry_metrics_s3() */
enum {
    NGX_HTTP_REGISTRY_S3_HEAD_BUCKET = 0,
    NGX_HTTP_REGISTRY_S3_HEAD_OBJECT,
    NGX_HTTP_REGISTRY_S3_GET_OBJECT,
    NGX_HTTP_REGISTRY_S3_PUT_OBJECT,
    NGX_HTTP_REGISTRY_S3_DELETE_OBJECT,
    NGX_HTTP_REGISTRY_S3_CREATE_MULTIPART,
    NGX_HTTP_REGISTRY_S3_UPLOAD_PART,
    NGX_HTTP_REGISTRY_S3_COMPLETE_MULTIPART,
    NGX_HTTP_REGISTRY_S3_ABORT_MULTIPART,
    NGX_HTTP_REGISTRY_S3_OPS
};

ngx_int_t ngx_http_registry_metrics_init(ngx_conf_t *cf);
void ngx_http_registry_metrics_init_worker(ngx_cycle_t *cycle);
ngx_int_t ngx_http_registry_metrics_handler(ngx_http_request_t *r);
void ngx_http_registry_metrics_add(ngx_uint_t metric, ngx_uint_t label,
    ngx_atomic_int_t n);
void ngx_http_registry_metrics_observe(ngx_uint_t metric, ngx_uint_t label,
    uint64_t usec);
uint64_t ngx_http_registry_metrics_usec(void);
/* an S3 request's outcome (status 0: no answer) and its duration */
void ngx_http_registry_metrics_s3(ngx_uint_t op, ngx_uint_t status,
    uint64_t start);

/*
 * Authorization (auth.c): an access-phase handler for registry locations
 * that asks the location named by "registry_auth" through a subrequest;
 * ngx_http_registry_auth_challenge() adds its WWW-Authenticate header.
 */
extern ngx_str_t  ngx_http_registry_auth_actions[];

char *ngx_http_registry_auth_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_registry_auth_init(ngx_conf_t *cf);
ngx_int_t ngx_http_registry_auth_challenge(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
/* whether the user may pull the repository (the image API's filter) */
ngx_uint_t ngx_http_registry_auth_may_list(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, u_char *name, size_t len);
/* the catalog's: "*", or the projects whose repositories are listed */
void ngx_http_registry_auth_listable(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *projects);

/* the authorizer's decisions in shared memory (auth_cache.c) */
char *ngx_http_registry_auth_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_registry_auth_cache_get(ngx_http_request_t *r,
    u_char *key, ngx_uint_t *status, ngx_str_t *user, ngx_str_t *projects);
void ngx_http_registry_auth_cache_put(ngx_http_request_t *r, u_char *key,
    ngx_uint_t status, ngx_str_t *user, ngx_str_t *projects);

/*
 * The token endpoint and the default Redis-backed authorizer
 * ("registry_authorizer") (authorizer.c).  auth_credentials() reads the
 * token of an Authorization header (NGX_DECLINED: unreadable);
 * auth_find() a header by name.
 */
ngx_int_t ngx_http_registry_authorizer_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_token_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_auth_credentials(ngx_pool_t *pool,
    ngx_table_elt_t *h, ngx_str_t *token);
ngx_table_elt_t *ngx_http_registry_auth_find(ngx_list_t *headers,
    const char *name);

/* router: /v2/, /apis/ and friends */
ngx_int_t ngx_http_registry_route(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_parse(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_is_tag(ngx_str_t *s);
ngx_int_t ngx_http_registry_is_repo(ngx_str_t *name);
ngx_int_t ngx_http_registry_check_digest(ngx_str_t *s);
ngx_int_t ngx_http_registry_digest_error(ngx_http_request_t *r,
    ngx_str_t *digest);
ngx_int_t ngx_http_registry_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);

/*
 * Route handlers.  Each returns like a content handler: NGX_DONE while an
 * operation is pending (ctx->next runs when it completes), else what
 * ngx_http_finalize_request() takes.  A handler that reads the body calls
 * ngx_http_registry_read_body() and returns what it returns.
 */
ngx_int_t ngx_http_registry_blob_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_uploads_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_upload_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_manifest_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_tags_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_catalog_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_referrers_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);

/*
 * Health (health.c): readiness (/healthz, /readyz: Redis answers PING,
 * S3 answers HeadBucket) and liveness (/livez: the worker answers).
 */
ngx_int_t ngx_http_registry_health_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_live_handler(ngx_http_request_t *r);

/*
 * Blob uploads in three files: uploads.c (the route handlers, their
 * answers, and the state machine), upload_session.c (the session in
 * Redis and the claim on it), upload_store.c (the bytes to S3, and the
 * commit that makes them a blob).  A request's state is one
 * ngx_http_registry_upload_t in ctx->data, whose state is the operation
 * in flight: see ngx_http_registry_upload_next().
 */
#define NGX_HTTP_REGISTRY_ID_LEN       32

/* S3's largest part and object of a single PUT */
#ifndef NGX_HTTP_REGISTRY_MAX_PART
#define NGX_HTTP_REGISTRY_MAX_PART     ((off_t) 5 * 1024 * 1024 * 1024)
#endif

/* the claim's renewals (upload_session.c) */
typedef struct ngx_http_registry_claim_s   ngx_http_registry_claim_t;
typedef struct ngx_http_registry_upload_s  ngx_http_registry_upload_t;

/* in the order they may follow one another, bar PEND before STREAM */
typedef enum {
    NGX_HTTP_REGISTRY_UPLOAD_START = 0,  /* loaded, or a monolithic push */
    NGX_HTTP_REGISTRY_UPLOAD_BODY,       /* the body read and hashed */
    NGX_HTTP_REGISTRY_UPLOAD_STREAM,     /* ... or streamed to S3 */
    NGX_HTTP_REGISTRY_UPLOAD_EXISTS,     /* whether blob:D exists */
    NGX_HTTP_REGISTRY_UPLOAD_CLAIM,      /* the session claimed */
    NGX_HTTP_REGISTRY_UPLOAD_ETAGS,      /* the parts before ours */
    NGX_HTTP_REGISTRY_UPLOAD_TAIL,       /* the tail's bytes */
    NGX_HTTP_REGISTRY_UPLOAD_PEND,       /* the key in objects:pending */
    NGX_HTTP_REGISTRY_UPLOAD_CREATE,     /* the multipart upload made */
    NGX_HTTP_REGISTRY_UPLOAD_RECORD,     /* ... its id in the session */
    NGX_HTTP_REGISTRY_UPLOAD_PART,       /* a part sent */
    NGX_HTTP_REGISTRY_UPLOAD_PUT,        /* the blob in one PutObject */
    NGX_HTTP_REGISTRY_UPLOAD_COMPLETE,   /* ... or its parts completed */
    NGX_HTTP_REGISTRY_UPLOAD_ABORT,      /* ... or, as it exists, dropped */
    NGX_HTTP_REGISTRY_UPLOAD_SAVE,       /* a PATCH's bytes committed */
    NGX_HTTP_REGISTRY_UPLOAD_FINISH,     /* the blob linked */
    NGX_HTTP_REGISTRY_UPLOAD_DELETE,     /* our object deleted */
    NGX_HTTP_REGISTRY_UPLOAD_CANCEL,     /* a cancelled session's parts */
    NGX_HTTP_REGISTRY_UPLOAD_DISCARD,    /* parts that none records */
    NGX_HTTP_REGISTRY_UPLOAD_FORGET      /* the session deleted */
} ngx_http_registry_upload_state_e;

struct ngx_http_registry_upload_s {
    ngx_http_registry_upload_state_e  state;
    ngx_http_request_t         *request;
    ngx_str_t                   id;
    ngx_str_t                   key;          /* the S3 object */
    ngx_str_t                   session;      /* upload:ID */
    ngx_str_t                   etags;        /* upload:ID:etags */
    ngx_str_t                   tail_key;     /* upload:ID:tail */
    ngx_str_t                   blob;         /* blob:D of the claim */
    ngx_str_t                   mpu;          /* multipart id, or empty */
    ngx_str_t                   claimed;      /* the client's digest */
    ngx_str_t                   tail;         /* tail bytes, once loaded */
    ngx_str_t                   token;        /* our claim on the session */
    ngx_array_t                *committed;    /* parts before us, loaded */
    ngx_array_t                *parts;        /* the parts we sent */
    ngx_http_registry_step_pt   deleted;      /* after our object went */
    SHA256_CTX                  sha;          /* of the blob so far */

    ngx_http_registry_claim_t  *claim;        /* while locked */
    ngx_event_t                 renew;        /* ticks while locked */
    ngx_msec_t                  claim_until;  /* stop writing after */

    ngx_uint_t                  ncommitted;   /* parts before us */
    off_t                       offset;       /* committed before us */
    off_t                       tail_len;
    off_t                       chunk_len;
    off_t                       total;        /* tail + chunk: ours to send */
    off_t                       sent;         /* of total, in parts */
    off_t                       part_size;
    off_t                       range_start;
    off_t                       range_end;

    unsigned                    has_range:1;
    unsigned                    final:1;       /* PUT or monolithic */
    unsigned                    monolithic:1;  /* no session in Redis */
    unsigned                    stream:1;      /* the body to S3 as it comes */
    unsigned                    locked:1;      /* the session is ours */
    unsigned                    exists:1;      /* blob:D, final only */
    unsigned                    mpu_unsent:1;  /* its record never sent */
};

/*
 * uploads.c: the answers, and the state machine.  upload_go() starts the
 * operation of a state (the one place up->state changes), upload_next()
 * the one that follows the operation that has just succeeded;
 * upload_cancel() ends the session (DELETE, a wrong digest).
 */
ngx_int_t ngx_http_registry_upload_next(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_upload_go(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_upload_state_e state);
ngx_int_t ngx_http_registry_upload_cancel(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_upload_busy(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, redisReply *reply);
ngx_int_t ngx_http_registry_upload_blob_created(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_upload_forgotten(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_upload_range_error(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_upload_unknown(ngx_http_request_t *r);

/*
 * upload_session.c: create, load, mount and save run their script and
 * then next, with its reply in ctx->reply; pend and claim come back to
 * ngx_http_registry_upload_next().
 */
ngx_int_t ngx_http_registry_upload_new(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *id);
ngx_int_t ngx_http_registry_upload_create(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next);
ngx_int_t ngx_http_registry_upload_load(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next);
ngx_int_t ngx_http_registry_upload_record_mpu(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next);
ngx_int_t ngx_http_registry_upload_mount(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *from,
    ngx_http_registry_step_pt next);
ngx_int_t ngx_http_registry_upload_pend(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_upload_claim(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
void ngx_http_registry_upload_unlock(ngx_http_registry_upload_t *up);
ngx_int_t ngx_http_registry_upload_save(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next);
ngx_int_t ngx_http_registry_upload_forget(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);

/*
 * upload_store.c: the operation of up->state that is not the body's or
 * the session's (EXISTS, ETAGS, TAIL, RECORD, FINISH, and those of S3);
 * each ends in ngx_http_registry_upload_next(), or in an answer.
 */
ngx_int_t ngx_http_registry_upload_store(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);

/*
 * Manifest PUT (manifest_put.c), for the manifest handler (manifests.c).
 * ngx_http_registry_manifest_reject() answers an error before a body is
 * read, discarding the body of a PUT.
 */
#define NGX_HTTP_REGISTRY_OCI_INDEX  "application/vnd.oci.image.index.v1+json"

ngx_int_t ngx_http_registry_manifest_put(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t by_tag);
ngx_int_t ngx_http_registry_manifest_reject(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);

/*
 * Images (images.c).  ngx_http_registry_image_prepare() makes the Image
 * object of the manifest in ctx->data (reading its config blob once),
 * then runs next.
 */
ngx_int_t ngx_http_registry_image_prepare(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next);

/*
 * The image API's routes (imagestreams.c); its Lua script that reads a
 * project's streams, which a watch sends first.
 */
ngx_int_t ngx_http_registry_api_streams_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_api_stream_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_api_tag_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_api_image_handler(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);

/* a watch of a project's image streams (watch.c) */
ngx_int_t ngx_http_registry_watch_start(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);

/*
 * Events (events.c): distribution's notification for every push, mount,
 * delete (and pull, with registry_events_pull), added to the Redis
 * stream "events" and POSTed to each registry_event_webhook location by
 * background subrequests.  Nothing here fails or delays the request:
 * errors are logged.  A negative size is looked up in blob:D first.
 */
#define NGX_HTTP_REGISTRY_EVENT_PUSH    1
#define NGX_HTTP_REGISTRY_EVENT_PULL    2
#define NGX_HTTP_REGISTRY_EVENT_MOUNT   3
#define NGX_HTTP_REGISTRY_EVENT_DELETE  4

typedef struct {
    ngx_uint_t                  action;
    ngx_uint_t                  manifest;      /* else a blob */
    ngx_str_t                   media_type;
    ngx_str_t                   digest;
    off_t                       size;          /* -1: unknown */
    ngx_str_t                   tag;
} ngx_http_registry_event_t;

void ngx_http_registry_event(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_event_t *ev);
/*
 * The one line of blobs.c and uploads.c: ctx->digest in ctx->repo.  A
 * PUSH answered to a POST with ?mount= is a mount; a PULL counts for GET
 * only.
 */
void ngx_http_registry_event_blob(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_uint_t action, off_t size);
char *ngx_http_registry_event_webhook(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * Reads the client body (to memory or nginx's temp file, hashing it on
 * the way into ctx->body.hash when it is set); then runs next.
 * A body read, like every pending step, runs under the one hold the
 * content handler takes when it returns NGX_DONE: the hold nginx's body
 * reader takes is given back at once, since nginx does not give it back
 * when the read fails.
 */
ngx_int_t ngx_http_registry_read_body(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_http_registry_step_pt next);
ngx_int_t ngx_http_registry_body_init(ngx_conf_t *cf);
ngx_int_t ngx_http_registry_body_bytes(ngx_http_request_t *r, ngx_str_t *out,
    size_t max);
/*
 * The SHA-256 of a body, kept between requests as hash_save() writes it
 * (hash_load(): NGX_DECLINED when it is not such a state);
 * hash_digest() writes "sha256:<hex>" (NGX_HTTP_REGISTRY_DIGEST_LEN
 * bytes) of what was hashed so far.
 */
void ngx_http_registry_hash_init(SHA256_CTX *sha);
ngx_int_t ngx_http_registry_hash_save(ngx_pool_t *pool, SHA256_CTX *sha,
    ngx_str_t *out);
ngx_int_t ngx_http_registry_hash_load(SHA256_CTX *sha, ngx_str_t *saved);
void ngx_http_registry_hash_digest(SHA256_CTX *sha, u_char *digest);
void ngx_http_registry_hash_raw(u_char *data, size_t len, u_char *out);

/*
 * One Redis connection driven by nginx's event loop (redis_conn.c), as
 * the command connection (redis.c) and the subscriber (redis_sub.c)
 * have it: the context (its ac->data points back here, which tells the
 * adapter's hooks and the callbacks whose connection it is), the connect
 * timer, and the failure the hooks post.  What differs is in the two
 * handlers: what follows a successful connect(2) (the command connection
 * sends PING, the subscriber turns on keepalive) and what a loss means
 * (the command connection reconnects, the subscriber tells its handler).
 * The server, from "registry_redis", is the same for both: an address,
 * or the master that Redis Sentinel names.  With Sentinel, a connection
 * opened to a master that has since moved is dropped (a loss), and
 * on_master, if set, runs when a connection may be opened at once: the
 * master moved, or was not known when it was last tried.
 */
typedef struct ngx_http_registry_redis_conn_s  ngx_http_registry_redis_conn_t;

typedef void (*ngx_http_registry_redis_connect_pt)(
    ngx_http_registry_redis_conn_t *conn);
typedef void (*ngx_http_registry_redis_lost_pt)(
    ngx_http_registry_redis_conn_t *conn, const char *what,
    const char *detail);

struct ngx_http_registry_redis_conn_s {
    redisAsyncContext                   *ac;    /* NULL: disconnected */

    ngx_event_t                          timer; /* connect */
    ngx_event_t                          fail;  /* posted by the hooks */

    ngx_http_registry_redis_connect_pt   on_connect;
    ngx_http_registry_redis_lost_pt      on_lost;
    ngx_http_registry_redis_connect_pt   on_master;

    const char                          *broken; /* why fail is posted */
    ngx_uint_t                           master; /* which one it went to */

    unsigned                             ready:1; /* PING answered, or
                                                     subscribed */
    unsigned                             sentinel:1;
    unsigned                             waiting:1; /* for a master */
};

/* an address of "registry_redis": a Redis or a sentinel */
typedef struct {
    ngx_str_t                   name;          /* as written, for the log */
    char                       *host;          /* an IP; NULL: path */
    int                         port;
    char                       *path;          /* unix socket */
} ngx_http_registry_redis_addr_t;

typedef struct {
    ngx_str_t                   name;          /* as written, for the log */
    ngx_str_t                   password;      /* empty: no AUTH */
    ngx_msec_t                  timeout;       /* connect, and commands */
    ngx_log_t                  *log;
    unsigned                    configured:1;
} ngx_http_registry_redis_server_t;

extern ngx_http_registry_redis_server_t  ngx_http_registry_redis_server;

char *ngx_http_registry_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_registry_redis_configure(ngx_cycle_t *cycle);
void ngx_http_registry_redis_conn_init(ngx_http_registry_redis_conn_t *conn,
    ngx_http_registry_redis_connect_pt on_connect,
    ngx_http_registry_redis_lost_pt on_lost, ngx_log_t *log);
/*
 * Starts connecting; on failure nothing is left open, *detail says why.
 * NGX_DECLINED: no master known yet, the sentinels are being asked
 * (on_master runs once one is).
 */
ngx_int_t ngx_http_registry_redis_open(ngx_http_registry_redis_conn_t *conn,
    const char **detail);
/* to that address (a Redis or a sentinel) */
ngx_int_t ngx_http_registry_redis_connect_to(
    ngx_http_registry_redis_conn_t *conn,
    ngx_http_registry_redis_addr_t *addr, const char **detail);
/* gone: what it means is up to on_lost */
void ngx_http_registry_redis_lost(ngx_http_registry_redis_conn_t *conn,
    const char *what, const char *detail);
/* closed by us, outside hiredis's callbacks, reported as lost */
void ngx_http_registry_redis_drop(ngx_http_registry_redis_conn_t *conn,
    const char *what);
/* from inside hiredis: dropped from a posted event */
void ngx_http_registry_redis_fail(ngx_http_registry_redis_conn_t *conn,
    const char *why);
void ngx_http_registry_redis_connect_timer_handler(ngx_event_t *ev);
/* closed without reporting a loss */
void ngx_http_registry_redis_close(ngx_http_registry_redis_conn_t *conn);

/*
 * Redis Sentinel (redis_sentinel.c): the master the connections go to
 * when "registry_redis" names sentinels, and a subscription to each of
 * them that tells of failovers; ..._sentinel_conf() adds the shared
 * memory that keeps the master named last, for the workers started
 * later.  ngx_http_registry_redis_master() returns it, or NULL when none
 * is known yet (the sentinels are asked, conn->on_master runs once one
 * is); ..._sentinel_check() asks again when conn was lost;
 * ..._sentinel_watch() has conn dropped when the master moves.
 */
char *ngx_http_registry_redis_sentinel_conf(ngx_conf_t *cf,
    ngx_http_registry_main_conf_t *mcf);
ngx_int_t ngx_http_registry_redis_sentinel_init(
    ngx_http_registry_main_conf_t *mcf, ngx_cycle_t *cycle);
void ngx_http_registry_redis_sentinel_exit(void);
void ngx_http_registry_redis_sentinel_watch(
    ngx_http_registry_redis_conn_t *conn);
ngx_http_registry_redis_addr_t *ngx_http_registry_redis_master(
    ngx_http_registry_redis_conn_t *conn);
void ngx_http_registry_redis_sentinel_check(
    ngx_http_registry_redis_conn_t *conn);

/*
 * Redis (redis.c): one command connection per worker.
 * ngx_http_registry_redis_command() queues a command for the request;
 * when the reply (or a failure: reply NULL) arrives, it stores it in
 * ctx->reply and calls ngx_http_registry_resume(r), then runs the posted
 * requests of r's connection.  It returns NGX_ERROR at once when Redis
 * is not connected.  A request finalized before its reply arrives is
 * never touched again.
 */
ngx_int_t ngx_http_registry_redis_init_worker(ngx_cycle_t *cycle);
void ngx_http_registry_redis_exit_worker(ngx_cycle_t *cycle);
ngx_int_t ngx_http_registry_redis_command(ngx_http_request_t *r, int argc,
    const char **argv, const size_t *argvlen);

/*
 * The same, not tied to a request (background work): on NGX_OK, cb runs
 * exactly once, later, with the reply or NULL (failure, worker exit);
 * the reply is freed when cb returns.  A NULL cb ignores the reply.
 */
typedef void (*ngx_http_registry_redis_cb_pt)(redisReply *reply, void *data);

ngx_int_t ngx_http_registry_redis_call(ngx_http_registry_redis_cb_pt cb,
    void *data, int argc, const char **argv, const size_t *argvlen);

/*
 * The functions of the Redis library "registry" (redis/NAME.lua, embedded
 * by config as ngx_http_registry_redis_library and loaded on every
 * connect by redis.c), called (redis_run.c) by name with FCALL: args
 * holds the nkeys keys, then the arguments.  ngx_http_registry_run()
 * and ngx_http_registry_call() (a command from ngx_str_t pointers) make
 * it the operation a step waits for: next runs with the reply, and Redis
 * not connected is answered 503 at once.  ngx_http_registry_redis_fcall()
 * is the background form.
 */
extern const char  ngx_http_registry_redis_library[];

ngx_int_t ngx_http_registry_fcall(ngx_http_request_t *r, const char *name,
    ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs);
ngx_int_t ngx_http_registry_run(ngx_http_request_t *r,
    ngx_http_registry_step_pt next, const char *name, ngx_uint_t nkeys,
    ngx_str_t *args, ngx_uint_t nargs);
ngx_int_t ngx_http_registry_redis_fcall(ngx_http_registry_redis_cb_pt cb,
    void *data, const char *name, ngx_uint_t nkeys, ngx_str_t *args,
    ngx_uint_t nargs);
ngx_int_t ngx_http_registry_call(ngx_http_request_t *r,
    ngx_http_registry_step_pt next, ngx_uint_t n, ...);
/* element i of an array reply (or the reply itself, i = -1), a string */
ngx_int_t ngx_http_registry_reply_str(redisReply *reply, ngx_uint_t i,
    ngx_str_t *s);
/* the command connection's, as in ctx->reply_conn; 0: none is up */
ngx_uint_t ngx_http_registry_redis_serial(void);

/*
 * Durability ("registry_redis_wait", redis_wait.c): a step that runs next
 * once WAIT says that enough replicas have what the request wrote, else
 * answers 503; next at once when the directive is off or WAIT said so
 * already.
 */
char *ngx_http_registry_redis_wait(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_registry_redis_durable(ngx_http_request_t *r,
    ngx_http_registry_step_pt next);

/*
 * Pub/sub (redis_sub.c): a second connection per worker, in subscribe
 * mode (the command connection never is), to one channel.  The first
 * ngx_http_registry_redis_subscribe() opens it; handler then runs with
 * READY once Redis confirmed the subscription, MESSAGE for each message,
 * LOST when the connection went away (messages may have been missed:
 * the next subscribe reconnects).  ngx_http_registry_redis_subscribed()
 * tells whether messages flow now.
 */
#define NGX_HTTP_REGISTRY_SUB_READY    1
#define NGX_HTTP_REGISTRY_SUB_MESSAGE  2
#define NGX_HTTP_REGISTRY_SUB_LOST     3

typedef void (*ngx_http_registry_redis_sub_pt)(ngx_uint_t event,
    u_char *message, size_t len);

ngx_int_t ngx_http_registry_redis_sub_init_worker(ngx_cycle_t *cycle);
void ngx_http_registry_redis_sub_exit_worker(ngx_cycle_t *cycle);
ngx_int_t ngx_http_registry_redis_subscribe(ngx_str_t *channel,
    ngx_http_registry_redis_sub_pt handler);
ngx_uint_t ngx_http_registry_redis_subscribed(void);

/*
 * S3 (s3_request.c): signed subrequests into the internal proxy_pass
 * location.  ngx_http_registry_s3_run(), S3's counterpart of
 * ngx_http_registry_run(), makes op the operation a step waits for: it
 * starts the subrequest, and when it is done the answer is in ctx->s3
 * and next runs in the parent request.
 * With op->stream the response body is sent to the client: ctx->s3_header
 * runs first with the S3 status and must send the client's header (or
 * return an error, and the S3 body is dropped).
 */
ngx_int_t ngx_http_registry_s3_run(ngx_http_request_t *r,
    ngx_http_registry_step_pt next, ngx_http_registry_s3_op_t *op);
ngx_int_t ngx_http_registry_s3_init(ngx_conf_t *cf);
/* the date SigV4 signs, and a key's subrequest URI and signed URI */
ngx_int_t ngx_http_registry_s3_date(ngx_pool_t *pool, ngx_str_t *date);
ngx_int_t ngx_http_registry_s3_uri(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *uri, ngx_str_t *canonical);

/*
 * A PutObject of the client body itself, sent to S3 while it arrives
 * (stream.c): the main request becomes an upstream request, the body is
 * hashed by body.c's filter on the way (ctx->body.bytes counts it).
 * When S3 has answered, next runs with ctx->s3.status (and nothing else
 * of ctx->s3); a failure to reach S3 ends the request with nginx's 502
 * or 504.  Only when ngx_http_registry_s3_streamable() says so: an IP
 * endpoint over http, a Content-Length from 5 MiB to 5 GiB, HTTP/1.
 */
ngx_uint_t ngx_http_registry_s3_streamable(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_s3_stream_put(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, ngx_str_t *key,
    ngx_http_registry_step_pt next);
ngx_int_t ngx_http_registry_stream_init(ngx_conf_t *cf);

/*
 * nginx's own error pages (a bad chunked body, a body over
 * client_max_body_size, a handler's bare status) in a registry location
 * go out as an OCI error body (a Status under /apis/), status and
 * headers kept (errors.c).
 */
ngx_int_t ngx_http_registry_errors_init(ngx_conf_t *cf);

/*
 * S3 operations (s3.c).  A presigned GET URL of key, for redirects.
 * Operation builders: they fill *op (keys, upload ids and bodies are
 * referenced, not copied); queries and the CompleteMultipartUpload body
 * come from r->pool.  ETags are kept unquoted in ctx->s3.etag and
 * op_complete quotes them.
 */
ngx_int_t ngx_http_registry_s3_presign(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *url);
ngx_int_t ngx_http_registry_s3_op_get(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_str_t *range,
    ngx_uint_t stream);
ngx_int_t ngx_http_registry_s3_op_delete(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key);
ngx_int_t ngx_http_registry_s3_op_put(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_chain_t *body,
    off_t len, ngx_str_t *sha256);
ngx_int_t ngx_http_registry_s3_op_create_multipart(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key);
ngx_int_t ngx_http_registry_s3_op_upload_part(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_str_t *upload_id,
    ngx_uint_t part, ngx_chain_t *body, off_t len);
typedef struct {
    ngx_uint_t                  number;
    ngx_str_t                   etag;          /* unquoted */
} ngx_http_registry_s3_part_t;

/* parts: of ngx_http_registry_s3_part_t, numbers ascending */
ngx_int_t ngx_http_registry_s3_op_complete(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_str_t *upload_id,
    ngx_array_t *parts);
ngx_int_t ngx_http_registry_s3_op_abort(ngx_http_request_t *r,
    ngx_http_registry_s3_op_t *op, ngx_str_t *key, ngx_str_t *upload_id);

/* the text of the first <tag>, entities decoded; NGX_DECLINED: none */
ngx_int_t ngx_http_registry_s3_xml_value(ngx_pool_t *pool, ngx_str_t *xml,
    const char *tag, ngx_str_t *value);

/*
 * Quotas (quota.c): checks before bytes are stored; next runs when the
 * push stays within the project's quotas, else 403 DENIED.  stored: the
 * bytes the upload session holds already.
 */
ngx_int_t ngx_http_registry_quota_upload(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx, off_t stored,
    ngx_http_registry_step_pt next);
ngx_int_t ngx_http_registry_quota_denied(ngx_http_request_t *r,
    redisReply *rp);

/*
 * Garbage collection in three files: gc.c (a collection: a request to the
 * location of "registry_gc", its phases, its answer), gc_store.c (what a
 * batch removes from S3, then forgets in Redis; the listing of multipart
 * uploads), gc_clock.c (the directive, and the timer that asks for a
 * collection every interval through the worker's own listener).
 */
typedef struct ngx_http_registry_gc_conf_s {
    time_t                          grace;
    time_t                          interval;   /* 0: no timer */
    ngx_uint_t                      duty;       /* percent of the time */
    ngx_str_t                       uri;        /* the location's */
    ngx_http_core_srv_conf_t       *server;     /* ... and its server's */
    struct sockaddr                *sockaddr;   /* where the timer asks */
    socklen_t                       socklen;
    ngx_str_t                       addr_text;
    ngx_str_t                       host;
} ngx_http_registry_gc_conf_t;

/*
 * The numbers of one collection, complete when gc.c answers (logged
 * there, and in the JSON answer): what metrics take.
 */
typedef struct {
    ngx_uint_t                      manifests;
    ngx_uint_t                      blobs;
    off_t                           bytes;      /* of the blobs */
    ngx_uint_t                      images;
    ngx_uint_t                      uploads;
    ngx_uint_t                      orphans;
    ngx_uint_t                      multipart;
} ngx_http_registry_gc_stats_t;

enum {
    NGX_HTTP_REGISTRY_GC_LEASE = 0,
    NGX_HTTP_REGISTRY_GC_INDEX,
    NGX_HTTP_REGISTRY_GC_MANIFESTS,
    NGX_HTTP_REGISTRY_GC_BLOBS,
    NGX_HTTP_REGISTRY_GC_IMAGES,
    NGX_HTTP_REGISTRY_GC_UPLOADS,
    NGX_HTTP_REGISTRY_GC_ORPHANS,
    NGX_HTTP_REGISTRY_GC_MULTIPART,
    NGX_HTTP_REGISTRY_GC_DONE
};


/* one thing a batch removes */
typedef struct {
    ngx_uint_t                      phase;      /* what it is */
    ngx_str_t                       repo;
    ngx_str_t                       name;       /* digest, session id, key */
    ngx_str_t                       mpu;        /* to abort, or empty */
    ngx_str_t                       mpu_key;    /* its key */
    ngx_str_t                       object;     /* to delete, or empty */
    off_t                           size;
    unsigned                        failed:1;   /* S3 did not remove it */
} ngx_http_registry_gc_item_t;


typedef struct {
    ngx_http_registry_gc_conf_t    *conf;
    ngx_str_t                       token;      /* lease; "" in a dry run */
    time_t                          grace;
    time_t                          age;        /* of sessions to end */
    time_t                          orphan_age;
    ngx_uint_t                      phase;
    ngx_uint_t                      offset;     /* in the phase's zset */
    ngx_str_t                       cursor;     /* the last repository */
    ngx_str_t                       marker[2];  /* multipart listing */
    ngx_uint_t                      pages;
    ngx_array_t                    *items;      /* of the batch */
    ngx_uint_t                      next;       /* the item to abort */
    ngx_uint_t                      skipped;    /* left in place */
    ngx_uint_t                      ended;      /* the phase's last batch */
    ngx_uint_t                      ops;        /* S3 requests made */
    ngx_uint_t                      work;       /* items handled */
    ngx_uint_t                      duty;       /* percent: see gc_pace */
    ngx_msec_t                      started;    /* the request */
    ngx_msec_t                      batch;      /* the batch, since */
    ngx_msec_t                      worked;     /* in all */
    ngx_msec_t                      rested;
    ngx_event_t                     rest;       /* between batches */
    json_t                         *named;      /* for the answer */
    ngx_http_registry_gc_stats_t    stats;
    unsigned                        dry:1;
    unsigned                        untagged:1;
    unsigned                        more:1;
    unsigned                        partial:1;  /* a dry run cut short */
    unsigned                        unindexed:1; /* a dry run: older data
                                                    not indexed yet */
    unsigned                        s3_down:1;
    unsigned                        lost:1;
    unsigned                        held:1;     /* the lease */
} ngx_http_registry_gc_t;


ngx_int_t ngx_http_registry_gc_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_registry_gc_run(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
/* a function's reply: its items, then swept */
ngx_int_t ngx_http_registry_gc_batch(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
/* the batch swept: counted, events sent, the next one */
ngx_int_t ngx_http_registry_gc_counted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_gc_copy(ngx_pool_t *pool, redisReply *rp,
    ngx_uint_t i, ngx_str_t *s);
ngx_int_t ngx_http_registry_gc_sweep(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
ngx_int_t ngx_http_registry_gc_list(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
char *ngx_http_registry_gc_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_registry_gc_init(ngx_conf_t *cf);
ngx_int_t ngx_http_registry_gc_init_worker(ngx_cycle_t *cycle);
void ngx_http_registry_gc_exit_worker(ngx_cycle_t *cycle);

/* SigV4, pure functions (sigv4.c) */
typedef struct {
    ngx_str_t                   method;
    ngx_str_t                   uri;           /* encoded path */
    ngx_str_t                   query;         /* canonical query */
    ngx_str_t                   host;
    ngx_str_t                   amz_date;      /* 20130524T000000Z */
    ngx_str_t                   payload_hash;
    ngx_str_t                   region;
    ngx_str_t                   access_key;
    ngx_str_t                   secret_key;
    ngx_keyval_t               *headers;       /* extra, lowercase names */
    ngx_uint_t                  nheaders;      /* sorted by name */
} ngx_http_registry_sigv4_t;

ngx_int_t ngx_http_registry_sigv4_sign(ngx_pool_t *pool,
    ngx_http_registry_sigv4_t *sv, ngx_str_t *authorization,
    ngx_str_t *signature);
/* query-string auth (GET only): the whole query, X-Amz-Signature last */
ngx_int_t ngx_http_registry_sigv4_presign(ngx_pool_t *pool,
    ngx_http_registry_sigv4_t *sv, time_t expires, ngx_str_t *query);
/* SigV4's URI encoding; dst NULL: only the length */
size_t ngx_http_registry_sigv4_escape(u_char *dst, u_char *src, size_t len);


#endif /* _NGX_HTTP_REGISTRY_H_INCLUDED_ */
