/* loader: the app's entry point.  main(seed) makes a synthetic RGB image in
 * a new anonymous map and drives it through the stages, each of which takes
 * the map by `own` and gives one back by `own`:
 *
 *   image --own--> grayscale.run --own--> edges.run --own--> sink.run
 *                                                    config --borrow:r--^
 *
 * Before that it puts the sink's parameters into the named map "config"
 * (granted rw to the loader only); the sink sees config only through the
 * read-only borrow for the length of its call.  main returns what the sink
 * returns: the checksum of the edge image and the count of strong edges.
 * The loader holds no handle when main returns. */
#include "pipeline.h"

#define TILE 16u
#define DEFAULT_THRESHOLD 96u
#define MAX_SHAPES 8

__attribute__((import_module("grayscale"), import_name("run"))) wm_handle_t grayscale_run(wm_handle_t rgb);
__attribute__((import_module("edges"), import_name("run"))) wm_handle_t edges_run(wm_handle_t gray);
__attribute__((import_module("sink"), import_name("run"))) summary_t sink_run(wm_handle_t edges, wm_handle_t config);

/* The synthetic image: a colour gradient, a few filled circles and boxes, and
 * a little per-pixel noise.  Integer arithmetic on u32 throughout, so
 * reference.py computes the same bytes. */
static uint32_t rng_state;

static uint32_t rng(void) /* xorshift32 */
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

static uint32_t noise(uint32_t x, uint32_t y, uint32_t seed) /* a position hash */
{
    uint32_t h = (x * 0x85EBCA6Bu) ^ (y * 0xC2B2AE35u) ^ seed;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    return h;
}

typedef struct {
    uint32_t round, cx, cy, size;
    uint8_t rgb[3];
} shape_t;

static struct {
    uint32_t seed, width, height, nshapes;
    shape_t shapes[MAX_SHAPES];
} scene;

static void make_scene(uint32_t seed)
{
    scene.seed = seed;
    rng_state = seed * 0x9E3779B1u + 0x7F4A7C15u;
    if (!rng_state)
        rng_state = 1;
    /* One rng() per statement: C leaves the order of calls in one expression open. */
    scene.width = 80 + rng() % 97;
    scene.height = 48 + rng() % 81;
    scene.nshapes = 5 + rng() % 4;
    for (uint32_t i = 0; i < scene.nshapes; i++) {
        shape_t *s = &scene.shapes[i];
        s->round = rng() & 1;
        s->cx = rng() % scene.width;
        s->cy = rng() % scene.height;
        s->size = 6 + rng() % 24;
        for (int c = 0; c < 3; c++)
            s->rgb[c] = (uint8_t)(rng() & 255);
    }
}

static void pixel(uint32_t x, uint32_t y, uint8_t out[3])
{
    uint32_t w = scene.width, h = scene.height;
    uint32_t rgb[3] = {x * 255 / (w - 1), y * 255 / (h - 1), (x + y) * 255 / (w + h - 2)};
    for (uint32_t i = 0; i < scene.nshapes; i++) {
        const shape_t *s = &scene.shapes[i];
        int32_t dx = (int32_t)x - (int32_t)s->cx, dy = (int32_t)y - (int32_t)s->cy;
        int32_t r = (int32_t)s->size;
        int inside = s->round ? dx * dx + dy * dy <= r * r
                              : dx <= r && -dx <= r && 2 * dy <= r && -2 * dy <= r;
        if (inside)
            for (int c = 0; c < 3; c++)
                rgb[c] = s->rgb[c];
    }
    uint32_t n = noise(x, y, scene.seed);
    for (int c = 0; c < 3; c++)
        out[c] = (uint8_t)(rgb[c] ^ ((n >> (3 * c)) & 7));
}

static wm_handle_t load_image(uint32_t seed)
{
    static uint8_t tile[TILE * TILE * 3];
    wm_handle_t img;
    make_scene(seed);
    image_t meta = {scene.width, scene.height, TILE, 3};
    ok(wm_new(ADDR(&img)));
    write_image(img, &meta);
    for (uint32_t ty = 0; ty < tiles_down(&meta); ty++)
        for (uint32_t tx = 0; tx < tiles_across(&meta); tx++) {
            uint32_t tw = tile_w(&meta, tx), th = tile_h(&meta, ty);
            for (uint32_t row = 0; row < th; row++)
                for (uint32_t col = 0; col < tw; col++)
                    pixel(tx * TILE + col, ty * TILE + row, &tile[(row * tw + col) * 3]);
            write_tile(img, tx, ty, tile, tw * th * 3);
        }
    return img;
}

/* Put the sink's threshold into config unless someone (the host, an earlier
 * run) already has: set_if with expected version 0 writes only an absent key. */
static wm_handle_t open_config(void)
{
    static const char name[] = "config";
    wm_handle_t cfg;
    uint8_t le[4];
    ok(wm_open(KEY(name), WM_READ | WM_WRITE, ADDR(&cfg)));
    store_u32(le, DEFAULT_THRESHOLD);
    wm_errno_t err = wm_set_if(cfg, KEY("threshold"), ADDR(le), sizeof le, 0);
    if (err != WM_CONFLICT)
        ok(err);
    return cfg;
}

__attribute__((export_name("main"))) summary_t loader_main(uint32_t seed)
{
    uint32_t n;
    wm_handle_t cfg = open_config();
    wm_handle_t rgb = load_image(seed);
    wm_handle_t gray = grayscale_run(rgb);
    /* `own` moved the map: this module's number for it is dead now. */
    if (wm_len(rgb, ADDR(&n)) != WM_STALE)
        __builtin_trap();
    wm_handle_t edges = edges_run(gray);
    summary_t summary = sink_run(edges, cfg); /* edges moves; cfg is lent, read-only */
    ok(wm_close(cfg));
    return summary;
}
