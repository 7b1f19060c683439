// abi_loop.cpp: abi_loop.wat's loops written with wasi_map.hpp, so that a
// benchmark can set the binding's cost beside the raw loop's.
//
// `setup` makes a map and stores one entry (a 16-byte key, a 64-byte value);
// `get_loop n` and `set_loop n` then call map::get (into a 64-byte buffer) and
// map::set n times from inside the guest.  Each loop returns how many calls
// did not return OK: a benchmark checks it is 0.  `value_ok` says whether the
// last get left the whole value in the buffer.
//
// Build as docs/guest-cpp.md says (-mexec-model=reactor: the global map is
// constructed once by _initialize and lives as long as the instance).
#include "wasi_map.hpp"

namespace wm = wasi_map;

namespace {

constexpr wm::bytes key = "bench-key-000001";
constexpr wm::bytes value = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

wm::map bench;       // the map setup made
uint8_t buf[64];     // where get copies the value
uint32_t last_len;   // the length the last successful get reported

}  // namespace

// setup() -> errno: a new map holding `key` = `value`.
WASI_MAP_EXPORT("setup") uint32_t setup()
{
    auto made = wm::map::make();
    if (!made)
        return static_cast<uint32_t>(made.error());
    bench = wm::move(*made);
    return static_cast<uint32_t>(bench.set(key, value).error());
}

// get_loop(n) -> calls that did not return OK.
WASI_MAP_EXPORT("get_loop") uint32_t get_loop(uint32_t n)
{
    uint32_t bad = 0;
    for (; n; n--) {
        wm::result<wm::bytes> got = bench.get(key, buf);
        if (got)
            last_len = got->size();
        else
            bad++;
    }
    return bad;
}

// set_loop(n) -> calls that did not return OK.
WASI_MAP_EXPORT("set_loop") uint32_t set_loop(uint32_t n)
{
    uint32_t bad = 0;
    for (; n; n--)
        bad += !bench.set(key, value);
    return bad;
}

// value_ok() -> 1 when the last get left the whole 64-byte value in the buffer.
WASI_MAP_EXPORT("value_ok") uint32_t value_ok()
{
    return last_len == value.size() && wm::bytes(buf, last_len) == value;
}
