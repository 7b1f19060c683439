//! wasi-map for Rust guests: the broker's ownership rules in the type system.
//!
//! | the broker says        | in Rust                                        |
//! |------------------------|------------------------------------------------|
//! | an owning handle       | [`Map`] (READ and WRITE) or [`ReadMap`] (READ); `Drop` closes it |
//! | pass as `own`          | move the value into the call                   |
//! | pass as `borrow`       | pass `&Map` / `&ReadMap` (the rights are the lender's, READ only for `borrow:r`) |
//! | pass as `share`        | pass `map.share()` ([`Share`])                 |
//! | received by `borrow`   | [`Borrowed<Map>`] / [`Borrowed<ReadMap>`]: usable, never movable |
//! | `:r`                   | [`ReadMap`]: it has no writing methods         |
//! | an errno               | [`Error`], one variant per errno, in [`Result`] |
//!
//! Exports that take and return maps are declared with [`export!`], other
//! modules' exports with [`import!`].  `abi.rs` (raw imports, errnos,
//! rights) is generated from the broker's ABI tables; this file is not.
//! No dependencies, no heap: `#![no_std]`, buffers are the caller's.
#![no_std]

mod abi;

use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;

pub use abi::{raw, Error, READ, WRITE};

/// The result of every map operation.
pub type Result<T> = core::result::Result<T, Error>;

/// An errno as a Result.  A code this crate does not know (a newer broker)
/// reads as `Inval`.
#[inline(always)]
pub fn check(code: u32) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::from_errno(code).unwrap_or(Error::Inval))
    }
}

/// A guest address as the ABI takes it.
#[inline(always)]
fn addr<T: ?Sized>(p: *const T) -> u32 {
    p as *const u8 as usize as u32
}

/// A slice as (address, length).
#[inline(always)]
fn span(bytes: &[u8]) -> (u32, u32) {
    (addr(bytes.as_ptr()), bytes.len() as u32)
}

/// The sentinel `get_many` writes for an absent key's length.
const ABSENT: u32 = u32::MAX;

// ----------------------------------------------------------------------------
// ReadMap: an owning handle that can only read.

/// An owning handle this code only reads through: it has no writing methods.
/// `ReadMap::open`, `Map::read_only` and `get_map` give it READ only; one
/// received from a call has what the manifest passes (READ only for `:r`).
/// Dropping it closes the handle; the map lives while anything else owns it.
#[repr(transparent)]
#[derive(Debug)]
pub struct ReadMap {
    h: u32,
}

impl ReadMap {
    /// Open the named map `name` for reading (the manifest must grant it).
    pub fn open(name: &str) -> Result<ReadMap> {
        open(name, READ).map(|h| ReadMap { h })
    }

    /// Take ownership of a handle number received by `own` or `share`.
    ///
    /// # Safety
    /// `h` must be an owning handle of this module that nothing else closes.
    pub unsafe fn from_raw(h: u32) -> ReadMap {
        ReadMap { h }
    }

    /// The handle number (it stays owned by `self`).
    #[inline(always)]
    pub fn handle(&self) -> u32 {
        self.h
    }

    /// Give up ownership without closing: the number is the caller's now.
    pub fn into_raw(self) -> u32 {
        ManuallyDrop::new(self).h
    }

    /// Close the handle now, and hear the errno (`Drop` ignores it).
    pub fn close(self) -> Result<()> {
        check(unsafe { raw::close(self.into_raw()) })
    }

    /// A second owning handle, READ only (the map's count grows by one).
    pub fn try_clone(&self) -> Result<ReadMap> {
        clone(self.h, READ).map(|h| ReadMap { h })
    }

