/* pipeline.h: what the image-pipeline guests share -- how an image lives in
 * a map, the one result type, and small wrappers over the wasi_map ABI.
 *
 * An image map holds
 *   "width", "height", "tile", "channels"   u32 little-endian (4 bytes each)
 *   "tile:X:Y"                              the pixels of tile column X, row Y:
 *                                           th rows of tw pixels, `channels`
 *                                           bytes per pixel (RGB, or 1 = luma)
 * where tw = min(tile, width - X*tile) and th likewise: the tiles on the
 * right and bottom edges are narrower when the side is not a multiple of the
 * tile size.  reference.py describes the same format in Python.
 *
 * Every wasi_map call is checked: an errno a stage does not expect traps
 * (__builtin_trap), so `wasi-map run` fails loudly, naming the module. */
#ifndef PIPELINE_H
#define PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wasi_map.h"

#define MAX_TILE 32u    /* largest tile side a stage accepts */
#define MAX_SIDE 1024u  /* largest image width or height a stage accepts */

/* What sink.run returns (two results, i64 and i32: the build uses clang's
 * multi-value ABI, so a struct returned by value is two Wasm results). */
typedef struct {
    int64_t checksum; /* FNV-1a 32 of the edge image, row-major, as an unsigned value */
    int32_t above;    /* edge pixels strictly above the threshold */
} summary_t;

/* The ABI takes guest addresses as u32. */
#define ADDR(p) ((uint32_t)(uintptr_t)(p))
#define KEY(s) ADDR(s), (uint32_t)(sizeof(s) - 1) /* a string literal as (ptr, len) */

static inline void ok(wm_errno_t err)
{
    if (err != WM_OK)
        __builtin_trap();
}

static inline uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void store_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Append a u32 length and the bytes: one record of a get_many/set_many batch. */
static inline uint8_t *put_record(uint8_t *p, const void *bytes, uint32_t len)
{
    store_u32(p, len);
    memcpy(p + 4, bytes, len);
    return p + 4 + len;
}

/* "tile:X:Y" into buf (at least 32 bytes); its length. */
static inline uint32_t tile_key(char *buf, uint32_t x, uint32_t y)
{
    static const char prefix[] = "tile:";
    char *p = buf + sizeof(prefix) - 1;
    memcpy(buf, prefix, sizeof(prefix) - 1);
    for (int part = 0; part < 2; part++) {
        uint32_t v = part ? y : x;
        char digits[10];
        int n = 0;
        do {
            digits[n++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (n)
            *p++ = digits[--n];
        if (!part)
            *p++ = ':';
    }
    return (uint32_t)(p - buf);
}

/* The header of an image map: its four metadata keys. */
typedef struct {
    uint32_t width, height, tile, channels;
} image_t;

static inline uint32_t tiles_across(const image_t *img) { return (img->width + img->tile - 1) / img->tile; }
static inline uint32_t tiles_down(const image_t *img) { return (img->height + img->tile - 1) / img->tile; }
static inline uint32_t tile_w(const image_t *img, uint32_t tx)
{
    uint32_t rest = img->width - tx * img->tile;
    return rest < img->tile ? rest : img->tile;
}
static inline uint32_t tile_h(const image_t *img, uint32_t ty)
{
    uint32_t rest = img->height - ty * img->tile;
    return rest < img->tile ? rest : img->tile;
}

/* Read the four metadata keys with one get_many; traps unless they are all
 * there, 4 bytes each, and within the limits above. */
static inline image_t read_image(wm_handle_t h)
{
    static const char *const names[4] = {"width", "height", "tile", "channels"};
    uint8_t keys[64], vals[4 * 8], *p = keys;
    uint32_t used;
    for (int i = 0; i < 4; i++)
        p = put_record(p, names[i], (uint32_t)strlen(names[i]));
    ok(wm_get_many(h, ADDR(keys), (uint32_t)(p - keys), ADDR(vals), sizeof vals, ADDR(&used)));
    if (used != sizeof vals)
        __builtin_trap(); /* a key absent (length 0xFFFFFFFF, no bytes) or not 4 bytes */
    uint32_t v[4];
    for (int i = 0; i < 4; i++) {
        if (load_u32(vals + 8 * i) != 4)
            __builtin_trap();
        v[i] = load_u32(vals + 8 * i + 4);
    }
    image_t img = {v[0], v[1], v[2], v[3]};
    if (!img.width || !img.height || img.width > MAX_SIDE || img.height > MAX_SIDE ||
        !img.tile || img.tile > MAX_TILE || (img.channels != 1 && img.channels != 3))
        __builtin_trap();
    return img;
}

/* Write the four metadata keys with one set_many (all or nothing). */
static inline void write_image(wm_handle_t h, const image_t *img)
{
    static const char *const names[4] = {"width", "height", "tile", "channels"};
    const uint32_t v[4] = {img->width, img->height, img->tile, img->channels};
    uint8_t items[128], *p = items;
    for (int i = 0; i < 4; i++) {
        uint8_t le[4];
        store_u32(le, v[i]);
        p = put_record(p, names[i], (uint32_t)strlen(names[i]));
        p = put_record(p, le, 4);
    }
    ok(wm_set_many(h, ADDR(items), (uint32_t)(p - items)));
}

/* The value under tile (tx, ty), which must be exactly `len` bytes. */
static inline void read_tile(wm_handle_t h, uint32_t tx, uint32_t ty, uint8_t *buf, uint32_t len)
{
    char key[32];
    uint32_t got;
    ok(wm_get(h, ADDR(key), tile_key(key, tx, ty), ADDR(buf), len, ADDR(&got)));
    if (got != len)
        __builtin_trap();
}

static inline void write_tile(wm_handle_t h, uint32_t tx, uint32_t ty, const uint8_t *buf, uint32_t len)
{
    char key[32];
    ok(wm_set(h, ADDR(key), tile_key(key, tx, ty), ADDR(buf), len));
}

#endif
