/* handles.c: the per-module handle table (see handles.h). */
#include "handles.h"

#include <stdlib.h>
#include <string.h>

#include "abi_gen.h"

void wm_handles_init(wm_handle_table *t) { memset(t, 0, sizeof *t); }

void wm_handles_free(wm_handle_table *t)
{
    free(t->slots);
    wm_handles_init(t);
}

static int grow(wm_handle_table *t, uint32_t need)
{
    if (need <= t->cap)
        return WM_OK;
    if (need > WM_HANDLE_MAX_SLOTS)
        return WM_QUOTA;
    uint32_t cap = t->cap ? t->cap : 64;
    while (cap < need)
        cap = cap > WM_HANDLE_MAX_SLOTS / 2 ? WM_HANDLE_MAX_SLOTS : cap * 2;
    wm_handle *slots = realloc(t->slots, (size_t)cap * sizeof *slots);
    if (!slots)
        return WM_QUOTA;
    t->slots = slots;
    t->cap = cap;
    return WM_OK;
}

int wm_handles_reserve(wm_handle_table *t, uint32_t limit, uint32_t n)
{
    if ((uint64_t)t->live + n > limit)
        return WM_QUOTA;
    if (n <= t->free_count)
        return WM_OK;
    return grow(t, t->len + (n - t->free_count));
}

int wm_handles_issue(wm_handle_table *t, uint32_t limit, uint8_t state, uint32_t map,
                     uint8_t rights, uint32_t *out_h)
{
    if (t->live >= limit)
        return WM_QUOTA;
    uint32_t index;
    if (t->free_head) {
        index = t->free_head - 1;
        t->free_head = t->slots[index].next_free;
        t->free_count--;
    } else {
        int err = grow(t, t->len + 1);
        if (err)
            return err;
        index = t->len++;
        memset(&t->slots[index], 0, sizeof t->slots[index]);
    }
    wm_handle *slot = &t->slots[index];
    slot->gen++;
    slot->map = map;
    slot->state = state;
    slot->rights = rights;
    slot->busy = 0;
    slot->next_free = 0;
    t->live++;
    *out_h = (slot->gen << WM_HANDLE_INDEX_BITS) | index;
    return WM_OK;
}

void wm_handles_release(wm_handle_table *t, wm_handle *slot)
{
    slot->state = WM_H_FREE;
    t->live--;
    if (slot->gen == WM_HANDLE_MAX_GEN && t->wraps)
        slot->gen = 0; /* the next issue is generation 1 again */
    if (slot->gen < WM_HANDLE_MAX_GEN) { /* else retired: never reused */
        slot->next_free = t->free_head;
        t->free_head = (uint32_t)(slot - t->slots) + 1;
        t->free_count++;
    }
}