    /// Pass this handle as `share`: the callee gets an owning handle of its
    /// own, and `self` keeps this one.
    pub fn share(&self) -> Share<'_> {
        Share { h: self.h, _map: PhantomData }
    }

    /// The value under `key`, copied into `buf`: the filled part of `buf`.
    /// `Range` when it does not fit ([`value_len`](Self::value_len) says how much does).
    #[inline]
    pub fn get<'b>(&self, key: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8]> {
        let (kp, kl) = span(key);
        let mut len = 0u32;
        check(unsafe {
            raw::get(self.h, kp, kl, addr(buf.as_mut_ptr()), buf.len() as u32, addr(&mut len))
        })?;
        Ok(&buf[..len as usize])
    }

    /// The length of the value under `key`.
    pub fn value_len(&self, key: &[u8]) -> Result<usize> {
        let (kp, kl) = span(key);
        let mut len = 0u32;
        match check(unsafe { raw::get(self.h, kp, kl, 0, 0, addr(&mut len)) }) {
            Ok(()) | Err(Error::Range) => Ok(len as usize),
            Err(e) => Err(e),
        }
    }

    /// Whether `key` is present (a map reference counts).
    pub fn exists(&self, key: &[u8]) -> Result<bool> {
        let (kp, kl) = span(key);
        let mut yes = 0u32;
        check(unsafe { raw::exists(self.h, kp, kl, addr(&mut yes)) })?;
        Ok(yes != 0)
    }

    /// The number of entries.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Result<u32> {
        let mut n = 0u32;
        check(unsafe { raw::len(self.h, addr(&mut n)) })?;
        Ok(n)
    }

    /// The version of `key`: 0 when absent, larger after every write.
    pub fn version(&self, key: &[u8]) -> Result<u64> {
        let (kp, kl) = span(key);
        let mut v = 0u64;
        check(unsafe { raw::version(self.h, kp, kl, addr(&mut v)) })?;
        Ok(v)
    }

    /// The keys, in insertion order, a page at a time into `buf`
    /// (see [`Keys`]).
    pub fn keys<'m, 'b>(&'m self, buf: &'b mut [u8]) -> Keys<'m, 'b> {
        Keys { h: self.h, buf, cursor: 0, used: 0, at: 0, left: 0, done: false, _map: PhantomData }
    }

    /// Several values with one call: `buf` holds the packed key list at its
    /// end and receives the values at its start.  `Range` when `buf` is too
    /// small for both.
    pub fn get_many<'b>(&self, keys: &[&[u8]], buf: &'b mut [u8]) -> Result<Values<'b>> {
        let need: usize = keys.iter().map(|k| 4 + k.len()).sum();
        if need > buf.len() {
            return Err(Error::Range);
        }
        let split = buf.len() - need;
        let (out, list) = buf.split_at_mut(split);
        let mut records = Records::new(list);
        for k in keys {
            records.push(k)?;
        }
        let mut used = 0u32;
        check(unsafe {
            raw::get_many(
                self.h,
                addr(list.as_ptr()),
                need as u32,
                addr(out.as_mut_ptr()),
                out.len() as u32,
                addr(&mut used),
            )
        })?;
        let out: &'b [u8] = out;
        Ok(Values { rest: &out[..used as usize] })
    }

    /// A new owning handle to the map referenced under `key`, READ only
    /// (narrowed here: `self` may carry WRITE, which the child would inherit).
    pub fn get_map(&self, key: &[u8]) -> Result<ReadMap> {
        let inherited = ReadMap { h: get_map(self.h, key)? };
        inherited.try_clone() // `inherited` is closed as it drops
    }

    /// Call this module's `wasi_map_on_drop(cookie)` when the map is reclaimed.
    pub fn watch_drop(&self, cookie: i64) -> Result<()> {
        check(unsafe { raw::watch_drop(self.h, cookie) })
    }
}

impl Drop for ReadMap {
    fn drop(&mut self) {
        unsafe { raw::close(self.h) };
    }
}

// ----------------------------------------------------------------------------
// Map: an owning handle that reads and writes.

