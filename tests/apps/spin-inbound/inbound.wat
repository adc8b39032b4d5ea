;; A component exporting Spin's original `fermyon:spin/inbound-http`
;; handler: it answers 200 with `x-handler: spin-inbound` and the request
;; URI (path and query) as the body. A DELETE request traps, to show that
;; a trapping guest costs one 500 and nothing else.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 100) "x-handler")
  (data (i32.const 120) "spin-inbound")

  ;; method, uri(ptr,len), headers(ptr,len), params(ptr,len), body(tag,ptr,len)
  (func (export "fermyon:spin/inbound-http#handle-request")
    (param $method i32) (param $uri i32) (param $uri_len i32)
    (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (if (i32.eq (local.get $method) (i32.const 3)) (then unreachable))
    ;; headers: one (name, value) tuple at 200
    (i32.store (i32.const 200) (i32.const 100))
    (i32.store (i32.const 204) (i32.const 9))
    (i32.store (i32.const 208) (i32.const 120))
    (i32.store (i32.const 212) (i32.const 12))
    ;; response record at 300: status u16, option<headers>, option<body>
    (i32.store16 (i32.const 300) (i32.const 200))
    (i32.store8 (i32.const 304) (i32.const 1))
    (i32.store (i32.const 308) (i32.const 200))
    (i32.store (i32.const 312) (i32.const 1))
    (i32.store8 (i32.const 316) (i32.const 1))
    (i32.store (i32.const 320) (local.get $uri))
    (i32.store (i32.const 324) (local.get $uri_len))
    (i32.const 300))

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and
      (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
      (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))))))
    (local.get $ptr)))
