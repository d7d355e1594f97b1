/* qweights.c — quantizes a model's tensors through the plugins, with a shared cache. */
#include "qweights.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

/* ---- the dequantized-tensor cache --------------------------------------- */

struct deq_entry {
    char *key;
    float *data;
    int64_t numel;
    uint64_t bits;
    struct qtensor_error e;
    int refs;
    uint64_t last_use;
    struct deq_entry *next;
};

struct qdeq_cache {
    pthread_mutex_t lock;
    size_t max_bytes, bytes;
    uint64_t clock;
    struct deq_entry *head;
};

struct qdeq_cache *qdeq_cache_new(size_t max_bytes)
{
    struct qdeq_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    return c;
}

static void entry_free(struct deq_entry *e)
{
    free(e->key);
    free(e->data);
    free(e);
}

void qdeq_cache_free(struct qdeq_cache *c)
{
    if (!c)
        return;
    for (struct deq_entry *e = c->head, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Takes a reference to the entry for key, or returns NULL. */
static struct deq_entry *cache_get(struct qdeq_cache *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    struct deq_entry *e = c->head;
    while (e && strcmp(e->key, key) != 0)
        e = e->next;
    if (e) {
        e->refs++;
        e->last_use = ++c->clock;
    }
    pthread_mutex_unlock(&c->lock);
    return e;
}

/* Drops least recently used idle entries until the cache fits. */
static void cache_trim(struct qdeq_cache *c)
{
    while (c->bytes > c->max_bytes) {
        struct deq_entry **victim = NULL;
        for (struct deq_entry **pp = &c->head; *pp; pp = &(*pp)->next)
            if ((*pp)->refs == 0 && (!victim || (*pp)->last_use < (*victim)->last_use))
                victim = pp;
        if (!victim)
            return;
        struct deq_entry *e = *victim;
        *victim = e->next;
        c->bytes -= (size_t)e->numel * sizeof(float);
        entry_free(e);
    }
}

/* Adds a new entry with one reference held by the caller. If another
 * thread added the same key meanwhile, that one is returned instead. */
static struct deq_entry *cache_put(struct qdeq_cache *c, struct deq_entry *fresh)
{
    pthread_mutex_lock(&c->lock);
    for (struct deq_entry *e = c->head; e; e = e->next)
        if (strcmp(e->key, fresh->key) == 0) {
            e->refs++;
            pthread_mutex_unlock(&c->lock);
            entry_free(fresh);
            return e;
        }
    fresh->refs = 1;
    fresh->last_use = ++c->clock;
    fresh->next = c->head;
    c->head = fresh;
    c->bytes += (size_t)fresh->numel * sizeof(float);
    cache_trim(c);
    pthread_mutex_unlock(&c->lock);
    return fresh;
}

static void cache_release(struct qdeq_cache *c, struct deq_entry *e)
{
    pthread_mutex_lock(&c->lock);
    e->refs--;
    cache_trim(c);
    pthread_mutex_unlock(&c->lock);
}

/* ---- building ----------------------------------------------------------- */

void qweights_clear(struct qweights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n && w->t; i++)
        if (w->t[i].entry) {
            if (w->cache)
                cache_release(w->cache, w->t[i].entry);
            else
                entry_free(w->t[i].entry);
        }
    free(w->t);
    free(w->ptrs);
    memset(w, 0, sizeof *w);
}

static char *entry_key(const struct qtensor *t, const struct qpipeline *c)
{
    size_t n = strlen(t->name) + strlen(c->key) + 2;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s\x1f%s", t->name, c->key);
    return k;
}

static struct deq_entry *quantize_one(const struct qtensor *t, const struct qpipeline *c,
                                      const struct qlab_host *host, qerr *err)
{
    struct deq_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = entry_key(t, c)) ||
        !(e->data = malloc((size_t)(t->numel + QSCHEME_OUT_GUARD) * sizeof(float)))) {
        if (e)
            entry_free(e);
        qerr_set(err, "tensor '%s': out of memory", t->name);
        return NULL;
    }
    e->numel = t->numel;
    if (qpipeline_run(c, t, e->data, t->numel + QSCHEME_OUT_GUARD, &e->bits, host, err) < 0) {
        qerr_prefix(err, "tensor '%s' with %s", t->name, c->label);
        entry_free(e);
        return NULL;
    }
    qtensor_error_compute(t->f32, e->data, t->numel, &e->e);
    return e;
}

int qweights_build(const struct qmodel *m, const struct qassign *a, struct qdeq_cache *cache,
                   const struct qlab_host *host, const struct qweights_progress *p,
                   struct qweights *w, qerr *err)
{
    memset(w, 0, sizeof *w);
    w->n = m->n_tensors;
    w->cache = cache;
    w->t = calloc((size_t)(w->n ? w->n : 1), sizeof *w->t);
    w->ptrs = calloc((size_t)(w->n ? w->n : 1), sizeof *w->ptrs);
    if (!w->t || !w->ptrs) {
        qweights_clear(w);
        return qerr_set(err, "out of memory");
    }
    for (int i = 0; i < w->n; i++) {
        const struct qtensor *t = m->tensors[i];
        struct qtensor_q *q = &w->t[i];
        w->total_numel += t->numel;
        if (p && p->fn)
            p->fn(p->ctx, i, w->n);
        if (host && host->cancelled && host->cancelled(host->ctx)) {
            qweights_clear(w);
            return qerr_set(err, "cancelled");
        }
        const struct qpipeline *c = a->config[i];
        if (!c) {
            q->bits = (uint64_t)t->numel * 32u;
            w->total_bits += q->bits;
            continue;
        }
        struct deq_entry *e = NULL;
        char *key = cache ? entry_key(t, c) : NULL;
        if (key)
            e = cache_get(cache, key);
        free(key);
        if (!e) {
            e = quantize_one(t, c, host, err);
            if (!e) {
                qweights_clear(w);
                return -1;
            }
            if (cache)
                e = cache_put(cache, e);
        }
        q->entry = e;
        q->deq = e->data;
        q->bits = e->bits;
        q->e = e->e;
        q->quantized = 1;
        w->ptrs[i] = e->data;
        w->total_bits += q->bits;
        w->n_quantized++;
    }
    if (p && p->fn)
        p->fn(p->ctx, w->n, w->n);
    return 0;
}

double qweights_bits_per_weight(const struct qweights *w)
{
    return w->total_numel ? (double)w->total_bits / (double)w->total_numel : 0.0;
}

int64_t qtensor_q_bytes(const struct qtensor_q *t)
{
    return (int64_t)((t->bits + 7) / 8);
}

int64_t qweights_bytes(const struct qweights *w)
{
    int64_t sum = 0;
    for (int i = 0; i < w->n; i++)
        sum += qtensor_q_bytes(&w->t[i]);
    return sum;
}
