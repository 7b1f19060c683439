/* wm.h: the C data plane's whole public surface, and the cffi cdef.
 *
 * This file is read twice: by the C compiler (through wm_core.h) and by
 * cffi as its cdef (native/ffi_build.py drops the preprocessor lines).
 * So: no macros beyond the guard, no inline code, fixed-width types only.
 * Every function returns an errno (broker/abi/: Errno) unless noted.
 * The numbers C and Python share (errnos, rights, pass kinds WM_PASS_*,
 * handle states, WM_ENTRY_COST, WM_MAP_COST, fixed limits) are not here:
 * native/abi_gen.h has them, generated from broker/abi/.
 */
#ifndef WM_H
#define WM_H

typedef struct wm_broker wm_broker;
typedef struct wm_module wm_module;
typedef struct wm_link wm_link;

/* Addresses of the wasmtime C-API functions the data plane calls; handed
 * over at start-up from the wheel's _libwasmtime.so, so that no wasmtime
 * header or link step is needed. */
typedef struct wm_wasmtime_api {
    void *caller_context;
    void *caller_export_get;
    void *memory_data;
    void *memory_data_size;
    void *linker_define_func_unchecked;
    void *func_call_unchecked;
    void *trap_new;
    void *error_message;
    void *error_delete;
    void *byte_vec_delete;
    void *error_new;
    void *context_set_epoch_deadline;
    void *store_epoch_deadline_callback;
    void *engine_clone;
    void *engine_delete;
    void *engine_increment_epoch;
} wm_wasmtime_api;

/* Per-module limits; the host module has none beyond key/value size. */
typedef struct wm_limits {
    uint32_t key_size;      /* max key bytes */
    uint32_t value_size;    /* max value bytes */
    uint32_t handles;       /* max live handles */
    uint64_t bytes;         /* max live bytes charged to the module (see WM_ENTRY_COST) */
    uint64_t entries;       /* max live entries written by the module */
    uint32_t watches;       /* max pending watch_drop registrations */
    uint32_t trap_on_quota; /* 1: hitting a quota traps the guest */
    uint32_t time_ms;       /* max milliseconds a call into the module may run (0: no limit) */
} wm_limits;

/* One 16-byte Wasm value slot (wasmtime_val_raw_t). */
typedef struct wm_val_raw {
    int64_t lo;
    int64_t hi;
} wm_val_raw;

typedef struct wm_stats {
    uint64_t maps;               /* live anonymous maps */
    uint64_t named;              /* named maps */
    uint64_t entries;            /* entries in all live maps */
    uint64_t unreleased_borrows; /* borrows the broker had to end itself */
    uint64_t reclaimed;          /* maps reclaimed, by counting or by the collector */
    uint64_t cycles_reclaimed;   /* maps the cycle collector reclaimed */
    uint64_t collections;        /* cycle collections run */
    uint64_t modules;            /* modules loaded (the host not counted) */
    uint64_t links;              /* links (peer imports and the host's ways in) */
    uint64_t gc_work_bytes;      /* the cycle collector's work arrays, kept between collections */
} wm_stats;

/* One ownership event, recorded while tracing (trace.c). */
typedef struct wm_event {
    uint64_t seq;          /* 1, 2, ... per broker; a dropped event uses its number too */
    uint64_t map;          /* the map's id (0: none) */
    uint64_t other_map;    /* set_map, unset_map, get_map: the other map's id */
    uint32_t kind;         /* WM_EV_* */
    uint32_t module;       /* the acting module's id (0: the host) */
    uint32_t handle;
    uint32_t other_module; /* move/borrow/share/borrow_end: the receiver; call: the callee */
    uint32_t other_handle;
    uint32_t link;         /* call/return: the link's id */
    uint32_t flags;        /* WM_EVF_* */
    uint32_t unused;
} wm_event;