/// An owning handle with READ and WRITE.  Dropping it closes the handle;
/// moving it into a call declared `own` moves the map.  Every reading
/// method of [`ReadMap`] works on it (`Map` dereferences to `ReadMap`), so
/// a `&Map` can be lent where a `&ReadMap` is wanted.
#[repr(transparent)]
#[derive(Debug)]
pub struct Map {
    inner: ReadMap,
}

impl Deref for Map {
    type Target = ReadMap;
    #[inline(always)]
    fn deref(&self) -> &ReadMap {
        &self.inner
    }
}

impl Map {
    /// A new, empty anonymous map, owned by this handle alone.
    pub fn new() -> Result<Map> {
        let mut h = 0u32;
        check(unsafe { raw::new(addr(&mut h)) })?;
        Ok(Map { inner: ReadMap { h } })
    }

    /// Open the named map `name` to read and write (the manifest must grant `rw`).
    pub fn open(name: &str) -> Result<Map> {
        open(name, READ | WRITE).map(|h| Map { inner: ReadMap { h } })
    }

    /// Take ownership of a handle number received by `own` or `share`.
    ///
    /// # Safety
    /// `h` must be an owning handle of this module that nothing else closes.
    pub unsafe fn from_raw(h: u32) -> Map {
        Map { inner: ReadMap { h } }
    }

    /// Give up ownership without closing: the number is the caller's now.
    pub fn into_raw(self) -> u32 {
        self.inner.into_raw()
    }

    /// Close the handle now, and hear the errno (`Drop` ignores it).
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }

    /// A second owning handle with READ and WRITE.
    pub fn try_clone(&self) -> Result<Map> {
        clone(self.h, READ | WRITE).map(|h| Map { inner: ReadMap { h } })
    }

    /// A second owning handle with READ only.
    pub fn read_only(&self) -> Result<ReadMap> {
        self.inner.try_clone()
    }

    /// Insert or replace.
    #[inline]
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let (kp, kl) = span(key);
        let (vp, vl) = span(value);
        check(unsafe { raw::set(self.h, kp, kl, vp, vl) })
    }

    /// Remove `key` (OK also when absent).
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        let (kp, kl) = span(key);
        check(unsafe { raw::delete(self.h, kp, kl) })
    }

    /// Add `delta` to the 8-byte little-endian counter under `key` (absent: 0); the new value.
    pub fn incr(&self, key: &[u8], delta: i64) -> Result<i64> {
        let (kp, kl) = span(key);
        let mut v = 0i64;
        check(unsafe { raw::incr(self.h, kp, kl, delta, addr(&mut v)) })?;
        Ok(v)
    }

    /// Set only if `key`'s version is `expected` (0: absent); else `Conflict`.
    pub fn set_if(&self, key: &[u8], value: &[u8], expected: u64) -> Result<()> {
        let (kp, kl) = span(key);
        let (vp, vl) = span(value);
        check(unsafe { raw::set_if(self.h, kp, kl, vp, vl, expected as i64) })
    }

    /// Set every pair of `items` with one call, all or nothing.
    pub fn set_many(&self, items: &Items<'_>) -> Result<()> {
        let packed = items.packed();
        check(unsafe { raw::set_many(self.h, addr(packed.as_ptr()), packed.len() as u32) })
    }

    /// Store under `key` a reference to `child`'s map (which it keeps alive).
    /// The child must be READ and WRITE (the broker answers `Acces` otherwise),
    /// so a `ReadMap` does not compile here.
    pub fn set_map(&self, key: &[u8], child: &Map) -> Result<()> {
        let (kp, kl) = span(key);
        check(unsafe { raw::set_map(self.h, kp, kl, child.h) })
    }

    /// A new owning handle to the map referenced under `key`, with this handle's rights.
    pub fn get_map(&self, key: &[u8]) -> Result<Map> {
        get_map(self.h, key).map(|h| Map { inner: ReadMap { h } })
    }
}

