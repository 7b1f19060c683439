/* abi_loop.c: abi_loop.wat's loops in C over wasi_map.h, the baseline the
 * Rust and C++ loops (abi_loop.rs, abi_loop.cpp) are compared with.
 * setup() makes a map with one entry; get_loop(n) and set_loop(n) call the
 * import n times and return how many calls did not return OK. */
#include <stdint.h>
#include <string.h>

#include "wasi_map.h"

#define ADDR(p) ((uint32_t)(uintptr_t)(p))

static const char key[16] = "bench-key-000001";
static const char value[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static uint8_t buf[64];
static uint32_t got;
static wm_handle_t map;

__attribute__((export_name("setup"))) uint32_t setup(void)
{
    wm_errno_t err = wm_new(ADDR(&map));
    return err ? err : wm_set(map, ADDR(key), sizeof key, ADDR(value), sizeof value);
}

__attribute__((export_name("get_loop"))) uint32_t get_loop(uint32_t n)
{
    uint32_t bad = 0;
    for (; n; n--)
        bad += wm_get(map, ADDR(key), sizeof key, ADDR(buf), sizeof buf, ADDR(&got)) != WM_OK;
    return bad;
}

__attribute__((export_name("set_loop"))) uint32_t set_loop(uint32_t n)
{
    uint32_t bad = 0;
    for (; n; n--)
        bad += wm_set(map, ADDR(key), sizeof key, ADDR(value), sizeof value) != WM_OK;
    return bad;
}

/* 1 when the last get left the whole value in the buffer. */
__attribute__((export_name("value_ok"))) uint32_t value_ok(void)
{
    return got == sizeof value && memcmp(buf, value, sizeof value) == 0;
}
