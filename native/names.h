/* names.h: an index of names (map names, grants) for O(1) lookups.
 *
 * The names live in the caller's array of records that begin with
 * `uint8_t *name; uint32_t len;` (wm_named, wm_grant); the index holds
 * positions into that array in an open-addressing table of at most half
 * load, hashed with the broker's seed (a guest cannot pick names that
 * collide on purpose).  Names are only ever added, never removed, as in
 * the arrays it indexes.
 */
#ifndef WM_NAMES_H
#define WM_NAMES_H

#include <stddef.h>
#include <stdint.h>

typedef struct wm_name_ref {
    uint8_t *name;
    uint32_t len;
} wm_name_ref;

typedef struct wm_name_index {
    uint32_t *slots; /* position + 1; 0 = empty */
    uint32_t mask;   /* table size - 1 */
    uint32_t count;
} wm_name_index;

/* The position of `name` in `array` (records of `stride` bytes), or -1. */
int64_t wm_names_find(const wm_name_index *ix, const void *array, size_t stride,
                      const uint8_t *name, uint32_t len, uint64_t seed);
/* Index the record at `pos` (its name absent so far); -1 when out of memory. */
int wm_names_add(wm_name_index *ix, const void *array, size_t stride, uint32_t pos,
                 uint64_t seed);
void wm_names_free(wm_name_index *ix);

#endif
