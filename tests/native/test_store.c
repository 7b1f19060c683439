/* test_store.c: named maps in a (fake) backing store. */
#include "harness.h"

/* --- store -------------------------------------------------------------- */

/* A fake backing store: records each request, answers as programmed, and
 * proves the broker lock is free while it runs (it takes it itself). */
typedef struct fake_store {
    wm_broker *b;
    int calls;
    wm_store_req last;
    uint8_t name[64], key[64], val[256]; /* copies: the request's pointers die with the call */
    int answer;        /* the errno to give */
    uint64_t out;      /* and these outputs */
    uint32_t count;
    uint64_t cursor;
    const char *data;  /* copied into buf when not NULL */
} fake_store;

static int fake_store_fn(void *ctx, wm_store_req *req)
{
    fake_store *f = ctx;
    wm_stats s;
    wm_broker_stats(f->b, &s); /* locks: hangs (alarm) if the caller kept the lock */
    f->calls++;
    f->last = *req;
    if (req->name_len <= sizeof f->name)
        memcpy(f->name, req->name, req->name_len);
    if (req->key_len <= sizeof f->key && req->key)
        memcpy(f->key, req->key, req->key_len);
    if (req->val_len <= sizeof f->val && req->val)
        memcpy(f->val, req->val, req->val_len);
    if (f->data && strlen(f->data) <= req->buf_cap)
        memcpy(req->buf, f->data, strlen(f->data));
    req->out = f->out;
    req->count = f->count;
    req->cursor = f->cursor;
    return f->answer;
}

static void fake_answer(fake_store *f, int answer, uint64_t out, const char *data)
{
    f->answer = answer;
    f->out = out;
    f->data = data;
    f->count = 0;
    f->cursor = 0;
}

