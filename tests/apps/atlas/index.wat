;; index.wat ("index"): keeps every map it is given (add, own) in a table,
;; and makes one map of its own for whoever asks (fresh, an own result).
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  ;; 0x00 out handle; 0x10 "n"/"1"; 0x200.. the table of kept handles
  (memory (export "memory") 1)
  (data (i32.const 0x10) "n1")
  (global $count (mut i32) (i32.const 0))
  (func (export "add") (param $h i32) (result i32)
    (i32.store (i32.add (i32.const 0x200) (i32.shl (global.get $count) (i32.const 2)))
               (local.get $h))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (global.get $count))
  (func (export "fresh") (result i32)
    (if (call $new (i32.const 0)) (then unreachable))
    (if (call $set (i32.load (i32.const 0)) (i32.const 0x10) (i32.const 1)
                   (i32.const 0x11) (i32.const 1))
      (then unreachable))
    (i32.load (i32.const 0)))
)
