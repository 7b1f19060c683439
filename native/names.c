/* names.c: the name index (see names.h). */
#include "names.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

static const wm_name_ref *at(const void *array, size_t stride, uint32_t pos)
{
    return (const wm_name_ref *)((const uint8_t *)array + (size_t)pos * stride);
}

int64_t wm_names_find(const wm_name_index *ix, const void *array, size_t stride,
                      const uint8_t *name, uint32_t len, uint64_t seed)
{
    if (!ix->count)
        return -1;
    for (uint32_t i = (uint32_t)wm_hash(name, len, seed) & ix->mask;; i = (i + 1) & ix->mask) {
        uint32_t slot = ix->slots[i];
        if (!slot)
            return -1;
        const wm_name_ref *r = at(array, stride, slot - 1);
        if (r->len == len && memcmp(r->name, name, len) == 0)
            return slot - 1;
    }
}

static void place(uint32_t *slots, uint32_t mask, uint64_t hash, uint32_t pos)
{
    uint32_t i = (uint32_t)hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = pos + 1;
}

int wm_names_add(wm_name_index *ix, const void *array, size_t stride, uint32_t pos,
                 uint64_t seed)
{
    uint32_t size = ix->slots ? ix->mask + 1 : 0;
    if ((uint64_t)(ix->count + 1) * 2 > size) { /* keep the load at most half */
        uint32_t grown = size ? size * 2 : 16;
        if (grown <= size)
            return -1;
        uint32_t *slots = calloc(grown, sizeof *slots);
        if (!slots)
            return -1;
        for (uint32_t i = 0; i < size; i++) {
            if (ix->slots[i]) {
                const wm_name_ref *r = at(array, stride, ix->slots[i] - 1);
                place(slots, grown - 1, wm_hash(r->name, r->len, seed), ix->slots[i] - 1);
            }
        }
        free(ix->slots);
        ix->slots = slots;
        ix->mask = grown - 1;
    }
    const wm_name_ref *r = at(array, stride, pos);
    place(ix->slots, ix->mask, wm_hash(r->name, r->len, seed), pos);
    ix->count++;
    return 0;
}

void wm_names_free(wm_name_index *ix)
{
    free(ix->slots);
    memset(ix, 0, sizeof *ix);
}
