/* recipe.c — parsing, printing and matching quantization recipes. */
#include "recipe.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static char *trim_dup(const char *s, size_t n)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return strndup(s, n);
}

static int has_wildcard(const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' && s[1])
            s++; /* an escaped character is literal */
        else if (*s == '*' || *s == '?' || *s == '[')
            return 1;
    }
    return 0;
}

/* The leaf is what follows the last '.'; a rule naming it literally
 * (".bias", "bn1.running_mean") means to reach non-weight tensors too. */
static int leaf_is_literal(const char *glob)
{
    const char *dot = strrchr(glob, '.');
    return !has_wildcard(dot ? dot + 1 : glob);
}

static int valid_scheme_name(const char *s)
{
    if (!*s)
        return 0;
    int slashes = 0;
    for (; *s; s++) {
        if (*s == '/')
            slashes++;
        else if (!isalnum((unsigned char)*s) && *s != '_')
            return 0;
    }
    return slashes <= 1;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void rule_free(struct qrule *rule)
{
    free(rule->glob);
    for (int k = 0; k < rule->n_stages; k++) {
        free(rule->stages[k].scheme);
        free(rule->stages[k].params);
    }
    memset(rule, 0, sizeof *rule);
}

void qrecipe_clear(struct qrecipe *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        rule_free(&r->rules[i]);
    free(r->rules);
    r->rules = NULL;
    r->n = 0;
}

/* Takes ownership of rule (also on failure). */
static int push_rule(struct qrecipe *r, struct qrule *rule, qerr *err)
{
    struct qrule *rules = realloc(r->rules, (size_t)(r->n + 1) * sizeof *rules);
    if (!rules) {
        rule_free(rule);
        return qerr_set(err, "out of memory");
    }
    r->rules = rules;
    rule->names_leaf = leaf_is_literal(rule->glob);
    r->rules[r->n++] = *rule;
    return 0;
}

int qrule_is_float(const struct qrule *rule)
{
    return rule->n_stages == 1 && strcmp(rule->stages[0].scheme, "float") == 0;
}

/* ---- parsing ------------------------------------------------------------ */

/* Where the next stage starts: a '+' followed by a scheme name and then
 * ':' , '+' or the end ("1e+5" inside a value is no stage break). */
static const char *next_stage(const char *p)
{
    for (; (p = strchr(p, '+')); p++) {
        const char *q = p + 1;
        while (isspace((unsigned char)*q))
            q++;
        if (*q == 0)
            return p; /* a trailing '+': an empty stage, reported as such */
        if (!isalpha((unsigned char)*q) && *q != '_')
            continue;
        while (isalnum((unsigned char)*q) || *q == '_' || *q == '/')
            q++;
        while (isspace((unsigned char)*q))
            q++;
        if (*q == ':' || *q == '+' || *q == 0)
            return p;
    }
    return NULL;
}

/* Parses RHS = STAGE[+STAGE] into rule (glob already set); `what` names
 * the rule in messages. */
static int parse_rhs(struct qrule *rule, const char *rhs, const char *what, qerr *err)
{
    const char *p = rhs;
    for (;;) {
        const char *plus = next_stage(p);
        size_t len = plus ? (size_t)(plus - p) : strlen(p);
        if (rule->n_stages == QRULE_MAX_STAGES)
            return qerr_set(err, "%s: at most %d schemes joined with '+' (a pruning step, then "
                            "a quantizer)", what, QRULE_MAX_STAGES);
        const char *colon = memchr(p, ':', len);
        struct qstage *st = &rule->stages[rule->n_stages];
        st->scheme = trim_dup(p, colon ? (size_t)(colon - p) : len);
        st->params = colon ? trim_dup(colon + 1, len - (size_t)(colon - p) - 1) : strdup("");
        rule->n_stages++;
        if (!st->scheme || !st->params)
            return qerr_set(err, "out of memory");
        if (!*st->scheme)
            return qerr_set(err, "%s: no scheme %s (write a scheme name or float)", what,
                            rule->n_stages == 1 ? "after '='" : "after '+'");
        if (!valid_scheme_name(st->scheme))
            return qerr_set(err, "%s: '%s' is not a scheme name (letters, digits, _ and one /)",
                            what, st->scheme);
        if (colon && !*st->params)
            return qerr_set(err, "%s: nothing after ':' (write key=value,... or drop the ':')",
                            what);
        if (strcmp(st->scheme, "float") == 0 && *st->params)
            return qerr_set(err, "%s: float takes no parameters", what);
        if (!plus)
            break;
        p = plus + 1;
    }
    for (int k = 0; k < rule->n_stages && rule->n_stages > 1; k++)
        if (strcmp(rule->stages[k].scheme, "float") == 0)
            return qerr_set(err, "%s: float cannot be joined with other schemes", what);
    return 0;
}

static int add_rule(struct qrecipe *r, const char *glob, size_t glob_len, const char *rhs,
                    const char *what, qerr *err)
{
    struct qrule rule = {.glob = trim_dup(glob, glob_len)};
    if (!rule.glob)
        return qerr_set(err, "out of memory");
    if (!*rule.glob) {
        rule_free(&rule);
        return qerr_set(err, "%s: no tensor pattern before '='", what);
    }
    if (parse_rhs(&rule, rhs, what, err) < 0) {
        rule_free(&rule);
        return -1;
    }
    return push_rule(r, &rule, err);
}

int qrecipe_add_text(struct qrecipe *r, const char *glob, const char *rhs, qerr *err)
{
    char what[64];
    snprintf(what, sizeof what, "rule %d", r->n + 1);
    return add_rule(r, glob, strlen(glob), rhs, what, err);
}

int qrecipe_add(struct qrecipe *r, const char *glob, const char *scheme, const char *params,
                qerr *err)
{
    size_t n = strlen(scheme) + (params ? strlen(params) : 0) + 2;
    char *rhs = malloc(n);
    if (!rhs)
        return qerr_set(err, "out of memory");
    snprintf(rhs, n, "%s%s%s", scheme, params && *params ? ":" : "", params ? params : "");
    int rc = qrecipe_add_text(r, glob, rhs, err);
    free(rhs);
    return rc;
}

void qrecipe_remove(struct qrecipe *r, int i)
{
    if (i < 0 || i >= r->n)
        return;
    rule_free(&r->rules[i]);
    memmove(&r->rules[i], &r->rules[i + 1], (size_t)(r->n - i - 1) * sizeof *r->rules);
    r->n--;
}

int qrecipe_copy(const struct qrecipe *src, struct qrecipe *dst, qerr *err)
{
    struct qrecipe out = {0};
    for (int i = 0; i < src->n; i++) {
        char *rhs = qrule_rhs(&src->rules[i]);
        int rc = rhs ? qrecipe_add_text(&out, src->rules[i].glob, rhs, err)
                     : qerr_set(err, "out of memory");
        free(rhs);
        if (rc < 0) {
            qrecipe_clear(&out);
            return -1;
        }
    }
    *dst = out;
    return 0;
}

static int parse_rule(struct qrecipe *r, const char *text, size_t len, int number, qerr *err)
{
    char *rule = trim_dup(text, len);
    if (!rule)
        return qerr_set(err, "out of memory");
    char what[600];
    snprintf(what, sizeof what, "rule %d '%.500s'", number, rule);
    const char *eq = strchr(rule, '=');
    int rc = eq ? add_rule(r, rule, (size_t)(eq - rule), eq + 1, what, err)
                : qerr_set(err, "%s: expected GLOB=SCHEME[:key=value,...]", what);
    free(rule);
    return rc;
}

int qrecipe_parse(const char *text, struct qrecipe *r, qerr *err)
{
    struct qrecipe out = {0};
    int number = 0;
    const char *p = text ? text : "";
    while (*p) {
        size_t len = strcspn(p, ";\n");
        size_t i = 0;
        while (i < len && isspace((unsigned char)p[i]))
            i++;
        if (i < len) {
            number++;
            if (parse_rule(&out, p, len, number, err) < 0) {
                qrecipe_clear(&out);
                *r = out;
                return -1;
            }
        }
        p += len;
        if (*p)
            p++;
    }
    *r = out;
    return 0;
}

/* ---- printing ----------------------------------------------------------- */

char *qrule_rhs(const struct qrule *rule)
{
    size_t n = 1;
    for (int k = 0; k < rule->n_stages; k++)
        n += strlen(rule->stages[k].scheme) + strlen(rule->stages[k].params) + 2;
    char *s = malloc(n), *o = s;
    if (!s)
        return NULL;
    *o = 0;
    for (int k = 0; k < rule->n_stages; k++) {
        const struct qstage *st = &rule->stages[k];
        o += snprintf(o, n - (size_t)(o - s), "%s%s%s%s", k ? "+" : "", st->scheme,
                      *st->params ? ":" : "", st->params);
    }
    return s;
}

char *qrule_text(const struct qrule *rule)
{
    char *rhs = qrule_rhs(rule);
    if (!rhs)
        return NULL;
    size_t n = strlen(rule->glob) + strlen(rhs) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s=%s", rule->glob, rhs);
    free(rhs);
    return s;
}

char *qrecipe_text(const struct qrecipe *r)
{
    size_t cap = 1, len = 0;
    char **parts = calloc((size_t)(r->n ? r->n : 1), sizeof *parts);
    if (!parts)
        return NULL;
    for (int i = 0; i < r->n; i++) {
        if (!(parts[i] = qrule_text(&r->rules[i]))) {
            for (int j = 0; j < i; j++)
                free(parts[j]);
            free(parts);
            return NULL;
        }
        cap += strlen(parts[i]) + 1;
    }
    char *s = malloc(cap);
    if (s) {
        s[0] = 0;
        for (int i = 0; i < r->n; i++)
            len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? ";" : "", parts[i]);
    }
    for (int i = 0; i < r->n; i++)
        free(parts[i]);
    free(parts);
    return s;
}

/* ---- matching ----------------------------------------------------------- */

int qrule_applies(const struct qrule *rule, const char *name, enum qrole role)
{
    if (role != QROLE_WEIGHT && !rule->names_leaf)
        return 0;
    return fnmatch(rule->glob, name, 0) == 0;
}

int qrecipe_match(const struct qrecipe *r, const char *name, enum qrole role)
{
    for (int i = r->n - 1; i >= 0; i--)
        if (qrule_applies(&r->rules[i], name, role))
            return i;
    return -1;
}

char *qglob_escape(const char *name)
{
    size_t n = strlen(name);
    char *s = malloc(2 * n + 1), *o = s;
    if (!s)
        return NULL;
    for (const char *p = name; *p; p++) {
        if (strchr("*?[]\\", *p))
            *o++ = '\\';
        *o++ = *p;
    }
    *o = 0;
    return s;
}
