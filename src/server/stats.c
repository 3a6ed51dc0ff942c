/*
 * What the server tells about itself: the connection counters summed over
 * the workers (each written only by its own worker, relaxed atomics; read
 * by /metrics) and the ports it listens on.
 */
#include "conn.h"

#include <string.h>

void tk_server_stats_get(const tk_server *s, tk_server_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < s->nworkers; i++) {
        const struct tk_worker_stats *ws = &s->workers[i].stats;
        out->accepted += __atomic_load_n(&ws->accepted, __ATOMIC_RELAXED);
        out->closed += __atomic_load_n(&ws->closed, __ATOMIC_RELAXED);
        out->refused += __atomic_load_n(&ws->refused, __ATOMIC_RELAXED);
        out->timeouts += __atomic_load_n(&ws->timeouts, __ATOMIC_RELAXED);
        out->bad_requests += __atomic_load_n(&ws->bad_requests, __ATOMIC_RELAXED);
    }
    out->active = out->accepted >= out->closed ? out->accepted - out->closed : 0;
}

uint16_t tk_server_port(const tk_server *s)
{
    return s->port;
}

uint16_t tk_server_listener_port(const tk_server *s, unsigned i)
{
    return i < s->nlisteners ? s->ports[i] : 0;
}
