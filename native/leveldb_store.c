/* leveldb_store.c: named maps in a LevelDB database, answered in C.
 *
 * The store function of a broker whose store is `leveldb:PATH`, and of the
 * Python LevelDBStore's own methods: every operation is answered here,
 * through LevelDB's C API (leveldb_api.h), on a database leveldb_db.c opened.
 * The layout (broker/stores/leveldb_store.py documents it for people) is
 *
 *     e P(NAME) KEY        -> version (8 BE), sequence number (8 BE), value
 *     s P(NAME) SEQ (8 BE) -> KEY      (the keys in insertion order)
 *     c P(NAME)            -> the map's clock (8 BE: versions, sequence numbers)
 *     n P(NAME)            -> how many keys the map holds (8 BE)
 *     !wasi-map            -> the layout's version
 *
 * with P(NAME) = the name's length (4 BE) and bytes.  A write is one write
 * batch.  Every read-then-write (each write reads the clock) runs under
 * the database's `lock`; reads take no lock, and get_many reads one
 * snapshot.  A failure (LevelDB's message, or a row that breaks the
 * layout) is handed to the caller's `failed` once no lock is held, and the
 * operation answers what that answers (IO).
 *
 * Opening, closing, and counting the calls in flight: leveldb_db.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leveldb_store.h"

static const char SHORT_ENTRY[] = "an entry shorter than its 16-byte header";

static const char *const entry_names[] = {
#define WM_LDB_NAME(name, ret, params) #name,
    WM_LEVELDB_ENTRY_POINTS(WM_LDB_NAME)
#undef WM_LDB_NAME
};
#define ENTRY_COUNT (sizeof entry_names / sizeof entry_names[0])
_Static_assert(sizeof(ldb_api) == ENTRY_COUNT * sizeof(void *), "one pointer per entry point");

size_t wm_ldb_entry_count(void) { return ENTRY_COUNT; }

const char *wm_ldb_entry_name(size_t i) { return i < ENTRY_COUNT ? entry_names[i] : NULL; }

/* --- bytes: keys and values built for one call -------------------------- */

typedef struct bytes {
    char *p;
    size_t len, cap;
    bool heap; /* p is malloc'd, not the caller's stack array */
} bytes;
#define BYTES_ON(array) ((bytes){(array), 0, sizeof(array), false})

/* Room for `extra` more bytes, growing to at most `most` (or len + extra). */
static bool reserve_up_to(bytes *b, size_t extra, size_t most)
{
    if (extra <= b->cap - b->len)
        return true;
    size_t cap = b->cap <= most / 2 ? 2 * b->cap : most;
    if (cap < b->len + extra)
        cap = b->len + extra;
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p)
        return false;
    if (!b->heap && b->len)
        memcpy(p, b->p, b->len);
    *b = (bytes){p, b->len, cap, true};
    return true;
}

static bool append_up_to(bytes *b, const void *data, size_t n, size_t most)
{
    if (!reserve_up_to(b, n, most))
        return false;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return true;
}

static bool append(bytes *b, const void *data, size_t n)
{
    return append_up_to(b, data, n, SIZE_MAX);
}

static void bytes_free(bytes *b)
{
    if (b->heap)
        free(b->p);
}

static void be64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char)(v & 0xff);
}

static uint64_t get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (uint8_t)p[i];
    return v;
}

/* `k` = tag, P(NAME), tail; false (out of memory, in *f) when it cannot grow. */
static bool layout_key(bytes *k, char tag, const wm_store_req *req, const void *tail,
                       size_t tail_len, fault *f)
{
    char head[5] = {tag, (char)(req->name_len >> 24), (char)(req->name_len >> 16),
                    (char)(req->name_len >> 8), (char)req->name_len};
    k->len = 0;
    if (append(k, head, 5) && append(k, req->name, req->name_len) && append(k, tail, tail_len))
        return true;
    f->what = NO_MEMORY;
    return false;
}

/* --- reading rows --------------------------------------------------------- */

typedef struct entry {
    bool present;
    uint64_t version, seq;
    char *raw; /* the row (LevelDB's malloc): the 16-byte header, then the value */
    size_t len;
} entry;

static void drop_entry(wm_ldb *d, entry *e)
{
    d->api.free(e->raw);
    e->raw = NULL;
}

