/* sweep_groups.c — what a sweep varies: groups of a model's weight tensors, metric names, and the recipe of a point. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"
#include "recipe.h"
#include "sweep.h"
#include "sweep_internal.h"

/* ---- names ------------------------------------------------------------------ */

const char *qsweep_mode_name(enum qsweep_mode m)
{
    static const char *const names[QSWEEP_MODE_COUNT] = {[QSWEEP_ONE] = "one",
                                                         [QSWEEP_LOO] = "loo"};
    return (unsigned)m < QSWEEP_MODE_COUNT ? names[m] : "?";
}

const char *qsweep_grouping_name(enum qsweep_grouping g)
{
    static const char *const names[QSWEEP_GROUPING_COUNT] = {
        [QSWEEP_TENSOR] = "tensor", [QSWEEP_BLOCK] = "block", [QSWEEP_ROLE] = "role",
        [QSWEEP_GLOB] = "glob"};
    return (unsigned)g < QSWEEP_GROUPING_COUNT ? names[g] : "?";
}

static const char *const classifier_metrics[] = {"cross_entropy", "top1", "kld_mean",
                                                  "weight_sqnr", "output_sqnr", NULL};
static const char *const lm_metrics[] = {"kld_mean", "ppl", "kld_p99", "same_top",
                                          "weight_sqnr", "output_sqnr", NULL};

int qsweep_metric_is_proxy(const char *metric)
{
    return metric && (!strcmp(metric, "weight_sqnr") || !strcmp(metric, "output_sqnr"));
}

int qsweep_metric_valid(enum qmodel_kind kind, const char *metric)
{
    const char *const *names = kind == QMODEL_LM ? lm_metrics : classifier_metrics;
    for (int i = 0; metric && names[i]; i++)
        if (strcmp(metric, names[i]) == 0)
            return 1;
    return 0;
}

const char *qsweep_default_metric(enum qmodel_kind kind)
{
    return kind == QMODEL_LM ? lm_metrics[0] : classifier_metrics[0];
}

/* ---- where a tensor is used ----------------------------------------------------- */

/* The block of a language model's tensor, or -1 when it is in none. */
static int lm_block(const struct qmodel *m, int t)
{
    const struct qllm *l = m->llm;
    for (int b = 0; b < l->c.n_layers; b++) {
        const struct qllm_layer *y = &l->layers[b];
        const int in[] = {y->attn_norm, y->wq, y->wk, y->wv, y->wo, y->bq, y->bk,
                          y->bv, y->ffn_norm, y->w_gate, y->w_up, y->w_down};
        for (size_t k = 0; k < sizeof in / sizeof in[0]; k++)
            if (in[k] == t)
                return b;
    }
    return -1;
}

int qsweep_first_use(const struct qmodel *m, int t)
{
    if (m->kind != QMODEL_LM)
        return m->tensor_node ? m->tensor_node[t] : 0;
    const struct qllm *l = m->llm;
    if (t == l->token_embd)
        return -1;
    int b = lm_block(m, t);
    if (b >= 0)
        return b;
    return t == l->output || t == l->output_norm ? l->c.n_layers : -1;
}

/* ---- building groups ------------------------------------------------------------ */

struct glist {
    const struct qmodel *m;
    struct qsweep_group *g;
    char **key;                 /* per group: what gathers its tensors */
    int n, cap;
    qerr *err;
};

static void glist_free(struct glist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->key[i]);
    free(l->key);
    qsweep_groups_free(l->g, l->n);
    l->g = NULL;
    l->key = NULL;
    l->n = 0;
}

void qsweep_groups_free(struct qsweep_group *g, int n)
{
    if (!g)
        return;
    for (int i = 0; i < n; i++) {
        free(g[i].name);
        free(g[i].glob);
        free(g[i].tensors);
    }
    free(g);
}

