/* search.c — exact budgeted mixed-precision search: ties merged, then dynamic programming over Pareto sets. */
#include "search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_FRONT 1000000

/* ---- types ---------------------------------------------------------------- */

/* The problem with its ties merged: super-group s's choice c is choice c
 * for every member. Super-groups are ordered by their first member, so
 * lexicographic order over super-group choices is lexicographic order over
 * the groups' choice vectors. */
struct sgroups {
    int n;                  /* super-groups */
    int n_choices;
    int n_groups;
    int *sg_of;             /* (n_groups) super-group of each group */
    int *n_valid;           /* (n) valid choices of each super-group */
    int *vc;                /* (n, n_choices) valid choice indices, ascending; first n_valid[s] used */
    uint64_t *vbits;        /* (n, n_choices) their summed sizes, bits */
    double *vchange;        /* (n, n_choices) their summed changes */
    uint64_t fixed_bits;
    uint64_t min_bits;      /* fixed + every super-group at its smallest valid choice */
};

/* The set after merging super-group k: each point names the point of the
 * set before it came from (level k - 1, or the lone start point) and
 * super-group k's choice. Only the last level's sizes and changes are
 * needed; the choice vectors are rebuilt from these at the end. */
struct level {
    int n;
    int32_t *parent;        /* (n) index into the previous level */
    int32_t *choice;        /* (n) choice index of this level's super-group */
};

/* The Pareto set being built, sorted by strictly increasing bits and
 * strictly decreasing change. */
struct pset {
    int n;
    size_t cap;             /* allocated points */
    uint64_t *bits;         /* (cap) */
    double *change;         /* (cap) */
    uint32_t *rank;         /* (cap) lexicographic rank of the point's choice vector */
};

/* The merges' scratch, reused from level to level (only ever grown). */
struct work {
    struct pset cur, next;
    size_t cap;             /* of parent, choice, order */
    int32_t *parent;        /* (cap) next's back-pointers, before they are kept */
    int32_t *choice;        /* (cap) */
    int32_t *order;         /* (cap) next's points in lexicographic order */
    size_t bucket_cap;
    int32_t *bucket;        /* (bucket_cap) counting sort over cur's ranks */
    int *pos;               /* (n_choices) next point of each choice's list */
    int *heap;              /* (n_choices) lists by their next candidate */
};

/* ---- lifecycle ------------------------------------------------------------ */

static void sgroups_free(struct sgroups *s)
{
    free(s->sg_of);
    free(s->n_valid);
    free(s->vc);
    free(s->vbits);
    free(s->vchange);
    memset(s, 0, sizeof *s);
}

static void pset_free(struct pset *p)
{
    free(p->bits);
    free(p->change);
    free(p->rank);
    memset(p, 0, sizeof *p);
}

/* Room for need points; the contents are not kept. */
static int pset_reserve(struct pset *p, size_t need)
{
    if (need <= p->cap)
        return 0;
    pset_free(p);
    p->bits = malloc(need * sizeof *p->bits);
    p->change = malloc(need * sizeof *p->change);
    p->rank = malloc(need * sizeof *p->rank);
    if (!p->bits || !p->change || !p->rank) {
        pset_free(p);
        return -1;
    }
    p->cap = need;
    return 0;
}

