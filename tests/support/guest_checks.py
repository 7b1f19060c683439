"""What the Rust and C++ guests check through their bindings, and the
cross-language peers' protocol: one list both languages implement.

A conformance guest (tests/guests/rust/conformance.rs,
tests/guests/cpp/conformance.cpp) exports `check_<name>() -> i32` for every
name in CHECKS: 0 when every step held, else the number of the first step
that did not (1-based, numbered in the source).  `drops() -> i64` returns
the sum of the cookies its `wasi_map_on_drop` was called with.  It runs with
CONFORMANCE_GRANTS: `shared` read-write, `ro` read-only, nothing else.

A peer (tests/guests/{c,rust,cpp}/peer.*) exports the callee side, declared
in the manifest as PEER_EXPORTS says, and the caller side, which calls the
same callee exports of the module named `c` (the C peer imports from the
module its build names: `-DPEER_MODULE="rust"` or "cpp").  Keys and values
are short strings; a result < 0 is -(the step that failed).
"""

from __future__ import annotations

CHECKS: dict[str, str] = {
    "values": (
        "new map; get of absent 'k' is NOENT; set k=v1; get is 'v1'; exists; len 1;"
        " set k=value2 replaces (get returns exactly 6 bytes); delete; not exists; len 0;"
        " delete of an absent key is OK; an empty value sets and gets as 0 bytes"
    ),
    "range": (
        "set k = 10 bytes; get into a 4-byte buffer is RANGE and the needed size"
        " reported is 10 (and the buffer untouched); get into 10 bytes is OK"
    ),
    "keys": (
        "an empty map lists no keys; set 'key:0'..'key:39'; listing with a 64-byte"
        " page buffer (many pages) yields all 40, each once, in insertion order"
    ),
    "counters": (
        "incr absent 'n' by 5 is 5, by -7 is -2; incr of a 3-byte value is TYPE;"
        " version of an absent key is 0; after set 'v' its version v1 > 0;"
        " set_if(v, v1) is OK and the version grows; set_if(v, v1) again is CONFLICT;"
        " set_if of an absent key with 0 is OK"
    ),
    "batch": (
        "set_many a=1, b=22, c=333 (one call); get_many [a, zz, c] is '1', absent, '333'; len 3"
    ),
    "maprefs": (
        "child.set x=y; parent.set_map('c', child); the child handle closed;"
        " parent.get_map('c') reads x=y; get of 'c' is TYPE; get_map of a bytes key is TYPE;"
        " get_map through the parent seen read-only gives a READ-only child (a write through"
        " its number is ACCES).  C++ also: a const char array without a NUL is all bytes"
    ),
    "rights": (
        "open 'shared' read-write is OK; open 'ro' read-write is ACCES; open 'ro'"
        " read-only is OK and reads; open 'nope' (not granted) is ACCES; a read-only"
        " clone of a new map reads what the map wrote, and a write through its"
        " handle number is ACCES"
    ),
    "handles": (
        "a closed handle's number is STALE on close and get; a number never issued"
        " (0x00FFFFFF) is BADF; dropping/destroying an owning wrapper closes its handle"
        " (the number is STALE after)"
    ),
    "drop_notice": (
        "watch_drop(new map, 42) then close it: no notice inside the call;"
        " after the call returns, drops() is 42"
    ),
}

CONFORMANCE_GRANTS = {"shared": "rw", "ro": "r"}
DROP_COOKIE = 42

# The callee side every peer exports, and how the manifest declares it.
PEER_EXPORTS: dict[str, dict[str, list[str]]] = {
    # take(m own) -> len(m); keeps m (one owner: the callee)
    "take": {"params": ["own"]},
    # look(m borrow) -> len(m); sets 'seen' = the peer's language, closes the borrow
    "look": {"params": ["borrow"]},
    # keep(m share) -> len(m); keeps its own owning handle
    "keep": {"params": ["share"]},
    # give() -> the map kept by take or keep, by own (it leaves the callee); a new
    # empty map when none is kept
    "give": {"results": ["own"]},
}
# The caller side every peer exports (each makes a map with n entries
# 'k0'..'k{n-1}', then):
#   send_own(n) -> what take returned; afterwards the sender's old number is STALE
#   send_borrow(n) -> what look returned; afterwards the sender reads 'seen' = the
#       callee's language and can still close its map
#   send_share(n) -> what keep returned; the sender then writes 'after'='1' and closes
#       its own handle; the callee still holds the map (the test reads it through give)
#   fetch() -> len of the map give returned, after the caller set 'fetched'='1' in it
# LANGUAGE: the value a peer writes under 'seen'.
LANGUAGES = {"c": "c", "rust": "rust", "cpp": "cpp"}
