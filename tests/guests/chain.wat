;; chain.wat: build a chain of maps, each holding the next under key "n",
;; keeping only the root's handle; closing the root reclaims the whole chain.
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "close" (func $close (param i32) (result i32)))
  (import "wasi_map" "set_map" (func $set_map (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "n")

  ;; build(n) -> the root's handle, or -1 on any error
  (func (export "build") (param $n i32) (result i32)
    (local $root i32) (local $prev i32) (local $next i32)
    (if (call $new (i32.const 0)) (then (return (i32.const -1))))
    (local.set $root (i32.load (i32.const 0)))
    (local.set $prev (local.get $root))
    (block $done
      (loop $more
        (br_if $done (i32.le_s (local.get $n) (i32.const 1)))
        (if (call $new (i32.const 4)) (then (return (i32.const -1))))
        (local.set $next (i32.load (i32.const 4)))
        (if (call $set_map (local.get $prev) (i32.const 16) (i32.const 1) (local.get $next))
          (then (return (i32.const -1))))
        ;; keep only the root's handle: the chain holds the others
        (if (i32.ne (local.get $prev) (local.get $root))
          (then (if (call $close (local.get $prev)) (then (return (i32.const -1))))))
        (local.set $prev (local.get $next))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $more)))
    (if (i32.ne (local.get $prev) (local.get $root))
      (then (if (call $close (local.get $prev)) (then (return (i32.const -1))))))
    (local.get $root))

  (func (export "close") (param i32) (result i32) (call $close (local.get 0)))
)
