
/*
 * Garbage collection: the location of "registry_gc".  A GET runs one
 * collection as an ordinary request, so that its S3 work goes through the
 * same signed subrequests as everything else, and answers JSON with what
 * it removed.  scripts/registry gc asks it; with interval=, worker 0 of
 * every nginx asks it too, through its own listener (gc_clock.c), and a
 * lease in Redis lets one collection run at a time across all hosts.
 *
 * Redis is the truth: each batch is one function (redis/gc_*.lua) that
 * checks every candidate again and removes its keys atomically, marking
 * its S3 key for deletion in objects:pending (score 0) in the same step;
 * only then is the object deleted (one multi-object delete per batch),
 * and only once S3 said so is the key forgotten (gc_forget).  A push,
 * mount or manifest PUT that comes after the function finds no blob:D
 * and stores its own bytes again, or fails cleanly: no manifest ever
 * names deleted bytes (gc_store.c does the S3 part).  The phases:
 *
 *   index       once: what a registry older than the collector did not
 *               keep (gc_index.lua), before any blob is taken
 *   manifests   gc --untagged: manifests nothing keeps (gc_manifests.lua)
 *   blobs       unlinked and unreferenced for the grace (gc:blobs)
 *   images      Images no repository holds any more (gc:images)
 *   uploads     sessions expired or idle too long: multipart upload
 *               aborted, object deleted (the index "uploads")
 *   orphans     objects:pending entries whose session is gone, older
 *               than the grace and than registry_upload_expires (a
 *               monolithic push in flight has no session)
 *   multipart   multipart uploads S3 lists under data/ that nothing
 *               records (a crash between their creation and the record),
 *               a few pages per collection
 *
 * A request does a bounded amount of work (GC_WORK items, GC_OPS S3
 * requests: its pool holds them until it ends; GC_SPAN of time), then
 * answers with "more": true; the caller asks again.
 *
 * A collection is paced: after each batch it rests, so that it works at
 * most "duty" percent of the time (gc_pace).  It shares the cores, Redis
 * and S3 with the requests it must not slow down, and a rest that grows
 * with the batch's time makes it yield more where S3 is slow or loaded.
 */


#include "ngx_http_registry.h"

#include <openssl/rand.h>


#define NGX_HTTP_REGISTRY_GC_WORK      2000   /* items per request */
#define NGX_HTTP_REGISTRY_GC_OPS       256    /* S3 requests per request */
#define NGX_HTTP_REGISTRY_GC_SPAN      30000  /* ms per request */
#define NGX_HTTP_REGISTRY_GC_REST      10000  /* ms, at most: the lease */
#define NGX_HTTP_REGISTRY_GC_BATCH     100    /* candidates per function */
#define NGX_HTTP_REGISTRY_GC_SESSIONS  64     /* sessions per function */
#define NGX_HTTP_REGISTRY_GC_REPOS     20     /* repositories per call */
#define NGX_HTTP_REGISTRY_GC_PAGES     8      /* multipart listing pages */
#define NGX_HTTP_REGISTRY_GC_NAMED     1000   /* items named in the answer */


static void ngx_http_registry_gc_cleanup(void *data);
static const char *ngx_http_registry_gc_args(ngx_http_request_t *r,
    ngx_http_registry_gc_t *gc);
