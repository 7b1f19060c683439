;; audit: a second module granted "freq" read-only.  distinct() reads the
;; map the wordfreq module filled; try_write() shows the grant holds: a set
;; through a read-only handle answers ACCES (4).
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "freq")
  (data (i32.const 32) "the")

  (func $open_freq (result i32)
    (if (call $open (i32.const 16) (i32.const 4) (i32.const 1) (i32.const 0))
      (then unreachable))
    (i32.load (i32.const 0)))

  (func (export "distinct") (result i32)
    (local $h i32)
    (local.set $h (call $open_freq))
    (if (call $len (local.get $h) (i32.const 8)) (then unreachable))
    (drop (call $close (local.get $h)))
    (i32.load (i32.const 8)))

  (func (export "try_write") (result i32)
    (local $h i32) (local $err i32)
    (local.set $h (call $open_freq))
    (local.set $err (call $set (local.get $h) (i32.const 32) (i32.const 3) (i32.const 32) (i32.const 3)))
    (drop (call $close (local.get $h)))
    (local.get $err))
)
