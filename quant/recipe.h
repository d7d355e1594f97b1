/* recipe.h — quantization recipes: ordered rules GLOB=SCHEME[:key=value,...], last match wins. */
#ifndef QLAB_RECIPE_H
#define QLAB_RECIPE_H

#include "error.h"
#include "model.h"

/* One step of a rule: a scheme and its parameters. */
struct qstage {
    char *scheme;     /* "float", "int", "plugin/scheme" */
    char *params;     /* "k=v,k=v" as written (trimmed), "" when none */
};

#define QRULE_MAX_STAGES 2

/* One rule: GLOB=STAGE[+STAGE], where a stage is SCHEME[:key=value,...].
 * Two stages are a pruning scheme followed by the scheme that quantizes
 * the kept values (`prune:pattern=2:4+int:bits=4`). `float` as the only
 * stage keeps matching tensors in float. */
struct qrule {
    char *glob;       /* fnmatch pattern over tensor names ('*' crosses dots) */
    int n_stages;     /* 1..QRULE_MAX_STAGES */
    struct qstage stages[QRULE_MAX_STAGES];
    int names_leaf;   /* the glob's last dotted part has no wildcard (".bias",
                         "conv1.weight"): the rule may select biases and norm
                         tensors, which other rules leave in float */
};

struct qrecipe {
    int n;
    struct qrule *rules;
};

/* Parses "RULE;RULE;..." (newlines also separate rules; empty rules are
 * skipped). Errors name the rule by number and text: "rule 2 'conv*':
 * expected GLOB=SCHEME[:key=value,...]". On error r is left empty. */
int qrecipe_parse(const char *text, struct qrecipe *r, qerr *err);
void qrecipe_clear(struct qrecipe *r);
int qrecipe_copy(const struct qrecipe *src, struct qrecipe *dst, qerr *err);
/* Appends one rule GLOB=SCHEME[:PARAMS] (validated like a parsed one);
 * params may be NULL. */
int qrecipe_add(struct qrecipe *r, const char *glob, const char *scheme, const char *params,
                qerr *err);
/* Appends GLOB=RHS where RHS is the text after '=' ("prune:...+int:bits=4"). */
int qrecipe_add_text(struct qrecipe *r, const char *glob, const char *rhs, qerr *err);
/* "float" when the rule keeps tensors in float. */
int qrule_is_float(const struct qrule *rule);
/* Removes rule i. */
void qrecipe_remove(struct qrecipe *r, int i);
/* The canonical text "glob=scheme:params;..." ("" for no rules); malloc'd. */
char *qrecipe_text(const struct qrecipe *r);
/* The text of rule i alone; malloc'd. */
char *qrule_text(const struct qrule *rule);
/* The text after '=' ("int:bits=4", "prune:pattern=2:4+int"); malloc'd. */
char *qrule_rhs(const struct qrule *rule);

/* Index of the rule that decides a tensor, or -1 (default: float). A
 * rule applies to a tensor when its glob matches the name and either the
 * tensor is a linear/conv weight or the rule names the leaf. */
int qrecipe_match(const struct qrecipe *r, const char *name, enum qrole role);
/* Whether one rule applies to a tensor (the test qrecipe_match makes). */
int qrule_applies(const struct qrule *rule, const char *name, enum qrole role);

/* Escapes glob metacharacters so that a tensor name matches only itself. */
char *qglob_escape(const char *name);

#endif
