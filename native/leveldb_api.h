/* leveldb_api.h: the entry points of LevelDB's C API (leveldb/c.h) that
 * leveldb_store.c calls.
 *
 * No LevelDB header and no link step: the addresses come from the
 * libleveldb that plyvel's wheel carries, looked up by name in Python
 * (broker/_native/leveldb_door.py) in the order of this list, which is the
 * one place the names and signatures are written.  c.h has kept these
 * signatures since LevelDB 1.2 (2011); 1.22 only spelled `unsigned char`
 * as `uint8_t`, the same ABI.  The store needs 1.20 or later (checked in
 * Python with major_version/minor_version before anything else is called).
 */
#ifndef WM_LEVELDB_API_H
#define WM_LEVELDB_API_H

#include <stddef.h>
#include <stdint.h>

typedef struct ldb_t ldb_t;
typedef struct ldb_options ldb_options;
typedef struct ldb_readoptions ldb_readoptions;
typedef struct ldb_writeoptions ldb_writeoptions;
typedef struct ldb_writebatch ldb_writebatch;
typedef struct ldb_iterator ldb_iterator;
typedef struct ldb_snapshot ldb_snapshot;

/* X(field, return type, parameters): field is the symbol without "leveldb_". */
#define WM_LEVELDB_ENTRY_POINTS(X)                                                                \
    X(open, ldb_t *, (const ldb_options *, const char *, char **))                                \
    X(close, void, (ldb_t *))                                                                     \
    X(get, char *, (ldb_t *, const ldb_readoptions *, const char *, size_t, size_t *, char **))   \
    X(write, void, (ldb_t *, const ldb_writeoptions *, ldb_writebatch *, char **))                \
    X(free, void, (void *))                                                                       \
    X(options_create, ldb_options *, (void))                                                      \
    X(options_destroy, void, (ldb_options *))                                                     \
    X(options_set_create_if_missing, void, (ldb_options *, uint8_t))                              \
    X(readoptions_create, ldb_readoptions *, (void))                                              \
    X(readoptions_destroy, void, (ldb_readoptions *))                                             \
    X(readoptions_set_snapshot, void, (ldb_readoptions *, const ldb_snapshot *))                  \
    X(writeoptions_create, ldb_writeoptions *, (void))                                            \
    X(writeoptions_destroy, void, (ldb_writeoptions *))                                           \
    X(writeoptions_set_sync, void, (ldb_writeoptions *, uint8_t))                                 \
    X(writebatch_create, ldb_writebatch *, (void))                                                \
    X(writebatch_destroy, void, (ldb_writebatch *))                                               \
    X(writebatch_clear, void, (ldb_writebatch *))                                                 \
    X(writebatch_put, void, (ldb_writebatch *, const char *, size_t, const char *, size_t))       \
    X(writebatch_delete, void, (ldb_writebatch *, const char *, size_t))                          \
    X(create_iterator, ldb_iterator *, (ldb_t *, const ldb_readoptions *))                        \
    X(iter_destroy, void, (ldb_iterator *))                                                       \
    X(iter_seek_to_first, void, (ldb_iterator *))                                                 \
    X(iter_seek, void, (ldb_iterator *, const char *, size_t))                                    \
    X(iter_valid, uint8_t, (const ldb_iterator *))                                                \
    X(iter_next, void, (ldb_iterator *))                                                          \
    X(iter_key, const char *, (const ldb_iterator *, size_t *))                                   \
    X(iter_value, const char *, (const ldb_iterator *, size_t *))                                 \
    X(iter_get_error, void, (const ldb_iterator *, char **))                                      \
    X(create_snapshot, const ldb_snapshot *, (ldb_t *))                                           \
    X(release_snapshot, void, (ldb_t *, const ldb_snapshot *))                                    \
    X(major_version, int, (void))                                                                 \
    X(minor_version, int, (void))

/* The entry points, typed: filled from the addresses Python hands over. */
typedef struct ldb_api {
#define WM_LDB_FIELD(name, ret, params) ret(*name) params;
    WM_LEVELDB_ENTRY_POINTS(WM_LDB_FIELD)
#undef WM_LDB_FIELD
} ldb_api;

#endif