static void work_free(struct work *w)
{
    pset_free(&w->cur);
    pset_free(&w->next);
    free(w->parent);
    free(w->choice);
    free(w->order);
    free(w->bucket);
    free(w->pos);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

/* Room for a next set of need points after a cur set of n_cur; the
 * contents of next and of the scratch are not kept. */
static int work_reserve(struct work *w, size_t need, size_t n_cur)
{
    if (pset_reserve(&w->next, need) < 0)
        return -1;
    if (need > w->cap) {
        free(w->parent);
        free(w->choice);
        free(w->order);
        w->parent = malloc(need * sizeof *w->parent);
        w->choice = malloc(need * sizeof *w->choice);
        w->order = malloc(need * sizeof *w->order);
        w->cap = 0;
        if (!w->parent || !w->choice || !w->order)
            return -1;
        w->cap = need;
    }
    if (n_cur + 1 > w->bucket_cap) {
        free(w->bucket);
        w->bucket = malloc((n_cur + 1) * sizeof *w->bucket);
        w->bucket_cap = 0;
        if (!w->bucket)
            return -1;
        w->bucket_cap = n_cur + 1;
    }
    return 0;
}

static void levels_free(struct level *lv, int n)
{
    if (!lv)
        return;
    for (int i = 0; i < n; i++) {
        free(lv[i].parent);
        free(lv[i].choice);
    }
    free(lv);
}

void qsearch_front_free(struct qsearch_front *f)
{
    if (!f)
        return;
    if (f->points)
        for (int i = 0; i < f->n; i++)
            free(f->points[i].choice);
    free(f->points);
    f->points = NULL;
    f->n = 0;
    f->optimum = -1;
}

/* ---- checking the problem and merging ties --------------------------------- */

static int check_problem(const struct qsearch_problem *p, qerr *err)
{
    if (!p)
        return qerr_set(err, "search: no problem given");
    if (p->n_groups < 0)
        return qerr_set(err, "search: %d groups", p->n_groups);
    if (p->n_groups == 0)
        return 0;
    if (p->n_choices < 1)
        return qerr_set(err, "search: %d choices per group (float is always one)", p->n_choices);
    if (!p->c)
        return qerr_set(err, "search: %d groups but no choice table", p->n_groups);
    if (p->n_ties < 0)
        return qerr_set(err, "search: %d ties", p->n_ties);
    if (p->n_ties > 0 && !p->tie_of)
        return qerr_set(err, "search: %d ties but no tie index per group", p->n_ties);
    for (int g = 0; g < p->n_groups; g++) {
        const struct qsearch_choice *row = p->c + (size_t)g * (size_t)p->n_choices;
        int any = 0;
        for (int c = 0; c < p->n_choices; c++) {
            if (!row[c].valid)
                continue;
            any = 1;
            if (!isfinite(row[c].change))
                return qerr_set(err, "search: group %d choice %d: predicted change %g is not finite",
                                g, c, row[c].change);
            /* below this, a sum over up to INT_MAX groups stays finite */
            if (fabs(row[c].change) > 1e290)
                return qerr_set(err, "search: group %d choice %d: predicted change %g is too large",
                                g, c, row[c].change);
        }
        if (!any)
            return qerr_set(err, "search: group %d has no valid choice (every scheme failed, float included)",
                            g);
        if (p->tie_of) {
            int t = p->tie_of[g];
            if (t < -1 || t >= p->n_ties)
                return qerr_set(err, "search: group %d: tie index %d outside -1..%d", g, t,
                                p->n_ties - 1);
        }
    }
    return 0;
}

/* The members of tie t, for an error message: "groups 1, 4, 7". */
static void tie_members(const struct qsearch_problem *p, int t, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "groups");
    int first = 1;
    for (int g = 0; g < p->n_groups && len < cap; g++) {
        if (p->tie_of[g] != t)
            continue;
        int w = snprintf(buf + len, cap - len, "%s %d", first ? "" : ",", g);
        if (w < 0 || (size_t)w >= cap - len) {
            if (cap > 4)
                memcpy(buf + cap - 4, "...", 4);
            return;
        }
        len += (size_t)w;
        first = 0;
    }
}

static int add_bits(uint64_t a, uint64_t b, uint64_t *sum)
{
    if (a > UINT64_MAX - b)
        return -1;
    *sum = a + b;
    return 0;
}