enum {
    WM_EV_NEW = 1,
    WM_EV_OPEN = 2,
    WM_EV_CLONE = 3,
    WM_EV_GET_MAP = 4,
    WM_EV_CLOSE = 5,
    WM_EV_MOVE = 6,
    WM_EV_BORROW = 7,
    WM_EV_BORROW_END = 8,
    WM_EV_SHARE = 9,
    WM_EV_SET_MAP = 10,
    WM_EV_UNSET_MAP = 11,
    WM_EV_RECLAIM = 12,
    WM_EV_CYCLE_RECLAIM = 13,
    WM_EV_TEARDOWN = 14,
    WM_EV_CALL = 15,
    WM_EV_RETURN = 16,
    WM_EVF_LEFT_OPEN = 1, /* borrow_end: the callee had not closed it */
    WM_EVF_TRAPPED = 2,   /* return: the call trapped */
    WM_EVF_TEARDOWN = 4,  /* close: done by a teardown */
    WM_EVF_BORROWED = 8   /* close: of a borrowed handle */
};

/* A snapshot of who holds what (snapshot.c), for leak reports and graphs. */
typedef struct wm_handle_info {
    uint64_t map; /* the map's id */
    uint32_t module;
    uint32_t handle;
    uint32_t busy;
    uint8_t state; /* WM_H_OWN or WM_H_BORROW */
    uint8_t rights;
    uint8_t unused[2];
} wm_handle_info;

typedef struct wm_map_info {
    uint64_t id;
    uint64_t refcount;
    uint64_t entries;
    uint64_t bytes;        /* keys and values */
    const uint8_t *name;   /* a named map's name (valid until the broker closes), or NULL */
    uint32_t name_len;
    uint32_t unused;
} wm_map_info;

typedef struct wm_edge_info {
    uint64_t parent; /* map ids: parent holds a reference to child under key */
    uint64_t child;
    uint32_t key_len; /* the whole key's length; key[] holds its first 48 bytes */
    uint8_t key[48];
} wm_edge_info;

/* Named maps in a backing store (sqlite, LevelDB, Redis).  With a store set, a
 * named map's entries live there: an operation on it is checked here as
 * on any map (FAULT, INVAL, handle, rights, TOOBIG), then answered by one
 * call of the store function, made without the broker lock held.  The
 * function returns an errno and fills the outputs; `buf` is the caller's
 * output buffer (guest memory for a guest). */
enum {
    WM_SOP_GET = 1,      /* key -> buf; out: the value's size (also on RANGE) */
    WM_SOP_SET = 2,      /* key, val */
    WM_SOP_DELETE = 3,   /* key */
    WM_SOP_EXISTS = 4,   /* key; out: 1 or 0 */
    WM_SOP_LEN = 5,      /* out: number of entries */
    WM_SOP_KEYS = 6,     /* cursor in/out -> buf; out: bytes used (needed on RANGE), count */
    WM_SOP_INCR = 7,     /* key, num = delta; out: the new value */
    WM_SOP_VERSION = 8,  /* key; out: the version */
    WM_SOP_SET_IF = 9,   /* key, val, num = expected */
    WM_SOP_GET_MANY = 10, /* val = the key list -> buf; out: bytes used (needed on RANGE) */
    WM_SOP_SET_MANY = 11  /* val = the items (already checked well-formed) */
};

typedef struct wm_store_req {
    uint32_t op;           /* WM_SOP_* */
    uint32_t map;          /* the map's name number: 0, 1, ... in order of first open */
    const uint8_t *name;   /* its name (UTF-8) */
    uint32_t name_len;
    uint32_t module;       /* the calling module's id (0: the host) */
    const uint8_t *key;
    uint32_t key_len;
    uint32_t val_len;
    const uint8_t *val;
    uint8_t *buf;
    uint32_t buf_cap;
    uint32_t count;        /* get_many, set_many: records given; keys: keys written (out) */
    int64_t num;
    uint64_t cursor;       /* in and out */
    uint64_t out;          /* out */
} wm_store_req;

typedef int (*wm_store_fn)(void *ctx, wm_store_req *req);

/* Back named maps opened from now on by `fn` (NULL: the C data plane;
 * calls on maps opened while a store was set then answer IO). */
void wm_broker_set_store(wm_broker *b, wm_store_fn fn, void *ctx);

/* The store function's only ways to write into the caller's buffer (guest
 * memory for a guest): each checks the capacity before it writes.
 *
 * Answer: req->out = len; RANGE (nothing written) when len > buf_cap,
 * else `data` is copied to buf and OK.
 * Pack: `count` batch records (u32 length + bytes) with lengths `lens`
 * (0xFFFFFFFF: absent, no bytes) and bytes taken in turn from `blob`
 * (`blob_len` of them); req->out = the size needed; RANGE (nothing
 * written) when it exceeds buf_cap; INVAL when `blob` is not exactly the
 * bytes `lens` asks for.
 * Split: the (offset, length) of each of `count` records of the batch in
 * req->val into pairs[2 * count]; INVAL (pairs unspecified) when the batch
 * does not hold `count` records within req->val_len. */
