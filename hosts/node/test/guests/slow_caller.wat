;; slow_caller.wat: calls spin.busy (another module's loop), then returns;
;; time spent in the callee counts for this module's time limit too.
(module
  (import "spin" "busy" (func $busy (param i32) (result i32)))
  (func (export "call_busy") (param i32) (result i32) (call $busy (local.get 0)))
)
