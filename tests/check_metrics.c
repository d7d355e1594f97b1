/* check_metrics.c — classification metrics and tensor error against values worked out by hand. */
#include <check.h>
#include <math.h>

#include "quant/metrics.h"
#include "test_util.h"

#define TOL 1e-7

/* ---- Core: classification ----------------------------------------------- */

/* logits [2, 1, 0], label 0: softmax denominator e^2 + e + 1 = 11.10733793,
 * so CE = ln(11.10733793) - 2 = 0.40760596. With label 2 the same row
 * gives ln(11.10733793) - 0 = 2.40760596; the mean of both is 1.40760596. */
START_TEST(test_cross_entropy_by_hand)
{
    const float x[] = {2, 1, 0, 2, 1, 0};
    const int32_t y[] = {0, 2};
    struct qclass_metrics m;

    qmetrics_classify(x, NULL, y, 1, 3, &m);
    ck_assert_int_eq(m.n, 1);
    ck_assert_double_eq_tol(m.cross_entropy, 0.40760596, TOL);
    ck_assert_double_eq(m.top1, 100.0);
    ck_assert_double_eq(m.top5, 100.0);
    ck_assert_int_eq(m.has_ref, 0);

    qmetrics_classify(x, NULL, y, 2, 3, &m);
    ck_assert_double_eq_tol(m.cross_entropy, 1.40760596, TOL);
    ck_assert_double_eq(m.top1, 50.0);
    /* k = 3 < 5: every label is in the top 5. */
    ck_assert_double_eq(m.top5, 100.0);
}
END_TEST

/* CE must not overflow: logits [1000, 0], label 1 -> -ln softmax = 1000
 * (ln(1 + e^-1000) is 0 in double); label 0 -> 0. */
START_TEST(test_cross_entropy_stable)
{
    const float x[] = {1000, 0, 1000, 0};
    const int32_t y[] = {1, 0};
    struct qclass_metrics m;
    qmetrics_classify(x, NULL, y, 2, 2, &m);
    ck_assert(isfinite(m.cross_entropy));
    ck_assert_double_eq_tol(m.cross_entropy, 500.0, 1e-9);
}
END_TEST

/* k = 10, logits 9, 8, ..., 0: label 4 has 4 larger entries (in the top
 * 5), label 5 has 5 (out). */
START_TEST(test_top5_k10)
{
    float x[20];
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 10; i++)
            x[s * 10 + i] = (float)(9 - i);
    const int32_t y[] = {4, 5};
    struct qclass_metrics m;
    qmetrics_classify(x, NULL, y, 2, 10, &m);
    ck_assert_double_eq(m.top1, 0.0);
    ck_assert_double_eq(m.top5, 50.0);

    const int32_t y0[] = {0, 9};
    qmetrics_classify(x, NULL, y0, 2, 10, &m);
    ck_assert_double_eq(m.top1, 50.0);
    ck_assert_double_eq(m.top5, 50.0);
}
END_TEST

/* k = 3 (fewer classes than 5): even the worst label is in the top 5,
 * but top-1 still needs the argmax. */
START_TEST(test_top5_k3)
{
    const float x[] = {0, 5, 1};
    const int32_t y[] = {0};
    struct qclass_metrics m;
    qmetrics_classify(x, NULL, y, 1, 3, &m);
    ck_assert_double_eq(m.top1, 0.0);
    ck_assert_double_eq(m.top5, 100.0);
}
END_TEST

/* Ties go to the lower index, like a stable descending sort: with ten
 * equal logits the label ranks as its own index, so labels 0..4 are in
 * the top 5, 5..9 are not, and only label 0 is top-1. */
START_TEST(test_ties_lowest_index)
{
    float x[100];
    int32_t y[10];
    for (int s = 0; s < 10; s++) {
        y[s] = s;
        for (int i = 0; i < 10; i++)
            x[s * 10 + i] = 1.0f;
    }
    struct qclass_metrics m;
    qmetrics_classify(x, NULL, y, 10, 10, &m);
    ck_assert_double_eq(m.top1, 10.0);
    ck_assert_double_eq(m.top5, 50.0);
    /* uniform over 10 classes: CE = ln 10 */
    ck_assert_double_eq_tol(m.cross_entropy, 2.302585093, TOL);
}
END_TEST

