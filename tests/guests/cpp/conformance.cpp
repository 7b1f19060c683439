// conformance.cpp: the checks of tests/support/guest_checks.py (CHECKS), through
// wasi_map.hpp.  Each check_<name>() returns 0, or the number of the first step
// that did not hold (the numbers in STEP below).  Raw wm_* calls appear only
// where a step needs a number the typed API cannot make.
#include "wasi_map.hpp"

namespace wm = wasi_map;

// Step n of a check: return n unless `cond` holds.
#define STEP(n, cond)   \
    do {                \
        if (!(cond))    \
            return (n); \
    } while (0)

namespace {

int64_t dropped;  // the sum of the cookies wasi_map_on_drop was called with

// "key:<i>" into buf; its bytes.
wm::bytes numbered(char (&buf)[16], uint32_t i)
{
    const char prefix[] = "key:";
    uint32_t n = sizeof prefix - 1;
    __builtin_memcpy(buf, prefix, n);
    char digits[10];
    uint32_t d = 0;
    do {
        digits[d++] = static_cast<char>('0' + i % 10);
        i /= 10;
    } while (i);
    while (d)
        buf[n++] = digits[--d];
    return wm::bytes(buf, n);
}

// True when every byte of buf is `fill`.
bool all(const uint8_t* buf, uint32_t n, uint8_t fill)
{
    for (uint32_t i = 0; i < n; i++)
        if (buf[i] != fill)
            return false;
    return true;
}

}  // namespace

WASI_MAP_EXPORT("wasi_map_on_drop") void on_drop(int64_t cookie) { dropped += cookie; }

WASI_MAP_EXPORT("drops") int64_t drops() { return dropped; }

WASI_MAP_EXPORT("check_values") int32_t check_values()
{
    uint8_t buf[16];
    auto made = wm::map::make();
    STEP(1, made);
    const wm::map& m = *made;
    STEP(2, m.get("k", buf).error() == wm::errc::noent);
    STEP(3, m.set("k", "v1"));
    auto v1 = m.get("k", buf);
    STEP(4, v1 && *v1 == "v1");
    STEP(5, m.exists("k").value_or(false));
    STEP(6, m.len().value_or(0) == 1);
    STEP(7, m.set("k", "value2"));
    auto got = m.get("k", buf);
    STEP(8, got && got->size() == 6 && *got == "value2");
    STEP(9, m.del("k"));
    STEP(10, m.exists("k") && !*m.exists("k"));
    STEP(11, m.len() && *m.len() == 0);
    STEP(12, m.del("k"));
    STEP(13, m.set("empty", ""));
    auto empty = m.get("empty", buf);
    STEP(14, empty && empty->empty() && m.value_len("empty").value_or(1) == 0);
    return 0;
}

WASI_MAP_EXPORT("check_range") int32_t check_range()
{
    uint8_t small[4] = {0xAA, 0xAA, 0xAA, 0xAA}, big[10];
    auto m = wm::map::make();
    STEP(1, m);
    STEP(2, m->set("k", "0123456789"));
    STEP(3, m->get("k", small).error() == wm::errc::range);
    STEP(4, m->value_len("k").value_or(0) == 10);  // the size RANGE reports
    STEP(5, all(small, sizeof small, 0xAA));       // the buffer untouched
    auto got = m->get("k", big);
    STEP(6, got && *got == "0123456789");
    return 0;
}

WASI_MAP_EXPORT("check_keys") int32_t check_keys()
{
    uint8_t page[64];
    char name[16];
    auto m = wm::map::make();
    STEP(1, m);
    uint32_t seen = 0;
    auto none = m->keys(page);
    for (wm::bytes key : none)
        seen += key.size() + 1;
    STEP(2, seen == 0 && none.error() == wm::errc::ok);
    for (uint32_t i = 0; i < 40; i++)
        STEP(3, m->set(numbered(name, i), "x"));
    auto listing = m->keys(page);  // 64 bytes: a few keys a page
    for (wm::bytes key : listing) {
        STEP(4, seen < 40 && key == numbered(name, seen));  // each once, in order
        seen++;
    }
    STEP(5, listing.error() == wm::errc::ok);
    STEP(6, seen == 40);
    return 0;
}

WASI_MAP_EXPORT("check_counters") int32_t check_counters()
{
    auto m = wm::map::make();
    STEP(1, m);
    STEP(2, m->incr("n", 5).value_or(0) == 5);
    STEP(3, m->incr("n", -7).value_or(0) == -2);
    STEP(4, m->set("three", "abc"));
    STEP(5, m->incr("three", 1).error() == wm::errc::type);
    STEP(6, m->version("v").value_or(1) == 0);
    STEP(7, m->set("v", "1"));
    uint64_t v1 = m->version("v").value_or(0);
    STEP(8, v1 > 0);
    STEP(9, m->set_if("v", "2", v1));
    STEP(10, m->version("v").value_or(0) > v1);
    STEP(11, m->set_if("v", "3", v1).error() == wm::errc::conflict);
    STEP(12, m->set_if("absent", "4", 0));
    return 0;
}

