/* test_hash.c: the key hash (native/hash.h) depends on every byte of a key
 * and on the broker's seed, whatever the key holds. */
#include "harness.h"
#include "hash.h"

/* Keys of every length up to 40 whose first 8 bytes are the hash's public
 * constant k1: each byte after them must still count.  (Under a seed s the
 * words equal to s ^ k1 are the weak ones; a guest cannot know s.) */
static void constant_prefix(uint64_t seed)
{
    const uint64_t k1 = 0xe7037ed1a0b428dbull;
    for (size_t n = 9; n <= 40; n++) {
        uint8_t x[40] = {0}, y[40] = {0};
        memcpy(x, &k1, 8);
        memcpy(y, &k1, 8);
        for (size_t i = 8; i < n; i++) {
            memcpy(y, x, n);
            y[i] ^= 0x5a;
            CHECK(wm_hash(x, n, seed) != wm_hash(y, n, seed));
        }
    }
}

/* Every single-bit change of a key of 0..40 bytes changes its hash, and
 * the same key under two seeds hashes differently. */
static void every_bit(uint64_t seed)
{
    uint8_t key[40];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof key; n++) {
        uint64_t h = wm_hash(key, n, seed);
        CHECK(h != wm_hash(key, n, seed ^ 1));
        for (size_t bit = 0; bit < n * 8; bit++) {
            key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            CHECK(wm_hash(key, n, seed) != h);
            key[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
    }
}

void test_hash(void)
{
    const uint64_t seeds[] = {1, 2, 0x0123456789abcdefull, 0xfedcba9876543210ull};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        constant_prefix(seeds[i]);
        every_bit(seeds[i]);
    }
    every_bit(0);
}
