/* sink: run(own edges, borrow:r config) -> (checksum i64, above i32).
 * Reads the threshold from config (lent read-only for this call; the sink
 * has no grant on "config" of its own), then the edge image row by row: the
 * FNV-1a 32 checksum of all its bytes in row-major order, and how many are
 * above the threshold.  It records both in the named map "results" (granted
 * rw), counts the run there, closes every handle and returns the two. */
#include "pipeline.h"

#define DEFAULT_THRESHOLD 96u /* when config has none */

static uint32_t read_threshold(wm_handle_t config)
{
    uint8_t le[4];
    uint32_t len;
    wm_errno_t err = wm_get(config, KEY("threshold"), ADDR(le), sizeof le, ADDR(&len));
    if (err == WM_NOENT)
        return DEFAULT_THRESHOLD;
    ok(err);
    if (len != 4)
        __builtin_trap();
    return load_u32(le);
}

static void record(const image_t *meta, uint32_t threshold, summary_t s)
{
    static const char name[] = "results";
    const struct { const char *key; uint64_t value; } fields[] = {
        {"checksum", (uint64_t)s.checksum}, {"above", (uint64_t)s.above},
        {"threshold", threshold},           {"width", meta->width},
        {"height", meta->height},
    };
    uint8_t items[256], *p = items;
    wm_handle_t results;
    int64_t runs;
    ok(wm_open(KEY(name), WM_READ | WM_WRITE, ADDR(&results)));
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        uint8_t le[8];
        store_u64(le, fields[i].value);
        p = put_record(p, fields[i].key, (uint32_t)strlen(fields[i].key));
        p = put_record(p, le, 8);
    }
    ok(wm_set_many(results, ADDR(items), (uint32_t)(p - items)));
    ok(wm_incr(results, KEY("runs"), 1, ADDR(&runs)));
    ok(wm_close(results));
}

__attribute__((export_name("run"))) summary_t sink_run(wm_handle_t edges, wm_handle_t config)
{
    static uint8_t rows[MAX_TILE * MAX_SIDE]; /* one row of tiles, as full image rows */
    static uint8_t tile[MAX_TILE * MAX_TILE];
    uint32_t threshold = read_threshold(config);
    ok(wm_close(config)); /* done with it: end the borrow now */

    image_t meta = read_image(edges);
    if (meta.channels != 1)
        __builtin_trap();
    uint32_t hash = 2166136261u, above = 0;
    for (uint32_t ty = 0; ty < tiles_down(&meta); ty++) {
        uint32_t th = tile_h(&meta, ty);
        for (uint32_t tx = 0; tx < tiles_across(&meta); tx++) {
            uint32_t tw = tile_w(&meta, tx);
            read_tile(edges, tx, ty, tile, tw * th);
            for (uint32_t r = 0; r < th; r++)
                memcpy(&rows[r * meta.width + tx * meta.tile], &tile[r * tw], tw);
        }
        for (uint32_t i = 0; i < th * meta.width; i++) {
            hash = (hash ^ rows[i]) * 16777619u;
            above += rows[i] > threshold;
        }
    }
    ok(wm_close(edges)); /* the edge image is reclaimed here */

    summary_t s = {(int64_t)hash, (int32_t)above};
    record(&meta, threshold, s);
    return s;
}
