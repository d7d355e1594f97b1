/* paths.h — where qlab finds its database, plugins and sample models. */
#ifndef QLAB_PATHS_H
#define QLAB_PATHS_H

#include <stddef.h>

/* Folder of the running executable (from /proc/self/exe); "" if unknown. */
const char *qlab_exe_dir(void);
/* $XDG_DATA_HOME/qlab/qlab.db, else $HOME/.local/share/qlab/qlab.db. */
int qlab_default_db(char *buf, size_t size);
/* $XDG_CACHE_HOME/qlab, else $HOME/.cache/qlab (not created). */
int qlab_cache_dir(char *buf, size_t size);
/* Plugin folders in search order, beyond --plugin: each entry of
 * $QLAB_PLUGIN_PATH (colon-separated), the build folder (next to the
 * executable: plugins/) and the installed folder (../lib/qlab/plugins).
 * Returns the count; entries point into static storage. */
int qlab_plugin_dirs(const char *dirs[], int max);
/* The bundled sample models folder (build tree or installed), or NULL. */
const char *qlab_sample_models_dir(void);

#endif