WASI_MAP_EXPORT("check_batch") int32_t check_batch()
{
    uint8_t items_buf[64], keys_buf[32], out[64];
    auto m = wm::map::make();
    STEP(1, m);
    wm::item_batch items(items_buf);
    items.add("a", "1").add("b", "22").add("c", "333");
    STEP(2, !items.overflowed());
    STEP(3, m->set_many(items));
    wm::key_batch keys(keys_buf);
    keys.add("a").add("zz").add("c");
    auto values = m->get_many(keys, out);
    STEP(4, values);
    uint32_t i = 0;
    for (wm::result<wm::bytes> value : *values) {
        if (i == 0)
            STEP(5, value && *value == "1");
        if (i == 1)
            STEP(6, value.error() == wm::errc::noent);  // absent
        if (i == 2)
            STEP(7, value && *value == "333");
        i++;
    }
    STEP(8, i == 3);
    STEP(9, m->len().value_or(0) == 3);
    return 0;
}

WASI_MAP_EXPORT("check_maprefs") int32_t check_maprefs()
{
    uint8_t buf[16];
    auto parent = wm::map::make();
    auto child = wm::map::make();
    STEP(1, parent && child);
    STEP(2, child->set("x", "y"));
    STEP(3, parent->set_map("c", *child));
    STEP(4, child->close());  // the parent keeps the child alive
    auto again = parent->get_map("c");
    STEP(5, again);
    auto x = again->get("x", buf);
    STEP(6, x && *x == "y");
    STEP(7, parent->get("c", buf).error() == wm::errc::type);
    STEP(8, parent->set("b", "bytes"));
    STEP(9, parent->get_map("b").error() == wm::errc::type);
    // read_map::get_map narrows: the child is READ only, though the parent
    // handle (a map seen as a read_map) carries WRITE.
    const wm::read_map& as_read = *parent;
    auto narrowed = as_read.get_map("c");
    STEP(10, narrowed);
    STEP(11, wm_set(narrowed->handle(), wm::addr("x"), 1, wm::addr("z"), 1) == WM_ACCES);
    // A const array with no NUL at its end is all bytes; a literal drops its NUL.
    static const char abc[3] = {'a', 'b', 'c'};
    STEP(12, wm::bytes(abc).size() == 3 && wm::bytes("abc").size() == 3);
    return 0;
}

WASI_MAP_EXPORT("check_rights") int32_t check_rights()
{
    uint8_t buf[16];
    STEP(1, wm::map::open("shared"));
    STEP(2, wm::map::open("ro").error() == wm::errc::acces);
    auto ro = wm::read_map::open("ro");
    STEP(3, ro && ro->len());
    STEP(4, wm::map::open("nope").error() == wm::errc::acces);
    STEP(5, wm::read_map::open("nope").error() == wm::errc::acces);
    auto m = wm::map::make();
    STEP(6, m && m->set("k", "v"));
    auto r = m->read_only();
    STEP(7, r);
    auto v = r->get("k", buf);
    STEP(8, v && *v == "v");
    // read_map has no set: the write goes through its handle's number.
    const char key[] = "k";
    STEP(9, wm_set(r->handle(), wm::addr(key), 1, wm::addr(key), 1) == WM_ACCES);
    return 0;
}

WASI_MAP_EXPORT("check_handles") int32_t check_handles()
{
    uint8_t buf[16];
    uint32_t len;
    auto m = wm::map::make();
    STEP(1, m);
    wm_handle_t closed = m->handle();
    STEP(2, m->close());
    STEP(3, m->handle() == 0);
    STEP(4, wm_close(closed) == WM_STALE);
    STEP(5, wm_get(closed, wm::addr(buf), 1, wm::addr(buf), sizeof buf, wm::addr(&len)) ==
                WM_STALE);
    STEP(6, wm_len(0x00FFFFFFu, wm::addr(&len)) == WM_BADF);  // never issued
    wm_handle_t dropped_h;
    {
        auto scoped = wm::map::make();
        STEP(7, scoped);
        dropped_h = scoped->handle();
    }  // the destructor closes it
    STEP(8, wm_len(dropped_h, wm::addr(&len)) == WM_STALE);
    auto a = wm::map::make(), b = wm::map::make();
    STEP(9, a && b);
    wm_handle_t replaced = a->handle();
    *a = wm::move(*b);  // assigning closes what a held
    STEP(10, wm_len(replaced, wm::addr(&len)) == WM_STALE);
    STEP(11, b->handle() == 0 && a->len());
    wm_handle_t kept = a->release();  // released: not closed
    STEP(12, wm_len(kept, wm::addr(&len)) == WM_OK);
    STEP(13, wm::map::adopt(kept).close());
    return 0;
}

WASI_MAP_EXPORT("check_drop_notice") int32_t check_drop_notice()
{
    auto m = wm::map::make();
    STEP(1, m);
    STEP(2, m->watch_drop(42));
    STEP(3, m->close());
    STEP(4, dropped == 0);  // notices wait until the outermost call returns
    return 0;
}