int wm_store_answer(wm_store_req *req, const uint8_t *data, uint64_t len);
int wm_records_pack(wm_store_req *req, const uint32_t *lens, uint32_t count, const uint8_t *blob,
                    uint64_t blob_len);
int wm_records_split(const wm_store_req *req, uint32_t count, uint32_t *pairs);

/* Named maps in LevelDB, answered in C (leveldb_store.c) through LevelDB's
 * C API, whose addresses come from the libleveldb plyvel's wheel carries:
 * entry point i is "leveldb_" + wm_ldb_entry_name(i), and `fns` holds
 * them in that order.  Three objects, each freed when nothing refers to
 * it any more:
 *   - wm_ldb: one open database of the process (open it once per
 *     directory); its mutex covers every read-then-write;
 *   - wm_ldb_store: one store's use of it (its sync option; closed or not);
 *   - wm_ldb_caller: a store function's context -- a store, and `failed`,
 *     which turns a failure's one line into the answer (IO) once no lock
 *     is held.  Its `failed_ctx` must outlive it. */
typedef struct wm_ldb wm_ldb;
typedef struct wm_ldb_store wm_ldb_store;
typedef struct wm_ldb_caller wm_ldb_caller;
typedef int (*wm_store_failed_fn)(void *ctx, wm_store_req *req, const char *message);
size_t wm_ldb_entry_count(void);
const char *wm_ldb_entry_name(size_t i);
/* Open (create if missing) the database at `path` and check its layout
 * key (written into an empty database); NULL with why not in err[err_cap]:
 * LevelDB's message, or what is wrong with the layout. */
wm_ldb *wm_ldb_open(void *const *fns, const char *path, char *err, size_t err_cap);
/* Close the database: calls from now on answer "closed"; waits for the
 * calls in flight, then closes it (the struct goes with its last user). */
void wm_ldb_close(wm_ldb *d);
wm_ldb_store *wm_ldb_store_new(wm_ldb *d, uint32_t sync);
/* Calls through the store answer "closed" from now on. */
void wm_ldb_store_close(wm_ldb_store *s);
void wm_ldb_store_free(wm_ldb_store *s);
wm_ldb_caller *wm_ldb_caller_new(wm_ldb_store *s, wm_store_failed_fn failed, void *failed_ctx);
void wm_ldb_caller_free(wm_ldb_caller *c);
/* The store function: ctx is a wm_ldb_caller (wm_broker_set_store). */
int wm_ldb_call(void *ctx, wm_store_req *req);
/* KEYS for Store.keys: at most req->count keys (0: no limit), each record
 * u32 length, u64 sequence number, key; otherwise as wm_ldb_call's. */
int wm_ldb_keys_numbered(void *ctx, wm_store_req *req);

/* Layout sizes the C code was compiled against (checked against the
 * installed wasmtime's ctypes structs at import). */
size_t wm_sizeof_wasmtime_memory(void);
size_t wm_sizeof_wasmtime_func(void);
size_t wm_sizeof_wasmtime_val_raw(void);
size_t wm_sizeof_wasmtime_extern(void);

/* Broker lifetime.  `seed` randomises key hashing. */
wm_broker *wm_broker_new(const wm_wasmtime_api *api, uint64_t seed, const wm_limits *host_limits);
/* The broker's wasmtime engine (a wasm_engine_t*, configured for epoch
 * interruption): the process's ticker advances its epoch while calls run,
 * which is what enforces time limits.  Released by close and free. */
int wm_broker_set_engine(wm_broker *b, void *engine);
void wm_broker_free(wm_broker *b);
/* Free every map, handle and notice now, under the lock; the struct stays
 * valid (an operation racing with this finds empty tables: BADF) until
 * wm_broker_free. */
void wm_broker_close(wm_broker *b);
wm_module *wm_broker_host(wm_broker *b);
void wm_broker_stats(wm_broker *b, wm_stats *out);
uint64_t wm_broker_map_id(wm_broker *b, wm_module *m, uint32_t h);
/* The cycle collector: collect now (the number of maps reclaimed), and
 * collect by itself after `threshold` releases that left a map referenced
 * by other maps alive (0: only on demand). */
