/* grayscale: run(own rgb) -> own gray.  Turns every RGB tile of the image
 * into 8-bit luma, (77 R + 150 G + 29 B) >> 8, in place, and hands the same
 * map back.  It does not need the image's geometry: it pages through the
 * keys and converts every "tile:" value (3 bytes a pixel -> 1 byte). */
#include "pipeline.h"

static void to_luma(wm_handle_t img, const uint8_t *key, uint32_t klen)
{
    static uint8_t rgb[MAX_TILE * MAX_TILE * 3], gray[MAX_TILE * MAX_TILE];
    uint32_t len;
    ok(wm_get(img, ADDR(key), klen, ADDR(rgb), sizeof rgb, ADDR(&len)));
    if (len % 3)
        __builtin_trap();
    for (uint32_t i = 0; i < len / 3; i++)
        gray[i] = (uint8_t)((77u * rgb[3 * i] + 150u * rgb[3 * i + 1] + 29u * rgb[3 * i + 2]) >> 8);
    ok(wm_set(img, ADDR(key), klen, ADDR(gray), len / 3));
}

__attribute__((export_name("run"))) wm_handle_t grayscale_run(wm_handle_t img)
{
    static uint8_t page[512];
    image_t meta = read_image(img);
    if (meta.channels != 3)
        __builtin_trap();
    /* Rewriting a key keeps its place in the listing, so the cursor walks
     * every tile exactly once while we overwrite them. */
    uint64_t cursor = 0;
    do {
        uint32_t used, count;
        ok(wm_keys(img, ADDR(&cursor), ADDR(page), sizeof page, ADDR(&used), ADDR(&count)));
        const uint8_t *p = page;
        for (uint32_t i = 0; i < count; i++) {
            uint32_t klen = load_u32(p);
            if (klen > 5 && memcmp(p + 4, "tile:", 5) == 0)
                to_luma(img, p + 4, klen);
            p += 4 + klen;
        }
    } while (cursor);
    meta.channels = 1;
    write_image(img, &meta);
    return img;
}