/* The group keyed `key`, created (named name, glob candidate glob) when new. */
static struct qsweep_group *glist_get(struct glist *l, const char *key, const char *name,
                                      const char *glob)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->key[i], key) == 0)
            return &l->g[i];
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        struct qsweep_group *g = realloc(l->g, (size_t)cap * sizeof *g);
        if (g)
            l->g = g;
        char **k = realloc(l->key, (size_t)cap * sizeof *k);
        if (k)
            l->key = k;
        if (!g || !k) {
            qerr_set(l->err, "out of memory");
            return NULL;
        }
        l->cap = cap;
    }
    struct qsweep_group *g = &l->g[l->n];
    memset(g, 0, sizeof *g);
    l->key[l->n] = strdup(key);
    g->name = strdup(name);
    g->glob = strdup(glob ? glob : "");
    l->n++;
    if (!l->key[l->n - 1] || !g->name || !g->glob) {
        qerr_set(l->err, "out of memory");
        return NULL;
    }
    g->first_layer = INT32_MAX;
    return g;
}

static int add_member(struct glist *l, struct qsweep_group *g, int t)
{
    int *ts = realloc(g->tensors, (size_t)(g->n_tensors + 1) * sizeof *ts);
    if (!ts)
        return qerr_set(l->err, "out of memory");
    g->tensors = ts;
    g->tensors[g->n_tensors++] = t;
    g->numel += l->m->tensors[t]->numel;
    int use = qsweep_first_use(l->m, t);
    if (use < g->first_layer)
        g->first_layer = use;
    return 0;
}

static int is_member(const struct qsweep_group *g, int t)
{
    for (int i = 0; i < g->n_tensors; i++)
        if (g->tensors[i] == t)
            return 1;
    return 0;
}

/* Whether glob, as the glob of a recipe rule, selects exactly g's tensors
 * (a rule naming a leaf may select norms and biases too). */
static int glob_exact(const struct qmodel *m, const char *glob, const struct qsweep_group *g)
{
    if (!glob || !*glob)
        return 0;
    struct qrecipe r = {0};
    qerr ignore;
    if (qrecipe_add_text(&r, glob, "float", &ignore) < 0)
        return 0;
    int ok = 1;
    for (int t = 0; t < m->n_tensors && ok; t++)
        ok = qrule_applies(&r.rules[0], m->tensors[t]->name, m->roles[t]) == is_member(g, t);
    qrecipe_clear(&r);
    return ok;
}

/* Keeps each group's glob candidate only if it selects exactly its tensors;
 * else "" (a recipe then takes one rule per tensor name). */
static int settle_globs(struct glist *l)
{
    for (int i = 0; i < l->n; i++) {
        struct qsweep_group *g = &l->g[i];
        if (glob_exact(l->m, g->glob, g))
            continue;
        free(g->glob);
        /* one tensor: its escaped name, when a rule can name it */
        g->glob = g->n_tensors == 1 ? qglob_escape(l->m->tensors[g->tensors[0]]->name)
                                    : strdup("");
        if (!g->glob)
            return qerr_set(l->err, "out of memory");
        if (!glob_exact(l->m, g->glob, g))
            g->glob[0] = 0;
    }
    return 0;
}

/* A group of its own for tensor t, named and globbed by its name. */
static int own_group(struct glist *l, int t)
{
    const char *name = l->m->tensors[t]->name;
    char key[32];
    snprintf(key, sizeof key, "t%d", t);
    struct qsweep_group *g = glist_get(l, key, name, NULL);
    return g ? add_member(l, g, t) : -1;
}

/* The group keyed key (name, glob) gets tensor t. */
static int keyed(struct glist *l, const char *key, const char *name, const char *glob, int t)
{
    struct qsweep_group *g = glist_get(l, key, name, glob);
    return g ? add_member(l, g, t) : -1;
}

/* LM tensor t of block b named "blk.b.SUFFIX": the suffix, or NULL. */
static const char *block_suffix(const char *name, int b)
{
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "blk.%d.", b);
    return strncmp(name, prefix, (size_t)n) == 0 ? name + n : NULL;
}