uint64_t wm_broker_collect(wm_broker *b);
void wm_broker_set_gc_threshold(wm_broker *b, uint64_t threshold);
/* Recount every reference from scratch and compare with the refcount
 * table: 0 when consistent, else the number of rows that disagree. */
uint64_t wm_broker_check(wm_broker *b);
/* Snapshots: each fills up to `cap` records and returns how many there
 * are in all (call again with a bigger buffer when that is more). */
size_t wm_snapshot_handles(wm_broker *b, wm_handle_info *out, size_t cap);
size_t wm_snapshot_maps(wm_broker *b, wm_map_info *out, size_t cap);
size_t wm_snapshot_edges(wm_broker *b, wm_edge_info *out, size_t cap);
/* The ownership tracer: record up to `limit` events between takes (0:
 * off; the buffer is 56 bytes an event, given back when a take empties
 * it); take them, oldest first; how many were lost to the limit (a lost
 * event still uses its seq, so the taken events show a gap there). */
int wm_broker_trace(wm_broker *b, uint32_t limit);
size_t wm_broker_take_events(wm_broker *b, wm_event *out, size_t cap);
uint64_t wm_broker_events_dropped(wm_broker *b);
/* Whether this build records events at all (not with -DWM_NO_TRACE). */
uint32_t wm_trace_compiled(void);
/* Strict borrows: a callee that returns with a borrow still open traps. */
void wm_broker_set_strict_borrows(wm_broker *b, uint32_t strict);
/* The module (id + 1) where the last trap of a call on this thread began, then 0. */
uint32_t wm_broker_take_trap_origin(wm_broker *b);
/* Drop notices queued by reclaims: whether any wait, and up to `cap`
 * (module id, cookie) pairs, oldest first. */
uint32_t wm_broker_has_notices(wm_broker *b);
/* After a host operation: whether the host has work to do (traced events or
 * drop notices wait), in one lock. */
uint32_t wm_broker_host_after(wm_broker *b);
size_t wm_broker_take_notices(wm_broker *b, uint32_t *modules, int64_t *cookies, size_t cap);

/* Modules: one handle table, limits, grants and memory each.  `name` is
 * for messages only. */
wm_module *wm_module_new(wm_broker *b, const wm_limits *limits, const char *name);
int wm_module_grant(wm_module *m, const uint8_t *name, uint32_t name_len, uint32_t rights);
void wm_module_set_memory(wm_module *m, const void *wasmtime_memory);
/* The module's own wasmtime store (wasmtime_store_t*) and its context:
 * calls into the module run there, under its time limit. */
void wm_module_set_store(wm_module *m, void *store, void *context);
/* Around code the host runs in the module's store itself (instantiation,
 * so its start function): the time limit counts from here.  Any other
 * call into the module goes through a link, which does this itself. */
void wm_module_enter(wm_module *m);
void wm_module_leave(wm_module *m);
/* Define WASI's poll_oneoff for the module (shadowing wasmtime's in
 * `linker`): a clock sleep counts against the time limit and is cut short
 * there with a trap.  Returns a wasmtime_error_t* or NULL. */
void *wm_define_wasi_poll(wm_module *m, void *linker, void *functype);
uint32_t wm_module_id(wm_module *m);
uint32_t wm_module_handle_count(wm_module *m);
uint64_t wm_module_bytes_used(wm_module *m);
uint64_t wm_module_entries_used(wm_module *m);
/* Teardown: close every handle of the module as if by `close`; calls into
 * it trap from now on.  Only between calls: a module must not be torn down
 * while a call it lent a handle in is still running (the broker only tears
 * down after the top-level call has returned). */
void wm_module_teardown(wm_module *m);
/* Mark the module dead, without waiting: no new call takes it; calls
 * running in it on other threads go on until they return.  The caller
 * then tears it down (which waits for them) holding no lock such a call
 * might need. */
void wm_module_mark_dead(wm_module *m);
/* Hold `m` for this thread while the host runs ABI operations for it
 * (tools and tests: `NativeModule.op_*`), as a call into it would -- its
 * own thread writes its handle table and quota counts without the broker
 * lock.  OK: held, give it back with wm_module_unhold; WM_HOLD_NONE: no
 * need (it is the host, or a call of this thread runs in it); BUSY:
 * another thread ran in it for wait_ms, or it is being replaced. */
