/* wasi_map.h: the WASI-Map v1 guest ABI for C guests.
 * Generated from broker/abi/ by `python -m broker.abi`; do not edit. */
#ifndef WASI_MAP_H
#define WASI_MAP_H

#include <stdint.h>

typedef uint32_t wm_handle_t;
typedef uint32_t wm_errno_t;

#define WM_OK 0u  /* success */
#define WM_BADF 1u  /* not a handle of this module (never issued to it) */
#define WM_STALE 2u  /* a handle this module had, but it was closed or moved away */
#define WM_NOENT 3u  /* key absent */
#define WM_ACCES 4u  /* right missing, name not granted, or more rights than the grant */
#define WM_FAULT 5u  /* a pointer/length pair outside the guest's memory */
#define WM_RANGE 6u  /* output buffer too small (needed size written where the call says) */
#define WM_INVAL 7u  /* bad argument: unknown rights bits, malformed batch, bad name */
#define WM_BUSY 8u  /* the handle is lent to a call in progress */
#define WM_QUOTA 9u  /* a module limit reached (handles, bytes, entries) */
#define WM_TOOBIG 10u  /* key or value over the configured size limit */
#define WM_CONFLICT 11u  /* set_if version mismatch */
#define WM_TYPE 12u  /* map reference where bytes were expected, or the reverse */
#define WM_IO 13u  /* the backing store failed; the operation did not happen */

#define WM_READ 1u
#define WM_WRITE 2u

#define WM_IMPORT(n) __attribute__((import_module("wasi_map"), import_name(n)))

#ifdef __cplusplus
extern "C" {
#endif

/* open a named map granted to this module */
WM_IMPORT("open") wm_errno_t wm_open(uint32_t name_ptr, uint32_t name_len, uint32_t rights, uint32_t out_h);
/* a new anonymous map, owned by the caller, rights READ|WRITE */
WM_IMPORT("new") wm_errno_t wm_new(uint32_t out_h);
/* give up this handle */
WM_IMPORT("close") wm_errno_t wm_close(uint32_t h);
/* a second owning handle, rights a subset of h's */
WM_IMPORT("clone") wm_errno_t wm_clone(uint32_t h, uint32_t rights, uint32_t out_h);
/* copy the value into buf */
WM_IMPORT("get") wm_errno_t wm_get(uint32_t h, uint32_t key_ptr, uint32_t key_len, uint32_t buf_ptr, uint32_t buf_cap, uint32_t out_len);
/* insert or replace */
WM_IMPORT("set") wm_errno_t wm_set(uint32_t h, uint32_t key_ptr, uint32_t key_len, uint32_t val_ptr, uint32_t val_len);
/* remove; OK also when absent */
WM_IMPORT("delete") wm_errno_t wm_delete(uint32_t h, uint32_t key_ptr, uint32_t key_len);
/* 1 or 0 */
WM_IMPORT("exists") wm_errno_t wm_exists(uint32_t h, uint32_t key_ptr, uint32_t key_len, uint32_t out_u32);
/* number of entries */
WM_IMPORT("len") wm_errno_t wm_len(uint32_t h, uint32_t out_u32);
/* one page of keys */
WM_IMPORT("keys") wm_errno_t wm_keys(uint32_t h, uint32_t cursor_ptr, uint32_t buf_ptr, uint32_t buf_cap, uint32_t out_used, uint32_t out_count);
/* atomic add on an 8-byte LE i64 */
WM_IMPORT("incr") wm_errno_t wm_incr(uint32_t h, uint32_t key_ptr, uint32_t key_len, int64_t delta, uint32_t out_i64);
/* the key's version, 0 when absent */
WM_IMPORT("version") wm_errno_t wm_version(uint32_t h, uint32_t key_ptr, uint32_t key_len, uint32_t out_u64);
/* set only if the version equals expected */
WM_IMPORT("set_if") wm_errno_t wm_set_if(uint32_t h, uint32_t key_ptr, uint32_t key_len, uint32_t val_ptr, uint32_t val_len, int64_t expected);
/* batch get */
WM_IMPORT("get_many") wm_errno_t wm_get_many(uint32_t h, uint32_t keys_ptr, uint32_t keys_len, uint32_t buf_ptr, uint32_t buf_cap, uint32_t out_used);
/* batch set, all or nothing */
WM_IMPORT("set_many") wm_errno_t wm_set_many(uint32_t h, uint32_t items_ptr, uint32_t items_len);
/* store a reference to child's map */
WM_IMPORT("set_map") wm_errno_t wm_set_map(uint32_t h, uint32_t key_ptr, uint32_t key_len, uint32_t child_h);
/* a new owning handle to the referenced map */
WM_IMPORT("get_map") wm_errno_t wm_get_map(uint32_t h, uint32_t key_ptr, uint32_t key_len, uint32_t out_h);
/* call wasi_map_on_drop(cookie) when the map is reclaimed */
WM_IMPORT("watch_drop") wm_errno_t wm_watch_drop(uint32_t h, int64_t cookie);

#ifdef __cplusplus
}
#endif

#endif
