//! peer.rs: the Rust side of the cross-language tests
//! (tests/support/guest_checks.py says the protocol).  The callee exports
//! take (own), look (borrow), keep (share) and give (own result); the
//! caller side passes maps to the same exports of the module "c".  A
//! result < 0 is -(the step that failed).
use wasi_map::{Borrowed, Error, Map};

/// The map `take` or `keep` holds (a guest is single-threaded).
static mut KEPT: Option<Map> = None;

fn keep_map(m: Map) {
    unsafe { KEPT = Some(m) };
}

fn len_of(m: &Map) -> i32 {
    m.len().map(|n| n as i32).unwrap_or(-100)
}

/// A new map with `n` (at most 10) entries "k0".."k{n-1}".
fn filled(n: i32) -> Result<Map, Error> {
    let m = Map::new()?;
    for i in 0..n.clamp(0, 10) {
        m.set(&[b'k', b'0' + i as u8], b"v")?; // "k0".."k9"
    }
    Ok(m)
}

/// The same exports of the C peer.
mod c {
    use wasi_map::{Map, Share};
    wasi_map::import! {
        from "c" {
            fn take(m: Map) -> i32;
            fn look(m: &Map) -> i32;
            fn keep(m: Share<'_>) -> i32;
            fn give() -> Map;
        }
    }
}

wasi_map::export! {
    // --- the callee ----------------------------------------------------------
    fn take(m: Map) -> i32 {
        let n = len_of(&m);
        keep_map(m);
        n
    }

    fn look(m: Borrowed<Map>) -> i32 {
        let n = len_of(&m);
        if m.set(b"seen", b"rust").is_err() {
            return -1;
        }
        n // dropping `m` closes the borrow
    }

    fn keep(m: Map) -> i32 {
        let n = len_of(&m);
        keep_map(m);
        n
    }

    fn give() -> Map {
        match unsafe { KEPT.take() } {
            Some(m) => m,
            None => Map::new().expect("a new map"),
        }
    }

    // --- the caller ----------------------------------------------------------
    fn send_own(n: i32) -> i32 {
        let m = match filled(n) { Ok(m) => m, Err(_) => return -1 };
        let number = m.handle();
        let got = c::take(m); // moved: `m` cannot be used here any more
        if unsafe { wasi_map::raw::close(number) } != Error::Stale as u32 {
            return -2;
        }
        got
    }

    fn send_borrow(n: i32) -> i32 {
        let m = match filled(n) { Ok(m) => m, Err(_) => return -1 };
        let got = c::look(&m);
        let mut buf = [0u8; 8];
        if m.get(b"seen", &mut buf) != Ok(&b"c"[..]) {
            return -2;
        }
        if m.close().is_err() {
            return -3; // the lend ended with the call
        }
        got
    }

    fn send_share(n: i32) -> i32 {
        let m = match filled(n) { Ok(m) => m, Err(_) => return -1 };
        let got = c::keep(m.share());
        if m.set(b"after", b"1").is_err() || m.close().is_err() {
            return -2;
        }
        got
    }

    fn fetch() -> i32 {
        let m = c::give();
        if m.set(b"fetched", b"1").is_err() {
            return -1;
        }
        len_of(&m)
    }
}
