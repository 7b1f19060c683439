/* Generated from broker/abi/ by `python -m broker.abi`; do not edit. */
#ifndef WM_ABI_GEN_H
#define WM_ABI_GEN_H

#define WM_OK 0
#define WM_BADF 1
#define WM_STALE 2
#define WM_NOENT 3
#define WM_ACCES 4
#define WM_FAULT 5
#define WM_RANGE 6
#define WM_INVAL 7
#define WM_BUSY 8
#define WM_QUOTA 9
#define WM_TOOBIG 10
#define WM_CONFLICT 11
#define WM_TYPE 12
#define WM_IO 13
#define WM_ERRNO_MAX 13
#define WM_ERRNO_NAMES {"OK", "BADF", "STALE", "NOENT", "ACCES", "FAULT", "RANGE", "INVAL", "BUSY", "QUOTA", "TOOBIG", "CONFLICT", "TYPE", "IO"}

#define WM_RIGHT_READ 1
#define WM_RIGHT_WRITE 2
#define WM_RIGHTS_ALL 3

/* How a handle passes (PassKind, or'd with WM_PASS_READONLY for ':r'). */
#define WM_PASS_PLAIN 0
#define WM_PASS_OWN 1
#define WM_PASS_BORROW 2
#define WM_PASS_SHARE 3
#define WM_PASS_KIND 3
#define WM_PASS_READONLY 4

/* A handle number's layout, and a handle table slot's state (HandleState). */
#define WM_HANDLE_INDEX_BITS 21
#define WM_HANDLE_MAX_GEN 1023u
#define WM_H_FREE 0
#define WM_H_OWN 1
#define WM_H_BORROW 2

/* What the `bytes` quota charges beyond keys and values, and fixed limits. */
#define WM_ENTRY_COST 88
#define WM_MAP_COST 160
#define WM_MAX_NAME_LEN 1024u
#define WM_MAX_MODULES 65535u
#define WM_MAX_INSTANCES 256u
#define WM_MAX_HANDLE_ARGS 64

/* The rights each function's handles must carry (else ACCES). */
#define WM_NEEDS_CLOSE 0
#define WM_NEEDS_CLONE 0
#define WM_NEEDS_GET (WM_RIGHT_READ)
#define WM_NEEDS_SET (WM_RIGHT_WRITE)
#define WM_NEEDS_DELETE (WM_RIGHT_WRITE)
#define WM_NEEDS_EXISTS (WM_RIGHT_READ)
#define WM_NEEDS_LEN (WM_RIGHT_READ)
#define WM_NEEDS_KEYS (WM_RIGHT_READ)
#define WM_NEEDS_INCR (WM_RIGHT_READ | WM_RIGHT_WRITE)
#define WM_NEEDS_VERSION (WM_RIGHT_READ)
#define WM_NEEDS_SET_IF (WM_RIGHT_READ | WM_RIGHT_WRITE)
#define WM_NEEDS_GET_MANY (WM_RIGHT_READ)
#define WM_NEEDS_SET_MANY (WM_RIGHT_WRITE)
#define WM_NEEDS_SET_MAP (WM_RIGHT_WRITE)
#define WM_NEEDS_SET_MAP_CHILD (WM_RIGHT_READ | WM_RIGHT_WRITE)
#define WM_NEEDS_GET_MAP (WM_RIGHT_READ)
#define WM_NEEDS_WATCH_DROP 0

/* Each callback's arguments and the guest memory it touches (native/abi.c). */
#define WM_FIXED_LEN 0xFF
#define WM_ARGS_open \
    enum { A_name_ptr = 0, A_name_len = 1, A_rights = 2, A_out_h = 3, A_COUNT_ = 4 }; \
    enum { S_name_ptr = 0, S_out_h = 1, S_COUNT_ = 2 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_name_ptr, A_name_len, 0}, {A_out_h, WM_FIXED_LEN, 4}};
#define WM_ARGS_new \
    enum { A_out_h = 0, A_COUNT_ = 1 }; \
    enum { S_out_h = 0, S_COUNT_ = 1 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_out_h, WM_FIXED_LEN, 4}};
#define WM_ARGS_close \
    enum { A_h = 0, A_COUNT_ = 1 }; \
    enum { S_COUNT_ = 0 };
#define WM_ARGS_clone \
    enum { A_h = 0, A_rights = 1, A_out_h = 2, A_COUNT_ = 3 }; \
    enum { S_out_h = 0, S_COUNT_ = 1 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_out_h, WM_FIXED_LEN, 4}};
#define WM_ARGS_get \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_buf_ptr = 3, A_buf_cap = 4, A_out_len = 5, A_COUNT_ = 6 }; \
    enum { S_key_ptr = 0, S_buf_ptr = 1, S_out_len = 2, S_COUNT_ = 3 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}, {A_buf_ptr, A_buf_cap, 0}, {A_out_len, WM_FIXED_LEN, 4}};