enum { WM_HOLD_NONE = 1000 };
int wm_module_hold(wm_module *m, uint64_t wait_ms);
void wm_module_unhold(wm_module *m);
/* Unload: tear down, then give back everything the module holds in the
 * core -- its links and the host's links into it (peer links into it wait
 * again), its watch registrations and queued notices, its handle table,
 * grants, name and id (entries it wrote are charged to the host from now
 * on).  `m` is freed: no pointer to it may be used afterwards, and no Wasm
 * may run in its store again. */
void wm_module_unload(wm_module *m);

/* Wasmtime glue: the ABI functions and the fast export-call path. */
size_t wm_abi_count(void);
const char *wm_abi_name(size_t i);
/* Define every ABI function in `linker` (a wasmtime_linker_t*) with the
 * module as env; functypes[i] is the wasm_functype_t* for wm_abi_name(i).
 * Returns a wasmtime_error_t* (NULL on success). */
void *wm_define_abi(wm_module *m, void *linker, void **functypes);

/* Cross-module calls.  A link is one caller's way to one export: a guest
 * import defined as a C trampoline, or the host's way in.  It translates
 * declared handle parameters and results (own/borrow/share) and calls the
 * export with wasmtime_func_call_unchecked. */
wm_link *wm_link_new(wm_module *caller, const char *label, uint32_t nparams, uint32_t nresults);
uint32_t wm_link_id(wm_link *l);
/* A module's instances (pool.c): n of them (1..WM_MAX_INSTANCES; else
 * NULL), each set once it is loaded.  A call through a link into the pool
 * runs in an instance the calling thread already runs in, else a free one,
 * else waits for one within the caller's time limit.  Free it after every
 * module in it is unloaded. */
typedef struct wm_pool wm_pool;
wm_pool *wm_pool_new(uint32_t n);
void wm_pool_set(wm_pool *p, uint32_t i, wm_module *m);
void wm_pool_free(wm_pool *p);
/* Take instance `m` (torn down, so no new call takes it) for good, once
 * no thread runs in it, waiting up to wait_ms: OK, or BUSY when it stays
 * busy or this very thread runs in it.  Then point the links into its
 * pool at the new instance's functions (wm_link_set_func), wm_pool_set the
 * new one in its place, and unload `m`. */
int wm_pool_retire(wm_module *m, uint64_t wait_ms);
/* A new instance is coming for one a trap tore down (delta +1), or came or
 * failed (-1): while one is coming, calls into a pool with no live
 * instance wait for it instead of trapping. */
void wm_pool_replacing(wm_pool *p, int delta);
/* Point the link at an export of `pool`: `funcs` holds its wasmtime_func_t
 * in each instance, in pool order; `how` nparams then nresults WM_PASS_*
 * codes.  OK, or QUOTA when out of memory. */
int wm_link_resolve(wm_link *l, wm_pool *pool, const void *funcs, const uint8_t *how);
void wm_link_unresolve(wm_link *l);
/* Instance i of the link's pool has a new `func`: INVAL when out of range. */
int wm_link_set_func(wm_link *l, uint32_t i, const void *func);
/* While `loading` (a module of the link's target name) instantiates, a call
 * through the unresolved link is that module's fault: its start function
 * called back into it (NULL: over).  Resolving clears it. */
void wm_link_set_loading(wm_link *l, wm_module *loading);
/* Define the link in `linker` as the import module.name of type `functype`.
 * Returns a wasmtime_error_t* or NULL. */
void *wm_link_define(wm_link *l, void *linker, const char *module, const char *name, void *functype);
/* Call through the link (host side).  `masks`, if not NULL, holds a rights
 * mask per parameter.  Returns OK (with *trap a wasm_trap_t* if the call
 * trapped), or the errno of the handle parameter *bad_param that could
 * not pass (nothing was called). */
int wm_link_call(wm_link *l, wm_val_raw *args, size_t n, const uint8_t *masks,
                 void **trap, uint32_t *bad_param);
