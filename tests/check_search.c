/* check_search.c — the exact budgeted search: hand-worked fronts, random instances against exhaustive enumeration, limits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant/search.h"
#include "test_util.h"

/* ---- helpers -------------------------------------------------------------- */

/* ck_assert reports every passing check through a pipe; the loops over
 * many assignments check with this instead, free while it holds. */
#define REQUIRE(expr, ...)              \
    do {                                \
        if (!(expr))                    \
            ck_abort_msg(__VA_ARGS__);  \
    } while (0)

#define V(b, ch) { (b), (ch), 1 }
#define BAD { 0, 0.0, 0 }

struct want {
    uint64_t bits;
    double change;
    int choice[8];
};

static void check_front(const struct qsearch_front *f, const struct want *w, int n, int n_groups)
{
    ck_assert_int_eq(f->n, n);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(f->points[i].bits == w[i].bits, "point %d: %llu bits, want %llu", i,
                      (unsigned long long)f->points[i].bits, (unsigned long long)w[i].bits);
        ck_assert_msg(f->points[i].change == w[i].change, "point %d: change %g, want %g", i,
                      f->points[i].change, w[i].change);
        for (int g = 0; g < n_groups; g++)
            ck_assert_msg(f->points[i].choice[g] == w[i].choice[g], "point %d group %d: choice %d, want %d",
                          i, g, f->points[i].choice[g], w[i].choice[g]);
    }
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The hand-worked instance: 3 groups, fixed 10 bits.
 *   g0: (32, 0) (16, 1)   (8, 3)
 *   g1: (64, 0) (32, 0.5)  (choice 2 failed)
 *   g2: (16, 0) (8, 2)    (4, 2.5)
 * All 18 sums (without the fixed 10), the front marked *:
 *   44 6 *{2,1,2}  48 5.5 *{2,1,1}  52 4 *{1,1,2}  56 3.5 *{1,1,1} (= {2,1,0}, lex larger)
 *   64 1.5 *{1,1,0}  68 3  72 2.5  76 5.5  80 0.5 *{0,1,0}  80 5  84 3.5  88 3 (twice)
 *   96 1  100 2.5  104 2  112 0 *{0,0,0} */
static const struct qsearch_choice hand_c[] = {
    V(32, 0.0), V(16, 1.0), V(8, 3.0),
    V(64, 0.0), V(32, 0.5), BAD,
    V(16, 0.0), V(8, 2.0),  V(4, 2.5),
};
static const struct want hand_front[] = {
    { 54, 6.0, { 2, 1, 2 } }, { 58, 5.5, { 2, 1, 1 } }, { 62, 4.0, { 1, 1, 2 } },
    { 66, 3.5, { 1, 1, 1 } }, { 74, 1.5, { 1, 1, 0 } }, { 90, 0.5, { 0, 1, 0 } },
    { 122, 0.0, { 0, 0, 0 } },
};

static struct qsearch_problem hand_problem(void)
{
    return (struct qsearch_problem){ .n_groups = 3, .n_choices = 3, .c = hand_c, .fixed_bits = 10 };
}

/* ---- Core: hand-worked fronts --------------------------------------------- */

START_TEST(hand_front_and_optimum)
{
    struct qsearch_problem p = hand_problem();
    struct qsearch_front f;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, 80, 0, &f, &err), 0);
    check_front(&f, hand_front, 7, 3);
    ck_assert_int_eq(f.optimum, 4); /* 74 bits, 1.5 */
    qsearch_front_free(&f);
    ck_assert_ptr_null(f.points);
    ck_assert_int_eq(f.n, 0);

    static const struct { uint64_t budget; int opt; } cases[] = {
        { 54, 0 }, { 57, 0 }, { 58, 1 }, { 73, 3 }, { 89, 4 }, { 90, 5 }, { 121, 5 }, { 122, 6 },
        { UINT64_MAX, 6 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(qsearch_solve(&p, cases[i].budget, 0, &f, &err), 0);
        ck_assert_int_eq(f.n, 7);
        ck_assert_msg(f.optimum == cases[i].opt, "budget %llu: optimum %d, want %d",
                      (unsigned long long)cases[i].budget, f.optimum, cases[i].opt);
        struct qsearch_point best;
        ck_assert_int_eq(qsearch_brute_force(&p, cases[i].budget, 1000, &best, &err), 0);
        ck_assert_uint_eq(best.bits, hand_front[cases[i].opt].bits);
        ck_assert(best.change == hand_front[cases[i].opt].change);
        for (int g = 0; g < 3; g++)
            ck_assert_int_eq(best.choice[g], hand_front[cases[i].opt].choice[g]);
        free(best.choice);
        qsearch_front_free(&f);
    }
}
END_TEST

