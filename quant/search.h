/* search.h — exact budgeted mixed-precision search over a sweep table, and its Pareto front.
 *
 * Each group g has choices c = 0..n-1 (choice 0 is float), each with an
 * exact size in bits and a predicted change of the metric (0 for float),
 * taken from a one-at-a-time sweep and assumed additive over groups. The
 * search finds the assignment minimizing the summed change with the total
 * size (the groups plus the fixed bits of tensors outside every group)
 * within a budget — exactly, by dynamic programming over Pareto sets: the
 * groups are merged one by one, keeping after each merge only the
 * (size, change) pairs no other pair beats in both, so the final set is
 * the whole Pareto front of the model and the optimum is its best point
 * within the budget. No greedy step is involved.
 *
 * Ties: groups that must share one scheme (the q/k/v of a block, gate/up)
 * are merged into one super-group first: its choice c takes scheme c for
 * all members, with the members' sizes and changes summed. A scheme that
 * failed for any member (missing) is not a choice for the tie.
 */
#ifndef QLAB_SEARCH_H
#define QLAB_SEARCH_H

#include <stdint.h>

#include "error.h"

struct qsearch_choice {
    uint64_t bits;       /* exact storage of the group with this choice */
    double change;       /* predicted metric change (>= 0 is usual, any value allowed) */
    int valid;           /* 0: this scheme failed for the group, not a choice */
};

struct qsearch_problem {
    int n_groups;
    int n_choices;                   /* per group, the same: float + the sweep's schemes */
    const struct qsearch_choice *c;  /* n_groups x n_choices, row-major; c[g][0] is float */
    uint64_t fixed_bits;             /* tensors outside every group (stay float) */
    int n_ties;                      /* groups that must share a choice */
    const int *tie_of;               /* n_groups: tie index, or -1 for none */
};

struct qsearch_point {
    uint64_t bits;       /* total: fixed + every group's choice */
    double change;       /* summed predicted change */
    int *choice;         /* n_groups choice indices (owned) */
};

struct qsearch_front {
    int n;                           /* points, by increasing bits and decreasing change */
    struct qsearch_point *points;
    int optimum;                     /* index of the best point within the budget, or -1 */
};

/* The whole front and the optimum within budget_bits. Errors: a budget
 * below the smallest possible size (the message gives both sizes), no
 * valid choice for a group, inconsistent ties. max_front bounds the kept
 * Pareto set (0: 1,000,000) — exceeding it is an error, never a silent
 * approximation. */
int qsearch_solve(const struct qsearch_problem *p, uint64_t budget_bits, int max_front,
                  struct qsearch_front *out, qerr *err);
void qsearch_front_free(struct qsearch_front *f);

/* Exhaustive reference (for tests and small problems): the optimum by
 * trying every assignment; -1 when there are more than limit assignments. */
int qsearch_brute_force(const struct qsearch_problem *p, uint64_t budget_bits, uint64_t limit,
                        struct qsearch_point *best, qerr *err);

#endif