void test_store(void)
{
    alarm(30); /* a store call made with the lock held would deadlock */
    wm_broker *b = new_broker(11);
    wm_module *host = wm_broker_host(b);
    wm_limits l = limits(8, 16, 64, 1u << 20, 1u << 10);
    wm_module *m = wm_module_new(b, &l, "m");
    fake_store f = {.b = b};
    uint32_t mem, h, ro, len = SENTINEL32, u = SENTINEL32;
    uint64_t v64 = SENTINEL64;
    int64_t i64 = 0;
    uint8_t buf[32];

    /* names opened before the store is set stay in the C data plane */
    OK(wm_op_open(host, KEY("early"), RW, &mem));
    wm_broker_set_store(b, fake_store_fn, &f);
    set_str(host, mem, "k", "v");
    expect_value(host, mem, "k", "v");
    CHECK(f.calls == 0);

    OK(wm_module_grant(m, KEY("cfg"), RW));
    OK(wm_op_open(m, KEY("cfg"), RW, &h));
    OK(wm_op_open(m, KEY("cfg"), R, &ro));
    CHECK(f.calls == 0); /* open does not touch the store */

    /* every check happens before the store is asked */
    EXPECT(wm_op_set(m, ro, KEY("k"), S("v"), 1), WM_ACCES);
    EXPECT(wm_op_set(m, h, KEY("a-long-key"), S("v"), 1), WM_TOOBIG);
    EXPECT(wm_op_get(m, h + 100, KEY("k"), buf, sizeof buf, &len), WM_BADF);
    EXPECT(wm_op_get_many(m, h, S("\x05\0\0\0ab"), 6, buf, sizeof buf, &len), WM_INVAL);
    EXPECT(wm_op_set_many(m, ro, EMPTY, 0), WM_ACCES);
    CHECK(f.calls == 0 && len == SENTINEL32);

    /* a request carries the op, the map's name and number, the module, the key */
    fake_answer(&f, WM_OK, 0, NULL);
    OK(wm_op_set(m, h, KEY("k"), S("value"), 5));
    CHECK(f.calls == 1 && f.last.op == WM_SOP_SET && f.last.module == wm_module_id(m));
    CHECK(f.last.name_len == 3 && memcmp(f.name, "cfg", 3) == 0 && f.last.map == 1);
    CHECK(f.last.key_len == 1 && f.key[0] == 'k' && f.last.val_len == 5);
    CHECK(memcmp(f.val, "value", 5) == 0);

    fake_answer(&f, WM_OK, 5, "value");
    OK(wm_op_get(m, h, KEY("k"), buf, sizeof buf, &len));
    CHECK(f.last.op == WM_SOP_GET && f.last.buf == buf && f.last.buf_cap == sizeof buf);
    CHECK(len == 5 && memcmp(buf, "value", 5) == 0);
    fake_answer(&f, WM_RANGE, 500, NULL);
    EXPECT(wm_op_get(m, h, KEY("k"), buf, sizeof buf, &len), WM_RANGE);
    CHECK(len == 500); /* RANGE passes the size needed on */
    fake_answer(&f, WM_NOENT, 0, NULL);
    len = SENTINEL32;
    EXPECT(wm_op_get(m, h, KEY("k"), buf, sizeof buf, &len), WM_NOENT);
    CHECK(len == SENTINEL32);

    fake_answer(&f, WM_OK, (uint64_t)-7, NULL);
    OK(wm_op_incr(m, h, KEY("n"), 3, &i64));
    CHECK(f.last.op == WM_SOP_INCR && f.last.num == 3 && i64 == -7);
    fake_answer(&f, WM_TYPE, 0, NULL);
    EXPECT(wm_op_incr(m, h, KEY("n"), 3, &i64), WM_TYPE);
    fake_answer(&f, WM_CONFLICT, 0, NULL);
    EXPECT(wm_op_set_if(m, h, KEY("k"), S("x"), 1, 42), WM_CONFLICT);
    CHECK(f.last.op == WM_SOP_SET_IF && f.last.num == 42);
    fake_answer(&f, WM_OK, 99, NULL);
    OK(wm_op_version(m, h, KEY("k"), &v64));
    CHECK(v64 == 99 && f.last.op == WM_SOP_VERSION);
    fake_answer(&f, WM_OK, 1ull << 40, NULL);
    OK(wm_op_len(m, h, &u));
    CHECK(u == UINT32_MAX && f.last.op == WM_SOP_LEN); /* clamped */
    fake_answer(&f, WM_OK, 1, NULL);
    OK(wm_op_exists(m, h, KEY("k"), &u));
    CHECK(u == 1 && f.last.op == WM_SOP_EXISTS);
    OK(wm_op_delete(m, h, KEY("k")));
    CHECK(f.last.op == WM_SOP_DELETE);

    /* keys: the cursor goes in and comes out */
    uint64_t cursor = 7;
    uint32_t used = SENTINEL32, count = SENTINEL32;
    fake_answer(&f, WM_OK, 5, "\x01\0\0\0k");
    f.count = 1;
    f.cursor = 12;
    OK(wm_op_keys(m, h, &cursor, buf, sizeof buf, &used, &count));
    CHECK(f.last.op == WM_SOP_KEYS && f.last.cursor == 7);
    CHECK(cursor == 12 && used == 5 && count == 1);

    /* batches: the records as given, counted */
    bytes items = {0};
    put_rec_str(&items, "a");
    put_rec_str(&items, "1");
    put_rec_str(&items, "b");
    put_rec_str(&items, "2");
    fake_answer(&f, WM_OK, 0, NULL);
    OK(wm_op_set_many(m, h, bp(&items), (uint32_t)items.len));
    CHECK(f.last.op == WM_SOP_SET_MANY && f.last.count == 2 && f.last.val_len == items.len);
    bytes keys = {0};
    put_rec_str(&keys, "a");
    put_rec_str(&keys, "zz");
    fake_answer(&f, WM_OK, 9, "\x01\0\0\0" "1" "\xff\xff\xff\xff");
    OK(wm_op_get_many(m, h, bp(&keys), (uint32_t)keys.len, buf, sizeof buf, &used));
    CHECK(f.last.op == WM_SOP_GET_MANY && f.last.count == 2 && used == 9);
    free(items.p);
    free(keys.p);

    /* answers a store cannot give are IO, and nothing is passed on */
    int calls = f.calls;
    len = SENTINEL32;
    fake_answer(&f, WM_CONFLICT, 5, NULL);
    EXPECT(wm_op_get(m, h, KEY("k"), buf, sizeof buf, &len), WM_IO);
    fake_answer(&f, 99, 5, NULL);
    EXPECT(wm_op_get(m, h, KEY("k"), buf, sizeof buf, &len), WM_IO);
    fake_answer(&f, -1, 5, NULL);
    EXPECT(wm_op_get(m, h, KEY("k"), buf, sizeof buf, &len), WM_IO);
    fake_answer(&f, WM_OK, sizeof buf + 1, NULL); /* more than the buffer holds */
    EXPECT(wm_op_get(m, h, KEY("k"), buf, sizeof buf, &len), WM_IO);
    CHECK(len == SENTINEL32);
    fake_answer(&f, WM_OK, 2, NULL);
    u = SENTINEL32;
    EXPECT(wm_op_exists(m, h, KEY("k"), &u), WM_IO);
    CHECK(u == SENTINEL32);
    fake_answer(&f, WM_NOENT, 0, NULL);
    EXPECT(wm_op_set(m, h, KEY("k"), S("v"), 1), WM_IO);
    fake_answer(&f, WM_IO, 0, NULL);
    EXPECT(wm_op_set(m, h, KEY("k"), S("v"), 1), WM_IO);
    CHECK(f.calls == calls + 7);

    /* a store map holds bytes only: no map references in it */
    uint32_t child = new_map(m), got = SENTINEL32;
    calls = f.calls;
    EXPECT(wm_op_set_map(m, h, KEY("c"), child), WM_TYPE);
    CHECK(f.calls == calls);
    fake_answer(&f, WM_OK, 1, NULL);
    EXPECT(wm_op_get_map(m, h, KEY("k"), &got), WM_TYPE);
    fake_answer(&f, WM_OK, 0, NULL);
    EXPECT(wm_op_get_map(m, h, KEY("k"), &got), WM_NOENT);
    CHECK(got == SENTINEL32);
    /* ... but it can be the child of an anonymous map, and outlives it */
    uint32_t parent = new_map(m);
    OK(wm_op_set_map(m, parent, KEY("cfg"), h));
    OK(wm_op_close(m, parent));
    OK(wm_op_close(m, child));
    CHECK(stats(b).named == 2 && stats(b).maps == 0);
    CHECK(wm_broker_check(b) == 0);

    /* the quota accounts are not charged for store maps */
    CHECK(wm_module_bytes_used(m) == 0 && wm_module_entries_used(m) == 0);

    /* the store function's writes into the caller's buffer: capacity first */
    {
        uint8_t *buf = malloc(8); /* exactly 8: ASan sees one byte more */
        wm_store_req req = {.buf = buf, .buf_cap = 8};
        OK(wm_store_answer(&req, S("12345678"), 8));
        CHECK(req.out == 8 && memcmp(buf, "12345678", 8) == 0);
        EXPECT(wm_store_answer(&req, S("123456789"), 9), WM_RANGE);
        CHECK(req.out == 9 && memcmp(buf, "12345678", 8) == 0); /* nothing written */
        uint32_t lens[2] = {2, UINT32_MAX};
        EXPECT(wm_records_pack(&req, lens, 2, S("ab"), 2), WM_RANGE); /* 4 + 2 + 4 > 8 */
        CHECK(req.out == 10 && memcmp(buf, "12345678", 8) == 0);
        lens[0] = 0;
        OK(wm_records_pack(&req, lens, 2, EMPTY, 0));
        CHECK(req.out == 8 && rd32(buf) == 0 && rd32(buf + 4) == UINT32_MAX);
        EXPECT(wm_records_pack(&req, lens, 2, S("x"), 1), WM_INVAL); /* blob != lens */
        free(buf);
        /* split: a batch read only within its length */
        uint8_t *batch = malloc(9);
        memcpy(batch, "\x02\0\0\0ab\x01\0\0", 9); /* "ab", then a length 1 with no byte */
        wm_store_req in = {.val = batch, .val_len = 9};
        uint32_t pairs[4];
        OK(wm_records_split(&in, 1, pairs));
        CHECK(pairs[0] == 4 && pairs[1] == 2);
        EXPECT(wm_records_split(&in, 2, pairs), WM_INVAL);
        EXPECT(wm_records_split(&in, 3, pairs), WM_INVAL);
        in.val_len = 5;
        EXPECT(wm_records_split(&in, 1, pairs), WM_INVAL);
        free(batch);
    }

    /* a store taken away: its maps answer IO; new names live in C again */
    calls = f.calls;
    wm_broker_set_store(b, NULL, NULL);
    EXPECT(wm_op_set(m, h, KEY("k"), S("v"), 1), WM_IO);
    OK(wm_op_open(host, KEY("late"), RW, &mem));
    set_str(host, mem, "k", "v");
    expect_value(host, mem, "k", "v");
    CHECK(f.calls == calls);
    wm_broker_free(b);
    alarm(0);
}