START_TEST(hand_ties)
{
    /* g0 and g2 tied: super-group choices (48, 0) (24, 3) (12, 5.5); with
     * g1: 44 6, 56 3.5, 76 5.5, 80 0.5, 88 3, 112 0 (+10 fixed) */
    int tie_of[3] = { 0, -1, 0 };
    struct qsearch_problem p = hand_problem();
    p.n_ties = 1;
    p.tie_of = tie_of;
    static const struct want w[] = {
        { 54, 6.0, { 2, 1, 2 } }, { 66, 3.5, { 1, 1, 1 } }, { 90, 0.5, { 0, 1, 0 } },
        { 122, 0.0, { 0, 0, 0 } },
    };
    struct qsearch_front f;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, 100, 0, &f, &err), 0);
    check_front(&f, w, 4, 3);
    ck_assert_int_eq(f.optimum, 2);
    qsearch_front_free(&f);

    /* g2's choice 1 fails: the tie loses choice 1; with g1: 44 6, 76 5.5,
     * 80 0.5, 112 0, now all on the front */
    struct qsearch_choice c[9];
    memcpy(c, hand_c, sizeof c);
    c[7].valid = 0;
    p.c = c;
    static const struct want w2[] = {
        { 54, 6.0, { 2, 1, 2 } }, { 86, 5.5, { 2, 0, 2 } }, { 90, 0.5, { 0, 1, 0 } },
        { 122, 0.0, { 0, 0, 0 } },
    };
    ck_assert_int_eq(qsearch_solve(&p, 89, 0, &f, &err), 0);
    check_front(&f, w2, 4, 3);
    ck_assert_int_eq(f.optimum, 1);
    qsearch_front_free(&f);

    /* the smallest size now counts the tie as one: 10 + 12 + 32 */
    ck_assert_int_eq(qsearch_solve(&p, 53, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: budget of 53 bits is below the smallest possible size 54 bits "
                              "(every group at its smallest valid choice)");
}
END_TEST

START_TEST(hand_negative_changes)
{
    /* g0: (10, 0) (5, -1); g1: (10, 0) (6, 0.5). Sums: 20 0, 16 0.5,
     * 15 -1, 11 -0.5: the front is 11 -0.5 {1,1}, 15 -1 {1,0}. */
    static const struct qsearch_choice c[] = { V(10, 0.0), V(5, -1.0), V(10, 0.0), V(6, 0.5) };
    struct qsearch_problem p = { .n_groups = 2, .n_choices = 2, .c = c };
    static const struct want w[] = { { 11, -0.5, { 1, 1 } }, { 15, -1.0, { 1, 0 } } };
    struct qsearch_front f;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, 20, 0, &f, &err), 0);
    check_front(&f, w, 2, 2);
    ck_assert_int_eq(f.optimum, 1);
    qsearch_front_free(&f);
    ck_assert_int_eq(qsearch_solve(&p, 14, 0, &f, &err), 0);
    ck_assert_int_eq(f.optimum, 0);
    qsearch_front_free(&f);
}
END_TEST

START_TEST(no_groups)
{
    struct qsearch_problem p = { .n_groups = 0, .fixed_bits = 77 };
    struct qsearch_front f;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, 77, 0, &f, &err), 0);
    ck_assert_int_eq(f.n, 1);
    ck_assert_uint_eq(f.points[0].bits, 77);
    ck_assert(f.points[0].change == 0.0);
    ck_assert_int_eq(f.optimum, 0);
    qsearch_front_free(&f);
    ck_assert_int_eq(qsearch_solve(&p, 76, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: budget of 76 bits is below the smallest possible size 77 bits "
                              "(every group at its smallest valid choice)");
    struct qsearch_point best;
    ck_assert_int_eq(qsearch_brute_force(&p, 100, 1, &best, &err), 0);
    ck_assert_uint_eq(best.bits, 77);
    ck_assert_ptr_null(best.choice);
}
END_TEST

