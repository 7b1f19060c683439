/* hash.h: a seeded 64-bit hash for map keys.
 *
 * The multiply-fold mixing of wyhash, written small: keys are short (a
 * 16-byte key takes one round), and a per-broker random seed keeps a guest
 * from choosing keys that collide on purpose.
 */
#ifndef WM_HASH_H
#define WM_HASH_H

#include <stdint.h>
#include <string.h>

static inline uint64_t wm_mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t wm_read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t wm_read32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t wm_hash(const uint8_t *p, size_t n, uint64_t seed)
{
    const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull,
                   k2 = 0x8ebc6af09c88c6e3ull;
    /* Each word of the key meets the seed before it is multiplied: a word
     * equal to a public constant would zero the product, making the key's
     * other bytes (and the seed) count for nothing. */
    const uint64_t s1 = seed ^ k1;
    uint64_t h = seed ^ wm_mix(seed ^ k0, (uint64_t)n ^ k1);
    while (n > 16) {
        h = wm_mix(wm_read64(p) ^ s1, wm_read64(p + 8) ^ h);
        p += 16;
        n -= 16;
    }
    /* The last 1..16 bytes in two words, read whole and overlapping (as
     * wyhash does) rather than copied byte by byte into a temporary; the
     * length is already in h. */
    uint64_t a = 0, b = 0;
    if (n > 8) {
        a = wm_read64(p);
        b = wm_read64(p + n - 8);
    } else if (n >= 4) {
        a = wm_read32(p);
        b = wm_read32(p + n - 4);
    } else if (n > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
    }
    return wm_mix(wm_mix(a ^ s1, b ^ h) ^ k2, h ^ k0);
}

#endif