/* Fills s with the super-groups of a checked problem. */
static int sgroups_build(const struct qsearch_problem *p, struct sgroups *s, qerr *err)
{
    memset(s, 0, sizeof *s);
    int ng = p->n_groups, nc = ng > 0 ? p->n_choices : 1;
    s->n_choices = nc;
    s->n_groups = ng;
    s->fixed_bits = p->fixed_bits;
    size_t cells = (size_t)(ng > 0 ? ng : 1) * (size_t)nc;
    int *tie_sg = malloc((size_t)(p->n_ties > 0 ? p->n_ties : 1) * sizeof *tie_sg);
    unsigned char *ok = malloc(cells);
    uint64_t *bits = calloc(cells, sizeof *bits);
    double *change = calloc(cells, sizeof *change);
    s->sg_of = malloc((size_t)(ng > 0 ? ng : 1) * sizeof *s->sg_of);
    s->n_valid = calloc((size_t)(ng > 0 ? ng : 1), sizeof *s->n_valid);
    s->vc = malloc(cells * sizeof *s->vc);
    s->vbits = malloc(cells * sizeof *s->vbits);
    s->vchange = malloc(cells * sizeof *s->vchange);
    int rc = -1;
    if (!tie_sg || !ok || !bits || !change || !s->sg_of || !s->n_valid || !s->vc || !s->vbits ||
        !s->vchange) {
        qerr_set(err, "search: out of memory for %d groups x %d choices", ng, nc);
        goto done;
    }
    memset(ok, 1, cells);
    for (int t = 0; t < p->n_ties; t++)
        tie_sg[t] = -1;

    /* members in group order; a tie's super-group sits at its first member */
    for (int g = 0; g < ng; g++) {
        int t = p->tie_of ? p->tie_of[g] : -1;
        int sg;
        if (t >= 0 && tie_sg[t] >= 0) {
            sg = tie_sg[t];
        } else {
            sg = s->n++;
            if (t >= 0)
                tie_sg[t] = sg;
        }
        s->sg_of[g] = sg;
        const struct qsearch_choice *row = p->c + (size_t)g * (size_t)nc;
        for (int c = 0; c < nc; c++) {
            size_t k = (size_t)sg * (size_t)nc + (size_t)c;
            if (!row[c].valid) {
                ok[k] = 0;
                continue;
            }
            if (add_bits(bits[k], row[c].bits, &bits[k]) < 0) {
                qerr_set(err, "search: tie %d: choice %d's summed size overflows 64 bits", t, c);
                goto done;
            }
            change[k] += row[c].change;
        }
    }

    uint64_t lo = p->fixed_bits, hi = p->fixed_bits;
    for (int sg = 0; sg < s->n; sg++) {
        int m = 0;
        uint64_t smin = UINT64_MAX, smax = 0;
        for (int c = 0; c < nc; c++) {
            size_t k = (size_t)sg * (size_t)nc + (size_t)c;
            if (!ok[k])
                continue;
            size_t v = (size_t)sg * (size_t)nc + (size_t)m++;
            s->vc[v] = c;
            s->vbits[v] = bits[k];
            s->vchange[v] = change[k];
            smin = bits[k] < smin ? bits[k] : smin;
            smax = bits[k] > smax ? bits[k] : smax;
        }
        s->n_valid[sg] = m;
        if (m == 0) {
            /* every group has a valid choice (checked), so this is a tie */
            int g0 = 0;
            while (s->sg_of[g0] != sg)
                g0++;
            char who[200];
            tie_members(p, p->tie_of[g0], who, sizeof who);
            qerr_set(err, "search: tie %d (%s) has no choice valid for every member",
                     p->tie_of[g0], who);
            goto done;
        }
        if (add_bits(hi, smax, &hi) < 0) {
            qerr_set(err, "search: the largest possible total size overflows 64 bits");
            goto done;
        }
        lo += smin; /* lo <= hi, no overflow */
    }
    s->min_bits = lo;
    rc = 0;
done:
    free(tie_sg);
    free(ok);
    free(bits);
    free(change);
    if (rc < 0)
        sgroups_free(s);
    return rc;
}

static int check_budget(const struct sgroups *s, uint64_t budget_bits, qerr *err)
{
    if (budget_bits < s->min_bits)
        return qerr_set(err,
                        "search: budget of %llu bits is below the smallest possible size %llu bits "
                        "(every group at its smallest valid choice)",
                        (unsigned long long)budget_bits, (unsigned long long)s->min_bits);
    return 0;
}

/* ---- one merge: the Pareto set plus one super-group ------------------------- */

/* The candidates "point i with valid choice j" form, for each j, a list
 * sorted by bits (the set's bits strictly increase), so a heap over the
 * lists yields all candidates by (bits, change, lexicographic order)
 * without building them; a candidate is kept when its change is below
 * every kept one's. */
struct merge {
    const struct pset *cur;
    const int *vc;          /* (m) choice indices */
    const uint64_t *vbits;  /* (m) */
    const double *vchange;  /* (m) */
    int *pos;               /* (m) next point of list j */
    int *heap;              /* list indices */
    int n_heap;
};

