/* cli_generate.c — `qlab generate`: greedy text from the float and the quantized model, side by side. */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "cli.h"

static const char help[] =
    "usage: qlab generate MODEL [--prompt TEXT] [-n N] [--quant RECIPE]\n"
    "                     [--tokenizer FILE] [--json]\n"
    "\n"
    "Greedy (temperature 0) generation of up to N tokens (default 256) after\n"
    "the prompt (default empty), with the float model and with the recipe's\n"
    "quantized weights, so you can read what a quantization does to the text.\n"
    "Stops at BOS or EOS, as llama2.c's run does.\n";

int cli_generate(struct cli *c)
{
    const char *model = NULL, *prompt = "", *quant = "", *tokenizer = NULL, *v;
    long long n = 256;
    if (c->help) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < c->argc; i++) {
        int r;
        if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--prompt", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            prompt = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "-n", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "-n", v, &n) < 0)
                return EXIT_USAGE;
            if (n > 65536)
                return cli_usage_error(c, "-n is at most 65536");
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--quant", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            quant = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--tokenizer", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            tokenizer = v;
        } else if (c->argv[i][0] == '-' && c->argv[i][1])
            return cli_usage_error(c, "unknown option %s (see qlab generate --help)",
                                   c->argv[i]);
        else if (!model)
            model = c->argv[i];
        else
            return cli_usage_error(c, "one MODEL only ('%s' is extra)", c->argv[i]);
    }
    if (!model)
        return cli_usage_error(c, "which model? (qlab generate MODEL --prompt TEXT)");
    struct wb *w;
    if (cli_open(c, 1, &w) < 0)
        return EXIT_RUNTIME;
    qerr err;
    struct wb_generation g = {0};
    int rc = EXIT_OK;
    if (wb_load_model_ex(w, model, tokenizer, &err) < 0) {
        rc = cli_runtime_error(&err);
    } else if (wb_set_recipe(w, quant, &err) < 0) {
        fprintf(stderr, "qlab generate: --quant: %s\n", err.msg);
        rc = EXIT_USAGE;
    } else if (wb_generate(w, prompt, (int)n, NULL, &g, &err) != 0) {
        rc = cli_runtime_error(&err);
    } else if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "prompt", prompt);
        cJSON_AddStringToObject(o, "recipe", wb_recipe_text(w));
        cJSON_AddStringToObject(o, "float", g.float_text);
        cJSON_AddStringToObject(o, "quantized", g.quant_text);
        cJSON_AddNumberToObject(o, "float_tokens", g.n_float);
        cJSON_AddNumberToObject(o, "quantized_tokens", g.n_quant);
        cJSON_AddNumberToObject(o, "same_prefix_tokens", g.same_prefix);
        cJSON_AddNumberToObject(o, "float_tokens_per_second", g.float_tps);
        cJSON_AddNumberToObject(o, "quantized_tokens_per_second", g.quant_tps);
        cli_print_json(o);
    } else {
        printf("== float (%d tokens)\n%s\n\n== %s (%d tokens, the first %d the same)\n%s\n",
               g.n_float, g.float_text, *wb_recipe_text(w) ? wb_recipe_text(w) : "float",
               g.n_quant, g.same_prefix, g.quant_text);
    }
    wb_generation_clear(&g);
    wb_close(w);
    return rc;
}
