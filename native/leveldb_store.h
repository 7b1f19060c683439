/* leveldb_store.h: what the two halves of the LevelDB store share --
 * leveldb_store.c answers the operations, leveldb_db.c opens and closes
 * the database and lets calls in (and waits for them on close). */
#ifndef WM_LEVELDB_STORE_H
#define WM_LEVELDB_STORE_H

#include "leveldb_api.h"
#include "wm_core.h"

static const char NO_MEMORY[] = "out of memory";

struct wm_ldb {
    ldb_api api;
    ldb_t *db;             /* NULL once closed */
    ldb_readoptions *read; /* the latest state, for every reader */
    ldb_writebatch *batch; /* reused, under `lock` */
    pthread_mutex_t lock;  /* every read-then-write of this database */
    pthread_mutex_t life;  /* with `idle`: close waits for the calls in flight */
    pthread_cond_t idle;
    uint64_t calls;   /* in flight (atomic) */
    uint32_t closing; /* atomic */
    uint32_t refs;    /* atomic: the opener's, and one per wm_ldb_store */
};

struct wm_ldb_store {
    wm_ldb *db;
    ldb_writeoptions *write; /* sync=full: synced before a write returns */
    uint32_t closed;         /* atomic */
    uint32_t refs;           /* atomic: its owner's, and one per caller */
};

struct wm_ldb_caller {
    wm_ldb_store *store;
    wm_store_failed_fn failed;
    void *failed_ctx;
};

/* Why an operation failed: LevelDB's message (its malloc), or a fixed one. */
typedef struct fault {
    char *leveldb;
    const char *what;
} fault;

static inline bool faulty(const fault *f) { return f->leveldb || f->what; }

/* Answer `req` (leveldb_store.c); a failure goes in *f.  `numbered`:
 * KEYS with each key's sequence number (the Python store's `keys`). */
int wm_ldb_run(wm_ldb_caller *c, wm_store_req *req, bool numbered, fault *f);

#endif
