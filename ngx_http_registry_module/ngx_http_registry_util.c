
/*
 * Small helpers shared by the handlers: the host, time and ids written
 * into stored objects and events, and Kubernetes' Status, the error body
 * of every /apis/ URI.
 */


#include "ngx_http_registry.h"

#include <openssl/rand.h>


/*
 * The host in references: registry_public_host, else this server's
 * server_name when it is a plain name (with the port the connection came
 * to), else the address and port the connection came to.  Never the Host
 * header: what is stored for everyone must not be chosen by one client.
 */

ngx_int_t
ngx_http_registry_public_host(ngx_http_request_t *r, ngx_str_t *host)
{
    u_char                         *p, addr[NGX_SOCKADDR_STRLEN];
    size_t                          i;
    ngx_str_t                       s, name;
    ngx_uint_t                      port;
    ngx_http_core_srv_conf_t       *cscf;
    ngx_http_registry_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_registry_module);

    if (mcf->public_host.len) {
        *host = mcf->public_host;
        return NGX_OK;
    }

    s.data = addr;
    s.len = NGX_SOCKADDR_STRLEN;

    if (ngx_connection_local_sockaddr(r->connection, &s, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_core_module);
    name = cscf->server_name;

    for (i = 0; i < name.len; i++) {
        if (!((name.data[i] >= 'a' && name.data[i] <= 'z')
              || (name.data[i] >= '0' && name.data[i] <= '9')
              || name.data[i] == '.' || name.data[i] == '-'))
        {
            break;
        }
    }

    if (name.len == 0 || i < name.len) {
        /* no usable name: the address, "[::1]:5000" or "10.0.0.1:5000" */
        host->len = s.len;
        host->data = ngx_pstrdup(r->pool, &s);

        return host->data ? NGX_OK : NGX_ERROR;
    }

    port = ngx_inet_get_port(r->connection->local_sockaddr);

    p = ngx_pnalloc(r->pool, name.len + sizeof(":65535") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    host->data = p;
    p = ngx_cpymem(p, name.data, name.len);

    if (port != 80) {
        p = ngx_sprintf(p, ":%ui", port);
    }

    host->len = p - host->data;

    return NGX_OK;
}


/* RFC 3339, UTC: seconds as Kubernetes writes them, or milliseconds */

ngx_int_t
ngx_http_registry_timestamp(ngx_pool_t *pool, ngx_str_t *ts, ngx_uint_t msec)
{
    u_char      *p;
    ngx_tm_t     tm;
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    ngx_gmtime(tp->sec, &tm);

    p = ngx_pnalloc(pool, sizeof("1970-01-01T00:00:00.000Z") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ts->data = p;

    p = ngx_sprintf(p, "%4d-%02d-%02dT%02d:%02d:%02d",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                    tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);

    if (msec) {
        p = ngx_sprintf(p, ".%03M", tp->msec);
    }

    *p++ = 'Z';
    ts->len = p - ts->data;

    return NGX_OK;
}


/* a random (version 4) UUID */

ngx_int_t
ngx_http_registry_uuid(ngx_pool_t *pool, ngx_str_t *uuid)
{
    u_char  *p, b[16], hex[32];

    if (RAND_bytes(b, 16) != 1) {
        return NGX_ERROR;
    }

    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;

    ngx_hex_dump(hex, b, 16);

    p = ngx_pnalloc(pool, 36);
    if (p == NULL) {
        return NGX_ERROR;
    }

    uuid->data = p;
    p = ngx_cpymem(p, hex, 8);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 8, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 12, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 16, 4);
    *p++ = '-';
    p = ngx_cpymem(p, hex + 20, 12);
    uuid->len = p - uuid->data;

    return NGX_OK;
}


/* whether the URI is one of the image API's, answered in its own shape */

ngx_uint_t
ngx_http_registry_api_uri(ngx_http_request_t *r)
{
    return r->uri.len >= sizeof("/apis/") - 1
           && ngx_strncmp(r->uri.data, "/apis/", sizeof("/apis/") - 1) == 0;
}


/*
 * Kubernetes' Status: every error of an /apis/ URI
 * (ngx_http_registry_error() sends it for them).
 */

ngx_int_t
ngx_http_registry_api_status(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    json_t  *json;

    json = ngx_http_registry_api_status_json(status, message);
    if (json == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_registry_send_json(r, status, json);
}


/* the Status alone: errors.c puts it in place of nginx's error pages */

json_t *
ngx_http_registry_api_status_json(ngx_uint_t status, const char *message)
{
    const char  *reason;

    switch (status) {

    case NGX_HTTP_BAD_REQUEST:
        reason = "BadRequest";
        break;

    case NGX_HTTP_UNAUTHORIZED:
        reason = "Unauthorized";
        break;

    case NGX_HTTP_FORBIDDEN:
        reason = "Forbidden";
        break;

    case NGX_HTTP_NOT_FOUND:
        reason = "NotFound";
        break;

    case NGX_HTTP_NOT_ALLOWED:
        reason = "MethodNotAllowed";
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        reason = "RequestEntityTooLarge";
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        reason = "ServiceUnavailable";
        break;

    default:
        reason = (status >= 500) ? "InternalError" : "BadRequest";
    }

    return json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}",
                     "kind", "Status", "apiVersion", "v1", "metadata",
                     "status", "Failure", "message", message,
                     "reason", reason, "code", (int) status);
}
