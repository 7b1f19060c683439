;; spin_init.wat: an _initialize that never returns.
(module
  (memory (export "memory") 1)
  (func (export "_initialize") (loop $forever (br $forever)))
  (func (export "ok") (result i32) (i32.const 7))
)
