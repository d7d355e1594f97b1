/* cli_quant.c — `qlab quant`: one tensor of a safetensors file through a scheme, outside any model. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "json_out.h"
#include "tensor_quant.h"

static const char help[] =
    "usage: qlab quant FILE.safetensors --tensor NAME --scheme 'SCHEME[:k=v,...]'\n"
    "                  -o OUT.safetensors [--json]\n"
    "\n"
    "Quantizes one tensor (rows = output channels) and writes OUT with\n"
    "NAME.deq (float32, the dequantized values, same shape) and, where the\n"
    "scheme packs, NAME.q (uint8 [rows, bytes per row], one row of blocks per\n"
    "row), plus the scheme, its parameters and the exact bits in the\n"
    "metadata. SCHEME may be a pruning pipeline: 'prune:pattern=2:4+int:bits=4'.\n";

int cli_quant(struct cli *c)
{
    const char *file = NULL, *tensor = NULL, *scheme = NULL, *out = NULL, *v;
    if (c->help) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < c->argc; i++) {
        int r;
        if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--tensor", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            tensor = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--scheme", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            scheme = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "-o", &v)) != 0 ||
                   (r = cli_opt_value(c, c->argc, c->argv, &i, "--output", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            out = v;
        } else if (c->argv[i][0] == '-' && c->argv[i][1])
            return cli_usage_error(c, "unknown option %s (see qlab quant --help)", c->argv[i]);
        else if (!file)
            file = c->argv[i];
        else
            return cli_usage_error(c, "one FILE only ('%s' is extra)", c->argv[i]);
    }
    if (!file || !tensor || !scheme || !out)
        return cli_usage_error(c, "needs FILE, --tensor NAME, --scheme SCHEME and -o OUT "
                               "(see qlab quant --help)");
    struct wb *w;
    if (cli_open(c, 1, &w) < 0)
        return EXIT_RUNTIME;
    struct tq_result r;
    qerr err;
    int rc = EXIT_OK;
    if (tq_quantize_file(w, file, tensor, scheme, out, &r, &err) < 0) {
        rc = cli_runtime_error(&err);
    } else if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", file);
        cJSON_AddStringToObject(o, "tensor", tensor);
        cJSON_AddStringToObject(o, "output", out);
        cJSON_AddStringToObject(o, "scheme", r.scheme);
        cJSON *p = cJSON_Parse(r.params_json);
        cJSON_AddItemToObject(o, "params", p ? p : cJSON_CreateObject());
        cJSON_AddNumberToObject(o, "rows", (double)r.rows);
        cJSON_AddNumberToObject(o, "cols", (double)r.cols);
        cJSON_AddNumberToObject(o, "bits", (double)r.bits);
        cJSON_AddNumberToObject(o, "bits_per_weight", r.bits_per_weight);
        cJSON_AddNumberToObject(o, "packed_bytes", (double)r.packed_bytes);
        if (r.has_gguf_type)
            cJSON_AddNumberToObject(o, "gguf_type", r.gguf_type);
        cJSON_AddNumberToObject(o, "mse", r.e.mse);
        cJSON_AddItemToObject(o, "sqnr_db", json_number_or_null(r.e.sqnr_db));
        cJSON_AddNumberToObject(o, "max_abs_error", r.e.max_abs);
        cJSON_AddNumberToObject(o, "cosine", r.e.cosine);
        cli_print_json(o);
    } else {
        printf("%s: %s [%lld x %lld] with %s\n", file, tensor, (long long)r.rows,
               (long long)r.cols, r.scheme);
        printf("  %.4f bits/weight (%llu bits), MSE %.3e, SQNR %.2f dB, max |error| %.3g, "
               "cosine %.6f\n",
               r.bits_per_weight, (unsigned long long)r.bits, r.e.mse, r.e.sqnr_db, r.e.max_abs,
               r.e.cosine);
        printf("  wrote %s: %s.deq%s", out, tensor, r.packed_bytes ? "" : "\n");
        if (r.packed_bytes)
            printf(" and %s.q (%lld bytes%s)\n", tensor, (long long)r.packed_bytes,
                   r.has_gguf_type ? ", GGUF block layout" : "");
    }
    wb_close(w);
    return rc;
}
