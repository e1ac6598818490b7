
/*
 * Garbage collection (see gc.c): the directive "registry_gc", and its
 * clock.  With interval=, worker 0 of every nginx asks its own listener
 * for a collection every interval, as scripts/registry gc does: a
 * collection's S3 work is subrequests, which need a request, and a real
 * request on a real connection needs nothing faked.  The address is the
 * one the location's server listens on (a wildcard is asked on
 * loopback); the lease in Redis (gc_lease.lua) sends all but one asker of
 * all hosts away with 429 until the next interval.  An answer that says
 * "more" brings the next collection forward to a second later.
 */


#include "ngx_http_registry.h"

#include <ngx_event_connect.h>


#define NGX_HTTP_REGISTRY_GC_ANSWER   4096     /* what is kept of it */
#define NGX_HTTP_REGISTRY_GC_CONNECT  5000
#define NGX_HTTP_REGISTRY_GC_WAIT     600000   /* a collection's answer */
#define NGX_HTTP_REGISTRY_GC_SOON     1000     /* after "more" */
#define NGX_HTTP_REGISTRY_GC_FIRST    60       /* seconds, at most */
#define NGX_HTTP_REGISTRY_GC_DUTY     10       /* percent of the time */


typedef struct {
    ngx_event_t                     timer;
    ngx_peer_connection_t           peer;
    ngx_pool_t                     *pool;      /* of one request */
    ngx_buf_t                      *out;
    ngx_buf_t                      *in;
    ngx_http_registry_gc_conf_t    *conf;
    ngx_log_t                      *log;
} ngx_http_registry_gc_clock_t;


static void ngx_http_registry_gc_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_registry_gc_ask(ngx_http_registry_gc_clock_t *clk);
static void ngx_http_registry_gc_send(ngx_event_t *wev);
static void ngx_http_registry_gc_recv(ngx_event_t *rev);
static void ngx_http_registry_gc_idle(ngx_event_t *ev);
static void ngx_http_registry_gc_close(ngx_http_registry_gc_clock_t *clk);


static ngx_http_registry_gc_clock_t  ngx_http_registry_gc_clock;


/* registry_gc [interval=time|off] [grace=time] [duty=percent] */

char *
ngx_http_registry_gc_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_registry_loc_conf_t *rlcf = conf;

    time_t                          t;
    ngx_int_t                       n;
    ngx_str_t                      *value, v;
    ngx_uint_t                      i;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_registry_gc_conf_t    *gc;
    ngx_http_registry_main_conf_t  *mcf;

    if (rlcf->handler != NGX_HTTP_REGISTRY_HANDLER_NONE) {
        return "is duplicate";
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_registry_module);

    if (mcf->gc) {
        return "is duplicate: one collector location per http{}";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->named
#if (NGX_PCRE)
        || clcf->regex
#endif
       )
    {
        return "needs a prefix or an exact location (its URI is asked)";
    }

    gc = ngx_pcalloc(cf->pool, sizeof(ngx_http_registry_gc_conf_t));
    if (gc == NULL) {
        return NGX_CONF_ERROR;
    }

    gc->grace = 3600;
    gc->duty = NGX_HTTP_REGISTRY_GC_DUTY;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            v.data = value[i].data + 9;
            v.len = value[i].len - 9;

            if (v.len == 3 && ngx_strncmp(v.data, "off", 3) == 0) {
                continue;
            }

            t = ngx_parse_time(&v, 1);

            if (t == (time_t) NGX_ERROR || t == 0) {
                goto invalid;
            }

            gc->interval = t;
            continue;
        }

        if (ngx_strncmp(value[i].data, "grace=", 6) == 0) {
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

            t = ngx_parse_time(&v, 1);

            if (t == (time_t) NGX_ERROR) {
                goto invalid;
            }

            gc->grace = t;
            continue;
        }

        if (ngx_strncmp(value[i].data, "duty=", 5) == 0) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;

            if (v.len && v.data[v.len - 1] == '%') {
                v.len--;
            }

            n = ngx_atoi(v.data, v.len);

            if (n < 1 || n > 100) {
                goto invalid;
            }

            gc->duty = n;
            continue;
        }

        goto invalid;
    }

    gc->uri = clcf->name;
    gc->server = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

    clcf->handler = ngx_http_registry_gc_handler;
    rlcf->handler = NGX_HTTP_REGISTRY_HANDLER_GC;

    mcf->enabled = 1;
    mcf->gc = gc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"",
                       &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * The address the clock asks: where the location's server listens on
 * plain http (the listen addresses exist only while the configuration
 * is read, hence here).
 */