static int cand_less(const struct merge *mg, int a, int b)
{
    const struct pset *p = mg->cur;
    int ia = mg->pos[a], ib = mg->pos[b];
    uint64_t ba = p->bits[ia] + mg->vbits[a], bb = p->bits[ib] + mg->vbits[b];
    if (ba != bb)
        return ba < bb;
    double ca = p->change[ia] + mg->vchange[a], cb = p->change[ib] + mg->vchange[b];
    if (ca != cb)
        return ca < cb;
    /* exact tie: the lexicographically smaller choice vector first */
    if (p->rank[ia] != p->rank[ib])
        return p->rank[ia] < p->rank[ib];
    return mg->vc[a] < mg->vc[b];
}

static void heap_down(struct merge *mg, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < mg->n_heap && cand_less(mg, mg->heap[l], mg->heap[m]))
            m = l;
        if (r < mg->n_heap && cand_less(mg, mg->heap[r], mg->heap[m]))
            m = r;
        if (m == i)
            return;
        int t = mg->heap[i];
        mg->heap[i] = mg->heap[m];
        mg->heap[m] = t;
        i = m;
    }
}

/* Along list j bits grow and change falls. A candidate whose change is
 * not below best (the last kept one's) is beaten by that kept point, whose
 * bits are no more; best only falls, so it stays beaten. The list can
 * therefore jump to the first point from `from` on whose sum with add is
 * below best: galloping, then bisection (one test when nothing is skipped). */
