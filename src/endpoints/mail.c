/*
 * Outbound answers on their way to a worker: the one hand-off between the
 * outbound thread and the workers' rings (docs/ARCHITECTURE.md §4, "The
 * upstream sign-in"). A code redemption (oidc.c) and a metadata document
 * fetch (cimd.c) are both "an HTTP call whose answer worker w must finish".
 *
 * The server polls one wake fd per worker, the committer's eventfd, so an
 * answer reaches the worker without touching src/server: the outbound
 * callback copies it (the response dies with the callback), queues the call
 * on its box's list for that worker under tk_app.mail_mu and writes the
 * eventfd; app_wake drains the committer's completions, then each box. A
 * worker that stopped is marked closed, so a late answer is freed instead
 * of written to a closed fd. Each box bounds the calls a worker has in
 * flight, so a list is bounded too.
 */
#include "endpoints_int.h"

#include "tokend/crypto.h"
#include "tokend/log.h"
#include "tokend/outbound.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *ep_mail_new(ep_mailbox *box, size_t size, const ep_worker *w, uint64_t cookie)
{
    TK_ASSERT(size >= sizeof(ep_mail));
    ep_mail *m = calloc(1, size);
    if (m == NULL) {
        return NULL;
    }
    m->box = box;
    m->size = size;
    m->worker = w->id;
    m->cookie = cookie;
    return m;
}

void ep_mail_free(ep_mail *m)
{
    if (m->body != NULL) {
        tk_cleanse(m->body, m->body_len);
    }
    free(m->body);
    tk_cleanse(m, m->size); /* the call may carry a nonce, a request's state */
    free(m);
}

int ep_mail_submit(ep_mail *m, const tk_outbound_req *req)
{
    ep_mailbox *box = m->box;
    tk_app *app = box->app;
    unsigned worker = m->worker;
    pthread_mutex_lock(&app->mail_mu);
    bool room = box->inflight[worker] < box->max;
    box->inflight[worker] += room ? 1 : 0;
    pthread_mutex_unlock(&app->mail_mu);
    if (!room) {
        ep_mail_free(m);
        return TK_E_QUEUEFULL;
    }
    int rc = app->cfg.outbound != NULL ? tk_outbound_submit(app->cfg.outbound, req) : TK_E_STORE;
    if (rc != 0) { /* no answer will come: m is still ours */
        pthread_mutex_lock(&app->mail_mu);
        box->inflight[worker]--;
        pthread_mutex_unlock(&app->mail_mu);
        ep_mail_free(m);
    }
    return rc;
}

void ep_mail_post(void *arg, const tk_outbound_resp *resp)
{
    ep_mail *m = arg;
    ep_mailbox *box = m->box;
    tk_app *app = box->app;
    m->result = resp->result;
    m->status = resp->status;
    snprintf(m->error, sizeof m->error, "%s", resp->error);
    if (resp->body_len > 0) {
        m->body = malloc(resp->body_len + 1);
        if (m->body != NULL) {
            memcpy(m->body, resp->body, resp->body_len + 1);
            m->body_len = resp->body_len;
        }
    }
    pthread_mutex_lock(&app->mail_mu);
    bool open = app->mail_open[m->worker];
    if (open) {
        m->next = box->list[m->worker];
        box->list[m->worker] = m;
        uint64_t one = 1;
        int fd = app->mail_wake_fd[m->worker];
        if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
            tk_log_warn(box->wake_failed, "worker=%u errno=%d", m->worker, errno);
        }
    } else {
        box->inflight[m->worker]--;
    }
    pthread_mutex_unlock(&app->mail_mu);
    if (!open) {
        ep_mail_free(m);
    }
}

ep_mail *ep_mail_take(ep_mailbox *box, unsigned worker)
{
    tk_app *app = box->app;
    pthread_mutex_lock(&app->mail_mu);
    ep_mail *m = box->list[worker];
    if (m != NULL) {
        box->list[worker] = m->next;
        box->inflight[worker]--;
    }
    pthread_mutex_unlock(&app->mail_mu);
    return m;
}

void ep_mail_worker_open(ep_worker *w, bool open)
{
    tk_app *app = w->app;
    tk_committer *c = app->cfg.committer;
    pthread_mutex_lock(&app->mail_mu);
    app->mail_open[w->id] = open;
    app->mail_wake_fd[w->id] = open && c != NULL ? tk_committer_event_fd(c, w->id) : -1;
    pthread_mutex_unlock(&app->mail_mu);
}

void ep_mailbox_fini(ep_mailbox *box)
{
    for (unsigned i = 0; i < TK_WORKERS_MAX; i++) {
        ep_mail *m = box->list[i];
        while (m != NULL) { /* bounded by box->max */
            ep_mail *next = m->next;
            ep_mail_free(m);
            m = next;
        }
        box->list[i] = NULL;
    }
}
