//! abi_loop.rs: abi_loop.c's loops through the Rust crate (`Map::get`,
//! `Map::set`), to show what the typed API costs over the raw imports.
use wasi_map::Map;

const KEY: &[u8; 16] = b"bench-key-000001";
const VALUE: &[u8; 64] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static mut MAP: Option<Map> = None;
static mut BUF: [u8; 64] = [0; 64];
static mut GOT: usize = 0;

fn map() -> &'static Map {
    unsafe { MAP.as_ref().expect("setup first") }
}

wasi_map::export! {
    fn setup() -> u32 {
        let made = Map::new().and_then(|m| m.set(KEY, VALUE).map(|()| m));
        match made {
            Ok(m) => { unsafe { MAP = Some(m) }; 0 }
            Err(e) => e as u32,
        }
    }

    fn get_loop(n: u32) -> u32 {
        let (m, buf) = (map(), unsafe { &mut BUF });
        let mut bad = 0;
        for _ in 0..n {
            match m.get(KEY, buf) {
                Ok(value) => unsafe { GOT = value.len() },
                Err(_) => bad += 1,
            }
        }
        bad
    }

    fn set_loop(n: u32) -> u32 {
        let m = map();
        let mut bad = 0;
        for _ in 0..n {
            bad += m.set(KEY, VALUE).is_err() as u32;
        }
        bad
    }

    fn value_ok() -> u32 {
        unsafe { (GOT == VALUE.len() && BUF == *VALUE) as u32 }
    }
}