static int skip_beaten(const struct pset *cur, int from, double add, double best)
{
    int n = cur->n;
    if (from >= n || cur->change[from] + add < best)
        return from;
    int lo = from, step = 1; /* lo is beaten */
    int hi = from + 1;
    while (hi < n && !(cur->change[hi] + add < best)) {
        lo = hi;
        step = step < n / 2 ? step * 2 : n;
        hi = step < n - lo ? lo + step : n;
    }
    /* lo beaten; hi is n or not beaten */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (cur->change[mid] + add < best)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

/* The lexicographic ranks of next's points: by (parent's rank, choice).
 * Parents' ranks are a permutation of 0..cur.n-1, so a counting sort
 * buckets them; a bucket holds at most one point per choice. */
static void rank_points(struct work *w)
{
    const struct pset *cur = &w->cur;
    struct pset *next = &w->next;
    int32_t *bucket = w->bucket, *order = w->order;
    memset(bucket, 0, ((size_t)cur->n + 1) * sizeof *bucket);
    for (int i = 0; i < next->n; i++)
        bucket[cur->rank[w->parent[i]] + 1]++;
    for (int r = 0; r < cur->n; r++)
        bucket[r + 1] += bucket[r];
    for (int i = 0; i < next->n; i++)
        order[bucket[cur->rank[w->parent[i]]]++] = i;
    /* now bucket[r] is where bucket r ends */
    int lo = 0;
    for (int r = 0; r < cur->n; r++) {
        int hi = bucket[r];
        for (int a = lo + 1; a < hi; a++) {
            int32_t x = order[a];
            int b = a;
            for (; b > lo && w->choice[order[b - 1]] > w->choice[x]; b--)
                order[b] = order[b - 1];
            order[b] = x;
        }
        lo = hi;
    }
    for (int k = 0; k < next->n; k++)
        next->rank[order[k]] = (uint32_t)k;
}

/* Merges super-group sg into w->cur, which becomes the merged set; lv gets
 * the level's back-pointers. */
static int merge_group(const struct sgroups *s, int sg, struct work *w, int max_front,
                       struct level *lv, qerr *err)
{
    const struct pset *cur = &w->cur;
    struct pset *next = &w->next;
    int m = s->n_valid[sg];
    size_t off = (size_t)sg * (size_t)s->n_choices;
    size_t cap = (size_t)cur->n * (size_t)m;
    if (cap > (size_t)max_front + 1)
        cap = (size_t)max_front + 1;
    if (work_reserve(w, cap, (size_t)cur->n) < 0)
        return qerr_set(err, "search: out of memory for a Pareto set of up to %zu points", cap);
    struct merge mg = { .cur = cur, .vc = s->vc + off, .vbits = s->vbits + off,
                        .vchange = s->vchange + off, .pos = w->pos, .heap = w->heap };
    for (int j = 0; j < m; j++) {
        mg.pos[j] = 0;
        mg.heap[mg.n_heap++] = j;
    }
    for (int i = mg.n_heap / 2 - 1; i >= 0; i--)
        heap_down(&mg, i);

    int n = 0;
    while (mg.n_heap > 0) {
        int j = mg.heap[0], i = mg.pos[j];
        uint64_t b = cur->bits[i] + mg.vbits[j];
        double ch = cur->change[i] + mg.vchange[j];
        if (n == 0 || ch < next->change[n - 1]) {
            if (n == max_front)
                return qerr_set(err,
                                "search: the Pareto set exceeds max_front (%d points) after merging "
                                "%d of %d groups (ties merged)",
                                max_front, sg + 1, s->n);
            next->bits[n] = b;
            next->change[n] = ch;
            w->parent[n] = i;
            w->choice[n] = mg.vc[j];
            n++;
        }
        mg.pos[j] = skip_beaten(cur, i + 1, mg.vchange[j], next->change[n - 1]);
        if (mg.pos[j] == cur->n)
            mg.heap[0] = mg.heap[--mg.n_heap];
        heap_down(&mg, 0);
    }
    next->n = n;

    /* the back-pointers live until the end: keep them at their size */
    lv->parent = malloc((size_t)n * sizeof *lv->parent);
    lv->choice = malloc((size_t)n * sizeof *lv->choice);
    if (!lv->parent || !lv->choice)
        return qerr_set(err, "search: out of memory keeping %d points", n);
    memcpy(lv->parent, w->parent, (size_t)n * sizeof *lv->parent);
    memcpy(lv->choice, w->choice, (size_t)n * sizeof *lv->choice);
    lv->n = n;
    rank_points(w);

    struct pset t = w->cur;
    w->cur = w->next;
    w->next = t;
    return 0;
}

/* ---- the front and the optimum ------------------------------------------- */

/* The group choice vector of point j of the last level. */
static void trace_back(const struct sgroups *s, const struct level *lv, int j, int *sgc, int *choice)
{
    for (int k = s->n - 1; k >= 0; k--) {
        sgc[k] = lv[k].choice[j];
        j = lv[k].parent[j];
    }
    for (int g = 0; g < s->n_groups; g++)
        choice[g] = sgc[s->sg_of[g]];
}

static int build_front(const struct sgroups *s, const struct level *lv, const struct pset *cur,
                       uint64_t budget_bits, struct qsearch_front *out, qerr *err)
{
    out->points = calloc((size_t)cur->n, sizeof *out->points);
    int *sgc = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *sgc);
    if (!out->points || !sgc) {
        free(sgc);
        return qerr_set(err, "search: out of memory for a front of %d points", cur->n);
    }
    out->n = cur->n;
    for (int j = 0; j < cur->n; j++) {
        struct qsearch_point *pt = &out->points[j];
        pt->bits = cur->bits[j];
        pt->change = cur->change[j];
        if (s->n_groups == 0)
            continue;
        pt->choice = malloc((size_t)s->n_groups * sizeof *pt->choice);
        if (!pt->choice) {
            free(sgc);
            return qerr_set(err, "search: out of memory for a front of %d points x %d groups",
                            cur->n, s->n_groups);
        }
        trace_back(s, lv, j, sgc, pt->choice);
    }
    free(sgc);
    /* bits increase along the front and change decreases: the last point
     * within the budget is the best one */
    out->optimum = -1;
    for (int j = 0; j < cur->n && cur->bits[j] <= budget_bits; j++)
        out->optimum = j;
    return 0;
}

int qsearch_solve(const struct qsearch_problem *p, uint64_t budget_bits, int max_front,
                  struct qsearch_front *out, qerr *err)
{
    if (!out)
        return qerr_set(err, "search: no front to fill");
    memset(out, 0, sizeof *out);
    out->optimum = -1;
    if (max_front < 0)
        return qerr_set(err, "search: max_front %d is negative", max_front);
    if (max_front == 0)
        max_front = DEFAULT_MAX_FRONT;
    struct sgroups s;
    if (check_problem(p, err) < 0 || sgroups_build(p, &s, err) < 0)
        return -1;
    if (check_budget(&s, budget_bits, err) < 0) {
        sgroups_free(&s);
        return -1;
    }