#define WM_ARGS_set \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_val_ptr = 3, A_val_len = 4, A_COUNT_ = 5 }; \
    enum { S_key_ptr = 0, S_val_ptr = 1, S_COUNT_ = 2 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}, {A_val_ptr, A_val_len, 0}};
#define WM_ARGS_delete \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_COUNT_ = 3 }; \
    enum { S_key_ptr = 0, S_COUNT_ = 1 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}};
#define WM_ARGS_exists \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_out_u32 = 3, A_COUNT_ = 4 }; \
    enum { S_key_ptr = 0, S_out_u32 = 1, S_COUNT_ = 2 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}, {A_out_u32, WM_FIXED_LEN, 4}};
#define WM_ARGS_len \
    enum { A_h = 0, A_out_u32 = 1, A_COUNT_ = 2 }; \
    enum { S_out_u32 = 0, S_COUNT_ = 1 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_out_u32, WM_FIXED_LEN, 4}};
#define WM_ARGS_keys \
    enum { A_h = 0, A_cursor_ptr = 1, A_buf_ptr = 2, A_buf_cap = 3, A_out_used = 4, A_out_count = 5, A_COUNT_ = 6 }; \
    enum { S_cursor_ptr = 0, S_buf_ptr = 1, S_out_used = 2, S_out_count = 3, S_COUNT_ = 4 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_cursor_ptr, WM_FIXED_LEN, 8}, {A_buf_ptr, A_buf_cap, 0}, {A_out_used, WM_FIXED_LEN, 4}, {A_out_count, WM_FIXED_LEN, 4}};
#define WM_ARGS_incr \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_delta = 3, A_out_i64 = 4, A_COUNT_ = 5 }; \
    enum { S_key_ptr = 0, S_out_i64 = 1, S_COUNT_ = 2 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}, {A_out_i64, WM_FIXED_LEN, 8}};
#define WM_ARGS_version \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_out_u64 = 3, A_COUNT_ = 4 }; \
    enum { S_key_ptr = 0, S_out_u64 = 1, S_COUNT_ = 2 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}, {A_out_u64, WM_FIXED_LEN, 8}};
#define WM_ARGS_set_if \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_val_ptr = 3, A_val_len = 4, A_expected = 5, A_COUNT_ = 6 }; \
    enum { S_key_ptr = 0, S_val_ptr = 1, S_COUNT_ = 2 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}, {A_val_ptr, A_val_len, 0}};
#define WM_ARGS_get_many \
    enum { A_h = 0, A_keys_ptr = 1, A_keys_len = 2, A_buf_ptr = 3, A_buf_cap = 4, A_out_used = 5, A_COUNT_ = 6 }; \
    enum { S_keys_ptr = 0, S_buf_ptr = 1, S_out_used = 2, S_COUNT_ = 3 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_keys_ptr, A_keys_len, 0}, {A_buf_ptr, A_buf_cap, 0}, {A_out_used, WM_FIXED_LEN, 4}};
#define WM_ARGS_set_many \
    enum { A_h = 0, A_items_ptr = 1, A_items_len = 2, A_COUNT_ = 3 }; \
    enum { S_items_ptr = 0, S_COUNT_ = 1 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_items_ptr, A_items_len, 0}};
#define WM_ARGS_set_map \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_child_h = 3, A_COUNT_ = 4 }; \
    enum { S_key_ptr = 0, S_COUNT_ = 1 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}};
#define WM_ARGS_get_map \
    enum { A_h = 0, A_key_ptr = 1, A_key_len = 2, A_out_h = 3, A_COUNT_ = 4 }; \
    enum { S_key_ptr = 0, S_out_h = 1, S_COUNT_ = 2 }; \
    static const wm_span SPANS_[S_COUNT_] = {{A_key_ptr, A_key_len, 0}, {A_out_h, WM_FIXED_LEN, 4}};
#define WM_ARGS_watch_drop \
    enum { A_h = 0, A_cookie = 1, A_COUNT_ = 2 }; \
    enum { S_COUNT_ = 0 };

/* X(name, number of params) for every implemented function. */
#define WM_ABI_FUNCTIONS(X) \
    X(open, 4) \
    X(new, 1) \
    X(close, 1) \
    X(clone, 3) \
    X(get, 6) \
    X(set, 5) \
    X(delete, 3) \
    X(exists, 4) \
    X(len, 2) \
    X(keys, 6) \
    X(incr, 5) \
    X(version, 4) \
    X(set_if, 6) \
    X(get_many, 6) \
    X(set_many, 3) \
    X(set_map, 4) \
    X(get_map, 4) \
    X(watch_drop, 2) \

#define WM_ABI_COUNT 18

#endif
