;; A component exporting Spin's original `fermyon:spin/inbound-http` handler
;; and importing Spin's original `fermyon:spin/http` send: it GETs the URL
;; given as the request body and answers with the upstream's status and
;; body, or 502 with the interface's error code as one digit
;; (1 destination-not-allowed, 2 invalid-url, 3 request-error, 4 runtime-error).
(module
  (import "fermyon:spin/http" "send-request"
    (func $send (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))

  ;; method, uri(ptr,len), headers(ptr,len), params(ptr,len), body(tag,ptr,len)
  (func (export "fermyon:spin/inbound-http#handle-request")
    (param $method i32) (param $uri i32) (param $uri_len i32)
    (param i32 i32 i32 i32) (param $has_body i32) (param $body i32) (param $body_len i32)
    (result i32)
    (if (i32.eqz (local.get $has_body)) (then (local.set $body_len (i32.const 0))))
    ;; GET <body>, no headers, no params, no body; the result lands at 400:
    ;; tag u8 @400; ok: status u16 @404, headers option @408, body option
    ;; @420 (tag), @424 (ptr), @428 (len); err: the error enum u8 @404.
    (call $send (i32.const 0) (local.get $body) (local.get $body_len)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 400))
    ;; the response record at 300: status u16, option<headers>, option<body>
    (i32.store8 (i32.const 304) (i32.const 0))
    (if (i32.eqz (i32.load8_u (i32.const 400)))
      (then
        (i32.store16 (i32.const 300) (i32.load16_u (i32.const 404)))
        (i32.store8 (i32.const 316) (i32.load8_u (i32.const 420)))
        (i32.store (i32.const 320) (i32.load (i32.const 424)))
        (i32.store (i32.const 324) (i32.load (i32.const 428))))
      (else
        (i32.store8 (i32.const 500) (i32.add (i32.const 48) (i32.load8_u (i32.const 404))))
        (i32.store16 (i32.const 300) (i32.const 502))
        (i32.store8 (i32.const 316) (i32.const 1))
        (i32.store (i32.const 320) (i32.const 500))
        (i32.store (i32.const 324) (i32.const 1))))
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
