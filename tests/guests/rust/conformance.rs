//! conformance.rs: the checks of tests/support/guest_checks.py through the
//! Rust crate.  Each `check_<name>` returns 0, or the number of the first
//! step that did not hold.  Raw calls appear only where a check needs a
//! number the typed API cannot make (a write through a read-only handle's
//! number, a handle never issued).
use core::sync::atomic::{AtomicI64, Ordering};
use wasi_map::{raw, Error, Items, Map, ReadMap};

static DROPS: AtomicI64 = AtomicI64::new(0);

/// Step `n` of a check: its number when `ok` is false.  (`let ... else`
/// would read better, but Debian's rustc is 1.63.)
macro_rules! step {
    ($n:expr, $ok:expr) => {
        if !$ok {
            return $n;
        }
    };
}

/// Step `n` that yields a value: its number when `result` is an error.
macro_rules! take {
    ($n:expr, $result:expr) => {
        match $result {
            Ok(value) => value,
            Err(_) => return $n,
        }
    };
}

fn values() -> i32 {
    let m = take!(1, Map::new());
    let mut buf = [0u8; 16];
    step!(2, m.get(b"k", &mut buf) == Err(Error::Noent));
    step!(3, m.set(b"k", b"v1").is_ok());
    step!(4, m.get(b"k", &mut buf) == Ok(&b"v1"[..]));
    step!(5, m.exists(b"k") == Ok(true));
    step!(6, m.len() == Ok(1));
    step!(7, m.set(b"k", b"value2").is_ok());
    step!(8, m.get(b"k", &mut buf) == Ok(&b"value2"[..]));
    step!(9, m.delete(b"k").is_ok());
    step!(10, m.exists(b"k") == Ok(false));
    step!(11, m.len() == Ok(0));
    step!(12, m.delete(b"k").is_ok());
    step!(13, m.set(b"empty", b"").is_ok());
    step!(14, m.get(b"empty", &mut buf) == Ok(&b""[..]));
    step!(15, m.value_len(b"empty") == Ok(0));
    0
}

fn range() -> i32 {
    let m = take!(1, Map::new());
    step!(2, m.set(b"k", b"0123456789").is_ok());
    let mut small = [0xAAu8; 4];
    step!(3, m.get(b"k", &mut small) == Err(Error::Range));
    step!(4, m.value_len(b"k") == Ok(10));
    step!(5, small == [0xAA; 4]);
    let mut exact = [0u8; 10];
    step!(6, m.get(b"k", &mut exact) == Ok(&b"0123456789"[..]));
    0
}

/// "key:N" in `buf`; its length.
fn numbered(buf: &mut [u8; 16], n: usize) -> usize {
    buf[..4].copy_from_slice(b"key:");
    let mut at = 4;
    if n >= 10 {
        buf[at] = b'0' + (n / 10) as u8;
        at += 1;
    }
    buf[at] = b'0' + (n % 10) as u8;
    at + 1
}

fn keys() -> i32 {
    let m = take!(1, Map::new());
    let mut page = [0u8; 64];
    step!(2, matches!(m.keys(&mut page).next_key(), None));
    let mut name = [0u8; 16];
    for n in 0..40 {
        let len = numbered(&mut name, n);
        step!(3, m.set(&name[..len], b"x").is_ok());
    }
    let mut keys = m.keys(&mut page);
    let mut seen = 0usize;
    while let Some(key) = keys.next_key() {
        let key = take!(4, key);
        let len = numbered(&mut name, seen);
        step!(5, key == &name[..len]); // insertion order, each once
        seen += 1;
    }
    step!(6, seen == 40);
    let mut count = 0;
    step!(7, m.keys(&mut page).for_each(|_| count += 1).is_ok() && count == 40);
    0
}

fn counters() -> i32 {
    let m = take!(1, Map::new());
    step!(2, m.incr(b"n", 5) == Ok(5));
    step!(3, m.incr(b"n", -7) == Ok(-2));
    step!(4, m.set(b"s", b"abc").is_ok());
    step!(5, m.incr(b"s", 1) == Err(Error::Type));
    step!(6, m.version(b"v") == Ok(0));
    step!(7, m.set(b"v", b"1").is_ok());
    let v1 = take!(8, m.version(b"v"));
    step!(9, v1 > 0);
    step!(10, m.set_if(b"v", b"2", v1).is_ok());
    step!(11, matches!(m.version(b"v"), Ok(v2) if v2 > v1));
    step!(12, m.set_if(b"v", b"3", v1) == Err(Error::Conflict));
    step!(13, m.set_if(b"fresh", b"1", 0).is_ok());
    0
}

