;; spin_start.wat: a start function that never returns.
(module
  (func $start (loop $forever (br $forever)))
  (start $start)
  (func (export "ok") (result i32) (i32.const 7))
)
