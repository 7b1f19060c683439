/* model.h: the C tests' one model of who holds what, and of what maps hold.
 *
 * Both random sections keep their expectations here: test_random.c (one
 * module at a time, every answer predicted) and test_xrandom.c (calls
 * between modules).  The rules are the ABI's (docs/abi.md "Order of
 * checks", docs/ownership.md):
 *   - a holder is a module as the test knows it: the handles it was given,
 *     each with its rights, the map it reaches (the core's map id) and
 *     whether it is still open; a number never issued is BADF, a closed or
 *     moved one STALE, one without the rights ACCES;
 *   - new (and open) give the rights asked, clone the rights asked (a
 *     subset), get_map the parent handle's;
 *   - a handle passed to another module arrives with the giver's rights,
 *     narrowed to READ by `:r` and by the host's mask; own moves (the
 *     giver's number is closed), share and borrow leave it open;
 *   - teardown closes every handle of a module;
 *   - a map holds, for each of MODEL_KEYS keys, nothing, bytes or a map
 *     reference, in insertion order, with its version when known.
 * A holder's handle count is its open handles, remembered or orphans (kept
 * open, never picked again).  model_check compares a holder with the core.
 */
#ifndef WM_TEST_MODEL_H
#define WM_TEST_MODEL_H

#include "harness.h"

#define MODEL_POOL 48     /* handles a holder remembers */
#define MODEL_ORPHANS 1024 /* handles it keeps open without choosing them again */
#define MODEL_KEYS 24 /* the key space of every map */
#define VER_UNKNOWN UINT64_MAX

/* --- who holds what ---------------------------------------------------------- */

typedef struct mhandle {
    uint32_t h;
    uint8_t rights;
    bool live;
    uint64_t map; /* map id */
} mhandle;

typedef struct holder {
    wm_module *m;
    mhandle pool[MODEL_POOL]; /* what the test picks handles from */
    uint32_t n;
    uint32_t cap;       /* <= MODEL_POOL: how many it remembers */
    bool keeps_evicted; /* full: a live handle evicted stays open, an orphan (else it is closed) */
    mhandle orphans[MODEL_ORPHANS]; /* open, never picked again (they may still move or close) */
    uint32_t norphans;
} holder;

/* A fresh holder for `m` (its pool empty, no orphans). */
void model_holder(holder *x, wm_module *m, uint32_t cap, bool keeps_evicted);
/* Remember handle h; a full pool evicts one (a closed one if it finds one). */
mhandle *model_hold(holder *x, uint32_t h, uint8_t rights, uint64_t map);
/* Keep handle h open without remembering it for picks: an orphan. */
void model_orphan(holder *x, uint32_t h, uint8_t rights, uint64_t map);
/* The handle numbered h: an open one (remembered or orphan), else a closed
 * one remembered, else NULL. */
mhandle *model_find(holder *x, uint32_t h);
/* h was closed (or moved away as own); unknown numbers are ignored. */
void model_closed(holder *x, uint32_t h);
/* Every handle closed (teardown). */
void model_teardown(holder *x);
uint32_t model_live(const holder *x);
/* The errno for using `ph` with rights `needs`, before sizes: STALE, ACCES or OK. */
int model_handle_errno(const mhandle *ph, uint32_t needs);
/* The rights a handle with `rights` arrives with, passed as `how` with `mask`. */
uint8_t model_pass_rights(uint8_t rights, uint8_t how, uint8_t mask);
/* The core agrees: each open handle (orphans too) reaches its map with its
 * rights, and the module holds no other handle. */
void model_check(holder *x, wm_broker *b);

/* --- what maps hold ------------------------------------------------------------ */

typedef struct mentry {
    uint8_t kind; /* 0 absent, 1 bytes, 2 map reference */
    uint8_t *val;
    uint32_t len;
    uint64_t child; /* map id */
    uint64_t ver;
    uint64_t seq;
} mentry;

typedef struct mmap {
    mentry e[MODEL_KEYS];
    uint64_t next_seq;
    uint64_t max_version; /* the highest version seen in it: versions count per map */
} mmap;

extern char key_text[MODEL_KEYS][48];
extern uint32_t key_len[MODEL_KEYS];

/* The keys: lengths 0..40, the hash's short and long paths, all distinct. */
void model_keys_init(void);
/* Map `id`'s contents (empty when first seen). */
mmap *model_of(uint64_t id);
void model_clear(mentry *e);
void model_write(mmap *mm, int k, uint8_t kind, const uint8_t *val, uint32_t len, uint64_t child);
/* Forget every map. */
void model_free(void);

#endif