static bool read_entry(wm_ldb *d, const ldb_readoptions *ro, const bytes *ek, entry *e, fault *f)
{
    *e = (entry){.present = false};
    e->raw = d->api.get(d->db, ro, ek->p, ek->len, &e->len, &f->leveldb);
    if (f->leveldb || !e->raw)
        return !f->leveldb;
    if (e->len < 16) {
        f->what = SHORT_ENTRY;
        drop_entry(d, e);
        return false;
    }
    *e = (entry){true, get_be64(e->raw), get_be64(e->raw + 8), e->raw, e->len};
    return true;
}

/* A u64 row of the layout (a clock, a count): 0 when absent. */
static bool read_u64(wm_ldb *d, const bytes *k, uint64_t *out, fault *f)
{
    size_t n = 0;
    char *raw = d->api.get(d->db, d->read, k->p, k->len, &n, &f->leveldb);
    *out = 0;
    if (raw && n != 8)
        f->what = "a clock or count that is not 8 bytes";
    else if (raw)
        *out = get_be64(raw);
    d->api.free(raw);
    return !faulty(f);
}

/* --- writing items ---------------------------------------------------------- */

typedef struct item {
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *val;
    uint32_t val_len;
    uint32_t first; /* the first item of the batch with this key */
} item;

/* One item's rows into the batch: its entry, and for a key new to the map
 * its `s` row; the sequence number it took into *seq, new keys counted in
 * *added.  `old`: the key's entry, when this is its first item. */
static bool put_item(wm_ldb *d, wm_store_req *req, const item *it, uint64_t version,
                     const entry *old, uint64_t *seq, uint64_t *added, bytes *k, bytes *v,
                     fault *f)
{
    if (old) {
        *seq = old->present ? old->seq : version;
        if (!old->present) {
            char tail[8];
            be64(tail, *seq);
            if (!layout_key(k, 's', req, tail, 8, f))
                return false;
            d->api.writebatch_put(d->batch, k->p, k->len, (const char *)it->key, it->key_len);
            *added += 1;
        }
    }
    char header[16];
    be64(header, version);
    be64(header + 8, *seq);
    v->len = 0;
    if (!layout_key(k, 'e', req, it->key, it->key_len, f))
        return false;
    if (!append(v, header, 16) || !append(v, it->val, it->val_len)) {
        f->what = NO_MEMORY;
        return false;
    }
    d->api.writebatch_put(d->batch, k->p, k->len, v->p, v->len);
    return true;
}

/* Write items[0, n) (n >= 1) as one batch, `lock` held: item i takes the
 * map's clock + 1 + i as its version; a key in the map keeps its sequence
 * number, a new one takes its first item's version and adds one to the
 * count; a later item of a key wins (a batch applies in order) and keeps
 * the first one's number.  Batch order c, (s, e) per item, n: what
 * leveldb_store.py wrote.  `old0`: item 0's entry, when the caller read it. */
static void put_items(wm_ldb_caller *c, wm_store_req *req, const item *items, uint32_t n,
                      const entry *old0, fault *f)
{
    wm_ldb *d = c->store->db;
    char kbuf[256], vbuf[512];
    bytes k = BYTES_ON(kbuf), v = BYTES_ON(vbuf);
    uint64_t *seqs = n > 1 ? malloc(n * sizeof *seqs) : NULL;
    uint64_t clock, count, added = 0, one;
    char num[8];
    d->api.writebatch_clear(d->batch);
    if (n > 1 && !seqs)
        f->what = NO_MEMORY;
    if (faulty(f) || !layout_key(&k, 'c', req, NULL, 0, f) || !read_u64(d, &k, &clock, f))
        goto out;
    be64(num, clock + n);
    d->api.writebatch_put(d->batch, k.p, k.len, num, 8);
    for (uint32_t i = 0; i < n; i++) {
        const item *it = &items[i];
        uint64_t *seq = seqs ? &seqs[i] : &one;
        bool ok;
        if (it->first != i) {
            *seq = seqs[it->first];
            ok = put_item(d, req, it, clock + 1 + i, NULL, seq, &added, &k, &v, f);
        } else if (i == 0 && old0) {
            ok = put_item(d, req, it, clock + 1, old0, seq, &added, &k, &v, f);
        } else {
            entry old;
            if (!layout_key(&k, 'e', req, it->key, it->key_len, f) ||
                !read_entry(d, d->read, &k, &old, f))
                goto out;
            ok = put_item(d, req, it, clock + 1 + i, &old, seq, &added, &k, &v, f);
            drop_entry(d, &old);
        }
        if (!ok)
            goto out;
    }
    if (added) {
        if (!layout_key(&k, 'n', req, NULL, 0, f) || !read_u64(d, &k, &count, f))
            goto out;
        be64(num, count + added);
        d->api.writebatch_put(d->batch, k.p, k.len, num, 8);
    }
    d->api.write(d->db, c->store->write, d->batch, &f->leveldb);
out:
    d->api.writebatch_clear(d->batch);
    free(seqs);
    bytes_free(&k);
    bytes_free(&v);
}

