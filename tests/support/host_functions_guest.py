"""The guest the host-function tests share: a map of its own, and imports to try."""


def guest(imports: str, body: str) -> bytes:
    """A module with the wasi_map functions the tests use, `imports` and `body`."""
    return f"""
(module
  (import "wasi_map" "new" (func $new (param i32) (result i32)))
  (import "wasi_map" "set" (func $set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_map" "len" (func $len (param i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 1)
  (data (i32.const 16) "hello")
  (global $h (mut i32) (i32.const 0))
  ;; make(): a new map holding k=v, kept in $h
  (func (export "make")
    (drop (call $new (i32.const 0)))
    (global.set $h (i32.load (i32.const 0)))
    (data.drop 0)
    (i32.store8 (i32.const 8) (i32.const 107))
    (i32.store8 (i32.const 9) (i32.const 118))
    (drop (call $set (global.get $h) (i32.const 8) (i32.const 1) (i32.const 9) (i32.const 1))))
  ;; size(): len of $h's map, or -errno
  (func (export "size") (result i32) (local $e i32)
    (local.set $e (call $len (global.get $h) (i32.const 4)))
    (if (result i32) (local.get $e)
      (then (i32.sub (i32.const 0) (local.get $e)))
      (else (i32.load (i32.const 4)))))
  {body})
""".encode()
