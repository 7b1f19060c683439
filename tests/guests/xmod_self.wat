;; xmod_self.wat: a module that imports its own export, loaded as "selfref":
;; fact(n) recurses through the import "selfref" "fact", so every step is a
;; call through the broker's link (fact(5) = 120).
(module
  (import "selfref" "fact" (func $fact (param i32) (result i32)))
  (func (export "fact") (param $n i32) (result i32)
    (if (i32.le_s (local.get $n) (i32.const 1)) (then (return (i32.const 1))))
    (i32.mul (local.get $n) (call $fact (i32.sub (local.get $n) (i32.const 1)))))
)