ngx_int_t
ngx_http_registry_gc_init(ngx_conf_t *cf)
{
    u_char                         *p;
    ngx_uint_t                      i, j, k;
    struct sockaddr                *sa;
    struct sockaddr_in             *sin;
    ngx_http_conf_port_t           *port;
    ngx_http_conf_addr_t           *addr;
    ngx_http_core_srv_conf_t      **server;
    ngx_http_registry_gc_conf_t    *gc;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_registry_main_conf_t  *mcf;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6            *sin6;
#endif

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_registry_module);
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    gc = mcf->gc;

    if (gc == NULL || gc->interval == 0 || cmcf->ports == NULL) {
        return NGX_OK;
    }

    port = cmcf->ports->elts;
    sa = NULL;

    for (i = 0; sa == NULL && i < cmcf->ports->nelts; i++) {
        addr = port[i].addrs.elts;

        for (j = 0; sa == NULL && j < port[i].addrs.nelts; j++) {
#if (NGX_HTTP_SSL)
            if (addr[j].opt.ssl) {
                continue;
            }
#endif
            server = addr[j].servers.elts;

            for (k = 0; k < addr[j].servers.nelts; k++) {
                if (server[k] == gc->server) {
                    sa = addr[j].opt.sockaddr;
                    gc->socklen = addr[j].opt.socklen;
                    break;
                }
            }
        }
    }

    if (sa == NULL) {
        /* TLS only: the clock cannot ask; collections on demand still */
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "\"registry_gc interval=\" needs the server of its "
                      "location to listen on a plain http address too "
                      "(e.g. \"listen 127.0.0.1:5001;\"): no collection "
                      "on its own");
        return NGX_OK;
    }

    gc->sockaddr = ngx_palloc(cf->pool, gc->socklen);
    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN);
    if (gc->sockaddr == NULL || p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(gc->sockaddr, sa, gc->socklen);

    /* a wildcard is asked on loopback */

    switch (gc->sockaddr->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) gc->sockaddr;
        if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
            sin6->sin6_addr = in6addr_loopback;
        }
        break;
#endif

    case AF_INET:
        sin = (struct sockaddr_in *) gc->sockaddr;
        if (sin->sin_addr.s_addr == INADDR_ANY) {
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        }
        break;

    default:
        break;
    }

    gc->addr_text.data = p;
    gc->addr_text.len = ngx_sock_ntop(gc->sockaddr, gc->socklen, p,
                                      NGX_SOCKADDR_STRLEN, 1);

    /* the name that picks the server on a shared address */

    gc->host = gc->server->server_name;

    if (gc->host.len == 0 || gc->host.data[0] == '*'
        || gc->host.data[0] == '.' || gc->host.data[0] == '~')
    {
        gc->host = gc->addr_text;
    }

    return NGX_OK;
}


/* worker 0 of each nginx keeps the clock */

ngx_int_t
ngx_http_registry_gc_init_worker(ngx_cycle_t *cycle)
{
    ngx_http_registry_gc_clock_t   *clk;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_registry_module);

    if (mcf->gc == NULL || mcf->gc->interval == 0
        || mcf->gc->sockaddr == NULL || ngx_worker != 0)
    {
        return NGX_OK;
    }

    clk = &ngx_http_registry_gc_clock;
    ngx_memzero(clk, sizeof(ngx_http_registry_gc_clock_t));

    clk->conf = mcf->gc;
    clk->log = cycle->log;

    clk->timer.handler = ngx_http_registry_gc_tick;
    clk->timer.data = clk;
    clk->timer.log = cycle->log;
    clk->timer.cancelable = 1;

    /* soon after a start or a reload, then every interval */

    ngx_add_timer(&clk->timer,
                  (ngx_msec_t) ngx_min(clk->conf->interval,
                                       NGX_HTTP_REGISTRY_GC_FIRST) * 1000);

    return NGX_OK;
}


void
ngx_http_registry_gc_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_registry_gc_close(&ngx_http_registry_gc_clock);
}


static void
ngx_http_registry_gc_tick(ngx_event_t *ev)
{
    ngx_http_registry_gc_clock_t *clk = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(&clk->timer, (ngx_msec_t) clk->conf->interval * 1000);

    if (clk->peer.connection) {
        /* the last collection still runs */
        return;
    }

    if (ngx_http_registry_gc_ask(clk) != NGX_OK) {
        ngx_http_registry_gc_close(clk);
    }
}


