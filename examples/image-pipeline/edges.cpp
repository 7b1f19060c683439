// edges: run(own gray) -> own edges, in C++ over wasi_map.hpp.  The Sobel
// gradient of the luma image, |Gx| + |Gy| clamped to 255, into a new map with
// the same tiling; the gray map is closed (and so reclaimed) before the new one
// is handed back.  reference.py computes the same in Python.
//
// A pixel on a tile's border needs its neighbours in the next tiles, so each
// output tile is computed from the 3x3 block of tiles around it, fetched with
// one get_many.  At the image's border the nearest pixel inside is used
// (replicate), which is again a pixel of one of those nine tiles.
//
// Every call is checked with value(), which traps on an errno, as pipeline.h's
// ok() does for the C stages.
#include "pipeline.h"  // the image format: image_t, tile_key, the tile sizes
#include "wasi_map.hpp"

namespace wm = wasi_map;

namespace {

// The metadata keys, in image_t's order.
constexpr wm::bytes meta_keys[4] = {"width", "height", "tile", "channels"};

// The four metadata keys, read with one get_many; traps unless they are all
// there, 4 bytes each, and within pipeline.h's limits.
image_t read_meta(const wm::read_map& img)
{
    uint8_t keys_buf[64], out[4 * 8];
    wm::key_batch keys(keys_buf);
    for (wm::bytes key : meta_keys)
        keys.add(key);
    wm::value_list values = img.get_many(keys, out).value();
    uint32_t v[4], n = 0;
    for (wm::result<wm::bytes> value : values) {
        if (n == 4 || value.value().size() != 4)  // absent: value() traps
            __builtin_trap();
        v[n++] = load_u32(value->data());
    }
    image_t meta = {v[0], v[1], v[2], v[3]};
    if (n != 4 || !meta.width || !meta.height || meta.width > MAX_SIDE || meta.height > MAX_SIDE ||
        !meta.tile || meta.tile > MAX_TILE || (meta.channels != 1 && meta.channels != 3))
        __builtin_trap();
    return meta;
}

// The four metadata keys, written with one set_many (all or nothing).
void write_meta(const wm::map& img, const image_t& meta)
{
    const uint32_t v[4] = {meta.width, meta.height, meta.tile, meta.channels};
    uint8_t items_buf[128], le[4];
    wm::item_batch items(items_buf);
    for (int i = 0; i < 4; i++) {
        store_u32(le, v[i]);
        items.add(meta_keys[i], wm::bytes(le, sizeof le));  // copied in: le is reused
    }
    img.set_many(items).value();
}

// The nine tiles around (tx, ty), clamped to the image: slot (dy+1)*3 + (dx+1).
struct block {
    const uint8_t* data[9];
    uint32_t width[9];  // pixels per row of each
};

void fetch_block(const wm::read_map& img, const image_t& meta, uint32_t tx, uint32_t ty, block& b)
{
    static uint8_t keys_buf[9 * (4 + 32)], vals[9 * (4 + MAX_TILE * MAX_TILE)];
    wm::key_batch keys(keys_buf);
    const int32_t across = (int32_t)tiles_across(&meta), down = (int32_t)tiles_down(&meta);
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            // Outside the image: the clamped tile, the one replicate reads.
            int32_t nx = (int32_t)tx + dx, ny = (int32_t)ty + dy;
            nx = nx < 0 ? 0 : nx >= across ? across - 1 : nx;
            ny = ny < 0 ? 0 : ny >= down ? down - 1 : ny;
            char key[32];
            keys.add(wm::bytes(key, tile_key(key, (uint32_t)nx, (uint32_t)ny)));
            b.width[(dy + 1) * 3 + dx + 1] = tile_w(&meta, (uint32_t)nx);
        }
    wm::value_list values = img.get_many(keys, vals).value();
    int n = 0;
    for (wm::result<wm::bytes> value : values)
        b.data[n++] = value.value().data();  // a tile missing: value() traps
    if (n != 9)
        __builtin_trap();
}

// Luma at (x, y) relative to the centre tile's origin; -1 and tile size
// reach into the neighbours, and the image border replicates.
int32_t luma(const image_t& meta, const block& b, uint32_t tx, uint32_t ty, int32_t x, int32_t y)
{
    int32_t t = (int32_t)meta.tile;
    int32_t gx = (int32_t)(tx * meta.tile) + x, gy = (int32_t)(ty * meta.tile) + y;
    gx = gx < 0 ? 0 : gx >= (int32_t)meta.width ? (int32_t)meta.width - 1 : gx;
    gy = gy < 0 ? 0 : gy >= (int32_t)meta.height ? (int32_t)meta.height - 1 : gy;
    int32_t sx = gx / t - (int32_t)tx + 1, sy = gy / t - (int32_t)ty + 1;  // 0..2
    int slot = sy * 3 + sx;
    return b.data[slot][(uint32_t)(gy % t) * b.width[slot] + (uint32_t)(gx % t)];
}

void sobel_tile(const wm::read_map& in, const wm::map& out, const image_t& meta, uint32_t tx,
                uint32_t ty)
{
    static uint8_t edge[MAX_TILE * MAX_TILE];
    block b;
    fetch_block(in, meta, tx, ty, b);
    uint32_t tw = tile_w(&meta, tx), th = tile_h(&meta, ty);
    for (int32_t y = 0; y < (int32_t)th; y++)
        for (int32_t x = 0; x < (int32_t)tw; x++) {
            auto p = [&](int32_t dx, int32_t dy) { return luma(meta, b, tx, ty, x + dx, y + dy); };
            int32_t gx = p(1, -1) + 2 * p(1, 0) + p(1, 1) - p(-1, -1) - 2 * p(-1, 0) - p(-1, 1);
            int32_t gy = p(-1, 1) + 2 * p(0, 1) + p(1, 1) - p(-1, -1) - 2 * p(0, -1) - p(1, -1);
            int32_t mag = (gx < 0 ? -gx : gx) + (gy < 0 ? -gy : gy);
            edge[(uint32_t)y * tw + (uint32_t)x] = (uint8_t)(mag > 255 ? 255 : mag);
        }
    char key[32];
    out.set(wm::bytes(key, tile_key(key, tx, ty)), wm::bytes(edge, tw * th)).value();
}

}  // namespace

WASI_MAP_EXPORT("run") wm_handle_t edges_run(wm_handle_t gray_h)
{
    wm::read_map gray = wm::read_map::adopt(gray_h);  // received by own; only read here
    image_t meta = read_meta(gray);
    if (meta.channels != 1)
        __builtin_trap();
    wm::map out = wm::map::make().value();
    write_meta(out, meta);
    for (uint32_t ty = 0; ty < tiles_down(&meta); ty++)
        for (uint32_t tx = 0; tx < tiles_across(&meta); tx++)
            sobel_tile(gray, out, meta, tx, ty);
    gray.close().value();  // the last reference: the gray image is reclaimed here
    return out.release();  // by own: the caller holds it now
}
