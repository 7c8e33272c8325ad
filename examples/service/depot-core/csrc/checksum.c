/* FNV-1a over a buffer: the C part of depot-core, compiled by its build script for the target. */
#include <stddef.h>
#include <stdint.h>

uint32_t depot_checksum(const unsigned char *data, size_t len) {
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        hash ^= data[i];
        hash *= 16777619u;
    }
    return hash;
}