fn open(name: &str, rights: u32) -> Result<u32> {
    let (np, nl) = span(name.as_bytes());
    let mut h = 0u32;
    check(unsafe { raw::open(np, nl, rights, addr(&mut h)) })?;
    Ok(h)
}

fn clone(h: u32, rights: u32) -> Result<u32> {
    let mut out = 0u32;
    check(unsafe { raw::clone(h, rights, addr(&mut out)) })?;
    Ok(out)
}

fn get_map(h: u32, key: &[u8]) -> Result<u32> {
    let (kp, kl) = span(key);
    let mut out = 0u32;
    check(unsafe { raw::get_map(h, kp, kl, addr(&mut out)) })?;
    Ok(out)
}

// ----------------------------------------------------------------------------
// Passing handles: borrowed and shared.

/// A handle received by `borrow`: usable for the call, never movable (the
/// broker refuses a borrowed handle as `own`; here it does not compile).
/// Dropping it closes the borrow, which ends it politely.
#[derive(Debug)]
pub struct Borrowed<M> {
    map: M,
}

impl<M> Deref for Borrowed<M> {
    type Target = M;
    #[inline(always)]
    fn deref(&self) -> &M {
        &self.map
    }
}

/// A handle passed as `share`: the callee gets an owning handle of its own
/// (the count grows), the lender keeps its handle.  Made by `map.share()`.
#[derive(Clone, Copy, Debug)]
pub struct Share<'a> {
    h: u32,
    _map: PhantomData<&'a ReadMap>,
}

// ----------------------------------------------------------------------------
// Keys: paging through `keys`.

/// The keys of a map, a page at a time into a buffer of the caller's.
/// Each key borrows the buffer until the next call, so this is not an
/// `Iterator` (Rust 1.63 has no lending iterators):
///
/// ```ignore
/// let mut page = [0u8; 256];
/// let mut keys = map.keys(&mut page);
/// while let Some(key) = keys.next_key() {
///     let key = key?;
///     // ...
/// }
/// ```
pub struct Keys<'m, 'b> {
    h: u32,
    buf: &'b mut [u8],
    cursor: u64,
    used: usize,
    at: usize,
    left: u32,
    done: bool,
    _map: PhantomData<&'m ReadMap>,
}

impl<'m, 'b> Keys<'m, 'b> {
    /// The next key, or None when the listing is done.  `Range` when a key
    /// does not fit the buffer (the listing then stops).
    pub fn next_key(&mut self) -> Option<Result<&[u8]>> {
        if self.left == 0 {
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
            if self.left == 0 {
                return None;
            }
        }
        let at = self.at;
        let len = u32::from_le_bytes([
            self.buf[at],
            self.buf[at + 1],
            self.buf[at + 2],
            self.buf[at + 3],
        ]) as usize;
        self.at = at + 4 + len;
        self.left -= 1;
        Some(Ok(&self.buf[at + 4..at + 4 + len]))
    }

    /// Call `f` with every key; stops at the first error.
    pub fn for_each(mut self, mut f: impl FnMut(&[u8])) -> Result<()> {
        while let Some(key) = self.next_key() {
            f(key?);
        }
        Ok(())
    }

    fn fetch(&mut self) -> Result<()> {
        let (mut used, mut count) = (0u32, 0u32);
        check(unsafe {
            raw::keys(
                self.h,
                addr(&mut self.cursor),
                addr(self.buf.as_mut_ptr()),
                self.buf.len() as u32,
                addr(&mut used),
                addr(&mut count),
            )
        })?;
        self.used = used as usize;
        self.at = 0;
        self.left = count;
        self.done = self.cursor == 0;
        debug_assert!(self.used <= self.buf.len());
        Ok(())
    }
}

// ----------------------------------------------------------------------------
// Batches: `u32 length + bytes` records.

/// Records written back to back into a buffer of the caller's.
struct Records<'b> {
    buf: &'b mut [u8],
    used: usize,
}

