/* metrics.h — classification metrics against labels and the float model, and weight error. */
#ifndef QLAB_METRICS_H
#define QLAB_METRICS_H

#include <stdint.h>

struct qclass_metrics {
    int64_t n;
    double top1;              /* % of samples whose argmax is the label */
    double top5;              /* % whose label is among the 5 largest (all if k < 5) */
    double cross_entropy;     /* mean -ln softmax[label], nats */
    int has_ref;              /* the next three need float reference logits */
    double top1_agreement;    /* % with the same argmax as the float model */
    double kld_mean;          /* mean KL(float || this) of the softmax outputs, nats */
    double kld_max;
};

/* logits, ref: [n, k]; ref may be NULL. */
void qmetrics_classify(const float *logits, const float *ref, const int32_t *labels,
                       int64_t n, int k, struct qclass_metrics *m);

struct qtensor_error {
    double mse;
    double sqnr_db;   /* 10 log10(sum ref^2 / sum err^2); +INFINITY when exact */
    double max_abs;
    double cosine;    /* 1 when both are zero */
};

void qtensor_error_compute(const float *ref, const float *q, int64_t n, struct qtensor_error *e);

#endif