/* ---- Budget: edges -------------------------------------------------------- */

START_TEST(budget_edges)
{
    struct qsearch_problem p = hand_problem();
    struct qsearch_front f;
    struct qsearch_point best;
    qerr err = { "" };
    /* exactly the smallest size: feasible, the smallest point */
    ck_assert_int_eq(qsearch_solve(&p, 54, 0, &f, &err), 0);
    ck_assert_int_eq(f.optimum, 0);
    ck_assert_uint_eq(f.points[0].bits, 54);
    qsearch_front_free(&f);
    /* one bit below: an error with both numbers, from both searches */
    ck_assert_int_eq(qsearch_solve(&p, 53, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: budget of 53 bits is below the smallest possible size 54 bits "
                              "(every group at its smallest valid choice)");
    ck_assert_int_eq(f.n, 0);
    ck_assert_ptr_null(f.points);
    ck_assert_int_eq(f.optimum, -1);
    qsearch_front_free(&f); /* harmless after an error */
    err.msg[0] = 0;
    ck_assert_int_eq(qsearch_brute_force(&p, 53, 1000, &best, &err), -1);
    ck_assert_str_eq(err.msg, "search: budget of 53 bits is below the smallest possible size 54 bits "
                              "(every group at its smallest valid choice)");
    ck_assert_int_eq(qsearch_solve(&p, 0, 0, &f, &err), -1);
    /* above everything: the smallest change */
    ck_assert_int_eq(qsearch_solve(&p, 1u << 20, 0, &f, &err), 0);
    ck_assert_int_eq(f.optimum, 6);
    ck_assert(f.points[6].change == 0.0);
    qsearch_front_free(&f);
    /* the all-float budget: 10 + 32 + 64 + 16 */
    ck_assert_int_eq(qsearch_solve(&p, 122, 0, &f, &err), 0);
    ck_assert_int_eq(f.optimum, 6);
    for (int g = 0; g < 3; g++)
        ck_assert_int_eq(f.points[6].choice[g], 0);
    qsearch_front_free(&f);
    qsearch_front_free(NULL);
}
END_TEST

START_TEST(budget_float_not_largest)
{
    /* A scheme can beat float in both size and change (a negative change
     * from noise): then the all-float budget buys something better than float. */
    static const struct qsearch_choice c[] = { V(32, 0.0), V(8, -0.25), V(16, 0.0), V(4, 1.0) };
    struct qsearch_problem p = { .n_groups = 2, .n_choices = 2, .c = c };
    struct qsearch_front f;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, 48, 0, &f, &err), 0);
    /* sums: 48 0, 36 1, 24 -0.25, 12 0.75 -> front 12 0.75, 24 -0.25 */
    static const struct want w[] = { { 12, 0.75, { 1, 1 } }, { 24, -0.25, { 1, 0 } } };
    check_front(&f, w, 2, 2);
    ck_assert_int_eq(f.optimum, 1);
    qsearch_front_free(&f);
}
END_TEST

/* ---- Errors: infeasible problems and bad input ----------------------------- */

START_TEST(tie_infeasible)
{
    /* g0 only float, g2 only its two schemes: no common choice */
    struct qsearch_choice c[9];
    memcpy(c, hand_c, sizeof c);
    c[1].valid = c[2].valid = 0;
    c[6].valid = 0;
    int tie_of[3] = { 0, -1, 0 };
    struct qsearch_problem p = hand_problem();
    p.c = c;
    p.n_ties = 1;
    p.tie_of = tie_of;
    struct qsearch_front f;
    struct qsearch_point best;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: tie 0 (groups 0, 2) has no choice valid for every member");
    ck_assert_int_eq(f.n, 0);
    err.msg[0] = 0;
    ck_assert_int_eq(qsearch_brute_force(&p, UINT64_MAX, 1000, &best, &err), -1);
    ck_assert_str_eq(err.msg, "search: tie 0 (groups 0, 2) has no choice valid for every member");
    /* untied, the same table is fine */
    p.n_ties = 0;
    p.tie_of = NULL;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), 0);
    qsearch_front_free(&f);
}
END_TEST

