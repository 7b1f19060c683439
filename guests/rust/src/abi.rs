// abi.rs: the WASI-Map v1 guest ABI for Rust guests, raw.
// Generated from broker/abi/ by `python -m broker.abi`; do not edit.

/// The rights bit to read through a handle.
pub const READ: u32 = 1;
/// The rights bit to write through a handle.
pub const WRITE: u32 = 2;

/// What an ABI function answered other than OK: one variant per errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// not a handle of this module (never issued to it)
    Badf = 1,
    /// a handle this module had, but it was closed or moved away
    Stale = 2,
    /// key absent
    Noent = 3,
    /// right missing, name not granted, or more rights than the grant
    Acces = 4,
    /// a pointer/length pair outside the guest's memory
    Fault = 5,
    /// output buffer too small (needed size written where the call says)
    Range = 6,
    /// bad argument: unknown rights bits, malformed batch, bad name
    Inval = 7,
    /// the handle is lent to a call in progress
    Busy = 8,
    /// a module limit reached (handles, bytes, entries)
    Quota = 9,
    /// key or value over the configured size limit
    Toobig = 10,
    /// set_if version mismatch
    Conflict = 11,
    /// map reference where bytes were expected, or the reverse
    Type = 12,
    /// the backing store failed; the operation did not happen
    Io = 13,
}

impl Error {
    /// The errno `code` as an `Error`; None for 0 (OK) or a code unknown here.
    pub const fn from_errno(code: u32) -> Option<Error> {
        match code {
            1 => Some(Error::Badf),
            2 => Some(Error::Stale),
            3 => Some(Error::Noent),
            4 => Some(Error::Acces),
            5 => Some(Error::Fault),
            6 => Some(Error::Range),
            7 => Some(Error::Inval),
            8 => Some(Error::Busy),
            9 => Some(Error::Quota),
            10 => Some(Error::Toobig),
            11 => Some(Error::Conflict),
            12 => Some(Error::Type),
            13 => Some(Error::Io),
            _ => None,
        }
    }

    /// The errno's name as the ABI spells it (`NOENT`).
    pub const fn name(self) -> &'static str {
        match self {
            Error::Badf => "BADF",
            Error::Stale => "STALE",
            Error::Noent => "NOENT",
            Error::Acces => "ACCES",
            Error::Fault => "FAULT",
            Error::Range => "RANGE",
            Error::Inval => "INVAL",
            Error::Busy => "BUSY",
            Error::Quota => "QUOTA",
            Error::Toobig => "TOOBIG",
            Error::Conflict => "CONFLICT",
            Error::Type => "TYPE",
            Error::Io => "IO",
        }
    }

    /// What the errno means.
    pub const fn meaning(self) -> &'static str {
        match self {
            Error::Badf => "not a handle of this module (never issued to it)",
            Error::Stale => "a handle this module had, but it was closed or moved away",
            Error::Noent => "key absent",
            Error::Acces => "right missing, name not granted, or more rights than the grant",
            Error::Fault => "a pointer/length pair outside the guest's memory",
            Error::Range => "output buffer too small (needed size written where the call says)",
            Error::Inval => "bad argument: unknown rights bits, malformed batch, bad name",
            Error::Busy => "the handle is lent to a call in progress",
            Error::Quota => "a module limit reached (handles, bytes, entries)",
            Error::Toobig => "key or value over the configured size limit",
            Error::Conflict => "set_if version mismatch",
            Error::Type => "map reference where bytes were expected, or the reverse",
            Error::Io => "the backing store failed; the operation did not happen",
        }
    }
}

/// The imports themselves: each returns its errno (0 is OK).
pub mod raw {
    #[link(wasm_import_module = "wasi_map")]
    extern "C" {
        /// open a named map granted to this module
        pub fn open(name_ptr: u32, name_len: u32, rights: u32, out_h: u32) -> u32;

        /// a new anonymous map, owned by the caller, rights READ|WRITE
        pub fn new(out_h: u32) -> u32;

        /// give up this handle
        pub fn close(h: u32) -> u32;

        /// a second owning handle, rights a subset of h's
        pub fn clone(h: u32, rights: u32, out_h: u32) -> u32;

        /// copy the value into buf
        pub fn get(h: u32, key_ptr: u32, key_len: u32, buf_ptr: u32, buf_cap: u32, out_len: u32) -> u32;

        /// insert or replace
        pub fn set(h: u32, key_ptr: u32, key_len: u32, val_ptr: u32, val_len: u32) -> u32;

        /// remove; OK also when absent
        pub fn delete(h: u32, key_ptr: u32, key_len: u32) -> u32;

        /// 1 or 0
        pub fn exists(h: u32, key_ptr: u32, key_len: u32, out_u32: u32) -> u32;

        /// number of entries
        pub fn len(h: u32, out_u32: u32) -> u32;

        /// one page of keys
        pub fn keys(h: u32, cursor_ptr: u32, buf_ptr: u32, buf_cap: u32, out_used: u32, out_count: u32) -> u32;

        /// atomic add on an 8-byte LE i64
        pub fn incr(h: u32, key_ptr: u32, key_len: u32, delta: i64, out_i64: u32) -> u32;

        /// the key's version, 0 when absent
        pub fn version(h: u32, key_ptr: u32, key_len: u32, out_u64: u32) -> u32;

        /// set only if the version equals expected
        pub fn set_if(h: u32, key_ptr: u32, key_len: u32, val_ptr: u32, val_len: u32, expected: i64) -> u32;

        /// batch get
        pub fn get_many(h: u32, keys_ptr: u32, keys_len: u32, buf_ptr: u32, buf_cap: u32, out_used: u32) -> u32;

        /// batch set, all or nothing
        pub fn set_many(h: u32, items_ptr: u32, items_len: u32) -> u32;

        /// store a reference to child's map
        pub fn set_map(h: u32, key_ptr: u32, key_len: u32, child_h: u32) -> u32;

        /// a new owning handle to the referenced map
        pub fn get_map(h: u32, key_ptr: u32, key_len: u32, out_h: u32) -> u32;

        /// call wasi_map_on_drop(cookie) when the map is reclaimed
        pub fn watch_drop(h: u32, cookie: i64) -> u32;
    }
}
