/* model_open.c — opens a model of any format qlab reads, telling the format by content. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "llm_load.h"
#include "model.h"
#include "model_json.h"

enum format { F_UNKNOWN, F_NATIVE, F_GGUF, F_LLAMA2C, F_HF };

static int exists(const char *dir, const char *name)
{
    char *p = qpath_join(dir, name);
    int ok = p && access(p, F_OK) == 0;
    free(p);
    return ok;
}

/* Reads the first bytes of a file to tell its format. */
static enum format sniff_file(const char *path, qerr *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        qerr_set(err, "%s: %s", path, strerror(errno));
        return F_UNKNOWN;
    }
    unsigned char head[28] = {0};
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n < 0) {
        qerr_set(err, "%s: read error", path);
        return F_UNKNOWN;
    }
    if (n >= 4 && memcmp(head, "GGUF", 4) == 0)
        return F_GGUF;
    if (n >= 4 && memcmp(head, "24ka", 4) == 0) /* "ak42" as a little-endian int32 */
        return F_LLAMA2C;
    size_t i = 0;
    while (i < (size_t)n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' ||
                             head[i] == '\t'))
        i++;
    if (i < (size_t)n && head[i] == '{')
        return F_NATIVE;
    /* the legacy llama2.c header: seven small int32, dim first */
    if (n == (ssize_t)sizeof head) {
        int32_t h[7];
        memcpy(h, head, sizeof h);
        int plausible = h[0] > 0 && h[1] > 0 && h[2] > 0 && h[3] > 0 && h[4] > 0 &&
                        h[5] != 0 && h[6] > 0 && h[0] % h[3] == 0 && h[3] % h[4] == 0;
        if (plausible)
            return F_LLAMA2C;
    }
    qerr_set(err, "%s: not a model qlab reads (a model.json, GGUF, llama2.c checkpoint, or a "
             "folder with model.json or config.json)", path);
    return F_UNKNOWN;
}

int qmodel_open_ex(const char *path, const struct qmodel_open_opts *o, struct qmodel **out,
                   qerr *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return qerr_set(err, "%s: %s", path, strerror(errno));
    enum format f = F_UNKNOWN;
    if (S_ISDIR(st.st_mode)) {
        if (exists(path, "model.json"))
            f = F_NATIVE;
        else if (exists(path, "config.json"))
            f = F_HF;
        else
            return qerr_set(err, "%s: a folder with neither model.json (qlab) nor config.json "
                            "(Hugging Face)", path);
    } else if ((f = sniff_file(path, err)) == F_UNKNOWN) {
        return -1;
    }
    const char *tok = o ? o->tokenizer : NULL;
    if (tok && f != F_LLAMA2C)
        return qerr_set(err, "%s: --tokenizer is for llama2.c checkpoints; this model carries "
                        "its own", path);
    switch (f) {
    case F_NATIVE: return qmodel_json_load(path, out, err);
    case F_GGUF: return qllm_load_gguf(path, o ? o->host : NULL, out, err);
    case F_LLAMA2C: return qllm_load_llama2c(path, tok, out, err);
    case F_HF: return qllm_load_hf(path, out, err);
    default: return qerr_set(err, "%s: unknown model format", path);
    }
}

int qmodel_open(const char *path, struct qmodel **out, qerr *err)
{
    return qmodel_open_ex(path, NULL, out, err);
}