START_TEST(group_without_choice)
{
    struct qsearch_choice c[9];
    memcpy(c, hand_c, sizeof c);
    c[3].valid = c[4].valid = 0; /* group 1: even float failed */
    struct qsearch_problem p = hand_problem();
    p.c = c;
    struct qsearch_front f;
    struct qsearch_point best;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg,
                     "search: group 1 has no valid choice (every scheme failed, float included)");
    ck_assert_int_eq(qsearch_brute_force(&p, UINT64_MAX, 1000, &best, &err), -1);
    ck_assert_str_eq(err.msg,
                     "search: group 1 has no valid choice (every scheme failed, float included)");
    ck_assert_ptr_null(best.choice);
}
END_TEST

START_TEST(bad_input)
{
    struct qsearch_problem p = hand_problem();
    struct qsearch_front f;
    qerr err = { "" };
    int tie_of[3] = { 0, -1, 2 };
    p.n_ties = 2;
    p.tie_of = tie_of;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: group 2: tie index 2 outside -1..1");
    tie_of[2] = -2;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: group 2: tie index -2 outside -1..1");
    p.tie_of = NULL;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: 2 ties but no tie index per group");

    p = hand_problem();
    p.n_choices = 0;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: 0 choices per group (float is always one)");
    p = hand_problem();
    p.n_groups = -1;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    p = hand_problem();
    p.c = NULL;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_int_eq(qsearch_solve(NULL, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, NULL, &err), -1);

    /* a NaN change on a valid choice is refused; on a failed one it is ignored */
    struct qsearch_choice c[9];
    memcpy(c, hand_c, sizeof c);
    c[4].change = NAN;
    p = hand_problem();
    p.c = c;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: group 1 choice 1: predicted change nan is not finite");
    c[4].valid = 0;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), 0);
    qsearch_front_free(&f);

    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, -1, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: max_front -1 is negative");
}
END_TEST

START_TEST(bits_overflow)
{
    /* each size fits, their sum does not */
    static const struct qsearch_choice c[] = { V(UINT64_MAX / 2, 0.0), V(UINT64_MAX / 2 + 2, 0.0) };
    struct qsearch_problem p = { .n_groups = 2, .n_choices = 1, .c = c };
    struct qsearch_front f;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: the largest possible total size overflows 64 bits");
    int tie_of[2] = { 0, 0 };
    p.n_ties = 1;
    p.tie_of = tie_of;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: tie 0: choice 0's summed size overflows 64 bits");
    /* the fixed bits count too */
    p = (struct qsearch_problem){ .n_groups = 1, .n_choices = 1, .c = c, .fixed_bits = UINT64_MAX / 2 + 2 };
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), -1);
    /* exactly UINT64_MAX is still a size */
    p.fixed_bits = UINT64_MAX / 2 + 1;
    ck_assert_int_eq(qsearch_solve(&p, UINT64_MAX, 0, &f, &err), 0);
    ck_assert_uint_eq(f.points[0].bits, UINT64_MAX);
    ck_assert_int_eq(f.optimum, 0);
    qsearch_front_free(&f);
}
END_TEST

/* ---- Limits: max_front and the brute-force limit ---------------------------- */