    struct work w = { 0 };
    struct level *lv = calloc((size_t)(s.n > 0 ? s.n : 1), sizeof *lv);
    int rc = -1;
    w.pos = malloc((size_t)s.n_choices * sizeof *w.pos);
    w.heap = malloc((size_t)s.n_choices * sizeof *w.heap);
    if (!lv || !w.pos || !w.heap || pset_reserve(&w.cur, 1) < 0) {
        qerr_set(err, "search: out of memory for %d groups", s.n);
        goto done;
    }
    /* level 0: the fixed bits alone */
    w.cur.n = 1;
    w.cur.bits[0] = s.fixed_bits;
    w.cur.change[0] = 0.0;
    w.cur.rank[0] = 0;
    for (int sg = 0; sg < s.n; sg++)
        if (merge_group(&s, sg, &w, max_front, &lv[sg], err) < 0)
            goto done;
    if (build_front(&s, lv, &w.cur, budget_bits, out, err) < 0) {
        qsearch_front_free(out);
        goto done;
    }
    rc = 0;
done:
    work_free(&w);
    levels_free(lv, s.n);
    sgroups_free(&s);
    return rc;
}

/* ---- exhaustive reference ------------------------------------------------- */

int qsearch_brute_force(const struct qsearch_problem *p, uint64_t budget_bits, uint64_t limit,
                        struct qsearch_point *best, qerr *err)
{
    if (!best)
        return qerr_set(err, "search: no point to fill");
    memset(best, 0, sizeof *best);
    struct sgroups s;
    if (check_problem(p, err) < 0 || sgroups_build(p, &s, err) < 0)
        return -1;
    if (check_budget(&s, budget_bits, err) < 0) {
        sgroups_free(&s);
        return -1;
    }
    uint64_t count = 1;
    int over = 0;
    for (int sg = 0; sg < s.n && !over; sg++) {
        uint64_t m = (uint64_t)s.n_valid[sg];
        if (count > UINT64_MAX / m)
            over = 1;
        else
            count *= m;
    }
    if (over || count > limit) {
        sgroups_free(&s);
        if (over)
            return qerr_set(err, "search: more than 2^64 assignments exceed the limit of %llu",
                            (unsigned long long)limit);
        return qerr_set(err, "search: %llu assignments exceed the limit of %llu",
                        (unsigned long long)count, (unsigned long long)limit);
    }

    size_t nsg = (size_t)(s.n > 0 ? s.n : 1);
    int *odo = calloc(nsg, sizeof *odo), *bestv = calloc(nsg, sizeof *bestv);
    int rc = -1;
    if (!odo || !bestv) {
        qerr_set(err, "search: out of memory for %d groups", s.n);
        goto done;
    }
    int found = 0;
    uint64_t bb = 0;
    double bc = 0.0;
    /* the odometer turns the last super-group fastest: assignments come in
     * lexicographic order, so the first of equal ones is kept */
    for (;;) {
        uint64_t b = s.fixed_bits;
        double ch = 0.0;
        for (int sg = 0; sg < s.n; sg++) {
            size_t v = (size_t)sg * (size_t)s.n_choices + (size_t)odo[sg];
            b += s.vbits[v];
            ch += s.vchange[v];
        }
        if (b <= budget_bits && (!found || ch < bc || (ch == bc && b < bb))) {
            found = 1;
            bb = b;
            bc = ch;
            memcpy(bestv, odo, nsg * sizeof *odo);
        }
        int sg = s.n - 1;
        while (sg >= 0 && ++odo[sg] == s.n_valid[sg])
            odo[sg--] = 0;
        if (sg < 0)
            break;
    }
    /* found: the budget is at least the smallest size, which some assignment has */
    best->bits = bb;
    best->change = bc;
    if (s.n_groups > 0) {
        best->choice = malloc((size_t)s.n_groups * sizeof *best->choice);
        if (!best->choice) {
            qerr_set(err, "search: out of memory for %d groups", s.n_groups);
            goto done;
        }
        for (int g = 0; g < s.n_groups; g++) {
            int sg = s.sg_of[g];
            best->choice[g] = s.vc[(size_t)sg * (size_t)s.n_choices + (size_t)bestv[sg]];
        }
    }
    rc = 0;
done:
    free(odo);
    free(bestv);
    sgroups_free(&s);
    return rc;
}