/* KL(P_ref || P) with P_ref = softmax[0, 0] = (1/2, 1/2) and
 * P = softmax[1, 0] = (e/(e+1), 1/(e+1)):
 *   1/2 ln((1/2)(e+1)/e) + 1/2 ln((1/2)(e+1)) = ln(e+1) - 1/2 - ln 2
 *   = 1.31326169 - 0.5 - 0.69314718 = 0.12011451.
 * The other direction, KL(P || P_ref) = ln 2 - H(P) = 0.11094407, so a
 * swapped argument order fails. */
START_TEST(test_kld_two_classes)
{
    const float x[] = {1, 0, 0, 0};
    const float ref[] = {0, 0, 0, 0};
    const int32_t y[] = {0, 1};
    struct qclass_metrics m;

    qmetrics_classify(x, ref, y, 1, 2, &m);
    ck_assert_int_eq(m.has_ref, 1);
    ck_assert_double_eq_tol(m.kld_mean, 0.12011451, TOL);
    ck_assert_double_eq_tol(m.kld_max, 0.12011451, TOL);

    qmetrics_classify(ref, x, y, 1, 2, &m);
    ck_assert_double_eq_tol(m.kld_mean, 0.11094407, TOL);

    /* second row is identical to its reference: KL 0; mean halves, max stays */
    qmetrics_classify(x, ref, y, 2, 2, &m);
    ck_assert_double_eq_tol(m.kld_mean, 0.06005725, TOL);
    ck_assert_double_eq_tol(m.kld_max, 0.12011451, TOL);
}
END_TEST

/* Identical logits give KL exactly 0 (never a tiny negative) and 100 %
 * agreement. */
START_TEST(test_kld_identical)
{
    const float x[] = {0.1f, -3.7f, 2.2f, 0.3f, 1e-3f, 7.5f, -2.0f, 0.0f, 4.4f};
    const int32_t y[] = {2, 1, 0};
    struct qclass_metrics m;
    qmetrics_classify(x, x, y, 3, 3, &m);
    ck_assert(m.kld_mean >= 0.0 && m.kld_mean < 1e-15);
    ck_assert(m.kld_max >= 0.0 && m.kld_max < 1e-15);
    ck_assert_double_eq(m.top1_agreement, 100.0);
}
END_TEST

/* Agreement: argmaxes 0, 1, 2, 2 against reference argmaxes 0, 2, 2, 1 ->
 * 2 of 4 agree = 50 %. A tie in the reference goes to the lower index. */
START_TEST(test_agreement)
{
    const float x[] = {
        3, 1, 0,
        0, 3, 1,
        0, 1, 3,
        1, 0, 2,
    };
    const float ref[] = {
        5, 1, 0,
        0, 1, 2,
        0, 1, 1.5f,
        0, 4, 4,     /* tie between 1 and 2 -> argmax 1 */
    };
    const int32_t y[] = {0, 1, 2, 2};
    struct qclass_metrics m;
    qmetrics_classify(x, ref, y, 4, 3, &m);
    ck_assert_double_eq(m.top1_agreement, 50.0);
    ck_assert_double_eq(m.top1, 100.0);
}
END_TEST

/* ---- Limits: classification -------------------------------------------- */

START_TEST(test_classify_empty)
{
    struct qclass_metrics m;
    const float ref[1] = {0};
    qmetrics_classify(NULL, ref, NULL, 0, 10, &m);
    ck_assert_int_eq(m.n, 0);
    ck_assert_int_eq(m.has_ref, 1);
    ck_assert_double_eq(m.top1, 0.0);
    ck_assert_double_eq(m.top5, 0.0);
    ck_assert_double_eq(m.cross_entropy, 0.0);
    ck_assert_double_eq(m.top1_agreement, 0.0);
    ck_assert_double_eq(m.kld_mean, 0.0);
    ck_assert_double_eq(m.kld_max, 0.0);
}
END_TEST

