/* wasmtime_abi.h: the few wasmtime C-API types and entry points we use.
 *
 * No wasmtime header is needed: the layouts are restated here and pinned by
 * _Static_assert, and broker/_native/wasmtime_layouts.py compares the same
 * sizes with the installed wasmtime-py's ctypes structs at import, refusing
 * to run when they differ (the layouts changed between wasmtime majors).
 */
#ifndef WM_WASMTIME_ABI_H
#define WM_WASMTIME_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WM_WASMTIME_MEMORY_SIZE 24 /* wasmtime 50: {u64 store_id; u32; u32} */
#define WM_WASMTIME_FUNC_SIZE 16   /* {u64 store_id; void *} */
#define WM_WASMTIME_VAL_RAW_SIZE 16
#define WM_WASMTIME_EXTERN_SIZE 32 /* {u8 kind; union of the above} */
#define WM_WASMTIME_EXTERN_MEMORY 3
#define WM_WASMTIME_EXTERN_SHAREDMEMORY 4

typedef struct wt_context wt_context;
typedef struct wt_store wt_store;
typedef struct wt_caller wt_caller;
typedef struct wt_trap wt_trap;
typedef struct wt_error wt_error;
typedef struct wt_linker wt_linker;
typedef struct wt_functype wt_functype;

/* Opaque to us: copied whole, never looked into. */
typedef struct wt_memory {
    uint64_t opaque[3];
} wt_memory;

typedef struct wt_func {
    uint64_t opaque[2];
} wt_func;

typedef union wt_val_raw {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    uint8_t v128[16];
    void *funcref;
} wt_val_raw;

typedef struct wt_extern {
    uint8_t kind;
    union {
        wt_func func;
        wt_memory memory;
        void *sharedmemory;
    } of;
} wt_extern;

_Static_assert(sizeof(wt_memory) == WM_WASMTIME_MEMORY_SIZE, "wasmtime_memory_t layout");
_Static_assert(sizeof(wt_func) == WM_WASMTIME_FUNC_SIZE, "wasmtime_func_t layout");
_Static_assert(sizeof(wt_val_raw) == WM_WASMTIME_VAL_RAW_SIZE, "wasmtime_val_raw_t layout");
_Static_assert(sizeof(wt_extern) == WM_WASMTIME_EXTERN_SIZE, "wasmtime_extern_t layout");

typedef struct wt_byte_vec { /* wasm_byte_vec_t, wasm_name_t */
    size_t size;
    char *data;
} wt_byte_vec;

typedef wt_trap *(*wt_unchecked_cb)(void *env, wt_caller *caller, wt_val_raw *args_and_results,
                                    size_t n);

/* wasmtime_store_epoch_deadline_callback's callback: an error ends the
 * running Wasm; else *delta (ticks from now) is the next deadline. */
#define WM_WASMTIME_UPDATE_DEADLINE_CONTINUE 0
typedef wt_error *(*wt_deadline_cb)(wt_context *context, void *env, uint64_t *delta,
                                    uint8_t *update_kind);

/* The entry points, typed. */
typedef struct wt_api {
    wt_context *(*caller_context)(wt_caller *);
    bool (*caller_export_get)(wt_caller *, const char *, size_t, wt_extern *);
    uint8_t *(*memory_data)(const wt_context *, const wt_memory *);
    size_t (*memory_data_size)(const wt_context *, const wt_memory *);
    wt_error *(*linker_define_func_unchecked)(wt_linker *, const char *, size_t, const char *,
                                              size_t, const wt_functype *, wt_unchecked_cb,
                                              void *, void (*)(void *));
    wt_error *(*func_call_unchecked)(wt_context *, const wt_func *, wt_val_raw *, size_t,
                                     wt_trap **);
    wt_trap *(*trap_new)(const char *, size_t);
    void (*error_message)(const wt_error *, wt_byte_vec *);
    void (*error_delete)(wt_error *);
    void (*byte_vec_delete)(wt_byte_vec *);
    wt_error *(*error_new)(const char *);
    void (*context_set_epoch_deadline)(wt_context *, uint64_t);
    void (*store_epoch_deadline_callback)(wt_store *, wt_deadline_cb, void *, void (*)(void *));
    void *(*engine_clone)(void *);
    void (*engine_delete)(void *);
    void (*engine_increment_epoch)(void *);
} wt_api;

#endif
