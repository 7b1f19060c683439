;; trap_teardown.wat: `run` builds maps, stores one in the named map "cfg",
;; then traps.  The broker must close every handle the module held: the maps
;; only it kept alive are reclaimed, the one stored in "cfg" keeps its data.
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "cfg")
  (data (i32.const 110) "kept")
  (data (i32.const 120) "child")
  (data (i32.const 130) "data")

  ;; handles: 0 = cfg, 4 = parent, 8 = child, 12 = kept
  (func (export "run") (param $trap i32) (result i32)
    (if (call $open (i32.const 100) (i32.const 3) (i32.const 3) (i32.const 0)) (then (return (i32.const -1))))
    (if (call $new (i32.const 4)) (then (return (i32.const -2))))
    (if (call $new (i32.const 8)) (then (return (i32.const -3))))
    (if (call $new (i32.const 12)) (then (return (i32.const -4))))
    ;; parent -> child: both only reachable from this module's handles
    (if (call $set_map (i32.load (i32.const 4)) (i32.const 120) (i32.const 5) (i32.load (i32.const 8)))
      (then (return (i32.const -5))))
    (if (call $set (i32.load (i32.const 8)) (i32.const 130) (i32.const 4) (i32.const 130) (i32.const 4))
      (then (return (i32.const -6))))
    ;; kept: referenced from the named map too
    (if (call $set (i32.load (i32.const 12)) (i32.const 130) (i32.const 4) (i32.const 110) (i32.const 4))
      (then (return (i32.const -7))))
    (if (call $set_map (i32.load (i32.const 0)) (i32.const 110) (i32.const 4) (i32.load (i32.const 12)))
      (then (return (i32.const -8))))
    (if (local.get $trap) (then unreachable))
    (i32.const 0))
)
