;; b.wat: the callee of docs/pictures/app.toml.  Each export receives or
;; gives handles as app.toml declares; every wasi_map errno but OK traps.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "clone" (func $clone (param i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))

  ;; 0: out handle; 16: "camera"; 32: "during"; 48: "k"
  (memory (export "memory") 1)
  (data (i32.const 16) "camera")
  (data (i32.const 32) "during")
  (data (i32.const 48) "k")

  (global $kept (mut i32) (i32.const 0))   ;; a handle b holds on to
  (global $made (mut i32) (i32.const 0))   ;; maps b made itself
  (global $made2 (mut i32) (i32.const 0))

  (func $ok (param $errno i32)
    (if (local.get $errno) (then unreachable)))

  ;; A map of b's own with one entry: its handle.
  (func $fresh (result i32)
    (call $ok (call $new (i32.const 0)))
    (call $ok (call $set (i32.load (i32.const 0)) (i32.const 48) (i32.const 1)
                         (i32.const 48) (i32.const 1)))
    (i32.load (i32.const 0)))

  ;; Let make.py take a snapshot now: write "during" to the named map
  ;; "camera", whose store is make.py's.  (Its handle is closed at once.)
  (func $snapshot
    (local $cam i32)
    (call $ok (call $open (i32.const 16) (i32.const 6) (i32.const 2) (i32.const 0)))
    (local.set $cam (i32.load (i32.const 0)))
    (call $ok (call $set (local.get $cam) (i32.const 32) (i32.const 6) (i32.const 0) (i32.const 0)))
    (call $ok (call $close (local.get $cam))))

  ;; own: the map is b's now; b keeps it.
  (func (export "take") (param $h i32)
    (global.set $kept (local.get $h)))

  ;; borrow: b looks during the call and closes its borrow when done.
  (func (export "look") (param $h i32)
    (call $snapshot)
    (call $ok (call $close (local.get $h))))

  ;; share, share:r: b has its own handle and keeps it.
  (func (export "keep") (param $h i32)
    (global.set $kept (local.get $h)))
  (func (export "keep_r") (param $h i32)
    (global.set $kept (local.get $h)))

  ;; borrow, kept past the call: b clones the borrowed handle (an owning
  ;; handle of its own) and leaves the borrow open; the broker ends it.
  (func (export "hold") (param $h i32)
    (call $ok (call $clone (local.get $h) (i32.const 3) (i32.const 0)))
    (global.set $kept (i32.load (i32.const 0)))
    (call $snapshot))

  ;; make two maps of b's own.
  (func (export "init")
    (global.set $made (call $fresh))
    (global.set $made2 (call $fresh)))

  ;; results: the first map moves to the caller (own), the second is shared.
  (func (export "give") (result i32 i32)
    (global.get $made) (global.get $made2))

  ;; close the handle b kept.
  (func (export "drop")
    (call $ok (call $close (global.get $kept))))

  ;; a bug: b traps, and is torn down.
  (func (export "crash")
    unreachable))
