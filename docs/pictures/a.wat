;; a.wat: the caller of docs/pictures/app.toml.  It makes a map, passes it
;; to b in each of the ways b's exports declare, and watches maps for their
;; reclaim.  Every wasi_map errno but OK traps.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "watch_drop" (func $watch_drop (param i32 i64) (result i32)))
  (import "b" "take" (func $take (param i32)))
  (import "b" "look" (func $look (param i32)))
  (import "b" "keep" (func $keep (param i32)))
  (import "b" "keep_r" (func $keep_r (param i32)))
  (import "b" "hold" (func $hold (param i32)))
  (import "b" "give" (func $give (result i32 i32)))
  (import "b" "crash" (func $crash))

  ;; 0: out handle; 16: "config"; 32: "child"; 48: "next"; 64: "k"
  (memory (export "memory") 1)
  (data (i32.const 16) "config")
  (data (i32.const 32) "child")
  (data (i32.const 48) "next")
  (data (i32.const 64) "k")

  (global $h (mut i32) (i32.const 0))        ;; the map a passes around
  (global $got (mut i32) (i32.const 0))      ;; results a received
  (global $got2 (mut i32) (i32.const 0))
  (global $notice (mut i64) (i64.const -1))  ;; the last drop notice's cookie

  (func $ok (param $errno i32)
    (if (local.get $errno) (then unreachable)))

  ;; A new map with one entry: its handle.
  (func $fresh (result i32)
    (call $ok (call $new (i32.const 0)))
    (call $ok (call $set (i32.load (i32.const 0)) (i32.const 64) (i32.const 1)
                         (i32.const 64) (i32.const 1)))
    (i32.load (i32.const 0)))

  (func (export "make")
    (global.set $h (call $fresh)))

  ;; counting: the named map "config"; a map holding a reference to another
  ;; (whose handle a closes); a read-only clone of the first.
  (func (export "counting")
    (local $child i32)
    (call $ok (call $open (i32.const 16) (i32.const 6) (i32.const 3) (i32.const 0)))
    (global.set $got (i32.load (i32.const 0)))
    (global.set $h (call $fresh))
    (local.set $child (call $fresh))
    (call $ok (call $set_map (global.get $h) (i32.const 32) (i32.const 5) (local.get $child)))
    (call $ok (call $close (local.get $child)))
    (call $ok (call $clone (global.get $h) (i32.const 1) (i32.const 0)))
    (global.set $got2 (i32.load (i32.const 0))))

  (func (export "give_own") (call $take (global.get $h)))
  ;; the errno a gets using its handle now (STALE once it has moved)
  (func (export "probe") (result i32) (call $len (global.get $h) (i32.const 0)))
  (func (export "lend") (call $look (global.get $h)))
  (func (export "share") (call $keep (global.get $h)))
  (func (export "share_r") (call $keep_r (global.get $h)))
  (func (export "lend_keep") (call $hold (global.get $h)))

  ;; results: b gives a one map by own and one by share.
  (func (export "fetch")
    (call $give)
    (global.set $got2)
    (global.set $got))

  ;; teardown: b traps in a call a made.
  (func (export "call_crash") (call $crash))

  ;; drop notices: call wasi_map_on_drop(7) when the map is reclaimed.
  (func (export "watch")
    (call $ok (call $watch_drop (global.get $h) (i64.const 7))))
  (func (export "wasi_map_on_drop") (param $cookie i64)
    (global.set $notice (local.get $cookie)))
  (func (export "notice") (result i64) (global.get $notice))

  ;; a cycle: x["next"] = y, y["next"] = x; a keeps x only.
  (func (export "cycle")
    (local $y i32)
    (global.set $h (call $fresh))
    (local.set $y (call $fresh))
    (call $ok (call $set_map (global.get $h) (i32.const 48) (i32.const 4) (local.get $y)))
    (call $ok (call $set_map (local.get $y) (i32.const 48) (i32.const 4) (global.get $h)))
    (call $ok (call $close (local.get $y))))

  ;; give up the map.
  (func (export "drop")
    (call $ok (call $close (global.get $h)))))