impl<'b> Records<'b> {
    fn new(buf: &'b mut [u8]) -> Records<'b> {
        Records { buf, used: 0 }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self.used + 4 + bytes.len();
        if end > self.buf.len() {
            return Err(Error::Range);
        }
        self.buf[self.used..self.used + 4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.buf[self.used + 4..end].copy_from_slice(bytes);
        self.used = end;
        Ok(())
    }
}

/// The pairs of one `set_many`, packed into a buffer of the caller's:
///
/// ```ignore
/// let mut space = [0u8; 128];
/// let mut items = Items::new(&mut space);
/// items.push(b"a", b"1")?;
/// map.set_many(&items)?;
/// ```
pub struct Items<'b> {
    records: Records<'b>,
}

impl<'b> Items<'b> {
    /// An empty batch that packs into `buf`.
    pub fn new(buf: &'b mut [u8]) -> Items<'b> {
        Items { records: Records::new(buf) }
    }

    /// Add one pair; `Range` when `buf` is full (the batch is unchanged).
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.records.used + 8 + key.len() + value.len() > self.records.buf.len() {
            return Err(Error::Range);
        }
        self.records.push(key)?;
        self.records.push(value)
    }

    fn packed(&self) -> &[u8] {
        &self.records.buf[..self.records.used]
    }
}

/// The values of one `get_many`, in the order of its keys: `None` for an absent key.
#[derive(Clone, Debug)]
pub struct Values<'b> {
    rest: &'b [u8],
}

impl<'b> Iterator for Values<'b> {
    type Item = Option<&'b [u8]>;

    fn next(&mut self) -> Option<Option<&'b [u8]>> {
        if self.rest.len() < 4 {
            return None;
        }
        let len = u32::from_le_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]]);
        if len == ABSENT {
            self.rest = &self.rest[4..];
            return Some(None);
        }
        let (value, rest) = self.rest[4..].split_at(len as usize);
        self.rest = rest;
        Some(Some(value))
    }
}

// ----------------------------------------------------------------------------
// Crossing a module boundary: what each type is as a Wasm value.

/// A value that goes into a call (an argument to an import, a result of an
/// export) as a Wasm value.  For maps this says how the handle passes:
/// `Map`/`ReadMap` by value move (`own`), `&Map`/`&ReadMap` lend (`borrow`),
/// `Share` shares.  The manifest's declaration of the export must agree.
pub trait IntoWasm {
    /// The Wasm type.
    type Wasm;
    /// The Wasm value; a moved map is no longer this module's to close.
    fn into_wasm(self) -> Self::Wasm;
}

/// A value that comes out of a call (a parameter of an export, a result of
/// an import) as a Wasm value.
pub trait FromWasm {
    /// The Wasm type.
    type Wasm;
    /// The Rust value.
    ///
    /// # Safety
    /// For maps: `w` is a handle the broker just passed to this module.
    unsafe fn from_wasm(w: Self::Wasm) -> Self;
}

macro_rules! plain_wasm {
    ($($t:ty),*) => {$(
        impl IntoWasm for $t {
            type Wasm = $t;
            #[inline(always)]
            fn into_wasm(self) -> $t { self }
        }
        impl FromWasm for $t {
            type Wasm = $t;
            #[inline(always)]
            unsafe fn from_wasm(w: $t) -> $t { w }
        }
    )*};
}
plain_wasm!(i32, u32, i64, u64, f32, f64, ());

impl IntoWasm for Map {
    type Wasm = u32;
    fn into_wasm(self) -> u32 {
        self.into_raw()
    }
}

impl IntoWasm for ReadMap {
    type Wasm = u32;
    fn into_wasm(self) -> u32 {
        self.into_raw()
    }
}

impl IntoWasm for &ReadMap {
    type Wasm = u32;
    fn into_wasm(self) -> u32 {
        self.h
    }
}