/* A reference probability of exactly 0 contributes 0, not 0 * inf = NaN:
 * ref = [0, -1000] (exp(-1000) is 0 in double), logits = [0, -inf]. */
START_TEST(test_kld_zero_probability)
{
    const float x[] = {0, -INFINITY};
    const float ref[] = {0, -1000};
    const int32_t y[] = {0};
    struct qclass_metrics m;
    qmetrics_classify(x, ref, y, 1, 2, &m);
    ck_assert(!isnan(m.kld_mean));
    ck_assert_double_eq_tol(m.kld_mean, 0.0, 1e-12);
    ck_assert_double_eq_tol(m.cross_entropy, 0.0, 1e-12);
}
END_TEST

/* A NaN logit never wins: [NaN, 1, 0] has argmax 1, and a label whose
 * logit is NaN is not in the top 5 when 5 numbers exist. */
START_TEST(test_nan_logits)
{
    const float x[] = {NAN, 1, 0, 0, 0, 0};
    const int32_t y0[] = {0};
    const int32_t y1[] = {1};
    struct qclass_metrics m;
    qmetrics_classify(x, NULL, y0, 1, 6, &m);
    ck_assert_double_eq(m.top1, 0.0);
    ck_assert_double_eq(m.top5, 0.0);
    qmetrics_classify(x, NULL, y1, 1, 6, &m);
    ck_assert_double_eq(m.top1, 100.0);
}
END_TEST

/* A label outside 0..k-1 is a miss and has probability 0: CE = +inf. */
START_TEST(test_label_out_of_range)
{
    const float x[] = {2, 1, 0, 2, 1, 0};
    const int32_t y[] = {0, 7};
    struct qclass_metrics m;
    qmetrics_classify(x, NULL, y, 2, 3, &m);
    ck_assert_double_eq(m.top1, 50.0);
    ck_assert_double_eq(m.top5, 50.0);
    ck_assert(isinf(m.cross_entropy) && m.cross_entropy > 0);
}
END_TEST

/* ---- Core: tensor error ------------------------------------------------- */

/* ref [1, 2, 3, 4], q [1, 2, 2, 5]: err [0, 0, 1, -1], sum err^2 = 2,
 * mse = 0.5, sum ref^2 = 30, SQNR = 10 log10(15) = 11.76091259 dB,
 * max |err| = 1, dot = 31, |q|^2 = 34, cos = 31 / sqrt(1020) = 0.97064765. */
START_TEST(test_error_by_hand)
{
    const float ref[] = {1, 2, 3, 4};
    const float q[] = {1, 2, 2, 5};
    struct qtensor_error e;
    qtensor_error_compute(ref, q, 4, &e);
    ck_assert_double_eq_tol(e.mse, 0.5, 1e-15);
    ck_assert_double_eq_tol(e.sqnr_db, 11.76091259, TOL);
    ck_assert_double_eq(e.max_abs, 1.0);
    ck_assert_double_eq_tol(e.cosine, 0.97064765, TOL);
}
END_TEST

START_TEST(test_error_exact_copy)
{
    const float ref[] = {0.5f, -1.25f, 3e-20f, 1e30f};
    struct qtensor_error e;
    qtensor_error_compute(ref, ref, 4, &e);
    ck_assert_double_eq(e.mse, 0.0);
    ck_assert(isinf(e.sqnr_db) && e.sqnr_db > 0);
    ck_assert_double_eq(e.max_abs, 0.0);
    ck_assert_double_eq(e.cosine, 1.0);
}
END_TEST

/* q = -ref: err = 2 ref, SQNR = 10 log10(1/4) = -6.02059991 dB, cos = -1;
 * q = 0: err = ref, SQNR = 0 dB, cos = 0. */