/* --- the operations ----------------------------------------------------------
 * Each returns the operation's errno; on a fault it sets *f and its answer
 * does not count (the caller's `failed` answers). */

/* The key's entry, read without the lock (get, exists, version). */
static bool look_up(wm_ldb *d, wm_store_req *req, entry *e, fault *f)
{
    char kbuf[256];
    bytes k = BYTES_ON(kbuf);
    *e = (entry){.present = false};
    bool ok = layout_key(&k, 'e', req, req->key, req->key_len, f) &&
              read_entry(d, d->read, &k, e, f);
    bytes_free(&k);
    return ok;
}

static int op_read(wm_ldb *d, wm_store_req *req, fault *f)
{
    entry e;
    if (!look_up(d, req, &e, f))
        return WM_IO;
    int rc = WM_OK;
    if (req->op == WM_SOP_GET)
        rc = e.present ? wm_store_answer(req, (const uint8_t *)e.raw + 16, e.len - 16) : WM_NOENT;
    else
        req->out = req->op == WM_SOP_EXISTS ? e.present : e.version; /* version: 0 when absent */
    drop_entry(d, &e);
    return rc;
}

static int op_len(wm_ldb *d, wm_store_req *req, fault *f)
{
    char kbuf[256];
    bytes k = BYTES_ON(kbuf);
    if (layout_key(&k, 'n', req, NULL, 0, f))
        read_u64(d, &k, &req->out, f);
    bytes_free(&k);
    return WM_OK;
}

/* set, set_if and incr: one item, after reading its entry under the lock. */
static int op_write_one(wm_ldb_caller *c, wm_store_req *req, fault *f)
{
    wm_ldb *d = c->store->db;
    item it = {req->key, req->key_len, req->val, req->val_len, 0};
    uint8_t counter[8];
    int rc = WM_OK;
    entry old = {.present = false};
    pthread_mutex_lock(&d->lock);
    if (req->op == WM_SOP_SET) {
        put_items(c, req, &it, 1, NULL, f); /* reads the entry itself */
        goto out;
    }
    if (!look_up(d, req, &old, f))
        goto out;
    if (req->op == WM_SOP_SET_IF && old.version != (uint64_t)req->num) {
        rc = WM_CONFLICT; /* an absent key's version is 0 */
    } else if (req->op == WM_SOP_INCR) {
        /* 8 bytes, little-endian, two's complement; absent: 0; wraps. */
        uint64_t value = 0;
        if (old.present && old.len - 16 != 8) {
            rc = WM_TYPE;
            goto out;
        }
        if (old.present)
            memcpy(&value, old.raw + 16, 8);
        value += (uint64_t)req->num;
        memcpy(counter, &value, 8);
        it.val = counter;
        it.val_len = 8;
        put_items(c, req, &it, 1, &old, f);
        req->out = value;
    } else {
        put_items(c, req, &it, 1, &old, f);
    }
out:
    pthread_mutex_unlock(&d->lock);
    drop_entry(d, &old);
    return rc;
}