static ngx_int_t ngx_http_registry_gc_leased(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_indexed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_lost(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_pace(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static void ngx_http_registry_gc_rested(ngx_event_t *ev);
static ngx_int_t ngx_http_registry_gc_dropped(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_answer(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx);
static ngx_int_t ngx_http_registry_gc_name(ngx_http_registry_gc_t *gc,
    ngx_http_registry_gc_item_t *item);


static ngx_str_t  ngx_http_registry_gc_json = ngx_string("application/json");

static const char  *ngx_http_registry_gc_kinds[] = {
    "", "", "manifest", "blob", "image", "upload", "orphan", "multipart"
};


/* GET: one collection (see the top of the file) */

ngx_int_t
ngx_http_registry_gc_handler(ngx_http_request_t *r)
{
    u_char                          *p;
    ngx_int_t                        rc;
    const char                      *why;
    ngx_pool_cleanup_t              *cln;
    ngx_http_registry_gc_t          *gc;
    ngx_http_registry_ctx_t         *ctx;
    ngx_http_registry_main_conf_t   *mcf;
    u_char                           raw[8];

    if (r->method != NGX_HTTP_GET) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    ctx = ngx_http_registry_get_ctx(r);
    gc = ngx_pcalloc(r->pool, sizeof(ngx_http_registry_gc_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (ctx == NULL || gc == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = gc;
    gc->conf = mcf->gc;
    gc->grace = gc->conf->grace;
    gc->age = mcf->upload_expires;
    gc->duty = gc->conf->duty;
    gc->started = ngx_current_msec;
    gc->batch = ngx_current_msec;

    gc->named = json_array();
    if (gc->named == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_registry_gc_cleanup;
    cln->data = gc;

    /* a refused request collects nothing */

    why = ngx_http_registry_gc_args(r, gc);
    if (why != NULL) {
        return ngx_http_registry_error(r, NGX_HTTP_BAD_REQUEST, "UNSUPPORTED",
                                       why);
    }

    /*
     * An object with no session is a push in flight for as long as a
     * session may stay silent: younger, it is no orphan, whatever grace
     */
    gc->orphan_age = ngx_max(gc->grace, mcf->upload_expires);

    if (gc->dry) {
        /* changes nothing: needs no lease */
        ngx_str_set(&gc->token, "");
        gc->phase = NGX_HTTP_REGISTRY_GC_INDEX;

    } else {
        /* "<host> <pid> <random>": who holds it, in a 429 */
        if (RAND_bytes(raw, sizeof(raw)) != 1) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_pnalloc(r->pool, ngx_cycle->hostname.len + NGX_INT64_LEN
                                 + 2 * sizeof(raw) + 2);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        gc->token.data = p;
        p = ngx_sprintf(p, "%V %P ", &ngx_cycle->hostname, ngx_pid);
        p = ngx_hex_dump(p, raw, sizeof(raw));
        gc->token.len = p - gc->token.data;
    }

    rc = ngx_http_registry_gc_run(r, ctx);

    if (rc == NGX_DONE) {
        r->main->count++;
    }

    return rc;
}


/*
 * The request ends: a collection that stopped early (Redis or S3 away, an
 * error) gives its lease back at once, if it can, instead of making the
 * next ones wait for it to lapse.
 */

static void
ngx_http_registry_gc_cleanup(void *data)
{
    ngx_http_registry_gc_t *gc = data;

    ngx_str_t  args[2];

    json_decref(gc->named);

    if (gc->rest.timer_set) {
        ngx_del_timer(&gc->rest);
    }

    if (gc->held) {
        args[0] = gc->token;
        ngx_str_set(&args[1], "drop");

        (void) ngx_http_registry_redis_fcall(NULL, NULL, "gc_lease", 0, args,
                                             2);
    }
}


/*
 * ?dry_run=1, ?untagged=1, ?grace=T, ?uploads_older_than=T (T: seconds,
 * or nginx's time syntax: 90m, 1h30m), ?duty=N (percent, 1 to 100);
 * NULL, or why the request is refused
 */

static const char *
ngx_http_registry_gc_args(ngx_http_request_t *r, ngx_http_registry_gc_t *gc)
{
    time_t      t;
    ngx_int_t   n;
    ngx_str_t   v;
    ngx_uint_t  i;

    static const char  *times[] = { "grace", "uploads_older_than" };

    gc->dry = (ngx_http_registry_arg(r, "dry_run", &v) == NGX_OK
               && v.len == 1 && v.data[0] == '1');
    gc->untagged = (ngx_http_registry_arg(r, "untagged", &v) == NGX_OK
                    && v.len == 1 && v.data[0] == '1');

    for (i = 0; i < 2; i++) {
        if (ngx_http_registry_arg(r, times[i], &v) != NGX_OK) {
            continue;
        }

        t = ngx_parse_time(&v, 1);

        if (t == (time_t) NGX_ERROR) {
            return "a duration is seconds, or like 90m or 1h30m";
        }

        if (i == 0) {
            gc->grace = t;

        } else {
            gc->age = t;
        }
    }

    if (ngx_http_registry_arg(r, "duty", &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);

        if (n < 1 || n > 100) {
            return "duty is a percentage, 1 to 100";
        }

        gc->duty = n;
    }

    return NULL;
}


/* the next batch of the current phase, or the answer */

ngx_int_t
ngx_http_registry_gc_run(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx)
{
    ngx_str_t                       args[5];
    ngx_uint_t                      n;
    const char                     *name;
    ngx_http_registry_gc_t         *gc;
    ngx_http_registry_main_conf_t  *mcf;

    gc = ctx->data;
    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (gc->phase > NGX_HTTP_REGISTRY_GC_LEASE
        && gc->phase < NGX_HTTP_REGISTRY_GC_DONE
        && (gc->work >= NGX_HTTP_REGISTRY_GC_WORK
            || gc->ops >= NGX_HTTP_REGISTRY_GC_OPS
            || ngx_current_msec - gc->started >= NGX_HTTP_REGISTRY_GC_SPAN))
    {
        /*
         * enough for one request: the caller asks again; a dry run,
         * which would read the same again, says it counted part only
         */
        gc->more = !gc->dry;
        gc->partial = gc->dry;
        gc->phase = NGX_HTTP_REGISTRY_GC_DONE;
    }

    args[0] = gc->token;
    n = NGX_HTTP_REGISTRY_GC_BATCH;

    switch (gc->phase) {

    case NGX_HTTP_REGISTRY_GC_LEASE:
        ngx_str_set(&args[1], "take");
        return ngx_http_registry_run(r, ngx_http_registry_gc_leased,
                                     "gc_lease", 0, args, 2);

    case NGX_HTTP_REGISTRY_GC_INDEX:
        if (ngx_http_registry_keyf(r->pool, &args[1], "%d",
                                   NGX_HTTP_REGISTRY_GC_REPOS)
            != NGX_OK
            || ngx_http_registry_keyf(r->pool, &args[2], "%d",
                                      NGX_HTTP_REGISTRY_GC_BATCH)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_registry_run(r, ngx_http_registry_gc_indexed,
                                     "gc_index", 0, args, 3);

    case NGX_HTTP_REGISTRY_GC_MANIFESTS:
        if (!gc->untagged) {
            gc->phase++;
            return ngx_http_registry_gc_run(r, ctx);
        }

        if (ngx_http_registry_keyf(r->pool, &args[1], "%T", gc->grace)
            != NGX_OK
            || ngx_http_registry_keyf(r->pool, &args[2], "%ui",
                                      ngx_max(mcf->events_maxlen, 1))
               != NGX_OK
            || ngx_http_registry_keyf(r->pool, &args[4], "%d",
                                      NGX_HTTP_REGISTRY_GC_REPOS)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        args[3] = gc->cursor;

        return ngx_http_registry_run(r, ngx_http_registry_gc_batch,
                                     "gc_manifests", 0, args, 5);

    case NGX_HTTP_REGISTRY_GC_BLOBS:
        name = "gc_blobs";
        break;

    case NGX_HTTP_REGISTRY_GC_IMAGES:
        name = "gc_images";
        break;

    case NGX_HTTP_REGISTRY_GC_UPLOADS:
        name = "gc_uploads";
        n = NGX_HTTP_REGISTRY_GC_SESSIONS;
        break;

    case NGX_HTTP_REGISTRY_GC_ORPHANS:
        name = "gc_orphans";
        break;

    case NGX_HTTP_REGISTRY_GC_MULTIPART:
        if (gc->pages >= NGX_HTTP_REGISTRY_GC_PAGES) {
            /* the next collection goes on from the markers kept */
            gc->phase++;
            return ngx_http_registry_gc_run(r, ctx);
        }

        return ngx_http_registry_gc_list(r, ctx);

    default: /* NGX_HTTP_REGISTRY_GC_DONE */

        if (gc->token.len == 0 || gc->lost) {
            return ngx_http_registry_gc_answer(r, ctx);
        }

        ngx_str_set(&args[1], "drop");
        return ngx_http_registry_run(r, ngx_http_registry_gc_dropped,
                                     "gc_lease", 0, args, 2);
    }

    if (ngx_http_registry_keyf(r->pool, &args[1], "%T",
                               gc->phase == NGX_HTTP_REGISTRY_GC_UPLOADS
                               ? gc->age
                               : gc->phase == NGX_HTTP_REGISTRY_GC_ORPHANS
                               ? gc->orphan_age : gc->grace)
        != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[2], "%ui", n) != NGX_OK
        || ngx_http_registry_keyf(r->pool, &args[3], "%ui", gc->offset)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_registry_run(r, ngx_http_registry_gc_batch, name, 0,
                                 args, 4);
}


static ngx_int_t
ngx_http_registry_gc_leased(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    long long                holder;
    ngx_str_t                who, after, msg;
    redisReply              *rp;
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;
    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->type == REDIS_REPLY_ARRAY && rp->elements == 2
        && rp->element[1]->type == REDIS_REPLY_INTEGER
        && ngx_http_registry_reply_str(rp, 0, &who) == NGX_OK)
    {

        holder = rp->element[1]->integer;

        if (ngx_http_registry_keyf(r->pool, &after, "%L",
                                   (int64_t) ngx_max(holder / 1000, 1))
            != NGX_OK
            || ngx_http_registry_keyf(r->pool, &msg, "a collection runs "
                                      "already (%V)%Z", &who)
               != NGX_OK
            || ngx_http_registry_add_header(r, "Retry-After", &after)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_registry_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                       "TOOMANYREQUESTS", (char *) msg.data);
    }

    gc->held = 1;
    gc->phase++;

    return ngx_http_registry_gc_run(r, ctx);
}


/* a function said "lost": another collector holds the lease now */

static ngx_int_t
ngx_http_registry_gc_lost(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "registry: gc lost its lease, it stops");

    gc->lost = 1;
    gc->held = 0;
    gc->phase = NGX_HTTP_REGISTRY_GC_DONE;

    return ngx_http_registry_gc_run(r, ctx);
}


/* a part of the index made, or all of it (then the next phase) */

static ngx_int_t
ngx_http_registry_gc_indexed(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    redisReply              *rp;
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;
    rp = ctx->reply;

    if (rp && rp->type == REDIS_REPLY_STRING) {
        return ngx_http_registry_gc_lost(r, ctx);
    }

    if (rp == NULL || rp->type != REDIS_REPLY_INTEGER) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->integer == 1 || rp->integer == 2) {
        gc->unindexed = (rp->integer == 2);
        gc->phase++;

    } else {
        /* the budget of a request counts it as a batch */
        gc->work += NGX_HTTP_REGISTRY_GC_BATCH;
    }

    return ngx_http_registry_gc_pace(r, ctx);
}


/*
 * A function's batch: what it took is made items, then aborted, deleted
 * and forgotten (nothing of it in a dry run), then counted.
 */

ngx_int_t
ngx_http_registry_gc_batch(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    size_t                        i, first, step;
    ngx_int_t                     read;
    redisReply                   *rp;
    ngx_http_registry_gc_t       *gc;
    ngx_http_registry_gc_item_t  *item;

    gc = ctx->data;
    rp = ctx->reply;

    if (rp == NULL || rp->type == REDIS_REPLY_ERROR) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    if (rp->type == REDIS_REPLY_STRING) {
        return ngx_http_registry_gc_lost(r, ctx);
    }

    if (rp->type != REDIS_REPLY_ARRAY) {
        return ngx_http_registry_redis_failed(r, ctx);
    }

    gc->items = ngx_array_create(r->pool, 16,
                                 sizeof(ngx_http_registry_gc_item_t));
    if (gc->items == NULL) {
        return NGX_ERROR;
    }

    gc->next = 0;
    gc->skipped = 0;

    switch (gc->phase) {

    case NGX_HTTP_REGISTRY_GC_MANIFESTS:
        /* the last repository read, then repository and digest */
        if (ngx_http_registry_gc_copy(r->pool, rp, 0, &gc->cursor) != NGX_OK) {
            return NGX_ERROR;
        }

        gc->ended = (gc->cursor.len == 0);
        first = 1;
        step = 2;
        break;

    case NGX_HTTP_REGISTRY_GC_MULTIPART:
        /* key and upload id of each to abort */
        gc->ended = 1;
        first = 0;
        step = 2;
        break;

    default:
        if (rp->elements < 2 || rp->element[0]->type != REDIS_REPLY_INTEGER
            || rp->element[1]->type != REDIS_REPLY_INTEGER)
        {
            return NGX_ERROR;
        }

        read = rp->element[0]->integer;
        gc->skipped = (ngx_uint_t) rp->element[1]->integer;
        gc->ended = (read < (gc->phase == NGX_HTTP_REGISTRY_GC_UPLOADS
                             ? NGX_HTTP_REGISTRY_GC_SESSIONS
                             : NGX_HTTP_REGISTRY_GC_BATCH));

        /* a dry run changes nothing: it pages through what it read */
        gc->offset += gc->dry ? (ngx_uint_t) read : gc->skipped;

        first = 2;
        step = (gc->phase == NGX_HTTP_REGISTRY_GC_BLOBS) ? 4
               : (gc->phase == NGX_HTTP_REGISTRY_GC_UPLOADS) ? 3 : 1;
    }

    for (i = first; i + step <= rp->elements; i += step) {
        item = ngx_array_push(gc->items);
        if (item == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(item, sizeof(ngx_http_registry_gc_item_t));
        item->phase = gc->phase;

        switch (gc->phase) {

        case NGX_HTTP_REGISTRY_GC_MANIFESTS:
            if (ngx_http_registry_gc_copy(r->pool, rp, i, &item->repo)
                != NGX_OK
                || ngx_http_registry_gc_copy(r->pool, rp, i + 1, &item->name)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        case NGX_HTTP_REGISTRY_GC_BLOBS:
            /* digest, S3 key, size, the repository that last linked it */
            if (ngx_http_registry_gc_copy(r->pool, rp, i, &item->name)
                != NGX_OK
                || ngx_http_registry_gc_copy(r->pool, rp, i + 1,
                                            &item->object)
                   != NGX_OK
                || ngx_http_registry_gc_copy(r->pool, rp, i + 3, &item->repo)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            item->size = ngx_atoof((u_char *) rp->element[i + 2]->str,
                                   rp->element[i + 2]->len);
            if (item->size == NGX_ERROR) {
                item->size = 0;
            }

            break;

        case NGX_HTTP_REGISTRY_GC_UPLOADS:
            /* session id, multipart upload id, object key */
            if (ngx_http_registry_gc_copy(r->pool, rp, i, &item->name)
                != NGX_OK
                || ngx_http_registry_gc_copy(r->pool, rp, i + 1, &item->mpu)
                   != NGX_OK
                || ngx_http_registry_gc_copy(r->pool, rp, i + 2,
                                            &item->object)
                   != NGX_OK
                || ngx_http_registry_keyf(r->pool, &item->mpu_key, "data/%V",
                                          &item->name)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        case NGX_HTTP_REGISTRY_GC_MULTIPART:
            /*
             * Aborted only: its key may be a blob's object, completed by
             * a later multipart upload of the same session
             */
            if (ngx_http_registry_gc_copy(r->pool, rp, i, &item->mpu_key)
                != NGX_OK
                || ngx_http_registry_gc_copy(r->pool, rp, i + 1, &item->mpu)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            item->name = item->mpu_key;
            break;

        default: /* images: a digest; orphans: an object key */
            if (ngx_http_registry_gc_copy(r->pool, rp, i, &item->name)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (gc->phase == NGX_HTTP_REGISTRY_GC_ORPHANS) {
                item->object = item->name;
            }
        }
    }

    gc->work += gc->items->nelts;

    return ngx_http_registry_gc_sweep(r, ctx);
}


/* the batch is done: events, counts, and the next one */

ngx_int_t
ngx_http_registry_gc_counted(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_uint_t                    i, failed;
    ngx_http_registry_gc_t       *gc;
    ngx_http_registry_event_t     ev;
    ngx_http_registry_gc_item_t  *item;

    gc = ctx->data;
    item = gc->items->elts;

    if (ctx->reply && ctx->reply->type == REDIS_REPLY_ERROR) {
        /* what was not forgotten stays marked: the next collection */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "registry: gc_forget failed: %s", ctx->reply->str);
    }

    failed = 0;

    for (i = 0; i < gc->items->nelts; i++) {

        if (item[i].failed || (gc->s3_down && (item[i].mpu.len
                                               || item[i].object.len)))
        {
            failed++;

            if (item[i].phase != NGX_HTTP_REGISTRY_GC_BLOBS) {
                /* a blob is gone from the registry: its object follows */
                continue;
            }
        }

        switch (item[i].phase) {

        case NGX_HTTP_REGISTRY_GC_MANIFESTS:
            gc->stats.manifests++;
            break;

        case NGX_HTTP_REGISTRY_GC_BLOBS:
            gc->stats.blobs++;
            gc->stats.bytes += item[i].size;
            break;

        case NGX_HTTP_REGISTRY_GC_IMAGES:
            gc->stats.images++;
            break;

        case NGX_HTTP_REGISTRY_GC_UPLOADS:
            gc->stats.uploads++;
            break;

        case NGX_HTTP_REGISTRY_GC_ORPHANS:
            gc->stats.orphans++;
            break;

        default: /* NGX_HTTP_REGISTRY_GC_MULTIPART */
            gc->stats.multipart++;
        }

        if (ngx_http_registry_gc_name(gc, &item[i]) != NGX_OK) {
            return NGX_ERROR;
        }

        /* delete events, like a client's DELETE */

        if (!gc->dry && item[i].repo.len
            && (item[i].phase == NGX_HTTP_REGISTRY_GC_MANIFESTS
                || item[i].phase == NGX_HTTP_REGISTRY_GC_BLOBS))
        {
            ngx_memzero(&ev, sizeof(ngx_http_registry_event_t));
            ev.action = NGX_HTTP_REGISTRY_EVENT_DELETE;
            ev.manifest = (item[i].phase == NGX_HTTP_REGISTRY_GC_MANIFESTS);
            ev.digest = item[i].name;
            ev.size = -1;

            ctx->repo = item[i].repo;
            ngx_http_registry_event(r, ctx, &ev);
            ngx_str_null(&ctx->repo);
        }
    }

    if (gc->s3_down) {
        gc->phase = NGX_HTTP_REGISTRY_GC_DONE;
        return ngx_http_registry_gc_run(r, ctx);
    }

    if (!gc->dry && (gc->phase == NGX_HTTP_REGISTRY_GC_UPLOADS
                     || gc->phase == NGX_HTTP_REGISTRY_GC_ORPHANS))
    {
        /* kept marked, and first in their zset: read past them */
        gc->offset += failed;
    }

    if (gc->phase == NGX_HTTP_REGISTRY_GC_MULTIPART) {
        if (gc->marker[0].len) {
            return ngx_http_registry_gc_pace(r, ctx);
        }

        gc->ended = 1;
    }

    if (gc->ended) {
        gc->phase++;
        gc->offset = 0;
    }

    return ngx_http_registry_gc_pace(r, ctx);
}


/*
 * The rest after a batch: (100 - duty) / duty times the batch's time, so
 * that the collection works "duty" percent of the time.  A dry run only
 * reads, and is not paced.
 */

static ngx_int_t
ngx_http_registry_gc_pace(ngx_http_request_t *r, ngx_http_registry_ctx_t *ctx)
{
    ngx_msec_t               worked, rest;
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;

    worked = ngx_current_msec - gc->batch;
    gc->worked += worked;

    rest = ngx_min(worked * (100 - gc->duty) / gc->duty,
                   NGX_HTTP_REGISTRY_GC_REST);

    if (gc->dry || rest == 0 || gc->phase == NGX_HTTP_REGISTRY_GC_DONE) {
        gc->batch = ngx_current_msec;
        return ngx_http_registry_gc_run(r, ctx);
    }

    gc->rested += rest;

    gc->rest.handler = ngx_http_registry_gc_rested;
    gc->rest.data = r;
    gc->rest.log = r->connection->log;
    gc->rest.cancelable = 1;

    ctx->next = ngx_http_registry_gc_run;
    ngx_add_timer(&gc->rest, rest);

    return NGX_DONE;
}


static void
ngx_http_registry_gc_rested(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_registry_gc_t   *gc;
    ngx_http_registry_ctx_t  *ctx;

    r = ev->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_registry_module);
    gc = ctx->data;

    gc->batch = ngx_current_msec;

    ngx_http_set_log_request(c->log, r);
    ngx_http_registry_resume(r);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_registry_gc_dropped(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    ngx_http_registry_gc_t  *gc;

    gc = ctx->data;

    /* a lease not given back (Redis away) lapses by itself */
    gc->held = 0;

    return ngx_http_registry_gc_answer(r, ctx);
}


/*
 * The answer: what was removed, counted and named; the collection's
 * numbers (gc->stats) are logged and go to the metrics.
 */

static ngx_int_t
ngx_http_registry_gc_answer(ngx_http_request_t *r,
    ngx_http_registry_ctx_t *ctx)
{
    json_t                        *json;
    ngx_uint_t                     level;
    ngx_http_registry_gc_t        *gc;
    ngx_http_registry_gc_stats_t  *st;

    gc = ctx->data;
    st = &gc->stats;

    level = (st->blobs || st->manifests || st->images || st->uploads
             || st->orphans || st->multipart) ? NGX_LOG_NOTICE : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0,
                  "registry: gc%s: %ui manifests, %ui blobs (%O bytes), "
                  "%ui images, %ui uploads, %ui orphans, %ui multipart "
                  "uploads%s%s",
                  gc->dry ? " (dry run)" : "", st->manifests, st->blobs,
                  st->bytes, st->images, st->uploads, st->orphans,
                  st->multipart, gc->more ? ", more to do" : "",
                  gc->s3_down ? ", stopped: s3 unavailable" : "");

    if (!gc->dry) {
        ngx_http_registry_metrics_add(NGX_HTTP_REGISTRY_METRIC_GC_RUNS, 0, 1);
        ngx_http_registry_metrics_add(
            NGX_HTTP_REGISTRY_METRIC_GC_RECLAIMED_BYTES, 0, st->bytes);
        ngx_http_registry_metrics_add(
            NGX_HTTP_REGISTRY_METRIC_GC_BLOBS_DELETED, 0, st->blobs);
        ngx_http_registry_metrics_add(
            NGX_HTTP_REGISTRY_METRIC_UPLOADS_EXPIRED, 0, st->uploads);
    }

    if (gc->s3_down) {
        return ngx_http_registry_unavailable(r, "s3: no answer");
    }

    json = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b,s:b,"
                     "s:b,s:I,s:I,s:I,s:O}",
                     "dry_run", (int) gc->dry,
                     "manifests", (json_int_t) st->manifests,
                     "blobs", (json_int_t) st->blobs,
                     "bytes", (json_int_t) st->bytes,
                     "images", (json_int_t) st->images,
                     "uploads", (json_int_t) st->uploads,
                     "orphans", (json_int_t) st->orphans,
                     "multipart", (json_int_t) st->multipart,
                     "more", (int) gc->more,
                     "partial", (int) gc->partial,
                     "lease_lost", (int) gc->lost,
                     "indexed", (int) !gc->unindexed,
                     "duty", (json_int_t) gc->duty,
                     "worked_ms", (json_int_t) gc->worked,
                     "rested_ms", (json_int_t) gc->rested,
                     "removed", gc->named);
    if (json == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_registry_send_json_as(r, NGX_HTTP_OK,
                                          &ngx_http_registry_gc_json, json);
}


/* an item in the answer's "removed" (the first GC_NAMED) */

static ngx_int_t
ngx_http_registry_gc_name(ngx_http_registry_gc_t *gc,
    ngx_http_registry_gc_item_t *item)
{
    json_t  *o;

    if (json_array_size(gc->named) >= NGX_HTTP_REGISTRY_GC_NAMED) {
        return NGX_OK;
    }

    o = json_pack("{s:s,s:s%}", "kind",
                  ngx_http_registry_gc_kinds[item->phase],
                  "name", item->name.data, item->name.len);
    if (o == NULL) {
        return NGX_ERROR;
    }

    if ((item->repo.len
         && json_object_set_new(o, "repository",
                                json_stringn((char *) item->repo.data,
                                             item->repo.len))
            != 0)
        || (item->phase == NGX_HTTP_REGISTRY_GC_BLOBS
            && json_object_set_new(o, "size", json_integer(item->size)) != 0)
        || json_array_append_new(gc->named, o) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* element i of an array reply, copied to the pool ("" for nil) */

ngx_int_t
ngx_http_registry_gc_copy(ngx_pool_t *pool, redisReply *rp, ngx_uint_t i,
    ngx_str_t *s)
{
    ngx_str_t  v;

    if (rp->type != REDIS_REPLY_ARRAY || i >= rp->elements) {
        return NGX_ERROR;
    }

    if (rp->element[i]->type == REDIS_REPLY_NIL) {
        ngx_str_set(s, "");
        return NGX_OK;
    }

    if (ngx_http_registry_reply_str(rp, i, &v) != NGX_OK) {
        return NGX_ERROR;
    }

    s->len = v.len;
    s->data = ngx_pnalloc(pool, v.len + 1);
    if (s->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->data, v.data, v.len);

    return NGX_OK;
}