START_TEST(max_front_exceeded)
{
    /* the kept sets of the hand instance hold 3, 4 and 7 points */
    struct qsearch_problem p = hand_problem();
    struct qsearch_front f;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_solve(&p, 100, 7, &f, &err), 0);
    ck_assert_int_eq(f.n, 7);
    qsearch_front_free(&f);
    ck_assert_int_eq(qsearch_solve(&p, 100, 6, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: the Pareto set exceeds max_front (6 points) after merging 3 of 3 "
                              "groups (ties merged)");
    ck_assert_int_eq(f.n, 0);
    ck_assert_ptr_null(f.points);
    ck_assert_int_eq(qsearch_solve(&p, 100, 3, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: the Pareto set exceeds max_front (3 points) after merging 2 of 3 "
                              "groups (ties merged)");
    ck_assert_int_eq(qsearch_solve(&p, 100, 1, &f, &err), -1);
    ck_assert_str_eq(err.msg, "search: the Pareto set exceeds max_front (1 points) after merging 1 of 3 "
                              "groups (ties merged)");
}
END_TEST

START_TEST(brute_force_limit)
{
    /* 3 x 2 x 3 assignments */
    struct qsearch_problem p = hand_problem();
    struct qsearch_point best;
    qerr err = { "" };
    ck_assert_int_eq(qsearch_brute_force(&p, 100, 17, &best, &err), -1);
    ck_assert_str_eq(err.msg, "search: 18 assignments exceed the limit of 17");
    ck_assert_int_eq(qsearch_brute_force(&p, 100, 18, &best, &err), 0);
    ck_assert_uint_eq(best.bits, 90);
    free(best.choice);
    /* with g0 and g2 tied only 3 x 2 remain */
    int tie_of[3] = { 0, -1, 0 };
    p.n_ties = 1;
    p.tie_of = tie_of;
    ck_assert_int_eq(qsearch_brute_force(&p, 100, 6, &best, &err), 0);
    ck_assert_uint_eq(best.bits, 90);
    free(best.choice);
    /* 70 groups of 2 choices: more than 2^64 */
    struct qsearch_choice *c = calloc(140, sizeof *c);
    for (int i = 0; i < 140; i++)
        c[i] = (struct qsearch_choice)V(1, 0.0);
    struct qsearch_problem big = { .n_groups = 70, .n_choices = 2, .c = c };
    ck_assert_int_eq(qsearch_brute_force(&big, UINT64_MAX, UINT64_MAX, &best, &err), -1);
    ck_assert_str_eq(err.msg, "search: more than 2^64 assignments exceed the limit of 18446744073709551615");
    free(c);
}
END_TEST

/* ---- Random: against exhaustive enumeration --------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rng_int(uint64_t *s, int lo, int hi) /* lo..hi inclusive */
{
    return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

struct inst {
    struct qsearch_problem p;
    struct qsearch_choice c[8 * 5];
    int tie_of[8];
};

/* Sizes from a narrow range and changes in quarters, so that equal sizes,
 * equal changes and exact ties are common; quarters keep every sum exact. */
static void random_inst(uint64_t *s, struct inst *in)
{
    memset(in, 0, sizeof *in);
    int ng = rng_int(s, 1, 8), nc = rng_int(s, 1, 5);
    int wide = rng_int(s, 0, 3) == 0;
    for (int i = 0; i < ng * nc; i++) {
        in->c[i].bits = (uint64_t)(wide ? rng_int(s, 0, 100000) : rng_int(s, 0, 24));
        in->c[i].change = rng_int(s, -12, 36) * 0.25;
        in->c[i].valid = rng_int(s, 0, 5) != 0;
    }
    int nt = rng_int(s, 0, 3);
    for (int g = 0; g < ng; g++)
        in->tie_of[g] = nt > 0 && rng_int(s, 0, 1) ? rng_int(s, 0, nt - 1) : -1;
    in->p = (struct qsearch_problem){ .n_groups = ng, .n_choices = nc, .c = in->c,
                                      .fixed_bits = (uint64_t)rng_int(s, 0, 50), .n_ties = nt,
                                      .tie_of = in->tie_of };
}

/* One assignment's size and change, summed group by group; 0 when a choice
 * failed or tied groups disagree. */
static int eval_assign(const struct inst *in, const int *a, uint64_t *bits, double *change)
{
    const struct qsearch_problem *p = &in->p;
    *bits = p->fixed_bits;
    *change = 0.0;
    for (int g = 0; g < p->n_groups; g++) {
        if (a[g] < 0 || a[g] >= p->n_choices)
            return 0;
        const struct qsearch_choice *c = &p->c[g * p->n_choices + a[g]];
        if (!c->valid)
            return 0;
        for (int h = 0; h < g; h++)
            if (p->tie_of[g] >= 0 && p->tie_of[h] == p->tie_of[g] && a[h] != a[g])
                return 0;
        *bits += c->bits;
        *change += c->change;
    }
    return 1;
}

static int next_assign(int *a, int ng, int nc)
{
    int g = ng - 1;
    while (g >= 0 && ++a[g] == nc)
        a[g--] = 0;
    return g >= 0;
}

static void check_random(uint64_t seed, int n_inst)
{
    uint64_t s = seed;
    int feasible = 0, fronts = 0, budget_errors = 0;
    for (int t = 0; t < n_inst; t++) {
        struct inst in;
        random_inst(&s, &in);
        int ng = in.p.n_groups, nc = in.p.n_choices;

        /* the truth by enumeration in lexicographic order */
        int a[8] = { 0 };
        int any = 0;
        uint64_t lo = UINT64_MAX, hi = 0;
        do {
            uint64_t b;
            double ch;
            if (!eval_assign(&in, a, &b, &ch))
                continue;
            any = 1;
            lo = b < lo ? b : lo;
            hi = b > hi ? b : hi;
        } while (next_assign(a, ng, nc));
        uint64_t budget = any ? (uint64_t)rng_int(&s, (int)lo - 3 < 0 ? 0 : (int)lo - 3, (int)hi + 3)
                              : (uint64_t)rng_int(&s, 0, 1000);

        struct qsearch_front f;
        struct qsearch_point best;
        qerr e1 = { "" }, e2 = { "" };
        int r1 = qsearch_solve(&in.p, budget, 0, &f, &e1);
        int r2 = qsearch_brute_force(&in.p, budget, 1000000, &best, &e2);
        if (!any) {
            ck_assert_msg(r1 == -1 && r2 == -1, "instance %d: infeasible but solved", t);
            ck_assert_msg(strstr(e1.msg, "no valid choice") || strstr(e1.msg, "no choice valid"),
                          "instance %d: %s", t, e1.msg);
            ck_assert_str_eq(e1.msg, e2.msg);
            continue;
        }
        if (budget < lo) {
            char want[256];
            snprintf(want, sizeof want,
                     "search: budget of %llu bits is below the smallest possible size %llu bits "
                     "(every group at its smallest valid choice)",
                     (unsigned long long)budget, (unsigned long long)lo);
            ck_assert_int_eq(r1, -1);
            ck_assert_int_eq(r2, -1);
            ck_assert_str_eq(e1.msg, want);
            ck_assert_str_eq(e2.msg, want);
            budget_errors++;
            continue;
        }
        ck_assert_msg(r1 == 0, "instance %d: %s", t, e1.msg);
        ck_assert_msg(r2 == 0, "instance %d: %s", t, e2.msg);
        feasible++;
        fronts += f.n;

        /* the front: ordered, each point achievable as stated */
        ck_assert_int_ge(f.n, 1);
        for (int i = 0; i < f.n; i++) {
            const struct qsearch_point *q = &f.points[i];
            uint64_t b;
            double ch;
            REQUIRE(eval_assign(&in, q->choice, &b, &ch), "instance %d point %d: not a valid assignment",
                    t, i);
            REQUIRE(b == q->bits && ch == q->change,
                    "instance %d point %d: says %llu bits %g, its choices give %llu bits %g", t, i,
                    (unsigned long long)q->bits, q->change, (unsigned long long)b, ch);
            REQUIRE(i == 0 || (q->bits > q[-1].bits && q->change < q[-1].change),
                    "instance %d point %d: not after point %d on the front", t, i, i - 1);
        }
        /* against every assignment: none beats a front point, each is
         * matched or beaten by one, and a front point is the lexicographically
         * first assignment with its size and change */
        int *first_seen = calloc((size_t)f.n, sizeof *first_seen);
        int opt_found = 0;
        uint64_t ob = 0;
        double oc = 0.0;
        int oa[8] = { 0 };
        memset(a, 0, sizeof a);
        do {
            uint64_t b;
            double ch;
            if (!eval_assign(&in, a, &b, &ch))
                continue;
            int covered = 0;
            for (int i = 0; i < f.n; i++) {
                const struct qsearch_point *q = &f.points[i];
                REQUIRE(!(b <= q->bits && ch <= q->change && (b < q->bits || ch < q->change)),
                        "instance %d: an assignment beats front point %d", t, i);
                if (q->bits <= b && q->change <= ch)
                    covered = 1;
                if (q->bits == b && q->change == ch && !first_seen[i]) {
                    first_seen[i] = 1;
                    REQUIRE(memcmp(q->choice, a, (size_t)ng * sizeof *a) == 0,
                            "instance %d point %d: not the lexicographically first of its ties", t, i);
                }
            }
            REQUIRE(covered, "instance %d: an assignment is off the front and unbeaten", t);
            if (b <= budget && (!opt_found || ch < oc || (ch == oc && b < ob))) {
                opt_found = 1;
                ob = b;
                oc = ch;
                memcpy(oa, a, sizeof a);
            }
        } while (next_assign(a, ng, nc));
        free(first_seen);

        /* the optimum: the enumeration's, the brute force's and the front's
         * agree, choices included (sums in quarters are exact) */
        ck_assert(opt_found);
        ck_assert_int_ge(f.optimum, 0);
        const struct qsearch_point *o = &f.points[f.optimum];
        ck_assert_uint_eq(o->bits, ob);
        ck_assert(o->change == oc);
        ck_assert_uint_eq(best.bits, ob);
        ck_assert(best.change == oc);
        ck_assert_int_eq(memcmp(o->choice, oa, (size_t)ng * sizeof *oa), 0);
        ck_assert_int_eq(memcmp(best.choice, oa, (size_t)ng * sizeof *oa), 0);
        if (f.optimum + 1 < f.n)
            ck_assert_uint_gt(f.points[f.optimum + 1].bits, budget);
        free(best.choice);
        qsearch_front_free(&f);
    }
    /* the generator really reaches every branch */
    ck_assert_int_gt(feasible, n_inst / 3);
    ck_assert_int_gt(budget_errors, 0);
    ck_assert_int_gt(fronts, feasible);
}

START_TEST(random_vs_enumeration)
{
    static const uint64_t seeds[] = { 1, 42, 20240607 };
    check_random(seeds[_i], 400);
}
END_TEST

/* ---- Scale: sweep-sized problems ------------------------------------------- */

/* A sweep-like table: group g holds units_g x 32 x 4096 weights and
 * choice k stores them at bpw[k] bits each (choice 0 is float), so every
 * size is a multiple of 32 x 4096 bits. Changes grow as bits shrink, in
 * 1/1024 steps (exact sums), with noise that can make one negative. */
static struct qsearch_choice *sweep_table(uint64_t seed, int ng, int nc)
{
    static const int bpw[10] = { 32, 16, 8, 7, 6, 5, 4, 3, 2, 1 };
    struct qsearch_choice *c = calloc((size_t)ng * (size_t)nc, sizeof *c);
    uint64_t s = seed;
    for (int g = 0; g < ng; g++) {
        int units = rng_int(&s, 1, 8), sens = rng_int(&s, 1, 50);
        for (int k = 0; k < nc; k++) {
            struct qsearch_choice *x = &c[g * nc + k];
            x->bits = (uint64_t)units * 32u * 4096u * (uint64_t)bpw[k];
            int noise = rng_int(&s, -8, 8);
            x->change = k == 0 ? 0.0 : (double)(sens * k * k * units + noise) / 1024.0;
            x->valid = k == 0 || rng_int(&s, 0, 19) != 0;
        }
    }
    return c;
}

/* The best change for every size by a plain knapsack over sizes in units
 * of 32 x 4096 bits: best[u] = smallest change with at most u units. */
static double *knapsack(const struct qsearch_problem *p, int *n_units)
{
    const uint64_t unit = 32u * 4096u;
    int max_u = 0;
    for (int g = 0; g < p->n_groups; g++)
        max_u += (int)(p->c[g * p->n_choices].bits / unit); /* float is the largest */
    double *cur = malloc(((size_t)max_u + 1) * sizeof *cur), *nxt = malloc(((size_t)max_u + 1) * sizeof *nxt);
    for (int u = 0; u <= max_u; u++)
        cur[u] = u == 0 ? 0.0 : 1e300;
    for (int g = 0; g < p->n_groups; g++) {
        for (int u = 0; u <= max_u; u++)
            nxt[u] = 1e300;
        for (int k = 0; k < p->n_choices; k++) {
            const struct qsearch_choice *x = &p->c[g * p->n_choices + k];
            REQUIRE(x->bits % unit == 0, "group %d choice %d: %llu bits", g, k,
                    (unsigned long long)x->bits);
            if (!x->valid)
                continue;
            int w = (int)(x->bits / unit);
            for (int u = w; u <= max_u; u++)
                if (cur[u - w] + x->change < nxt[u])
                    nxt[u] = cur[u - w] + x->change;
        }
        double *t = cur;
        cur = nxt;
        nxt = t;
    }
    for (int u = 1; u <= max_u; u++) /* "at most u units" */
        if (cur[u - 1] < cur[u])
            cur[u] = cur[u - 1];
    free(nxt);
    *n_units = max_u + 1;
    return cur;
}

static void check_sweep(int ng, int nc, double max_seconds)
{
    struct qsearch_choice *c = sweep_table((uint64_t)ng * 1000 + (uint64_t)nc, ng, nc);
    struct qsearch_problem p = { .n_groups = ng, .n_choices = nc, .c = c, .fixed_bits = 4096 };
    uint64_t all_float = p.fixed_bits;
    for (int g = 0; g < ng; g++)
        all_float += c[g * nc].bits;
    struct qsearch_front f;
    qerr err = { "" };
    double t0 = seconds_now();
    ck_assert_msg(qsearch_solve(&p, all_float / 4, 0, &f, &err) == 0, "%s", err.msg);
    double dt = seconds_now() - t0;
    ck_assert_msg(dt < max_seconds, "%d groups x %d choices: %.3f s", ng, nc, dt);
    if (getenv("QLAB_SEARCH_VERBOSE"))
        fprintf(stderr, "search: %d groups x %d choices: front of %d points in %.3f s\n", ng, nc,
                f.n, dt);

    int n_units;
    double *best = knapsack(&p, &n_units);
    const uint64_t unit = 32u * 4096u;
    int prev_u = -1;
    for (int i = 0; i < f.n; i++) {
        const struct qsearch_point *q = &f.points[i];
        uint64_t b = p.fixed_bits;
        double ch = 0.0;
        for (int g = 0; g < ng; g++) {
            const struct qsearch_choice *x = &c[g * nc + q->choice[g]];
            REQUIRE(x->valid, "point %d: group %d has failed choice %d", i, g, q->choice[g]);
            b += x->bits;
            ch += x->change;
        }
        REQUIRE(b == q->bits && ch == q->change, "point %d: says %llu bits %g, its choices give %llu bits %g",
                i, (unsigned long long)q->bits, q->change, (unsigned long long)b, ch);
        /* the front point at u units is the knapsack's best for u units, and
         * nothing between it and the next point is better */
        int u = (int)((q->bits - p.fixed_bits) / unit);
        REQUIRE(best[u] == q->change, "point %d: change %g, the knapsack's best at %d units %g", i,
                q->change, u, best[u]);
        /* below the smallest size nothing fits; between points the previous one is best */
        double before = i == 0 ? 1e300 : q[-1].change;
        for (int v = prev_u + 1; v < u; v++)
            REQUIRE(best[v] == before, "%d units: knapsack %g, front %g", v, best[v], before);
        prev_u = u;
    }
    for (int v = prev_u + 1; v < n_units; v++)
        REQUIRE(best[v] == f.points[f.n - 1].change, "%d units: knapsack %g, front %g", v, best[v],
                f.points[f.n - 1].change);
    ck_assert_int_ge(f.optimum, 0);
    ck_assert_uint_le(f.points[f.optimum].bits, all_float / 4);
    ck_assert(best[(all_float / 4 - p.fixed_bits) / unit] == f.points[f.optimum].change);
    free(best);
    qsearch_front_free(&f);
    free(c);
}

START_TEST(sweep_36x8)
{
    check_sweep(36, 8, 1.0); /* stories260K per tensor */
}
END_TEST

START_TEST(sweep_200x10)
{
    check_sweep(200, 10, 60.0);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

int main(void)
{
    Suite *s = suite_create("search");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, hand_front_and_optimum);
    tcase_add_test(core, hand_ties);
    tcase_add_test(core, hand_negative_changes);
    tcase_add_test(core, no_groups);
    suite_add_tcase(s, core);

    TCase *budget = tcase_create("Budget");
    tcase_add_test(budget, budget_edges);
    tcase_add_test(budget, budget_float_not_largest);
    suite_add_tcase(s, budget);

    TCase *errors = tcase_create("Errors");
    tcase_add_test(errors, tie_infeasible);
    tcase_add_test(errors, group_without_choice);
    tcase_add_test(errors, bad_input);
    tcase_add_test(errors, bits_overflow);
    suite_add_tcase(s, errors);

    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, max_front_exceeded);
    tcase_add_test(limits, brute_force_limit);
    suite_add_tcase(s, limits);

    TCase *random = tcase_create("Random");
    tcase_add_loop_test(random, random_vs_enumeration, 0, 3);
    tcase_set_timeout(random, 300); /* enumeration is slow under ASan */
    suite_add_tcase(s, random);

    TCase *scale = tcase_create("Scale");
    tcase_add_test(scale, sweep_36x8);
    tcase_add_test(scale, sweep_200x10);
    tcase_set_timeout(scale, 300);
    suite_add_tcase(s, scale);
    return tu_run(s);
}
