/* handles.h: one module's handle table.
 *
 * A handle is a 31-bit number: a slot index in the low 21 bits and the
 * slot's generation (1..1023) above it.  Each reuse of a slot bumps the
 * generation, so a closed or moved handle is told apart from a live one
 * (STALE) and from a number never issued (BADF), and never reaches the map
 * that later takes its slot.  A slot whose generation is spent is retired,
 * never reused: aliasing is impossible, not just unlikely.  Handle 0 and
 * every negative number are never issued.
 *
 * The price: a module can be issued about 2^31 handle numbers in its life.
 * The host's table (`wraps`) reuses spent slots from generation 1 again:
 * host numbers live inside MapRef objects, which drop them on close or
 * move, so no stale host number is ever used.
 */
#ifndef WM_HANDLES_H
#define WM_HANDLES_H

#include <stdbool.h>
#include <stdint.h>

#include "abi_gen.h" /* the handle layout, WM_H_FREE, WM_H_OWN, WM_H_BORROW */

#define WM_HANDLE_MAX_SLOTS (1u << WM_HANDLE_INDEX_BITS) /* WM_HANDLE_INDEX_BITS: abi_gen.h */
#define WM_HANDLE_INDEX_MASK (WM_HANDLE_MAX_SLOTS - 1u)

typedef struct wm_handle {
    uint32_t gen;       /* generation of the last issue; 0 = never issued */
    uint32_t map;       /* map slot the handle reaches */
    uint32_t next_free; /* free list link (index + 1; 0 ends the list) */
    uint16_t busy;      /* lends in progress: close/move give BUSY */
    uint8_t state;      /* WM_H_* */
    uint8_t rights;
} wm_handle;

typedef struct wm_handle_table {
    wm_handle *slots;
    uint32_t len; /* slots ever used */
    uint32_t cap;
    uint32_t free_head; /* index + 1 of the first reusable slot; 0 = none */
    uint32_t free_count;
    uint32_t live;
    bool wraps; /* reuse a spent slot instead of retiring it (the host) */
} wm_handle_table;

void wm_handles_init(wm_handle_table *t);
void wm_handles_free(wm_handle_table *t);
/* Resolve a handle number: OK, BADF or STALE; *out is the live slot.
 * Inline: every data operation of a guest starts here. */
static inline int wm_handles_lookup(wm_handle_table *t, uint32_t h, wm_handle **out)
{
    uint32_t gen = h >> WM_HANDLE_INDEX_BITS, index = h & WM_HANDLE_INDEX_MASK;
    if (gen == 0 || gen > WM_HANDLE_MAX_GEN || index >= t->len)
        return WM_BADF;
    wm_handle *slot = &t->slots[index];
    if (gen > slot->gen)
        return WM_BADF; /* that generation was never issued */
    if (gen < slot->gen || slot->state == WM_H_FREE)
        return WM_STALE;
    *out = slot;
    return WM_OK;
}
/* Issue a new handle; QUOTA when the table is full (limit or index space).
 * `limit` caps live handles. */
int wm_handles_issue(wm_handle_table *t, uint32_t limit, uint8_t state, uint32_t map,
                     uint8_t rights, uint32_t *out_h);
/* Make sure `n` more handles can be issued without failing or moving the
 * table; QUOTA when `limit` or the index space does not allow it. */
int wm_handles_reserve(wm_handle_table *t, uint32_t limit, uint32_t n);
/* Free a live slot (the caller releases the map reference). */
void wm_handles_release(wm_handle_table *t, wm_handle *slot);

#endif
