/* wasi_map.hpp: C++ bindings for wasi-map guests, on top of wasi_map.h.
 *
 * Ownership in the type system, with the broker's words (docs/ownership.md):
 *   map            an owning handle with READ|WRITE: move-only, closed by its destructor
 *   read_map       an owning handle with READ; a map is a read_map, so `const read_map&`
 *                  lends a map read-only inside the module
 *   const M&       "use it, do not give it up": every read and write is a const method;
 *                  only release(), close() and moving need the object itself
 *   borrowed<M>    the callee's side of a handle received by `borrow`: const M& only,
 *                  never released or moved; its destructor ends the borrow
 *   m.release()    pass by `own` (or return by own): the number, no longer closed here
 *   M::adopt(h)    take ownership of a number received by `own` or `share`
 *   m.share()      pass to an export declared `share`: the callee gets its own handle
 *   m.handle()     pass to an export declared `borrow`: m stays yours (BUSY for
 *                  close and own until the call returns)
 *   read_only()    a clone with READ only, for `:r` inside the module
 * Errors are values: result<T> holds a T or an errc (one per WM_* errno);
 * value(), * and -> trap on an error, as an uncaught exception would.
 *
 * Freestanding: no C++ standard library, no exceptions, no RTTI, no heap.
 * Build (Debian clang 14, wasi-libc, lld, libclang-rt-14-dev-wasm32):
 *
 *   clang++ --target=wasm32-wasi -std=c++17 -O2 -Wall -Wextra \
 *       -fno-exceptions -fno-rtti -nostdlib++ -mexec-model=reactor \
 *       -I guests/include -o guest.wasm guest.cpp
 *
 *   -nostdlib++            there is no libc++ for wasm32; without it the link asks for
 *                          -lc++ -lc++abi
 *   -mexec-model=reactor   instead of C's `-nostartfiles -Wl,--no-entry`: the module
 *                          exports _initialize, which runs the global constructors once
 *                          and which the broker calls after instantiation.  Without it
 *                          wasm-ld wraps every export in constructors + destructors (a
 *                          "command"): a global `map` is closed when each call returns,
 *                          and the next call traps.
 *   add `-mmultivalue -Xclang -target-abi -Xclang experimental-mv` to return a struct
 *   from an export as several Wasm results.
 * docs/guest-cpp.md is the how-to. */
#ifndef WASI_MAP_HPP
#define WASI_MAP_HPP

#include <stddef.h>
#include <stdint.h>

#include "wasi_map.h"

/* Mark a function as the module's export `name`. */
#define WASI_MAP_EXPORT(name) __attribute__((export_name(name)))
/* Declare a function as the import `module`.`name` (another module's export). */
#define WASI_MAP_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))

namespace wasi_map {

/// An errno of the ABI: one enumerator per WM_* of wasi_map.h.
enum class errc : uint32_t {
    ok = WM_OK,
    badf = WM_BADF,
    stale = WM_STALE,
    noent = WM_NOENT,
    acces = WM_ACCES,
    fault = WM_FAULT,
    range = WM_RANGE,
    inval = WM_INVAL,
    busy = WM_BUSY,
    quota = WM_QUOTA,
    toobig = WM_TOOBIG,
    conflict = WM_CONFLICT,
    type = WM_TYPE,
    io = WM_IO,
};

/// The errno's name as the ABI spells it ("NOENT"); "?" for one this header does not know.
constexpr const char* name(errc e)
{
    switch (e) {
    case errc::ok: return "OK";
    case errc::badf: return "BADF";
    case errc::stale: return "STALE";
    case errc::noent: return "NOENT";
    case errc::acces: return "ACCES";
    case errc::fault: return "FAULT";
    case errc::range: return "RANGE";
    case errc::inval: return "INVAL";
    case errc::busy: return "BUSY";
    case errc::quota: return "QUOTA";
    case errc::toobig: return "TOOBIG";
    case errc::conflict: return "CONFLICT";
    case errc::type: return "TYPE";
    case errc::io: return "IO";
    }
    return "?";
}

/// std::move without <utility> (this header uses no C++ standard library).
template <class T>
constexpr T&& move(T& x) noexcept
{
    return static_cast<T&&>(x);
}

/// An address in the guest's memory, as the raw wm_* functions take it.
inline uint32_t addr(const void* p)
{
    return static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p));
}