static int group_lm(struct glist *l, enum qsweep_grouping how, int t)
{
    const char *name = l->m->tensors[t]->name;
    int b = lm_block(l->m, t);
    const char *suffix = b >= 0 ? block_suffix(name, b) : NULL;
    if (how == QSWEEP_TENSOR || b < 0 || !suffix)
        return own_group(l, t);
    char key[300], gname[300], glob[600];
    if (how == QSWEEP_BLOCK) {
        snprintf(key, sizeof key, "b%d", b);
        snprintf(gname, sizeof gname, "blk.%d", b);
        snprintf(glob, sizeof glob, "blk.%d.*", b);
        return keyed(l, key, gname, glob, t);
    }
    /* role: the suffix across blocks, "ffn_down" for "ffn_down.weight" */
    char *esc = qglob_escape(suffix);
    if (!esc)
        return qerr_set(l->err, "out of memory");
    snprintf(gname, sizeof gname, "%s", suffix);
    size_t len = strlen(gname);
    if (len > 7 && strcmp(gname + len - 7, ".weight") == 0)
        gname[len - 7] = 0;
    snprintf(key, sizeof key, "r%s", suffix);
    snprintf(glob, sizeof glob, "blk.*.%s", esc);
    free(esc);
    return keyed(l, key, gname, glob, t);
}

static int group_classifier(struct glist *l, enum qsweep_grouping how, int t)
{
    const struct qmodel *m = l->m;
    if (how == QSWEEP_TENSOR || !m->tensor_node || m->tensor_node[t] < 0 ||
        m->tensor_node[t] >= m->n_nodes)
        return own_group(l, t);
    const struct qnode *nd = &m->nodes[m->tensor_node[t]];
    char key[64];
    if (how == QSWEEP_BLOCK) {
        snprintf(key, sizeof key, "n%d", m->tensor_node[t]);
        return keyed(l, key, nd->name ? nd->name : key, NULL, t);
    }
    /* role: the op kind; "*" holds it when it is the only kind */
    snprintf(key, sizeof key, "o%s", qop_name(nd->op));
    return keyed(l, key, qop_name(nd->op), "*", t);
}

/* User globs, ';' or newline apart: each selects the weights it matches. */
static int group_globs(struct glist *l, const char *globs)
{
    const struct qmodel *m = l->m;
    int *owner = malloc((size_t)(m->n_tensors ? m->n_tensors : 1) * sizeof *owner);
    char *text = strdup(globs ? globs : "");
    if (!owner || !text) {
        free(owner);
        free(text);
        return qerr_set(l->err, "out of memory");
    }
    for (int t = 0; t < m->n_tensors; t++)
        owner[t] = -1;
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, ";\n", &save); tok && rc == 0;
         tok = strtok_r(NULL, ";\n", &save)) {
        while (*tok == ' ' || *tok == '\t' || *tok == '\r')
            tok++;
        size_t len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t' || tok[len - 1] == '\r'))
            tok[--len] = 0;
        if (!len)
            continue;
        char key[32];
        snprintf(key, sizeof key, "g%d", l->n);
        struct qsweep_group *g = glist_get(l, key, tok, tok);
        if (!g) {
            rc = -1;
            break;
        }
        int gi = (int)(g - l->g);
        struct qrule rule = {.glob = tok};
        for (int t = 0; t < m->n_tensors && rc == 0; t++) {
            if (m->roles[t] != QROLE_WEIGHT || !qrule_applies(&rule, m->tensors[t]->name,
                                                              QROLE_WEIGHT))
                continue;
            if (owner[t] >= 0)
                rc = qerr_set(l->err, "glob '%s': tensor '%s' is already in glob '%s'", tok,
                              m->tensors[t]->name, l->g[owner[t]].name);
            else if ((rc = add_member(l, &l->g[gi], t)) == 0)
                owner[t] = gi;
        }
        if (rc == 0 && l->g[gi].n_tensors == 0)
            rc = qerr_set(l->err, "glob '%s' selects no quantizable tensor of %s", tok,
                          m->name ? m->name : "the model");
    }
    if (rc == 0 && l->n == 0)
        rc = qerr_set(l->err, "no globs given: write them ';'-separated, e.g. \"blk.0.*;blk.1.*\"");
    free(owner);
    free(text);
    return rc;
}

