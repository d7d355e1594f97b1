/* lm_data.c — reads language-model evaluation data: text to tokenize, or token ids. */
#include "lm_data.h"

#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "safetensors.h"
#include "sha256.h"

#define MAX_DATA_BYTES ((size_t)1 << 31)

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

void qlm_data_free(struct qlm_data *d)
{
    if (!d)
        return;
    free(d->path);
    free(d->tokens);
    free(d);
}

static int from_safetensors(struct qlm_data *d, qerr *err)
{
    struct st_file *f;
    if (st_open(d->path, &f, err) < 0)
        return -1;
    struct qtensor *t = st_find(f, "tokens");
    if (!t && f->n_tensors == 1)
        t = &f->tensors[0];
    int rc = -1;
    if (!t)
        qerr_set(err, "%s: no 'tokens' tensor (and more than one tensor)", d->path);
    else if (t->ndim != 1 || (t->dtype != QDT_I32 && t->dtype != QDT_I64 && t->dtype != QDT_U8))
        qerr_set(err, "%s: tensor '%s' is not a 1-D integer tensor of token ids", d->path,
                 t->name);
    else if (!(d->tokens = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *d->tokens)))
        qerr_set(err, "%s: out of memory", d->path);
    else {
        d->n = t->numel;
        for (int64_t i = 0; i < t->numel; i++) {
            int64_t v;
            if (t->dtype == QDT_I64) {
                memcpy(&v, (const uint8_t *)t->data + 8 * i, 8);
            } else if (t->dtype == QDT_I32) {
                int32_t x;
                memcpy(&x, (const uint8_t *)t->data + 4 * i, 4);
                v = x;
            } else {
                v = ((const uint8_t *)t->data)[i];
            }
            if (v < 0 || v > INT32_MAX) {
                qerr_set(err, "%s: token id %lld at position %lld is not a valid id", d->path,
                         (long long)v, (long long)i);
                st_close(f);
                return -1;
            }
            d->tokens[i] = (int32_t)v;
        }
        rc = 0;
    }
    st_close(f);
    return rc;
}

static int from_raw_ids(struct qlm_data *d, const char *bytes, size_t len, qerr *err)
{
    if (len % 4)
        return qerr_set(err, "%s: %zu bytes is not a whole number of 32-bit token ids", d->path,
                        len);
    d->n = (int64_t)(len / 4);
    if (!(d->tokens = malloc((size_t)(d->n ? d->n : 1) * sizeof *d->tokens)))
        return qerr_set(err, "%s: out of memory", d->path);
    for (int64_t i = 0; i < d->n; i++) {
        uint32_t v;
        memcpy(&v, bytes + 4 * i, 4);
        if (v > INT32_MAX)
            return qerr_set(err, "%s: token id %u at position %lld is not a valid id", d->path,
                            v, (long long)i);
        d->tokens[i] = (int32_t)v;
    }
    return 0;
}

int qlm_data_open(const char *path, const struct qtokenizer *tok, const char *tok_note,
                  int vocab, struct qlm_data **out, qerr *err)
{
    *out = NULL;
    struct qlm_data *d = calloc(1, sizeof *d);
    char *bytes = NULL;
    size_t len = 0;
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return qerr_set(err, "%s: out of memory", path);
    }
    if (qfile_read_all(path, MAX_DATA_BYTES, &bytes, &len, err) < 0)
        goto fail;
    d->file_bytes = (int64_t)len;
    struct sha256 h;
    uint8_t digest[32];
    sha256_init(&h);
    sha256_update(&h, bytes, len);
    sha256_final(&h, digest);
    sha256_hex(digest, d->sha256);
    if (ends_with(path, ".safetensors")) {
        d->kind = "tokens";
        if (from_safetensors(d, err) < 0)
            goto fail;
    } else if (ends_with(path, ".i32") || ends_with(path, ".u32") || ends_with(path, ".ids")) {
        d->kind = "tokens";
        if (from_raw_ids(d, bytes, len, err) < 0)
            goto fail;
    } else {
        d->kind = "text";
        if (!tok) {
            qerr_set(err, "%s: %s%s; give token ids instead (a .safetensors, .i32 or .u32 "
                     "file)", path, tok_note ? "the model's tokenizer is not one qlab "
                     "implements: " : "this model carries no tokenizer",
                     tok_note ? tok_note : "");
            goto fail;
        }
        if (qtok_encode(tok, bytes, len, qtok_add_bos(tok), &d->tokens, &d->n, err) < 0) {
            qerr_prefix(err, "%s", path);
            goto fail;
        }
    }
    for (int64_t i = 0; i < d->n; i++)
        if (d->tokens[i] >= vocab) {
            qerr_set(err, "%s: token id %d at position %lld is outside the vocabulary (%d)",
                     path, d->tokens[i], (long long)i, vocab);
            goto fail;
        }
    free(bytes);
    *out = d;
    return 0;
fail:
    free(bytes);
    qlm_data_free(d);
    return -1;
}