namespace detail {

/// A u32 stored little-endian (wasm32 is little-endian; no alignment needed).
inline uint32_t load_u32(const uint8_t* p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

inline void store_u32(uint8_t* p, uint32_t v) { __builtin_memcpy(p, &v, sizeof v); }

}  // namespace detail

/// A view of bytes (pointer, length); it never owns them.
class bytes {
public:
    constexpr bytes() = default;
    /// A string literal, without its NUL (a const array with no NUL at its end: all of it).
    template <size_t N>
    constexpr bytes(const char (&literal)[N])
        : data_(literal), size_(literal[N - 1] == '\0' ? N - 1 : N)
    {
    }
    /// A mutable char buffer is not a literal: say its length, bytes(buf, n).
    template <size_t N>
    bytes(char (&)[N]) = delete;
    constexpr bytes(const char* p, uint32_t n) : data_(p), size_(n) {}
    bytes(const void* p, uint32_t n) : data_(static_cast<const char*>(p)), size_(n) {}

    const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(data_); }
    constexpr uint32_t size() const { return size_; }
    constexpr bool empty() const { return size_ == 0; }
    uint8_t operator[](uint32_t i) const { return data()[i]; }
    const uint8_t* begin() const { return data(); }
    const uint8_t* end() const { return data() + size_; }

private:
    const char* data_ = nullptr;
    uint32_t size_ = 0;
};

/// Same length, same bytes.
inline bool operator==(bytes a, bytes b)
{
    if (a.size() != b.size())
        return false;
    return a.empty() || __builtin_memcmp(a.data(), b.data(), a.size()) == 0;
}
inline bool operator!=(bytes a, bytes b) { return !(a == b); }

/// A buffer the broker writes into (pointer, capacity).
class mutable_bytes {
public:
    template <size_t N>
    constexpr mutable_bytes(uint8_t (&buf)[N]) : data_(buf), cap_(N)
    {
    }
    template <size_t N>
    mutable_bytes(char (&buf)[N]) : data_(reinterpret_cast<uint8_t*>(buf)), cap_(N)
    {
    }
    mutable_bytes(void* p, uint32_t cap) : data_(static_cast<uint8_t*>(p)), cap_(cap) {}

    uint8_t* data() const { return data_; }
    uint32_t capacity() const { return cap_; }

private:
    uint8_t* data_;
    uint32_t cap_;
};

/// A T or the errno that came instead: std::expected's shape, without exceptions.
/// T must be default-constructible (an error holds a default T, never handed out).
template <class T>
class [[nodiscard]] result {
public:
    result(T&& value) : value_(wasi_map::move(value)) {}
    result(const T& value) : value_(value) {}
    /// An error; `e` must not be errc::ok (a value is needed then).
    result(errc e) : err_(e)
    {
        if (e == errc::ok)
            __builtin_trap();
    }

    bool has_value() const { return err_ == errc::ok; }
    explicit operator bool() const { return has_value(); }
    /// errc::ok when there is a value.
    errc error() const { return err_; }

    T& value() &
    {
        checked();
        return value_;
    }
    const T& value() const&
    {
        checked();
        return value_;
    }
    /// Moves the value out of a temporary (or of wasi_map::move(r)).  By value,
    /// not T&&: `for (auto v : m.get_many(...).value())` must not dangle.
    T value() &&
    {
        checked();
        return wasi_map::move(value_);
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T operator*() && { return wasi_map::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    /// The value, or `fallback` on an error.
    T value_or(T fallback) const& { return has_value() ? value_ : fallback; }

private:
    /// Using a value that is not there traps: the guest's uncaught exception.
    void checked() const
    {
        if (err_ != errc::ok)
            __builtin_trap();
    }

    T value_{};
    errc err_ = errc::ok;
};

/// Success or the errno that came instead.
template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(errc e) : err_(e) {}

    bool has_value() const { return err_ == errc::ok; }
    explicit operator bool() const { return has_value(); }
    errc error() const { return err_; }
    /// Traps on an error.
    void value() const
    {
        if (err_ != errc::ok)
            __builtin_trap();
    }

private:
    errc err_ = errc::ok;
};

namespace detail {

/// result<void> of an ABI call's errno.
inline result<void> done(wm_errno_t e) { return static_cast<errc>(e); }

/// The value written by an ABI call, or its errno.
template <class T>
result<T> answer(wm_errno_t e, const T& value)
{
    if (e != WM_OK)
        return static_cast<errc>(e);
    return value;
}

/// Writes `u32 length + bytes` records into a caller's buffer.
class record_writer {
public:
    explicit record_writer(mutable_bytes buf) : buf_(buf) {}

