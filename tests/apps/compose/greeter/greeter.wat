;; The `greeter` dependency: exports gyre:compose-test/greeting@0.1.0#greet,
;; answering "<variable `greeting`>, <name>" or, when reading the variable
;; fails (a dependency not granted the parent's variables), "<the error's
;; message>, <name>". Memory is a bump allocator reset after each call.
(module
  (import "fermyon:spin/variables@2.0.0" "get" (func $get (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "greeting")
  (data (i32.const 32) ", ")

  (func $alloc (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))) (i32.const 0))
        (then unreachable))))
    (local.get $p))

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
    (local $p i32)
    (local.set $p (call $alloc (local.get $new_size)))
    (if (local.get $old) (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (local.get $p))

  (func (export "gyre:compose-test/greeting@0.1.0#greet") (param $name i32) (param $name_len i32) (result i32)
    (local $ret i32) (local $text i32) (local $text_len i32) (local $out i32) (local $len i32) (local $result i32)
    (local.set $ret (call $alloc (i32.const 16)))
    (call $get (i32.const 16) (i32.const 8) (local.get $ret))
    ;; result<string, error>: ok → string at 4; err → variant error, its
    ;; string payload at 8.
    (if (i32.eqz (i32.load8_u (local.get $ret)))
      (then
        (local.set $text (i32.load offset=4 (local.get $ret)))
        (local.set $text_len (i32.load offset=8 (local.get $ret))))
      (else
        (local.set $text (i32.load offset=8 (local.get $ret)))
        (local.set $text_len (i32.load offset=12 (local.get $ret)))))
    (local.set $len (i32.add (i32.add (local.get $text_len) (i32.const 2)) (local.get $name_len)))
    (local.set $out (call $alloc (local.get $len)))
    (memory.copy (local.get $out) (local.get $text) (local.get $text_len))
    (memory.copy (i32.add (local.get $out) (local.get $text_len)) (i32.const 32) (i32.const 2))
    (memory.copy (i32.add (i32.add (local.get $out) (local.get $text_len)) (i32.const 2)) (local.get $name) (local.get $name_len))
    (local.set $result (call $alloc (i32.const 8)))
    (i32.store (local.get $result) (local.get $out))
    (i32.store offset=4 (local.get $result) (local.get $len))
    (local.get $result))

  (func (export "cabi_post_gyre:compose-test/greeting@0.1.0#greet") (param i32)
    (global.set $heap (i32.const 4096)))
)
