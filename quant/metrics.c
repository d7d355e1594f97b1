/* metrics.c — top-1/top-5, cross-entropy, agreement and KL divergence of logits; error of a tensor against its reference. */
#include "metrics.h"

#include <math.h>
#include <string.h>

/* ---- ranking -----------------------------------------------------------
 * One order for every rank question: larger value first, a NaN after every
 * number (a broken output never counts as a confident answer), and among
 * equal values the lower index first, as a stable descending sort would
 * leave them. So the argmax is the lowest index of the largest value, and
 * the label is in the top-t iff fewer than t entries come before it. */

/* Does entry (a, ia) come before entry (b, ib)? */
static int ranks_before(float a, int ia, float b, int ib)
{
    int na = isnan(a), nb = isnan(b);
    if (na || nb) {
        if (na && nb)
            return ia < ib;
        return nb;          /* a number comes before a NaN */
    }
    if (a != b)
        return a > b;
    return ia < ib;
}

static int argmax_row(const float *x, int k)
{
    int best = 0;
    for (int i = 1; i < k; i++)
        if (ranks_before(x[i], i, x[best], best))
            best = i;
    return best;
}

/* How many entries come before entry j (0 for the argmax). */
static int rank_of(const float *x, int k, int j)
{
    int r = 0;
    for (int i = 0; i < k; i++)
        if (i != j && ranks_before(x[i], i, x[j], j))
            r++;
    return r;
}

/* ---- log-softmax -------------------------------------------------------- */

/* ln sum_i exp(x_i), computed in double around the maximum so it neither
 * overflows nor loses the small terms. */
static double log_sum_exp(const float *x, int k)
{
    double mx = x[0];
    for (int i = 1; i < k; i++)
        if (x[i] > mx)
            mx = x[i];
    double s = 0.0;
    for (int i = 0; i < k; i++)
        s += exp((double)x[i] - mx);
    return mx + log(s);
}

/* KL(P_ref || P) in nats for one row: sum_i p_ref_i (ln p_ref_i - ln p_i).
 * A term with p_ref_i == 0 is 0 (the limit of p ln p), not 0 * -inf. */
static double kl_row(const float *ref, const float *x, int k)
{
    double lse_ref = log_sum_exp(ref, k), lse = log_sum_exp(x, k);
    double kl = 0.0;
    for (int i = 0; i < k; i++) {
        double lr = (double)ref[i] - lse_ref;
        double pr = exp(lr);
        if (pr == 0.0)
            continue;
        kl += pr * (lr - ((double)x[i] - lse));
    }
    /* KL >= 0; rounding can leave a tiny negative when P == P_ref. */
    return kl < 0.0 ? 0.0 : kl;
}

/* ---- classification ----------------------------------------------------- */

void qmetrics_classify(const float *logits, const float *ref, const int32_t *labels,
                       int64_t n, int k, struct qclass_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->n = n;
    m->has_ref = ref != NULL;
    if (n <= 0 || k <= 0)
        return;

    int64_t top1 = 0, top5 = 0, agree = 0;
    double ce = 0.0, kl_sum = 0.0, kl_max = 0.0;
    for (int64_t s = 0; s < n; s++) {
        const float *x = logits + s * (int64_t)k;
        int32_t y = labels[s];
        if (y >= 0 && y < k) {
            int r = rank_of(x, k, y);
            top1 += r == 0;
            top5 += r < 5;
            ce += log_sum_exp(x, k) - (double)x[y];
        } else {
            /* A label the model has no output for has probability 0. */
            ce = INFINITY;
        }
        if (ref) {
            const float *xr = ref + s * (int64_t)k;
            agree += argmax_row(x, k) == argmax_row(xr, k);
            double kl = kl_row(xr, x, k);
            kl_sum += kl;
            if (kl > kl_max || isnan(kl))
                kl_max = kl;
        }
    }
    double dn = (double)n;
    m->top1 = 100.0 * (double)top1 / dn;
    m->top5 = 100.0 * (double)top5 / dn;
    m->cross_entropy = ce / dn;
    if (ref) {
        m->top1_agreement = 100.0 * (double)agree / dn;
        m->kld_mean = kl_sum / dn;
        m->kld_max = kl_max;
    }
}

/* ---- tensor error ------------------------------------------------------- */

void qtensor_error_compute(const float *ref, const float *q, int64_t n, struct qtensor_error *e)
{
    double s_ref = 0.0, s_q = 0.0, s_err = 0.0, dot = 0.0, max_abs = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double r = ref[i], v = q[i], d = r - v;
        s_ref += r * r;
        s_q += v * v;
        s_err += d * d;
        dot += r * v;
        double a = fabs(d);
        if (a > max_abs || isnan(a))
            max_abs = a;
    }
    e->mse = n > 0 ? s_err / (double)n : 0.0;
    e->max_abs = max_abs;

    if (s_err == 0.0)
        e->sqnr_db = INFINITY;          /* exact (also when n == 0) */
    else if (s_ref == 0.0)
        e->sqnr_db = -INFINITY;         /* all noise, no signal */
    else
        e->sqnr_db = 10.0 * log10(s_ref / s_err);

    if (s_ref == 0.0 && s_q == 0.0) {
        e->cosine = 1.0;                /* two zero vectors point the same way */
    } else if (s_ref == 0.0 || s_q == 0.0) {
        e->cosine = 0.0;
    } else {
        double c = dot / (sqrt(s_ref) * sqrt(s_q));
        /* |cos| <= 1 exactly; rounding may step past it. */
        e->cosine = c > 1.0 ? 1.0 : c < -1.0 ? -1.0 : c;
    }
}