    /// Append the records of `parts` (all or none); false when they do not fit.
    bool put(const bytes* parts, uint32_t n)
    {
        uint64_t need = 0;
        for (uint32_t i = 0; i < n; i++)
            need += 4 + uint64_t(parts[i].size());
        if (overflowed_ || need > buf_.capacity() - used_) {
            overflowed_ = true;  // a batch missing a record must never be sent
            return false;
        }
        for (uint32_t i = 0; i < n; i++) {
            store_u32(buf_.data() + used_, parts[i].size());
            if (!parts[i].empty())
                __builtin_memcpy(buf_.data() + used_ + 4, parts[i].data(), parts[i].size());
            used_ += 4 + parts[i].size();
        }
        return true;
    }

    bytes written() const { return bytes(buf_.data(), used_); }
    bool overflowed() const { return overflowed_; }

private:
    mutable_bytes buf_;
    uint32_t used_ = 0;
    bool overflowed_ = false;
};

}  // namespace detail

/// The key list of a get_many (`u32 len + key` records) in a caller's buffer.
class key_batch {
public:
    explicit key_batch(mutable_bytes buf) : out_(buf) {}
    /// Add a key; one that does not fit marks the batch overflowed (get_many: RANGE).
    key_batch& add(bytes key)
    {
        out_.put(&key, 1);
        return *this;
    }
    bool overflowed() const { return out_.overflowed(); }
    bytes data() const { return out_.written(); }

private:
    detail::record_writer out_;
};

/// The items of a set_many (`u32 len + key, u32 len + value`) in a caller's buffer.
class item_batch {
public:
    explicit item_batch(mutable_bytes buf) : out_(buf) {}
    /// Add an item; one that does not fit marks the batch overflowed (set_many: RANGE).
    item_batch& add(bytes key, bytes value)
    {
        const bytes parts[2] = {key, value};
        out_.put(parts, 2);
        return *this;
    }
    bool overflowed() const { return out_.overflowed(); }
    bytes data() const { return out_.written(); }

private:
    detail::record_writer out_;
};

/// The values get_many wrote, in key order: each a result<bytes>, errc::noent when absent.
class value_list {
public:
    static constexpr uint32_t absent = 0xFFFFFFFFu;  // the wire's length of an absent key

    class iterator {
    public:
        result<bytes> operator*() const
        {
            uint32_t len = detail::load_u32(p_);
            if (len == absent)
                return errc::noent;
            return bytes(p_ + 4, len);
        }
        iterator& operator++()
        {
            uint32_t len = detail::load_u32(p_);
            p_ += 4 + (len == absent ? 0 : len);
            return *this;
        }
        bool operator!=(const iterator& other) const { return p_ < other.p_; }

    private:
        friend class value_list;
        explicit iterator(const uint8_t* p) : p_(p) {}
        const uint8_t* p_;
    };

    value_list() = default;
    explicit value_list(bytes out) : out_(out) {}
    iterator begin() const { return iterator(out_.data()); }
    iterator end() const { return iterator(out_.data() + out_.size()); }

private:
    bytes out_;
};

/// A map's keys, a page at a time into a caller's buffer: `for (bytes k : m.keys(page))`.
/// A key stays valid until the next page is fetched; error() says why a listing stopped
/// early (errc::range: a key longer than the page), errc::ok when it listed everything.
class key_range {
public:
    struct sentinel {};

    class iterator {
    public:
        bytes operator*() const
        {
            return bytes(page() + offset_ + 4, detail::load_u32(page() + offset_));
        }
        /// The next key; at the end of the page, the first of the next page.
        iterator& operator++()
        {
            offset_ += 4 + detail::load_u32(page() + offset_);
            if (--left_ == 0)
                next_page();
            return *this;
        }
        bool operator!=(sentinel) const { return range_ != nullptr; }