static int op_delete(wm_ldb_caller *c, wm_store_req *req, fault *f)
{
    wm_ldb *d = c->store->db;
    char kbuf[256], tail[8];
    bytes k = BYTES_ON(kbuf);
    entry old = {.present = false};
    uint64_t count;
    pthread_mutex_lock(&d->lock);
    if (!look_up(d, req, &old, f) || !old.present)
        goto out;
    d->api.writebatch_clear(d->batch);
    be64(tail, old.seq);
    if (!layout_key(&k, 'e', req, req->key, req->key_len, f))
        goto out;
    d->api.writebatch_delete(d->batch, k.p, k.len);
    if (!layout_key(&k, 's', req, tail, 8, f))
        goto out;
    d->api.writebatch_delete(d->batch, k.p, k.len);
    if (!layout_key(&k, 'n', req, NULL, 0, f) || !read_u64(d, &k, &count, f))
        goto out;
    if (count == 0) {
        f->what = "a count of 0 for a map that holds the key";
        goto out;
    }
    be64(tail, count - 1);
    d->api.writebatch_put(d->batch, k.p, k.len, tail, 8);
    d->api.write(d->db, c->store->write, d->batch, &f->leveldb);
out:
    d->api.writebatch_clear(d->batch);
    pthread_mutex_unlock(&d->lock);
    drop_entry(d, &old);
    bytes_free(&k);
    return WM_OK;
}

/* One page of keys from the cursor on, in sequence order, as many as fit
 * (numbered: at most req->count, each with its sequence number); the
 * cursor becomes the sequence number of the first key left out (0: none);
 * RANGE with the size needed when not even one fits. */
static int op_keys(wm_ldb *d, wm_store_req *req, bool numbered, fault *f)
{
    uint32_t limit = numbered && req->count ? req->count : UINT32_MAX, count = 0;
    uint64_t next = 0;
    char sbuf[256], from[8];
    bytes seek = BYTES_ON(sbuf), page = {NULL, 0, 0, false};
    int rc = WM_OK;
    be64(from, req->cursor);
    if (!layout_key(&seek, 's', req, from, 8, f))
        return WM_IO;
    size_t prefix = seek.len - 8;
    ldb_iterator *it = d->api.create_iterator(d->db, d->read);
    for (d->api.iter_seek(it, seek.p, seek.len); d->api.iter_valid(it); d->api.iter_next(it)) {
        size_t kn, vn;
        const char *key = d->api.iter_key(it, &kn);
        if (kn < prefix || memcmp(key, seek.p, prefix) != 0)
            break; /* past the map's rows */
        if (kn != prefix + 8) {
            f->what = "a key-order row whose sequence number is not 8 bytes";
            break;
        }
        uint64_t seq = get_be64(key + prefix);
        const char *val = d->api.iter_value(it, &vn);
        size_t need = 4 + (numbered ? 8 : 0) + vn;
        if (count == limit || need > req->buf_cap - page.len) {
            if (count) {
                next = seq;
            } else {
                req->out = need;
                rc = WM_RANGE;
            }
            break;
        }
        uint32_t n = (uint32_t)vn;
        if (!append(&page, &n, 4) || (numbered && !append(&page, &seq, 8)) ||
            !append(&page, val, vn)) {
            f->what = NO_MEMORY;
            break;
        }
        count++;
    }
    if (!faulty(f))
        d->api.iter_get_error(it, &f->leveldb);
    d->api.iter_destroy(it);
    if (!faulty(f) && rc == WM_OK) {
        rc = wm_store_answer(req, (const uint8_t *)page.p, page.len);
        if (rc == WM_OK) {
            req->count = count;
            req->cursor = next;
        }
    }
    bytes_free(&seek);
    bytes_free(&page);
    return rc;
}

/* Every key's value from one snapshot, packed as batch records.
 *
 * The answer may not exceed req->buf_cap, but a key list may name one big
 * key many times: the values are kept only while the records' running
 * size (4 + length each) fits the buffer.  Past that, what was kept is
 * freed and each value is only measured (read and freed at once, from the
 * same snapshot) for RANGE's size needed -- never more than buf_cap plus
 * one value held. */
