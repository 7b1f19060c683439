/* edges: run(own gray) -> own edges.  The Sobel gradient of the luma image,
 * |Gx| + |Gy| clamped to 255, into a new map with the same tiling; the gray
 * map is closed (and so reclaimed) before the new one is handed back.
 *
 * A pixel on a tile's border needs its neighbours in the next tiles, so each
 * output tile is computed from the 3x3 block of tiles around it, fetched with
 * one get_many.  At the image's border the nearest pixel inside is used
 * (replicate), which is again a pixel of one of those nine tiles. */
#include "pipeline.h"

/* The nine tiles around (tx, ty), clamped to the image: slot (dy+1)*3 + (dx+1). */
typedef struct {
    const uint8_t *data[9];
    uint32_t width[9]; /* pixels per row of each */
} block_t;

static void fetch_block(wm_handle_t img, const image_t *meta, uint32_t tx, uint32_t ty, block_t *b)
{
    static uint8_t keys[9 * (4 + 32)], vals[9 * (4 + MAX_TILE * MAX_TILE)];
    uint8_t *p = keys;
    uint32_t used;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            /* Outside the image: the clamped tile, the one replicate reads. */
            int32_t nx = (int32_t)tx + dx, ny = (int32_t)ty + dy;
            nx = nx < 0 ? 0 : nx >= (int32_t)tiles_across(meta) ? (int32_t)tiles_across(meta) - 1 : nx;
            ny = ny < 0 ? 0 : ny >= (int32_t)tiles_down(meta) ? (int32_t)tiles_down(meta) - 1 : ny;
            char key[32];
            p = put_record(p, key, tile_key(key, (uint32_t)nx, (uint32_t)ny));
            b->width[(dy + 1) * 3 + dx + 1] = tile_w(meta, (uint32_t)nx);
        }
    ok(wm_get_many(img, ADDR(keys), (uint32_t)(p - keys), ADDR(vals), sizeof vals, ADDR(&used)));
    const uint8_t *v = vals;
    for (int i = 0; i < 9; i++) {
        if (load_u32(v) == 0xFFFFFFFFu)
            __builtin_trap(); /* a tile is missing */
        b->data[i] = v + 4;
        v += 4 + load_u32(v);
    }
}

/* Luma at (x, y) relative to the centre tile's origin; -1 and tile size
 * reach into the neighbours, and the image border replicates. */
static int32_t luma(const image_t *meta, const block_t *b, uint32_t tx, uint32_t ty, int32_t x, int32_t y)
{
    int32_t t = (int32_t)meta->tile;
    int32_t gx = (int32_t)(tx * meta->tile) + x, gy = (int32_t)(ty * meta->tile) + y;
    gx = gx < 0 ? 0 : gx >= (int32_t)meta->width ? (int32_t)meta->width - 1 : gx;
    gy = gy < 0 ? 0 : gy >= (int32_t)meta->height ? (int32_t)meta->height - 1 : gy;
    int32_t sx = gx / t - (int32_t)tx + 1, sy = gy / t - (int32_t)ty + 1; /* 0..2 */
    int slot = sy * 3 + sx;
    return b->data[slot][(uint32_t)(gy % t) * b->width[slot] + (uint32_t)(gx % t)];
}

static void sobel_tile(wm_handle_t in, wm_handle_t out, const image_t *meta, uint32_t tx, uint32_t ty)
{
    static uint8_t edge[MAX_TILE * MAX_TILE];
    block_t b;
    fetch_block(in, meta, tx, ty, &b);
    uint32_t tw = tile_w(meta, tx), th = tile_h(meta, ty);
    for (int32_t y = 0; y < (int32_t)th; y++)
        for (int32_t x = 0; x < (int32_t)tw; x++) {
#define P(dx, dy) luma(meta, &b, tx, ty, x + (dx), y + (dy))
            int32_t gx = P(1, -1) + 2 * P(1, 0) + P(1, 1) - P(-1, -1) - 2 * P(-1, 0) - P(-1, 1);
            int32_t gy = P(-1, 1) + 2 * P(0, 1) + P(1, 1) - P(-1, -1) - 2 * P(0, -1) - P(1, -1);
#undef P
            int32_t mag = (gx < 0 ? -gx : gx) + (gy < 0 ? -gy : gy);
            edge[(uint32_t)y * tw + (uint32_t)x] = (uint8_t)(mag > 255 ? 255 : mag);
        }
    write_tile(out, tx, ty, edge, tw * th);
}

__attribute__((export_name("run"))) wm_handle_t edges_run(wm_handle_t gray)
{
    wm_handle_t out;
    image_t meta = read_image(gray);
    if (meta.channels != 1)
        __builtin_trap();
    ok(wm_new(ADDR(&out)));
    write_image(out, &meta);
    for (uint32_t ty = 0; ty < tiles_down(&meta); ty++)
        for (uint32_t tx = 0; tx < tiles_across(&meta); tx++)
            sobel_tile(gray, out, &meta, tx, ty);
    ok(wm_close(gray)); /* the last reference: the gray image is reclaimed here */
    return out;
}