int qsweep_groups(const struct qmodel *m, enum qsweep_grouping g, const char *globs,
                  struct qsweep_group **out, int *n, qerr *err)
{
    *out = NULL;
    *n = 0;
    if (!m || !m->roles)
        return qerr_set(err, "sweep groups: no model");
    if ((unsigned)g >= QSWEEP_GROUPING_COUNT)
        return qerr_set(err, "sweep groups: unknown grouping %d", (int)g);
    if (m->kind == QMODEL_LM && !m->llm)
        return qerr_set(err, "%s: a language model without its architecture", m->name);
    struct glist l = {.m = m, .err = err};
    int rc = 0;
    if (g == QSWEEP_GLOB) {
        rc = group_globs(&l, globs);
    } else {
        for (int t = 0; t < m->n_tensors && rc == 0; t++)
            if (m->roles[t] == QROLE_WEIGHT)
                rc = m->kind == QMODEL_LM ? group_lm(&l, g, t) : group_classifier(&l, g, t);
        if (rc == 0 && l.n == 0)
            rc = qerr_set(err, "%s has no quantizable (linear or conv) weight tensors",
                          m->name ? m->name : "the model");
    }
    if (rc == 0)
        rc = settle_globs(&l);
    if (rc != 0) {
        glist_free(&l);
        return -1;
    }
    for (int i = 0; i < l.n; i++)
        free(l.key[i]);
    free(l.key);
    *out = l.g;
    *n = l.n;
    return 0;
}

/* ---- the recipe of a point ---------------------------------------------------------- */

static int add_tensor_rule(struct qrecipe *r, const char *name, const char *rhs, qerr *err)
{
    char *glob = qglob_escape(name);
    if (!glob)
        return qerr_set(err, "out of memory");
    int rc = qrecipe_add_text(r, glob, rhs, err);
    free(glob);
    return rc;
}

char *qsweep_point_recipe(const struct qsweep_spec *s, int64_t group, int64_t scheme)
{
    if (!s || !s->model || group < 0 || group >= s->n_groups || scheme < 0 ||
        scheme >= s->n_schemes)
        return NULL;
    const struct qmodel *m = s->model;
    const struct qsweep_group *g = &s->groups[group];
    const char *rhs = s->schemes[scheme];
    struct qrecipe r = {0};
    qerr err;
    int rc = 0;
    if (s->mode == QSWEEP_ONE) {
        for (int i = 0; i < g->n_tensors && rc == 0; i++)
            rc = add_tensor_rule(&r, m->tensors[g->tensors[i]]->name, rhs, &err);
    } else {
        /* "*" then the group back to float, when the groups hold every weight */
        int64_t in_groups = 0, weights = 0;
        for (int i = 0; i < s->n_groups; i++)
            in_groups += s->groups[i].n_tensors;
        for (int t = 0; t < m->n_tensors; t++)
            weights += m->roles[t] == QROLE_WEIGHT;
        if (in_groups == weights) {
            rc = qrecipe_add_text(&r, "*", rhs, &err);
            for (int i = 0; i < g->n_tensors && rc == 0; i++)
                rc = add_tensor_rule(&r, m->tensors[g->tensors[i]]->name, "float", &err);
        } else {
            for (int k = 0; k < s->n_groups && rc == 0; k++)
                for (int i = 0; k != group && i < s->groups[k].n_tensors && rc == 0; i++)
                    rc = add_tensor_rule(&r, m->tensors[s->groups[k].tensors[i]]->name, rhs,
                                         &err);
        }
    }
    char *text = rc == 0 ? qrecipe_text(&r) : NULL;
    qrecipe_clear(&r);
    return text;
}
