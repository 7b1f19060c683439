/* table.h: one in-memory map's hash table, bytes keys -> bytes or map-reference values.
 *
 * A compact hash table in the style of CPython's dict: entries live in an
 * array in insertion order, and an open-addressing index of entry numbers
 * finds them.  Insertion order gives `keys` its cursor: each entry carries a
 * sequence number that only grows, the array stays sorted by it (compaction
 * keeps the order), so a cursor "next seq to list" survives any insert,
 * delete or resize, and a key present for the whole listing appears once.
 * Not thread-safe: the broker lock covers every call.
 */
#ifndef WM_TABLE_H
#define WM_TABLE_H

#include <stdint.h>
#include <string.h>

enum { WM_VAL_NONE = 0, WM_VAL_BYTES = 1, WM_VAL_MAP = 2 };

typedef struct wm_entry {
    uint64_t seq;     /* insertion order; kept when the entry is deleted */
    uint64_t version; /* broker-wide write counter at the last write */
    uint64_t hash;
    uint8_t *data;    /* key bytes, then the value bytes (kind BYTES) */
    uint32_t key_len;
    uint32_t val_len;
    uint32_t child;   /* map slot of the referenced map (kind MAP) */
    uint16_t account; /* module charged for this entry's bytes */
    uint8_t kind;     /* WM_VAL_*; NONE marks a deleted entry */
} wm_entry;

typedef struct wm_map {
    wm_entry *entries;
    int32_t *index; /* entry number, or WM_SLOT_EMPTY / WM_SLOT_DELETED */
    uint32_t used;  /* entries[0, used) are in use or deleted */
    uint32_t cap;
    uint32_t mask;  /* index size - 1 (a power of two, at least 2 * cap) */
    uint32_t live;
    uint64_t next_seq;
} wm_map;

#define WM_SLOT_EMPTY (-1)
#define WM_SLOT_DELETED (-2)

void wm_map_init(wm_map *m);
/* Frees the tables and every entry's data (not the map struct). */
void wm_map_free(wm_map *m);

/* The entry under `key` (its hash given), or NULL.  Inline: every key
 * operation probes once. */
static inline wm_entry *wm_map_find(const wm_map *m, const uint8_t *key, uint32_t key_len,
                                    uint64_t hash)
{
    if (m->live == 0)
        return NULL;
    for (uint32_t i = (uint32_t)hash & m->mask;; i = (i + 1) & m->mask) {
        int32_t slot = m->index[i];
        if (slot == WM_SLOT_EMPTY)
            return NULL;
        if (slot == WM_SLOT_DELETED)
            continue;
        wm_entry *e = &m->entries[slot];
        if (e->hash == hash && e->key_len == key_len && memcmp(e->data, key, key_len) == 0)
            return e;
    }
}

/* wm_map_reserve when the room is not there yet (table.c). */
int wm_map_grow(wm_map *m, uint32_t extra);
/* Make room for `extra` inserts without moving entries; -1 when out of
 * memory.  Entry pointers taken before a reserve are invalid after it. */
static inline int wm_map_reserve(wm_map *m, uint32_t extra)
{
    if (m->used + (uint64_t)extra <= m->cap)
        return 0;
    return wm_map_grow(m, extra);
}
/* Append an entry (key absent, room reserved); takes ownership of data. */
wm_entry *wm_map_insert(wm_map *m, uint64_t hash, uint8_t *data, uint32_t key_len);
/* Give back memory after deletes: a map under half full is rebuilt smaller
 * (an empty one frees its tables).  Entry pointers are invalid after it. */
void wm_map_trim(wm_map *m);
/* Delete an entry; frees its data.  The caller releases a map reference. */
void wm_map_remove(wm_map *m, wm_entry *e);
/* Index of the first entry (live or not) whose seq >= cursor. */
uint32_t wm_map_seek(const wm_map *m, uint64_t cursor);

#endif
