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

void qrecipe_clear(struct qrecipe *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++) {
        free(r->rules[i].glob);
        free(r->rules[i].scheme);
        free(r->rules[i].params);
    }
    free(r->rules);
    r->rules = NULL;
    r->n = 0;
}

static int push_rule(struct qrecipe *r, char *glob, char *scheme, char *params, qerr *err)
{
    struct qrule *rules = realloc(r->rules, (size_t)(r->n + 1) * sizeof *rules);
    if (!rules) {
        free(glob);
        free(scheme);
        free(params);
        return qerr_set(err, "out of memory");
    }
    r->rules = rules;
    r->rules[r->n++] = (struct qrule){
        .glob = glob, .scheme = scheme, .params = params, .names_leaf = leaf_is_literal(glob)};
    return 0;
}

/* Checks one rule's parts; `what` names it in messages. */
static int check_rule(const char *what, const char *glob, const char *scheme, const char *params,
                      qerr *err)
{
    if (!*glob)
        return qerr_set(err, "%s: no tensor pattern before '='", what);
    if (!*scheme)
        return qerr_set(err, "%s: no scheme after '=' (write a scheme name or float)", what);
    if (!valid_scheme_name(scheme))
        return qerr_set(err, "%s: '%s' is not a scheme name (letters, digits, _ and one /)", what,
                        scheme);
    if (strcmp(scheme, "float") == 0 && *params)
        return qerr_set(err, "%s: float takes no parameters", what);
    return 0;
}

int qrecipe_add(struct qrecipe *r, const char *glob, const char *scheme, const char *params,
                qerr *err)
{
    char *g = trim_dup(glob, strlen(glob));
    char *s = trim_dup(scheme, strlen(scheme));
    char *p = trim_dup(params ? params : "", params ? strlen(params) : 0);
    if (!g || !s || !p) {
        free(g);
        free(s);
        free(p);
        return qerr_set(err, "out of memory");
    }
    char what[64];
    snprintf(what, sizeof what, "rule %d", r->n + 1);
    if (check_rule(what, g, s, p, err) < 0) {
        free(g);
        free(s);
        free(p);
        return -1;
    }
    return push_rule(r, g, s, p, err);
}

void qrecipe_remove(struct qrecipe *r, int i)
{
    if (i < 0 || i >= r->n)
        return;
    free(r->rules[i].glob);
    free(r->rules[i].scheme);
    free(r->rules[i].params);
    memmove(&r->rules[i], &r->rules[i + 1], (size_t)(r->n - i - 1) * sizeof *r->rules);
    r->n--;
}

int qrecipe_copy(const struct qrecipe *src, struct qrecipe *dst, qerr *err)
{
    struct qrecipe out = {0};
    for (int i = 0; i < src->n; i++)
        if (qrecipe_add(&out, src->rules[i].glob, src->rules[i].scheme, src->rules[i].params,
                        err) < 0) {
            qrecipe_clear(&out);
            return -1;
        }
    *dst = out;
    return 0;
}

/* ---- parsing ------------------------------------------------------------ */

static int parse_rule(struct qrecipe *r, const char *text, size_t len, int number, qerr *err)
{
    char *rule = trim_dup(text, len);
    if (!rule)
        return qerr_set(err, "out of memory");
    char what[600];
    snprintf(what, sizeof what, "rule %d '%.500s'", number, rule);
    const char *eq = strchr(rule, '=');
    if (!eq) {
        qerr_set(err, "%s: expected GLOB=SCHEME[:key=value,...]", what);
        free(rule);
        return -1;
    }
    const char *colon = strchr(eq + 1, ':');
    char *glob = trim_dup(rule, (size_t)(eq - rule));
    char *scheme = trim_dup(eq + 1, colon ? (size_t)(colon - eq - 1) : strlen(eq + 1));
    char *params = colon ? trim_dup(colon + 1, strlen(colon + 1)) : strdup("");
    int rc;
    if (!glob || !scheme || !params)
        rc = qerr_set(err, "out of memory");
    else if (colon && !*params)
        rc = qerr_set(err, "%s: nothing after ':' (write key=value,... or drop the ':')", what);
    else
        rc = check_rule(what, glob, scheme, params, err);
    free(rule);
    if (rc < 0) {
        free(glob);
        free(scheme);
        free(params);
        return -1;
    }
    return push_rule(r, glob, scheme, params, err);
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

char *qrule_text(const struct qrule *rule)
{
    size_t n = strlen(rule->glob) + strlen(rule->scheme) + strlen(rule->params) + 4;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s=%s%s%s", rule->glob, rule->scheme, *rule->params ? ":" : "",
                 rule->params);
    return s;
}

char *qrecipe_text(const struct qrecipe *r)
{
    size_t cap = 1, len = 0;
    for (int i = 0; i < r->n; i++)
        cap += strlen(r->rules[i].glob) + strlen(r->rules[i].scheme) +
               strlen(r->rules[i].params) + 4;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = 0;
    for (int i = 0; i < r->n; i++) {
        char *one = qrule_text(&r->rules[i]);
        if (!one) {
            free(s);
            return NULL;
        }
        len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? ";" : "", one);
        free(one);
    }
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