    private:
        friend class key_range;
        explicit iterator(key_range* range) : range_(range) { next_page(); }
        const uint8_t* page() const { return range_->page_.data(); }
        void next_page()
        {
            offset_ = 0;
            left_ = range_->fetch();
            if (left_ == 0)
                range_ = nullptr;  // done, or failed: error() says which
        }

        key_range* range_;
        uint32_t offset_ = 0;
        uint32_t left_ = 0;  // keys of the page not yet visited
    };

    key_range(wm_handle_t h, mutable_bytes page) : h_(h), page_(page) {}

    /// Starts the listing from the first key.
    iterator begin()
    {
        cursor_ = 0;
        more_ = true;
        err_ = errc::ok;
        return iterator(this);
    }
    sentinel end() const { return {}; }
    errc error() const { return err_; }

private:
    /// The next page into the buffer; its number of keys (0: done or failed).
    uint32_t fetch()
    {
        if (!more_)
            return 0;
        uint32_t used = 0, count = 0;
        wm_errno_t e = wm_keys(h_, addr(&cursor_), addr(page_.data()), page_.capacity(),
                               addr(&used), addr(&count));
        if (e != WM_OK) {
            err_ = static_cast<errc>(e);
            more_ = false;
            return 0;
        }
        more_ = cursor_ != 0;  // the broker's cursor is 0 after the last page
        return count;
    }

    wm_handle_t h_;
    mutable_bytes page_;
    uint64_t cursor_ = 0;
    bool more_ = true;
    errc err_ = errc::ok;
};

/// An argument for an export declared `share`: the number; the handle stays yours.
class shared {
public:
    explicit constexpr shared(wm_handle_t h) : h_(h) {}
    constexpr operator wm_handle_t() const { return h_; }
    constexpr wm_handle_t handle() const { return h_; }

private:
    wm_handle_t h_;
};

/// An owning handle with READ: move-only; the destructor closes it.
class read_map {
public:
    /// No handle (0 is never issued).
    constexpr read_map() = default;
    read_map(read_map&& other) noexcept : h_(other.release()) {}
    read_map& operator=(read_map&& other) noexcept
    {
        if (this != &other) {
            reset();
            h_ = other.release();
        }
        return *this;
    }
    read_map(const read_map&) = delete;
    read_map& operator=(const read_map&) = delete;
    ~read_map() { reset(); }

    /// The named map `name` (granted to this module), READ only.
    static result<read_map> open(bytes name);
    /// Own a number received by `own` or `share` (or a result declared so).
    static read_map adopt(wm_handle_t h) { return read_map(h); }

    /// The value under `key`, copied into `buf`: the part of `buf` it fills.
    result<bytes> get(bytes key, mutable_bytes buf) const;
    /// The size of the value under `key` (a get with no room: RANGE says the size).
    result<uint32_t> value_len(bytes key) const;
    result<bool> exists(bytes key) const;
    /// The number of entries.
    result<uint32_t> len() const;
    /// Every key, listed through `page` (see key_range).
    key_range keys(mutable_bytes page) const& { return key_range(h_, page); }
    /// Not of a temporary: it would close its handle before the listing began.
    key_range keys(mutable_bytes page) const&& = delete;
    /// The key's version, 0 when absent.
    result<uint64_t> version(bytes key) const;
    /// The values of `keys`, written into `out`.
    result<value_list> get_many(const key_batch& keys, mutable_bytes out) const;
    /// A new owning handle to the map referenced under `key`, READ only (narrowed here).
    result<read_map> get_map(bytes key) const;
    /// Ask for wasi_map_on_drop(cookie) when the map is reclaimed.
    result<void> watch_drop(int64_t cookie) const;
    /// A second owning handle, READ only.
    result<read_map> clone() const;

