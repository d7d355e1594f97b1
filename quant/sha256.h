/* sha256.h — SHA-256 (FIPS 180-4) for content hashes of models, datasets and plugins. */
#ifndef QLAB_SHA256_H
#define QLAB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct sha256 {
    uint32_t h[8];
    uint64_t len;       /* bytes hashed so far */
    uint8_t buf[64];
    size_t used;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* 64 lowercase hex digits and a NUL. */
void sha256_hex(const uint8_t digest[32], char out[65]);
/* Hashes a whole file into s (streaming, any size). */
int sha256_update_file(struct sha256 *s, const char *path, qerr *err);
int sha256_file_hex(const char *path, char out[65], qerr *err);

#endif
