/* model.c: see model.h. */
#include "model.h"

/* --- who holds what ---------------------------------------------------------- */

void model_holder(holder *x, wm_module *m, uint32_t cap, bool keeps_evicted)
{
    CHECK(cap > 0 && cap <= MODEL_POOL);
    memset(x, 0, sizeof *x);
    x->m = m;
    x->cap = cap;
    x->keeps_evicted = keeps_evicted;
}

mhandle *model_hold(holder *x, uint32_t h, uint8_t rights, uint64_t map)
{
    uint32_t at = x->n;
    if (x->n < x->cap) {
        x->n++;
    } else {
        at = below(x->cap);
        for (int tries = 0; tries < 8 && x->pool[at].live; tries++)
            at = below(x->cap);
        const mhandle *old = &x->pool[at];
        if (old->live && x->keeps_evicted)
            model_orphan(x, old->h, old->rights, old->map);
        else if (old->live)
            OK(wm_op_close(x->m, x->pool[at].h));
    }
    x->pool[at] = (mhandle){h, rights, true, map};
    return &x->pool[at];
}

void model_orphan(holder *x, uint32_t h, uint8_t rights, uint64_t map)
{
    CHECK(x->norphans < MODEL_ORPHANS);
    x->orphans[x->norphans++] = (mhandle){h, rights, true, map};
}

mhandle *model_find(holder *x, uint32_t h)
{
    for (uint32_t i = 0; i < x->norphans; i++)
        if (x->orphans[i].h == h)
            return &x->orphans[i];
    mhandle *found = NULL;
    for (uint32_t i = 0; i < x->n; i++) /* the newest of a number, if it came back */
        if (x->pool[i].h == h && (!found || x->pool[i].live))
            found = &x->pool[i];
    return found;
}

void model_closed(holder *x, uint32_t h)
{
    for (uint32_t i = 0; i < x->n; i++)
        if (x->pool[i].h == h)
            x->pool[i].live = false;
    for (uint32_t i = 0; i < x->norphans; i++)
        if (x->orphans[i].h == h)
            x->orphans[i--] = x->orphans[--x->norphans];
}

void model_teardown(holder *x)
{
    for (uint32_t i = 0; i < x->n; i++)
        x->pool[i].live = false;
    x->norphans = 0;
}

uint32_t model_live(const holder *x)
{
    uint32_t n = x->norphans;
    for (uint32_t i = 0; i < x->n; i++)
        n += x->pool[i].live;
    return n;
}

int model_handle_errno(const mhandle *ph, uint32_t needs)
{
    if (!ph->live)
        return WM_STALE;
    return (ph->rights & needs) == needs ? WM_OK : WM_ACCES;
}

uint8_t model_pass_rights(uint8_t rights, uint8_t how, uint8_t mask)
{
    return (uint8_t)(rights & mask & (how & WM_PASS_READONLY ? R : RW));
}

/* The core's record of handle h of module `id` in `snap`, or NULL. */
static const wm_handle_info *core_handle(const wm_handle_info *snap, size_t n, uint32_t id,
                                         uint32_t h)
{
    for (size_t k = 0; k < n; k++)
        if (snap[k].module == id && snap[k].handle == h)
            return &snap[k];
    return NULL;
}

static void check_open(const mhandle *ph, const wm_handle_info *info)
{
    CHECK(info != NULL);
    CHECK(info->map == ph->map && info->rights == ph->rights);
}

void model_check(holder *x, wm_broker *b)
{
    enum { SNAP = 1 << 14 };
    static wm_handle_info snap[SNAP];
    size_t n = wm_snapshot_handles(b, snap, SNAP);
    CHECK(n <= SNAP);
    uint32_t id = wm_module_id(x->m);
    for (uint32_t i = 0; i < x->n; i++) {
        const mhandle *ph = &x->pool[i];
        const wm_handle_info *info = core_handle(snap, n, id, ph->h);
        if (ph->live)
            check_open(ph, info);
        else /* closed; its number may have been issued again since */
            CHECK(!info || model_find(x, ph->h) != ph);
    }
    for (uint32_t i = 0; i < x->norphans; i++)
        check_open(&x->orphans[i], core_handle(snap, n, id, x->orphans[i].h));
    CHECK(wm_module_handle_count(x->m) == model_live(x));
}

/* --- what maps hold ------------------------------------------------------------ */

char key_text[MODEL_KEYS][48];
uint32_t key_len[MODEL_KEYS];
static mmap **maps; /* by map id */
static size_t maps_cap;

void model_keys_init(void)
{
    for (int k = 0; k < MODEL_KEYS; k++) {
        int len = k == 0 ? 0 : (k * 7) % 41;
        for (int i = 0; i < len; i++)
            key_text[k][i] = (char)('a' + (k + i) % 26);
        key_text[k][0] = len ? (char)('A' + k) : 0; /* distinct keys */
        key_len[k] = (uint32_t)len;
    }
}

mmap *model_of(uint64_t id)
{
    if (id >= maps_cap) {
        size_t cap = maps_cap ? maps_cap : 1024;
        while (cap <= id)
            cap *= 2;
        maps = realloc(maps, cap * sizeof *maps);
        CHECK(maps != NULL);
        memset(maps + maps_cap, 0, (cap - maps_cap) * sizeof *maps);
        maps_cap = cap;
    }
    if (!maps[id]) {
        maps[id] = calloc(1, sizeof(mmap));
        CHECK(maps[id] != NULL);
    }
    return maps[id];
}

void model_clear(mentry *e)
{
    free(e->val);
    e->val = NULL;
    e->len = 0;
    e->kind = 0;
}

void model_write(mmap *mm, int k, uint8_t kind, const uint8_t *val, uint32_t len, uint64_t child)
{
    mentry *e = &mm->e[k];
    if (!e->kind)
        e->seq = ++mm->next_seq;
    model_clear(e);
    e->kind = kind;
    if (kind == 1) {
        e->val = malloc(len ? len : 1);
        CHECK(e->val != NULL);
        memcpy(e->val, val, len);
        e->len = len;
    }
    e->child = child;
    e->ver = VER_UNKNOWN;
}

void model_free(void)
{
    for (size_t id = 0; id < maps_cap; id++) {
        if (!maps[id])
            continue;
        for (int k = 0; k < MODEL_KEYS; k++)
            free(maps[id]->e[k].val);
        free(maps[id]);
    }
    free(maps);
    maps = NULL;
    maps_cap = 0;
}
