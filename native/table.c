/* table.c: the in-memory map's hash table (see table.h for the design). */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#define WM_MAP_MIN_CAP 2u /* a small map stays small: most maps hold a few entries */
#define WM_MAP_MAX_CAP (1u << 30)

void wm_map_init(wm_map *m)
{
    memset(m, 0, sizeof *m);
    m->next_seq = 1;
}

void wm_map_free(wm_map *m)
{
    for (uint32_t i = 0; i < m->used; i++)
        free(m->entries[i].data);
    free(m->entries);
    free(m->index);
    wm_map_init(m);
}

static void place(int32_t *index, uint32_t mask, uint64_t hash, int32_t slot)
{
    uint32_t i = (uint32_t)hash & mask;
    while (index[i] >= 0)
        i = (i + 1) & mask;
    index[i] = slot;
}

/* Rebuild into `cap` entries: live entries keep their order (and so the
 * cursor order); deleted ones are dropped.  The index is the power of two
 * at least twice `cap`, so it is never more than half full. */
static int rebuild(wm_map *m, uint32_t cap)
{
    uint32_t index_size = 4;
    while (index_size < cap * 2)
        index_size *= 2;
    wm_entry *entries = malloc((size_t)cap * sizeof *entries);
    int32_t *index = malloc((size_t)index_size * sizeof *index);
    if (!entries || !index) {
        free(entries);
        free(index);
        return -1;
    }
    memset(index, 0xff, (size_t)index_size * sizeof *index); /* all EMPTY */
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->used; i++) {
        if (m->entries[i].kind == WM_VAL_NONE)
            continue;
        entries[n] = m->entries[i];
        place(index, index_size - 1, entries[n].hash, (int32_t)n);
        n++;
    }
    free(m->entries);
    free(m->index);
    m->entries = entries;
    m->index = index;
    m->used = n;
    m->cap = cap;
    m->mask = index_size - 1;
    return 0;
}

int wm_map_grow(wm_map *m, uint32_t extra)
{
    uint64_t need = (uint64_t)m->live + extra;
    if (need > WM_MAP_MAX_CAP)
        return -1;
    /* Room for half as many again as are needed: at least need/2 inserts
     * before the next rebuild (amortised O(1)), and never more than 1.5
     * entries of memory per live one right after it (the `bytes` quota
     * charges for that, docs/abi.md).  Deleted entries are compacted away. */
    uint64_t cap = need + need / 2;
    if (cap < WM_MAP_MIN_CAP)
        cap = WM_MAP_MIN_CAP;
    if (cap > WM_MAP_MAX_CAP)
        cap = WM_MAP_MAX_CAP;
    return rebuild(m, (uint32_t)cap);
}

void wm_map_trim(wm_map *m)
{
    if (m->live == 0 && m->cap) { /* every entry deleted (their data is freed) */
        free(m->entries);
        free(m->index);
        uint64_t next_seq = m->next_seq; /* a listing's cursor stays valid */
        wm_map_init(m);
        m->next_seq = next_seq;
        return;
    }
    /* Under half full: rebuild with room for half as many again, as a grow
     * does (each rebuild follows at least live/3 deletes: amortised O(1)).
     * Out of memory, the bigger table stays. */
    if ((uint64_t)m->live * 2 < m->cap && m->cap > WM_MAP_MIN_CAP) {
        uint32_t cap = m->live + m->live / 2;
        rebuild(m, cap < WM_MAP_MIN_CAP ? WM_MAP_MIN_CAP : cap);
    }
}

wm_entry *wm_map_insert(wm_map *m, uint64_t hash, uint8_t *data, uint32_t key_len)
{
    int32_t slot = (int32_t)m->used++;
    wm_entry *e = &m->entries[slot];
    memset(e, 0, sizeof *e);
    e->seq = m->next_seq++;
    e->hash = hash;
    e->data = data;
    e->key_len = key_len;
    place(m->index, m->mask, hash, slot);
    m->live++;
    return e;
}

void wm_map_remove(wm_map *m, wm_entry *e)
{
    int32_t slot = (int32_t)(e - m->entries);
    uint32_t i = (uint32_t)e->hash & m->mask;
    while (m->index[i] != slot)
        i = (i + 1) & m->mask;
    m->index[i] = WM_SLOT_DELETED;
    free(e->data);
    e->data = NULL;
    e->kind = WM_VAL_NONE;
    m->live--;
}

uint32_t wm_map_seek(const wm_map *m, uint64_t cursor)
{
    uint32_t lo = 0, hi = m->used;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->entries[mid].seq < cursor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