static ngx_int_t
ngx_http_registry_gc_ask(ngx_http_registry_gc_clock_t *clk)
{
    size_t             len;
    ngx_int_t          rc;
    ngx_connection_t  *c;

    clk->pool = ngx_create_pool(1024, clk->log);
    if (clk->pool == NULL) {
        return NGX_ERROR;
    }

    len = sizeof("GET  HTTP/1.0\r\nHost: \r\n"
                 "User-Agent: ngx_http_registry_module (gc)\r\n\r\n") - 1
          + clk->conf->uri.len + clk->conf->host.len;

    clk->out = ngx_create_temp_buf(clk->pool, len);
    clk->in = ngx_create_temp_buf(clk->pool, NGX_HTTP_REGISTRY_GC_ANSWER);
    if (clk->out == NULL || clk->in == NULL) {
        return NGX_ERROR;
    }

    clk->out->last = ngx_sprintf(clk->out->last,
                                 "GET %V HTTP/1.0\r\nHost: %V\r\n"
                                 "User-Agent: ngx_http_registry_module (gc)"
                                 "\r\n\r\n",
                                 &clk->conf->uri, &clk->conf->host);

    ngx_memzero(&clk->peer, sizeof(ngx_peer_connection_t));

    clk->peer.sockaddr = clk->conf->sockaddr;
    clk->peer.socklen = clk->conf->socklen;
    clk->peer.name = &clk->conf->addr_text;
    clk->peer.get = ngx_event_get_peer;
    clk->peer.log = clk->log;
    clk->peer.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&clk->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, clk->log, 0,
                      "registry: gc cannot connect to %V",
                      &clk->conf->addr_text);
        return NGX_ERROR;
    }

    c = clk->peer.connection;
    c->data = clk;
    c->read->handler = ngx_http_registry_gc_recv;
    c->write->handler = ngx_http_registry_gc_send;

    /* a worker leaving does not wait for a collection's answer */
    c->read->cancelable = 1;
    c->write->cancelable = 1;

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, NGX_HTTP_REGISTRY_GC_CONNECT);
        return NGX_OK;
    }

    ngx_http_registry_gc_send(c->write);

    return NGX_OK;
}


static void
ngx_http_registry_gc_send(ngx_event_t *wev)
{
    ssize_t                        n;
    ngx_buf_t                     *b;
    ngx_connection_t              *c;
    ngx_http_registry_gc_clock_t  *clk;

    c = wev->data;
    clk = c->data;
    b = clk->out;

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_ERR, clk->log, NGX_ETIMEDOUT,
                      "registry: gc request to %V timed out",
                      &clk->conf->addr_text);
        ngx_http_registry_gc_close(clk);
        return;
    }

    n = c->send(c, b->pos, b->last - b->pos);

    if (n == NGX_ERROR) {
        ngx_http_registry_gc_close(clk);
        return;
    }

    if (n > 0) {
        b->pos += n;
    }

    if (b->pos < b->last) {
        if (!wev->timer_set) {
            ngx_add_timer(wev, NGX_HTTP_REGISTRY_GC_CONNECT);
        }

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_registry_gc_close(clk);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    wev->handler = ngx_http_registry_gc_idle;

    ngx_add_timer(c->read, NGX_HTTP_REGISTRY_GC_WAIT);

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_registry_gc_close(clk);
    }
}


/* the answer, to its end (HTTP/1.0: the server closes) */

static void
ngx_http_registry_gc_recv(ngx_event_t *rev)
{
    u_char                        *p, drop[1024];
    ssize_t                        n;
    ngx_int_t                      status;
    ngx_buf_t                     *b;
    ngx_connection_t              *c;
    ngx_http_registry_gc_clock_t  *clk;

    c = rev->data;
    clk = c->data;
    b = clk->in;

    if (rev->timedout) {
        ngx_log_error(NGX_LOG_ERR, clk->log, NGX_ETIMEDOUT,
                      "registry: gc at %V%V did not answer",
                      &clk->conf->addr_text, &clk->conf->uri);
        ngx_http_registry_gc_close(clk);
        return;
    }

    for ( ;; ) {
        if (b->last < b->end) {
            n = c->recv(c, b->last, b->end - b->last);

        } else {
            n = c->recv(c, drop, sizeof(drop));
        }

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_registry_gc_close(clk);
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            break;
        }

        if (b->last < b->end) {
            b->last += n;
        }
    }

    status = 0;

    if (b->last - b->pos > 12 && ngx_strncmp(b->pos, "HTTP/1.", 7) == 0) {
        status = ngx_atoi(b->pos + 9, 3);
    }

    switch (status) {

    case NGX_HTTP_OK:
        /* the collection logged what it did */

        p = ngx_strlcasestrn(b->pos, b->last, (u_char *) "\"more\":true",
                             sizeof("\"more\":true") - 2);

        if (p != NULL && !ngx_exiting) {
            ngx_add_timer(&clk->timer, NGX_HTTP_REGISTRY_GC_SOON);
        }

        break;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, clk->log, 0,
                       "registry gc: another collection runs");
        break;

    default:
        ngx_log_error(NGX_LOG_ERR, clk->log, 0,
                      "registry: gc at %V%V answered %i",
                      &clk->conf->addr_text, &clk->conf->uri, status);
    }

    ngx_http_registry_gc_close(clk);
}


static void
ngx_http_registry_gc_idle(ngx_event_t *ev)
{
}


static void
ngx_http_registry_gc_close(ngx_http_registry_gc_clock_t *clk)
{
    if (clk->peer.connection) {
        ngx_close_connection(clk->peer.connection);
        clk->peer.connection = NULL;
    }

    if (clk->pool) {
        ngx_destroy_pool(clk->pool);
        clk->pool = NULL;
    }
}