fn batch() -> i32 {
    let m = take!(1, Map::new());
    let mut space = [0u8; 64];
    let mut items = Items::new(&mut space);
    step!(2, items.push(b"a", b"1").is_ok());
    step!(3, items.push(b"b", b"22").is_ok());
    step!(4, items.push(b"c", b"333").is_ok());
    step!(5, m.set_many(&items).is_ok());
    let mut buf = [0u8; 64];
    let mut values = take!(6, m.get_many(&[b"a", b"zz", b"c"], &mut buf));
    step!(7, values.next() == Some(Some(&b"1"[..])));
    step!(8, values.next() == Some(None));
    step!(9, values.next() == Some(Some(&b"333"[..])));
    step!(10, values.next().is_none());
    step!(11, m.len() == Ok(3));
    0
}

fn maprefs() -> i32 {
    let parent = take!(1, Map::new());
    let child = take!(1, Map::new());
    step!(2, child.set(b"x", b"y").is_ok());
    step!(3, parent.set_map(b"c", &child).is_ok());
    step!(4, child.close().is_ok());
    let got = take!(5, parent.get_map(b"c"));
    let mut buf = [0u8; 8];
    step!(6, got.get(b"x", &mut buf) == Ok(&b"y"[..]));
    step!(7, parent.get(b"c", &mut buf) == Err(Error::Type));
    step!(8, parent.set(b"bytes", b"1").is_ok());
    step!(9, parent.get_map(b"bytes").err() == Some(Error::Type));
    // ReadMap::get_map narrows: the child handle is READ only, though the
    // parent handle carries WRITE.
    let child = take!(10, (&*parent as &ReadMap).get_map(b"c"));
    let (kp, vp) = (b"x".as_ptr() as u32, b"z".as_ptr() as u32);
    step!(11, unsafe { raw::set(child.handle(), kp, 1, vp, 1) } == Error::Acces as u32);
    0
}

fn rights() -> i32 {
    step!(1, Map::open("shared").is_ok());
    step!(2, Map::open("ro").err() == Some(Error::Acces));
    let ro = take!(3, ReadMap::open("ro"));
    step!(4, ro.len().is_ok());
    step!(5, Map::open("nope").err() == Some(Error::Acces));
    let m = take!(6, Map::new());
    step!(7, m.set(b"k", b"v").is_ok());
    let r = take!(8, m.read_only());
    let mut buf = [0u8; 4];
    step!(9, r.get(b"k", &mut buf) == Ok(&b"v"[..]));
    let (kp, vp) = (b"k".as_ptr() as u32, b"w".as_ptr() as u32);
    let answer = unsafe { raw::set(r.handle(), kp, 1, vp, 1) };
    step!(10, answer == Error::Acces as u32);
    0
}

fn handles() -> i32 {
    let m = take!(1, Map::new());
    let h = m.into_raw();
    step!(2, unsafe { raw::close(h) } == 0);
    step!(3, unsafe { raw::close(h) } == Error::Stale as u32);
    let stale = unsafe { ReadMap::from_raw(h) };
    let mut buf = [0u8; 4];
    step!(4, stale.get(b"k", &mut buf) == Err(Error::Stale));
    step!(5, stale.close() == Err(Error::Stale));
    step!(6, unsafe { raw::close(0x00FF_FFFF) } == Error::Badf as u32);
    let dropped = take!(7, Map::new());
    let h = dropped.handle();
    drop(dropped);
    step!(8, unsafe { raw::close(h) } == Error::Stale as u32);
    0
}

fn drop_notice() -> i32 {
    let m = take!(1, Map::new());
    step!(2, m.watch_drop(42).is_ok());
    drop(m);
    step!(3, DROPS.load(Ordering::Relaxed) == 0); // delivered after the call, never inside
    0
}

wasi_map::export! {
    fn check_values() -> i32 { values() }
    fn check_range() -> i32 { range() }
    fn check_keys() -> i32 { keys() }
    fn check_counters() -> i32 { counters() }
    fn check_batch() -> i32 { batch() }
    fn check_maprefs() -> i32 { maprefs() }
    fn check_rights() -> i32 { rights() }
    fn check_handles() -> i32 { handles() }
    fn check_drop_notice() -> i32 { drop_notice() }
    fn drops() -> i64 { DROPS.load(Ordering::Relaxed) }
    fn wasi_map_on_drop(cookie: i64) { DROPS.fetch_add(cookie, Ordering::Relaxed); }
}