    /// Pass to an export declared `share`.
    shared share() const { return shared(h_); }
    /// Give up ownership without closing: pass by `own`, or return by own.
    wm_handle_t release() noexcept
    {
        wm_handle_t h = h_;
        h_ = 0;
        return h;
    }
    /// Close now, with the errno; the handle stays here only on BUSY (it is lent).
    result<void> close();
    /// The handle's number: what a call declared `borrow` takes.
    wm_handle_t handle() const { return h_; }

protected:
    explicit read_map(wm_handle_t h) : h_(h) {}
    void reset() noexcept
    {
        if (h_ != 0)
            (void)wm_close(h_);  // a destructor has nobody to tell
        h_ = 0;
    }

    wm_handle_t h_ = 0;
};

/// An owning handle with READ|WRITE: a read_map that also writes.
class map : public read_map {
public:
    constexpr map() = default;
    map(map&&) noexcept = default;
    map& operator=(map&&) noexcept = default;

    /// A new anonymous map (wm_new).
    static result<map> make();
    /// The named map `name` (granted rw to this module), READ|WRITE.
    static result<map> open(bytes name);
    static map adopt(wm_handle_t h) { return map(h); }

    result<void> set(bytes key, bytes value) const;
    /// Remove `key`; OK when absent too.
    result<void> del(bytes key) const;
    /// Add `delta` to the 8-byte counter under `key` (absent: 0); the new value.
    result<int64_t> incr(bytes key, int64_t delta) const;
    /// Set only if the key's version is `expected` (0: absent), else CONFLICT.
    result<void> set_if(bytes key, bytes value, uint64_t expected) const;
    /// Every item, or none.
    result<void> set_many(const item_batch& items) const;
    /// Store a reference to `child`'s map (the broker needs READ|WRITE on the child:
    /// a map, never a read_map).
    result<void> set_map(bytes key, const map& child) const;
    result<map> get_map(bytes key) const;
    /// A second owning handle, READ|WRITE.
    result<map> clone() const;
    /// A second owning handle with READ only.
    result<read_map> read_only() const;

private:
    explicit map(wm_handle_t h) : read_map(h) {}
};

/// The callee's view of a handle received by `borrow`: const access only, so it
/// cannot be released or passed as own (the broker would answer ACCES); the
/// destructor ends the borrow.  clone() or share() keep the map past the call.
template <class M>
class borrowed {
public:
    explicit borrowed(wm_handle_t h) : m_(M::adopt(h)) {}
    borrowed(const borrowed&) = delete;
    borrowed& operator=(const borrowed&) = delete;

