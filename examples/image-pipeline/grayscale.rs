//! grayscale: run(own rgb) -> own gray.  Turns every RGB tile of the image
//! into 8-bit luma, (77 R + 150 G + 29 B) >> 8, in place, and hands the same
//! map back.  It does not need the image's geometry: it pages through the
//! keys and converts every "tile:" value (3 bytes a pixel -> 1 byte).
//!
//! The Rust stage of the pipeline: `run` takes the image as a `Map` (the
//! manifest declares it `own`), so the map is this module's until it is
//! returned, which moves it back.  Every errno a stage does not expect
//! panics, and a panic traps (`-C panic=abort`), as `ok()` does in C.
use wasi_map::{Items, Map, ReadMap};

const MAX_TILE: usize = 32; // largest tile side a stage accepts (pipeline.h)
const MAX_SIDE: u32 = 1024; // largest image width or height
const META: [&[u8]; 4] = [b"width", b"height", b"tile", b"channels"];

/// The four metadata keys (u32 little-endian), read with one get_many.
fn read_image(img: &ReadMap) -> [u32; 4] {
    let mut buf = [0u8; 96]; // the key list (39 bytes) and the values (32)
    let mut meta = [0u32; 4];
    let values = img.get_many(&META, &mut buf).expect("the image's metadata");
    for (slot, value) in meta.iter_mut().zip(values) {
        let value = value.expect("every metadata key");
        *slot = u32::from_le_bytes(value.try_into().expect("4 bytes"));
    }
    let [width, height, tile, channels] = meta;
    assert!(width > 0 && height > 0 && width <= MAX_SIDE && height <= MAX_SIDE);
    assert!(tile > 0 && tile as usize <= MAX_TILE && (channels == 1 || channels == 3));
    meta
}

/// The four metadata keys, written with one set_many (all or nothing).
fn write_image(img: &Map, meta: [u32; 4]) {
    let mut space = [0u8; 128];
    let mut items = Items::new(&mut space);
    for (key, value) in META.iter().zip(meta) {
        items.push(key, &value.to_le_bytes()).expect("room for the metadata");
    }
    img.set_many(&items).expect("set_many");
}

fn to_luma(img: &Map, key: &[u8]) {
    let mut rgb = [0u8; MAX_TILE * MAX_TILE * 3];
    let mut gray = [0u8; MAX_TILE * MAX_TILE];
    let rgb = img.get(key, &mut rgb).expect("a tile");
    assert!(rgb.len() % 3 == 0);
    for (luma, px) in gray.iter_mut().zip(rgb.chunks_exact(3)) {
        *luma = ((77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32) >> 8) as u8;
    }
    img.set(key, &gray[..rgb.len() / 3]).expect("set");
}

wasi_map::export! {
    fn run(img: Map) -> Map {
        let mut meta = read_image(&img);
        assert!(meta[3] == 3, "an RGB image");
        // Rewriting a key keeps its place in the listing, so the listing
        // walks every tile exactly once while we overwrite them.
        let mut page = [0u8; 512];
        let mut keys = img.keys(&mut page);
        while let Some(key) = keys.next_key() {
            let key = key.expect("keys");
            if key.len() > 5 && key.starts_with(b"tile:") {
                to_luma(&img, key);
            }
        }
        meta[3] = 1;
        write_image(&img, meta);
        img
    }
}