START_TEST(test_error_negated_and_zero_q)
{
    const float ref[] = {1, -2, 3};
    const float neg[] = {-1, 2, -3};
    const float zero[] = {0, 0, 0};
    struct qtensor_error e;
    qtensor_error_compute(ref, neg, 3, &e);
    ck_assert_double_eq_tol(e.sqnr_db, -6.02059991, TOL);
    ck_assert_double_eq_tol(e.cosine, -1.0, 1e-15);
    ck_assert_double_eq(e.max_abs, 6.0);
    ck_assert_double_eq_tol(e.mse, 56.0 / 3.0, 1e-12);

    qtensor_error_compute(ref, zero, 3, &e);
    ck_assert_double_eq_tol(e.sqnr_db, 0.0, 1e-12);
    ck_assert_double_eq(e.cosine, 0.0);
}
END_TEST

/* ---- Limits: tensor error ----------------------------------------------- */

START_TEST(test_error_zeros)
{
    const float zero[] = {0, 0, 0, 0};
    const float q[] = {0, 0.5f, 0, 0};
    struct qtensor_error e;

    qtensor_error_compute(zero, zero, 4, &e);
    ck_assert_double_eq(e.mse, 0.0);
    ck_assert(isinf(e.sqnr_db) && e.sqnr_db > 0);
    ck_assert_double_eq(e.cosine, 1.0);

    /* no signal but some noise */
    qtensor_error_compute(zero, q, 4, &e);
    ck_assert(isinf(e.sqnr_db) && e.sqnr_db < 0);
    ck_assert_double_eq(e.cosine, 0.0);
    ck_assert_double_eq(e.max_abs, 0.5);
    ck_assert_double_eq(e.mse, 0.0625);
}
END_TEST

START_TEST(test_error_empty)
{
    struct qtensor_error e;
    qtensor_error_compute(NULL, NULL, 0, &e);
    ck_assert_double_eq(e.mse, 0.0);
    ck_assert(isinf(e.sqnr_db) && e.sqnr_db > 0);
    ck_assert_double_eq(e.max_abs, 0.0);
    ck_assert_double_eq(e.cosine, 1.0);
}
END_TEST

/* Squares of large floats overflow float but not double: ref 1e30 vs
 * q 2e30 gives a finite SQNR of 0 dB and cos 1 (clamped, never > 1). */
START_TEST(test_error_large_values)
{
    const float ref[] = {1e30f, 1e30f};
    const float q[] = {2e30f, 2e30f};
    struct qtensor_error e;
    qtensor_error_compute(ref, q, 2, &e);
    ck_assert(isfinite(e.mse));
    ck_assert_double_eq_tol(e.sqnr_db, 0.0, 1e-9);
    ck_assert(e.cosine <= 1.0);
    ck_assert_double_eq_tol(e.cosine, 1.0, 1e-15);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");

    TCase *core = tcase_create("Core");
    tcase_add_test(core, test_cross_entropy_by_hand);
    tcase_add_test(core, test_cross_entropy_stable);
    tcase_add_test(core, test_top5_k10);
    tcase_add_test(core, test_top5_k3);
    tcase_add_test(core, test_ties_lowest_index);
    tcase_add_test(core, test_kld_two_classes);
    tcase_add_test(core, test_kld_identical);
    tcase_add_test(core, test_agreement);
    tcase_add_test(core, test_error_by_hand);
    tcase_add_test(core, test_error_exact_copy);
    tcase_add_test(core, test_error_negated_and_zero_q);
    suite_add_tcase(s, core);

    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, test_classify_empty);
    tcase_add_test(limits, test_kld_zero_probability);
    tcase_add_test(limits, test_nan_logits);
    tcase_add_test(limits, test_label_out_of_range);
    tcase_add_test(limits, test_error_zeros);
    tcase_add_test(limits, test_error_empty);
    tcase_add_test(limits, test_error_large_values);
    suite_add_tcase(s, limits);

    return s;
}

int main(void)
{
    return tu_run(metrics_suite());
}
