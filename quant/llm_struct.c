/* llm_struct.c — lifecycle of the language-model description attached to a qmodel. */
#include <stdlib.h>

#include "llm.h"
#include "tokenizer.h"

struct qllm *qllm_new(int n_layers)
{
    if (n_layers < 0)
        return NULL;
    struct qllm *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->layers = calloc((size_t)(n_layers ? n_layers : 1), sizeof *l->layers);
    if (!l->layers) {
        free(l);
        return NULL;
    }
    l->c.n_layers = n_layers;
    l->token_embd = l->output_norm = l->output = -1;
    for (int i = 0; i < n_layers; i++)
        l->layers[i] = (struct qllm_layer){-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    return l;
}

void qllm_free(struct qllm *l)
{
    if (!l)
        return;
    qtok_free(l->tok);
    free(l->tok_note);
    free(l->layers);
    free(l);
}
