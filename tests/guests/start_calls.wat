;; start_calls.wat: ABI calls made from the start function, before
;; instantiation has finished (the broker has not been handed the memory yet).
(module
  (import "wasi_map" "open" (func $open (param i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "cfg")
  (data (i32.const 32) "from")
  (data (i32.const 48) "start")
  (global $status (mut i32) (i32.const -1))
  (func $init
    (local $err i32)
    (local.set $err (call $open (i32.const 16) (i32.const 3) (i32.const 3) (i32.const 0)))
    (if (i32.eqz (local.get $err))
      (then (local.set $err
        (call $set (i32.load (i32.const 0)) (i32.const 32) (i32.const 4) (i32.const 48) (i32.const 5)))))
    (global.set $status (local.get $err)))
  (start $init)
  (func (export "status") (result i32) (global.get $status))
  (func (export "handle") (result i32) (i32.load (i32.const 0)))
)
