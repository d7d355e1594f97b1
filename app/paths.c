/* paths.c — where qlab finds its database, plugins and sample models. */
#include "paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *qlab_exe_dir(void)
{
    static char dir[PATH_MAX];
    if (dir[0])
        return dir;
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) {
        dir[0] = 0;
        return dir;
    }
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    return dir;
}

int qlab_default_db(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, size, "%s/qlab/qlab.db", xdg);
    else if (home && *home)
        n = snprintf(buf, size, "%s/.local/share/qlab/qlab.db", home);
    else
        return -1;
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int qlab_cache_dir(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, size, "%s/qlab", xdg);
    else if (home && *home)
        n = snprintf(buf, size, "%s/.cache/qlab", home);
    else
        return -1;
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Resolves "..", so paths shown to the user are plain. */
static void canonicalize(char *path, size_t size)
{
    char *real = realpath(path, NULL);
    if (real && strlen(real) < size)
        memcpy(path, real, strlen(real) + 1);
    free(real);
}

int qlab_plugin_dirs(const char *dirs[], int max)
{
    static char env_copy[4096], build[PATH_MAX + 16], installed[PATH_MAX + 32];
    int n = 0;
    const char *env = getenv("QLAB_PLUGIN_PATH");
    if (env && *env) {
        snprintf(env_copy, sizeof env_copy, "%s", env);
        for (char *save = NULL, *tok = strtok_r(env_copy, ":", &save); tok && n < max;
             tok = strtok_r(NULL, ":", &save))
            dirs[n++] = tok;
    }
    const char *exe = qlab_exe_dir();
    if (*exe) {
        snprintf(build, sizeof build, "%s/plugins", exe);
        snprintf(installed, sizeof installed, "%s/../lib/qlab/plugins", exe);
        canonicalize(installed, sizeof installed);
        if (n < max && is_dir(build))
            dirs[n++] = build;
        if (n < max && is_dir(installed))
            dirs[n++] = installed;
    }
    return n;
}

const char *qlab_sample_models_dir(void)
{
    static char dir[PATH_MAX + 32];
    const char *exe = qlab_exe_dir();
    if (!*exe)
        return NULL;
    const char *cands[] = {"%s/../sample-models", "%s/../share/qlab/sample-models"};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        snprintf(dir, sizeof dir, cands[i], exe);
        if (is_dir(dir)) {
            char *real = realpath(dir, NULL);
            if (real) {
                snprintf(dir, sizeof dir, "%s", real);
                free(real);
            }
            return dir;
        }
    }
    return NULL;
}