impl IntoWasm for &Map {
    type Wasm = u32;
    fn into_wasm(self) -> u32 {
        self.h
    }
}

impl IntoWasm for Share<'_> {
    type Wasm = u32;
    fn into_wasm(self) -> u32 {
        self.h
    }
}

impl FromWasm for Map {
    type Wasm = u32;
    unsafe fn from_wasm(h: u32) -> Map {
        Map::from_raw(h)
    }
}

impl FromWasm for ReadMap {
    type Wasm = u32;
    unsafe fn from_wasm(h: u32) -> ReadMap {
        ReadMap::from_raw(h)
    }
}

impl<M: FromWasm<Wasm = u32>> FromWasm for Borrowed<M> {
    type Wasm = u32;
    unsafe fn from_wasm(h: u32) -> Borrowed<M> {
        Borrowed { map: M::from_wasm(h) }
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __or_unit {
    () => { () };
    ($t:ty) => { $t };
}

/// Declare exports whose parameters and results may be maps:
///
/// ```ignore
/// wasi_map::export! {
///     // app.toml: exports.run = { params = ["own"], results = ["own"] }
///     fn run(image: Map) -> Map { grey(&image); image }
///     // exports.size = { params = ["borrow:r"] }
///     fn size(m: Borrowed<ReadMap>) -> u32 { m.len().unwrap_or(0) }
///     fn wasi_map_on_drop(cookie: i64) { /* ... */ }
/// }
/// ```
///
/// Each parameter arrives through [`FromWasm`], the result leaves through
/// [`IntoWasm`]; the body is an ordinary function body.  The types are a
/// promise about the manifest: a `Map` parameter must be declared `own` or
/// `share`, a `Borrowed` one `borrow`, a `Map` result `own`.  Where they
/// disagree the module can end up closing a handle it does not own (the
/// broker still checks every handle: nothing outside the module is hurt).
/// The exported functions cannot be called from Rust.
#[macro_export]
macro_rules! export {
    ($(
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    )*) => {$(
        // In an anonymous const, so Rust code cannot call the export with a
        // number of its own (which would make a second owner of a handle);
        // the symbol is exported all the same.
        const _: () = {
            $(#[$meta])*
            #[no_mangle]
            pub extern "C" fn $name(
                $($arg: <$ty as $crate::FromWasm>::Wasm),*
            ) -> <$crate::__or_unit!($($ret)?) as $crate::IntoWasm>::Wasm {
                #[inline(always)]
                fn body($($arg: $ty),*) -> $crate::__or_unit!($($ret)?) $body
                $crate::IntoWasm::into_wasm(body(
                    $(unsafe { <$ty as $crate::FromWasm>::from_wasm($arg) }),*
                ))
            }
        };
    )*};
}

/// Declare another module's exports as Rust functions (their types, as for
/// [`export!`], are a promise about the exporter's manifest):
///
/// ```ignore
/// wasi_map::import! {
///     from "grayscale" {
///         fn run(image: Map) -> Map;      // own in, own out
///         fn look(m: &ReadMap) -> u32;    // borrow
///         fn keep(m: Share<'_>);          // share
///     }
/// }
/// ```
#[macro_export]
macro_rules! import {
    (from $module:literal {$(
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;
    )*}) => {$(
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) -> $crate::__or_unit!($($ret)?) {
            #[link(wasm_import_module = $module)]
            extern "C" {
                #[link_name = stringify!($name)]
                fn $name(
                    $($arg: <$ty as $crate::IntoWasm>::Wasm),*
                ) -> <$crate::__or_unit!($($ret)?) as $crate::FromWasm>::Wasm;
            }
            unsafe {
                <$crate::__or_unit!($($ret)?) as $crate::FromWasm>::from_wasm(
                    $name($($crate::IntoWasm::into_wasm($arg)),*)
                )
            }
        }
    )*};
}
