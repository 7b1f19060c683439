;; a.wat ("a"): the leaky app's driver.  main() makes the maps of the
;; scenario in app.toml, in map-id order, and returns 0; any failed call
;; traps (unreachable), so a changed broker shows up as a trap, not as a
;; quietly different report.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (import "b" "take" (func $take (param i32) (result i32)))
  (import "b" "peek" (func $peek (param i32) (result i32)))
  (import "b" "stash" (func $stash (param i32) (result i32)))

  ;; 0x00 out handle; strings from 0x100
  (memory (export "memory") 1)
  (data (i32.const 0x100) "registry")
  (data (i32.const 0x110) "next")
  (data (i32.const 0x120) "child")
  (data (i32.const 0x130) "kv")

  (func $ok (param $err i32)
    (if (local.get $err) (then unreachable)))
  (func $mk (result i32)
    (call $ok (call $new (i32.const 0)))
    (i32.load (i32.const 0)))
  ;; put(h): h["k"] = "v"
  (func $put (param $h i32)
    (call $ok (call $set (local.get $h) (i32.const 0x130) (i32.const 1)
                         (i32.const 0x131) (i32.const 1))))
  ;; link(parent, key_ptr, key_len, child)
  (func $link (param $p i32) (param $k i32) (param $n i32) (param $c i32)
    (call $ok (call $set_map (local.get $p) (local.get $k) (local.get $n) (local.get $c))))

  (func (export "main") (result i32)
    (local $m1 i32) (local $m2 i32) (local $c1 i32) (local $c2 i32)
    (local $reg i32) (local $m6 i32) (local $m7 i32)
    ;; map 1: moved to b, which keeps it
    (local.set $m1 (call $mk))
    (call $put (local.get $m1))
    (drop (call $take (local.get $m1)))
    ;; map 2: lent to b.peek, which leaves the borrow open; then closed
    (local.set $m2 (call $mk))
    (drop (call $peek (local.get $m2)))
    (call $ok (call $close (local.get $m2)))
    ;; maps 3, 4: a cycle, dropped
    (local.set $c1 (call $mk))
    (local.set $c2 (call $mk))
    (call $link (local.get $c1) (i32.const 0x110) (i32.const 4) (local.get $c2))
    (call $link (local.get $c2) (i32.const 0x110) (i32.const 4) (local.get $c1))
    (call $ok (call $close (local.get $c1)))
    (call $ok (call $close (local.get $c2)))
    ;; map 5: the named map "registry"; map 6: only it references map 6
    (call $ok (call $open (i32.const 0x100) (i32.const 8) (i32.const 3) (i32.const 0)))
    (local.set $reg (i32.load (i32.const 0)))
    (local.set $m6 (call $mk))
    (call $put (local.get $m6))
    (call $link (local.get $reg) (i32.const 0x120) (i32.const 5) (local.get $m6))
    (call $ok (call $close (local.get $m6)))
    (call $ok (call $close (local.get $reg)))
    ;; map 7: lent to b.stash, which clones it; a closes its own handle
    (local.set $m7 (call $mk))
    (drop (call $stash (local.get $m7)))
    (call $ok (call $close (local.get $m7)))
    (i32.const 0))
)
