// peer.cpp: the cross-language peer of tests/support/guest_checks.py, in C++.
// The callee side (take/look/keep/give, declared in the manifest as
// PEER_EXPORTS says) and the caller side, which calls the callee side of the
// module "c".  A result < 0 is -(the step that failed).
#include "wasi_map.hpp"

namespace wm = wasi_map;

// The callee side of module "c": take(own), look(borrow), keep(share), give() -> own.
WASI_MAP_IMPORT("c", "take") int32_t c_take(wm_handle_t m);
WASI_MAP_IMPORT("c", "look") int32_t c_look(wm_handle_t m);
WASI_MAP_IMPORT("c", "keep") int32_t c_keep(wm_handle_t m);
WASI_MAP_IMPORT("c", "give") wm_handle_t c_give();

namespace {

// The map take or keep left here; give hands it back.  A global with a
// destructor is fine in a reactor: it runs once, when nobody is left to care.
wm::map kept;

// len(m), or -1 when the map cannot say.
int32_t length(const wm::read_map& m)
{
    auto n = m.len();
    return n ? static_cast<int32_t>(*n) : -1;
}

// "k<i>" into key; its bytes.
wm::bytes key_of(char (&key)[12], uint32_t i)
{
    char digits[10];
    uint32_t n = 0, len = 0;
    do {
        digits[n++] = static_cast<char>('0' + i % 10);
        i /= 10;
    } while (i);
    key[len++] = 'k';
    while (n)
        key[len++] = digits[--n];
    return wm::bytes(key, len);
}

// A new map holding 'k0'..'k<n-1>' (all "v").
wm::result<wm::map> filled(int32_t n)
{
    auto m = wm::map::make();
    char key[12];
    for (int32_t i = 0; m && i < n; i++)
        if (auto set = m->set(key_of(key, static_cast<uint32_t>(i)), "v"); !set)
            return set.error();
    return m;
}

}  // namespace

// --- the callee side -------------------------------------------------------

// take(m own) -> len(m); m stays here.
WASI_MAP_EXPORT("take") int32_t take(wm_handle_t h)
{
    kept = wm::map::adopt(h);
    return length(kept);
}

// look(m borrow) -> len(m); writes 'seen' = "cpp"; the borrow ends with `m`.
WASI_MAP_EXPORT("look") int32_t look(wm_handle_t h)
{
    wm::borrowed_map m{h};
    int32_t n = length(*m);
    if (!m->set("seen", "cpp"))
        return -2;
    return n;
}

// keep(m share) -> len(m); keeps its own owning handle.
WASI_MAP_EXPORT("keep") int32_t keep(wm_handle_t h)
{
    kept = wm::map::adopt(h);
    return length(kept);
}

// give() -> the kept map by own (a new empty one when none is kept).
WASI_MAP_EXPORT("give") wm_handle_t give()
{
    if (kept.handle() == 0)
        return wm::map::make().value().release();
    return kept.release();
}

// --- the caller side -------------------------------------------------------

// send_own(n) -> what c.take returned; the number given away is STALE here after.
WASI_MAP_EXPORT("send_own") int32_t send_own(int32_t n)
{
    auto m = filled(n);
    if (!m)
        return -1;
    wm_handle_t old = m->handle();
    int32_t got = c_take(m->release());
    uint32_t len;
    if (wm_len(old, wm::addr(&len)) != WM_STALE)  // raw: no wrapper holds the old number
        return -2;
    return got;
}

// send_borrow(n) -> what c.look returned; after it, 'seen' is "c" and the map still ours.
WASI_MAP_EXPORT("send_borrow") int32_t send_borrow(int32_t n)
{
    uint8_t buf[8];
    auto m = filled(n);
    if (!m)
        return -1;
    int32_t got = c_look(m->handle());
    auto seen = m->get("seen", buf);
    if (!seen || *seen != "c")
        return -2;
    if (!m->close())
        return -3;
    return got;
}

// send_share(n) -> what c.keep returned; then writes 'after' = '1' and closes its handle.
WASI_MAP_EXPORT("send_share") int32_t send_share(int32_t n)
{
    auto m = filled(n);
    if (!m)
        return -1;
    int32_t got = c_keep(m->share());
    if (!m->set("after", "1"))
        return -2;
    if (!m->close())
        return -3;
    return got;
}

// fetch() -> len of the map c.give returned, after setting 'fetched' = '1' in it.
WASI_MAP_EXPORT("fetch") int32_t fetch()
{
    wm::map m = wm::map::adopt(c_give());
    if (!m.set("fetched", "1"))
        return -1;
    return length(m);
}