static int op_get_many(wm_ldb *d, wm_store_req *req, fault *f)
{
    uint32_t n = req->count;
    uint32_t *pairs = malloc(2 * (size_t)n * sizeof *pairs + 1);
    uint32_t *lens = malloc((size_t)n * sizeof *lens + 1);
    char kbuf[256];
    bytes k = BYTES_ON(kbuf), blob = {NULL, 0, 0, false};
    uint64_t need = 0; /* the records so far: n < 2^32 of < 4 GiB + 4 each */
    int rc = WM_IO;
    if (!pairs || !lens) {
        f->what = NO_MEMORY;
        goto out;
    }
    if (wm_records_split(req, n, pairs) != WM_OK) {
        f->what = "a key list that does not hold its count of keys";
        goto out;
    }
    const ldb_snapshot *snap = d->api.create_snapshot(d->db);
    ldb_readoptions *ro = d->api.readoptions_create();
    d->api.readoptions_set_snapshot(ro, snap);
    for (uint32_t i = 0; i < n && !faulty(f); i++) {
        entry e;
        if (!layout_key(&k, 'e', req, req->val + pairs[2 * i], pairs[2 * i + 1], f) ||
            !read_entry(d, ro, &k, &e, f))
            break;
        size_t len = e.present ? e.len - 16 : 0;
        lens[i] = e.present ? (uint32_t)len : UINT32_MAX;
        need += 4 + (uint64_t)len;
        if (e.present && len >= UINT32_MAX) {
            f->what = "a value of 4 GiB or more";
        } else if (need > req->buf_cap) {
            bytes_free(&blob); /* RANGE: only the size is needed from here on */
            blob = (bytes){NULL, 0, 0, false};
        } else if (e.present && !append_up_to(&blob, e.raw + 16, len, req->buf_cap)) {
            f->what = NO_MEMORY;
        }
        drop_entry(d, &e);
    }
    d->api.readoptions_destroy(ro);
    d->api.release_snapshot(d->db, snap);
    if (!faulty(f) && need > req->buf_cap) {
        req->out = need;
        rc = WM_RANGE;
    } else if (!faulty(f)) { /* never a NULL blob: pack copies even 0 bytes of an empty value */
        rc = wm_records_pack(req, lens, n, (const uint8_t *)(blob.p ? blob.p : ""), blob.len);
    }
out:
    free(pairs);
    free(lens);
    bytes_free(&k);
    bytes_free(&blob);
    return rc;
}

typedef struct keyref {
    const uint8_t *key;
    uint32_t len;
    uint32_t i;
} keyref;

static int key_order(const keyref *x, const keyref *y)
{
    int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* By key, then by position: the first item of a key comes first. */
static int by_key(const void *a, const void *b)
{
    const keyref *x = a, *y = b;
    int c = key_order(x, y);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* The items of req->val as one batch (put_items), each told the first item of its key. */
static int op_set_many(wm_ldb_caller *c, wm_store_req *req, fault *f)
{
    wm_ldb *d = c->store->db;
    uint32_t n = req->count;
    if (n == 0)
        return WM_OK;
    uint32_t *pairs = malloc(4 * (size_t)n * sizeof *pairs);
    item *items = malloc((size_t)n * sizeof *items);
    keyref *refs = malloc((size_t)n * sizeof *refs);
    if (!pairs || !items || !refs) {
        f->what = NO_MEMORY;
        goto out;
    }
    if (wm_records_split(req, 2 * n, pairs) != WM_OK) {
        f->what = "a batch that does not hold its count of items";
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t *p = &pairs[4 * i];
        items[i] = (item){req->val + p[0], p[1], req->val + p[2], p[3], i};
        refs[i] = (keyref){items[i].key, items[i].key_len, i};
    }
    qsort(refs, n, sizeof *refs, by_key);
    for (uint32_t j = 1, head = refs[0].i; j < n; j++) {
        if (key_order(&refs[j], &refs[j - 1]) == 0)
            items[refs[j].i].first = head;
        else
            head = refs[j].i;
    }
    pthread_mutex_lock(&d->lock);
    put_items(c, req, items, n, NULL, f);
    pthread_mutex_unlock(&d->lock);
out:
    free(pairs);
    free(items);
    free(refs);
    return WM_OK;
}

int wm_ldb_run(wm_ldb_caller *c, wm_store_req *req, bool numbered, fault *f)
{
    wm_ldb *d = c->store->db;
    switch (req->op) {
    case WM_SOP_GET:
    case WM_SOP_EXISTS:
    case WM_SOP_VERSION:
        return op_read(d, req, f);
    case WM_SOP_LEN:
        return op_len(d, req, f);
    case WM_SOP_SET:
    case WM_SOP_SET_IF:
    case WM_SOP_INCR:
        return op_write_one(c, req, f);
    case WM_SOP_DELETE:
        return op_delete(c, req, f);
    case WM_SOP_KEYS:
        return op_keys(d, req, numbered, f);
    case WM_SOP_GET_MANY:
        return op_get_many(d, req, f);
    case WM_SOP_SET_MANY:
        return op_set_many(c, req, f);
    default:
        f->what = "an operation the LevelDB store does not know";
        return WM_IO;
    }
}