/* Host functions (hostfn.c): an import the app defines in Python.  The
 * link's caller is the importing module and its target the host module;
 * a guest's call passes its declared handle parameters into the host
 * module as for any link (all or none), then calls `fn(ctx, call)` once,
 * without the lock.  `fn` reads and writes the guest's memory through
 * wm_hostcall_read/write, puts the results in call->args and, for declared
 * own/share results, passes them with wm_hostcall_results.  It returns 0,
 * or not 0 with one line in call->message: the guest traps, blamed on it.
 * Borrows end after `fn` returns, as for any link. */
typedef struct wm_hostcall {
    wm_link *link;
    void *caller;       /* the wasmtime_caller_t of the guest's call */
    wm_val_raw *args;   /* parameters in, results out */
    int64_t *words;     /* the same slots as int64 words: slot i is words[2 * i] */
    char *message;      /* the trap's words when fn fails */
    uint32_t message_cap;
    uint32_t module;    /* the calling module's id */
} wm_hostcall;
typedef int (*wm_hostfn)(void *ctx, wm_hostcall *call);
/* Make `l` (from wm_link_new) a host function: `how` holds nparams then
 * nresults WM_PASS_* codes.  Then wm_link_define it into a linker. */
void wm_link_serve(wm_link *l, wm_hostfn fn, void *ctx, const uint8_t *how);
/* Whether a host function is running on this thread (Broker.call refuses). */
int wm_inside_host_function(void);
/* [ptr, ptr + len) of the caller's memory: FAULT when not all inside it. */
int wm_hostcall_read(wm_hostcall *call, uint32_t ptr, uint8_t *out, uint32_t len);
int wm_hostcall_write(wm_hostcall *call, uint32_t ptr, const uint8_t *data, uint32_t len);
/* The caller's memory size in bytes (0: it has none). */
uint64_t wm_hostcall_memory_size(wm_hostcall *call);
/* Pass the declared handle results in call->args (host handles) to the
 * caller, all or none; on failure the errno, *bad the result, *twice
 * whether one moved twice. */
int wm_hostcall_results(wm_hostcall *call, uint32_t *bad, uint32_t *twice);

/* Why `handle` could not pass as `how` (WM_PASS_*) with errno `err`, and
 * what to do, as one sentence in out[cap] (cut short to fit); the length
 * it needed.  `flags`: WM_WHY_RESULT (a result the callee returned, not a
 * parameter), WM_WHY_TWICE (BUSY because it appears twice, once as own). */
enum { WM_WHY_RESULT = 1, WM_WHY_TWICE = 2 };
int wm_pass_explain(char *out, size_t cap, int err, uint32_t how, uint32_t flags, uint32_t handle);

/* The ABI operations on already-checked spans, for any module (the host
 * API uses the host module).  Same semantics and errnos as the guest ABI.
 * Every pointer must be non-NULL, also for a zero length. */
int wm_op_open(wm_module *m, const uint8_t *name, uint32_t name_len, uint32_t rights, uint32_t *out_h);
int wm_op_new(wm_module *m, uint32_t *out_h);
int wm_op_close(wm_module *m, uint32_t h);
int wm_op_clone(wm_module *m, uint32_t h, uint32_t rights, uint32_t *out_h);
int wm_op_get(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint8_t *buf, uint32_t buf_cap, uint32_t *out_len);
int wm_op_set(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, const uint8_t *val, uint32_t val_len);
int wm_op_delete(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len);
int wm_op_exists(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint32_t *out);
int wm_op_len(wm_module *m, uint32_t h, uint32_t *out);
int wm_op_keys(wm_module *m, uint32_t h, uint64_t *cursor, uint8_t *buf, uint32_t buf_cap, uint32_t *out_used, uint32_t *out_count);
int wm_op_incr(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, int64_t delta, int64_t *out);
int wm_op_version(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint64_t *out);
int wm_op_set_if(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, const uint8_t *val, uint32_t val_len, int64_t expected);
int wm_op_get_many(wm_module *m, uint32_t h, const uint8_t *keys, uint32_t keys_len, uint8_t *buf, uint32_t buf_cap, uint32_t *out_used);
int wm_op_set_many(wm_module *m, uint32_t h, const uint8_t *items, uint32_t items_len);
int wm_op_set_map(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint32_t child_h);
int wm_op_get_map(wm_module *m, uint32_t h, const uint8_t *key, uint32_t key_len, uint32_t *out_h);
int wm_op_watch_drop(wm_module *m, uint32_t h, int64_t cookie);

#endif