    const M& get() const { return m_; }
    const M& operator*() const { return m_; }
    const M* operator->() const { return &m_; }
    operator const M&() const { return m_; }
    shared share() const { return m_.share(); }
    wm_handle_t handle() const { return m_.handle(); }
    /// End the borrow now, with the errno.
    result<void> close() { return m_.close(); }

private:
    M m_;
};

using borrowed_map = borrowed<map>;
using borrowed_read_map = borrowed<read_map>;

// --- read_map ----------------------------------------------------------------

namespace detail {

/// An owning M for the handle an ABI call wrote, or its errno.
template <class M>
result<M> adopted(wm_errno_t e, wm_handle_t h)
{
    if (e != WM_OK)
        return static_cast<errc>(e);
    return M::adopt(h);
}

}  // namespace detail

inline result<read_map> read_map::open(bytes name)
{
    wm_handle_t h = 0;
    wm_errno_t e = wm_open(addr(name.data()), name.size(), WM_READ, addr(&h));
    return detail::adopted<read_map>(e, h);
}

inline result<bytes> read_map::get(bytes key, mutable_bytes buf) const
{
    uint32_t len = 0;
    wm_errno_t e = wm_get(h_, addr(key.data()), key.size(), addr(buf.data()), buf.capacity(),
                          addr(&len));
    return detail::answer(e, bytes(buf.data(), len));
}

inline result<uint32_t> read_map::value_len(bytes key) const
{
    uint8_t none;
    uint32_t len = 0;
    wm_errno_t e = wm_get(h_, addr(key.data()), key.size(), addr(&none), 0, addr(&len));
    // With no room RANGE reports the size; OK says the value is empty (len 0).
    return detail::answer(e == WM_RANGE ? WM_OK : e, len);
}

inline result<bool> read_map::exists(bytes key) const
{
    uint32_t yes = 0;
    wm_errno_t e = wm_exists(h_, addr(key.data()), key.size(), addr(&yes));
    return detail::answer(e, yes != 0);
}

inline result<uint32_t> read_map::len() const
{
    uint32_t n = 0;
    wm_errno_t e = wm_len(h_, addr(&n));
    return detail::answer(e, n);
}

inline result<uint64_t> read_map::version(bytes key) const
{
    uint64_t v = 0;
    wm_errno_t e = wm_version(h_, addr(key.data()), key.size(), addr(&v));
    return detail::answer(e, v);
}

inline result<value_list> read_map::get_many(const key_batch& keys, mutable_bytes out) const
{
    if (keys.overflowed())
        return errc::range;  // the key list's buffer was too small: some keys are missing
    uint32_t used = 0;
    wm_errno_t e = wm_get_many(h_, addr(keys.data().data()), keys.data().size(), addr(out.data()),
                               out.capacity(), addr(&used));
    return detail::answer(e, value_list(bytes(out.data(), used)));
}

inline result<read_map> read_map::get_map(bytes key) const
{
    wm_handle_t h = 0;
    wm_errno_t e = wm_get_map(h_, addr(key.data()), key.size(), addr(&h));
    if (e != WM_OK)
        return detail::adopted<read_map>(e, h);
    // The child inherits this handle's rights, which may include WRITE (a map
    // seen as a read_map): narrow it, so a read_map never passes WRITE on.
    read_map inherited = read_map::adopt(h);
    return inherited.clone();
}

inline result<void> read_map::watch_drop(int64_t cookie) const
{
    return detail::done(wm_watch_drop(h_, cookie));
}

inline result<read_map> read_map::clone() const
{
    wm_handle_t h = 0;
    wm_errno_t e = wm_clone(h_, WM_READ, addr(&h));
    return detail::adopted<read_map>(e, h);
}

inline result<void> read_map::close()
{
    wm_errno_t e = wm_close(h_);
    if (e != WM_BUSY)
        h_ = 0;  // closed, or a number that was not ours to close
    return detail::done(e);
}

// --- map -----------------------------------------------------------------------

inline result<map> map::make()
{
    wm_handle_t h = 0;
    wm_errno_t e = wm_new(addr(&h));
    return detail::adopted<map>(e, h);
}

inline result<map> map::open(bytes name)
{
    wm_handle_t h = 0;
    wm_errno_t e = wm_open(addr(name.data()), name.size(), WM_READ | WM_WRITE, addr(&h));
    return detail::adopted<map>(e, h);
}

inline result<void> map::set(bytes key, bytes value) const
{
    return detail::done(
        wm_set(h_, addr(key.data()), key.size(), addr(value.data()), value.size()));
}

inline result<void> map::del(bytes key) const
{
    return detail::done(wm_delete(h_, addr(key.data()), key.size()));
}

inline result<int64_t> map::incr(bytes key, int64_t delta) const
{
    int64_t now = 0;
    wm_errno_t e = wm_incr(h_, addr(key.data()), key.size(), delta, addr(&now));
    return detail::answer(e, now);
}

inline result<void> map::set_if(bytes key, bytes value, uint64_t expected) const
{
    return detail::done(wm_set_if(h_, addr(key.data()), key.size(), addr(value.data()),
                                  value.size(), static_cast<int64_t>(expected)));
}

inline result<void> map::set_many(const item_batch& items) const
{
    if (items.overflowed())
        return errc::range;  // the batch's buffer was too small: some items are missing
    return detail::done(wm_set_many(h_, addr(items.data().data()), items.data().size()));
}

inline result<void> map::set_map(bytes key, const map& child) const
{
    return detail::done(wm_set_map(h_, addr(key.data()), key.size(), child.handle()));
}

inline result<map> map::get_map(bytes key) const
{
    wm_handle_t h = 0;
    wm_errno_t e = wm_get_map(h_, addr(key.data()), key.size(), addr(&h));
    return detail::adopted<map>(e, h);
}

inline result<map> map::clone() const
{
    wm_handle_t h = 0;
    wm_errno_t e = wm_clone(h_, WM_READ | WM_WRITE, addr(&h));
    return detail::adopted<map>(e, h);
}

inline result<read_map> map::read_only() const { return read_map::clone(); }

}  // namespace wasi_map

#endif
