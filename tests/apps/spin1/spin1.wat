;; A Spin 1.x-era module, written by hand in the ABI those SDKs emitted
;; (wit-bindgen 0.2): it exports `handle-http-request` (the request record
;; flattened into ten i32s, the response record returned through a pointer)
;; and `canonical_abi_realloc`, and imports `wasi-outbound-http.request`,
;; `spin-config.get-config` and `key-value.*` under their old module names,
;; plus `wasi_snapshot_preview1.fd_write`.
;;
;; Routes match the end of the path:
;;   GET  /hello     -> 200 "Hello from a Spin 1.x module" (and a line on stdout)
;;   GET  /config    -> 200 the `greeting` config value, or 500 "error N: MESSAGE"
;;   POST /kv        -> opens store "default", sets "key" to the body, answers
;;                      what get("key") returns (or 500 "error N")
;;   POST /redis     -> sets "spin1" at the Redis address in the body, answers
;;                      what get("spin1") returns (or 500 "error 1")
;;   POST /pg        -> `SELECT 1` through outbound-pg at the address in the
;;                      body: 200 "rows N", or 500 "error N: MESSAGE"
;;   POST /mysql     -> `SELECT 1` through outbound-mysql: 200 "ok", or 500
;;   GET  /sqlite    -> `SELECT 40 + 2` on the default database: 200 "42"
;;   POST /outbound  -> GETs the URL in the body; answers its status and body
;;                      (or 500 "error N", N the http-error case)
;;   otherwise       -> 404
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "spin-config" "get-config"
    (func $get_config (param i32 i32 i32)))
  (import "key-value" "open" (func $kv_open (param i32 i32 i32)))
  (import "key-value" "set" (func $kv_set (param i32 i32 i32 i32 i32 i32)))
  (import "key-value" "get" (func $kv_get (param i32 i32 i32 i32)))
  (import "outbound-redis" "set" (func $redis_set (param i32 i32 i32 i32 i32 i32 i32)))
  (import "outbound-redis" "get" (func $redis_get (param i32 i32 i32 i32 i32)))
  (import "outbound-pg" "execute" (func $pg_execute (param i32 i32 i32 i32 i32 i32 i32)))
  (import "outbound-mysql" "execute" (func $mysql_execute (param i32 i32 i32 i32 i32 i32 i32)))
  (import "sqlite" "open" (func $sqlite_open (param i32 i32 i32)))
  (import "sqlite" "execute" (func $sqlite_execute (param i32 i32 i32 i32 i32 i32)))
  (import "wasi-outbound-http" "request"
    (func $http_request (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))

  (memory (export "memory") 2)
  ;; Everything the host allocates goes above 64 KiB.
  (global $heap (mut i32) (i32.const 65536))

  (data (i32.const 256) "/hello")
  (data (i32.const 272) "/config")
  (data (i32.const 288) "/kv")
  (data (i32.const 304) "/outbound")
  (data (i32.const 320) "Hello from a Spin 1.x module")        ;; 28 bytes
  (data (i32.const 352) "hello from a Spin 1.x module\n")      ;; 29 bytes
  (data (i32.const 384) "greeting")
  (data (i32.const 400) "default")
  (data (i32.const 416) "key")
  (data (i32.const 432) "content-type")                        ;; 12 bytes
  (data (i32.const 448) "text/plain")                          ;; 10 bytes
  (data (i32.const 464) "error 0: ")                           ;; 9 bytes
  (data (i32.const 480) "/redis")
  (data (i32.const 496) "spin1")
  (data (i32.const 512) "from a Spin 1.x module")              ;; 22 bytes
  (data (i32.const 544) "/pg")
  (data (i32.const 560) "/mysql")
  (data (i32.const 576) "/sqlite")
  (data (i32.const 592) "SELECT 1")                            ;; 8 bytes
  (data (i32.const 608) "SELECT 40 + 2")                       ;; 13 bytes
  (data (i32.const 624) "rows ")                               ;; 5 bytes
  (data (i32.const 640) "ok")

  (func (export "canonical_abi_realloc")
    (param $old i32) (param $old_len i32) (param $align i32) (param $new_len i32)
    (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $new_len)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (drop (memory.grow
          (i32.add (i32.const 1)
            (i32.div_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
                       (i32.const 65536)))))))
    (if (local.get $old_len)
      (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_len))))
    (local.get $ptr))

  (func (export "canonical_abi_free") (param i32 i32 i32))

  ;; Whether uri[0..len] ends with the literal at $lit (length $lit_len):
  ;; the ABI's `uri` is the whole path, route prefix included.
  (func $is (param $uri i32) (param $len i32) (param $lit i32) (param $lit_len i32) (result i32)
    (local $i i32)
    (if (i32.lt_u (local.get $len) (local.get $lit_len)) (then (return (i32.const 0))))
    (local.set $uri (i32.add (local.get $uri) (i32.sub (local.get $len) (local.get $lit_len))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $lit_len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $uri) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $lit) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; The response record at 4096: status, headers (content-type: text/plain),
  ;; body (some(ptr, len)).
  (func $respond (param $status i32) (param $body i32) (param $len i32) (result i32)
    ;; the one header: tuple<string, string> at 4352
    (i32.store (i32.const 4352) (i32.const 432))
    (i32.store (i32.const 4356) (i32.const 12))
    (i32.store (i32.const 4360) (i32.const 448))
    (i32.store (i32.const 4364) (i32.const 10))
    (i32.store16 (i32.const 4096) (local.get $status))
    (i32.store8 (i32.const 4100) (i32.const 1))
    (i32.store (i32.const 4104) (i32.const 4352))
    (i32.store (i32.const 4108) (i32.const 1))
    (i32.store8 (i32.const 4112) (i32.const 1))
    (i32.store (i32.const 4116) (local.get $body))
    (i32.store (i32.const 4120) (local.get $len))
    (i32.const 4096))

  ;; 500 "error N" (N the case), followed by ": MESSAGE" when $len > 0.
  (func $fail (param $case i32) (param $msg i32) (param $len i32) (result i32)
    (memory.copy (i32.const 4608) (i32.const 464) (i32.const 9))
    (i32.store8 (i32.const 4614) (i32.add (i32.const 48) (local.get $case)))
    (if (i32.eqz (local.get $len))
      (then (return (call $respond (i32.const 500) (i32.const 4608) (i32.const 7)))))
    (memory.copy (i32.const 4617) (local.get $msg) (local.get $len))
    (call $respond (i32.const 500) (i32.const 4608) (i32.add (i32.const 9) (local.get $len))))

  ;; 200 with the decimal digits of $n (after the $prefix_len bytes at
  ;; $prefix), written at 4800.
  (func $number (param $prefix i32) (param $prefix_len i32) (param $n i64) (result i32)
    (local $end i32) (local $start i32) (local $len i32)
    (memory.copy (i32.const 4800) (local.get $prefix) (local.get $prefix_len))
    ;; digits backwards from 4863, then moved after the prefix
    (local.set $end (i32.const 4863))
    (local.set $start (local.get $end))
    (loop $digit
      (local.set $start (i32.sub (local.get $start) (i32.const 1)))
      (i32.store8 (local.get $start)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $n) (i64.const 10)))))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
    (local.set $len (i32.sub (local.get $end) (local.get $start)))
    (memory.copy (i32.add (i32.const 4800) (local.get $prefix_len)) (local.get $start) (local.get $len))
    (call $respond (i32.const 200) (i32.const 4800) (i32.add (local.get $prefix_len) (local.get $len))))

  (func (export "handle-http-request")
    (param $method i32) (param $uri i32) (param $uri_len i32)
    (param $headers i32) (param $headers_len i32)
    (param $params i32) (param $params_len i32)
    (param $has_body i32) (param $body i32) (param $body_len i32)
    (result i32)
    (local $store i32)
    (if (call $is (local.get $uri) (local.get $uri_len) (i32.const 256) (i32.const 6))
      (then
        ;; one iovec at 4864 -> the stdout line; bytes written at 4872
        (i32.store (i32.const 4864) (i32.const 352))
        (i32.store (i32.const 4868) (i32.const 29))
        (drop (call $fd_write (i32.const 1) (i32.const 4864) (i32.const 1) (i32.const 4872)))
        (return (call $respond (i32.const 200) (i32.const 320) (i32.const 28)))))

    (if (call $is (local.get $uri) (local.get $uri_len) (i32.const 272) (i32.const 7))
      (then
        ;; result<string, error> at 8192
        (call $get_config (i32.const 384) (i32.const 8) (i32.const 8192))
        (if (i32.eqz (i32.load8_u (i32.const 8192)))
          (then (return (call $respond (i32.const 200)
            (i32.load (i32.const 8196)) (i32.load (i32.const 8200))))))
        (return (call $fail (i32.load8_u (i32.const 8196))
          (i32.load (i32.const 8200)) (i32.load (i32.const 8204))))))

    (if (call $is (local.get $uri) (local.get $uri_len) (i32.const 288) (i32.const 3))
      (then
        ;; result<store, error> at 8448
        (call $kv_open (i32.const 400) (i32.const 7) (i32.const 8448))
        (if (i32.load8_u (i32.const 8448))
          (then (return (call $fail (i32.load8_u (i32.const 8452)) (i32.const 0) (i32.const 0)))))
        (local.set $store (i32.load (i32.const 8452)))
        (call $kv_set (local.get $store) (i32.const 416) (i32.const 3)
          (local.get $body) (i32.mul (local.get $has_body) (local.get $body_len)) (i32.const 8704))
        (if (i32.load8_u (i32.const 8704))
          (then (return (call $fail (i32.load8_u (i32.const 8708)) (i32.const 0) (i32.const 0)))))
        ;; result<list<u8>, error> at 8960
        (call $kv_get (local.get $store) (i32.const 416) (i32.const 3) (i32.const 8960))
        (if (i32.load8_u (i32.const 8960))
          (then (return (call $fail (i32.load8_u (i32.const 8964)) (i32.const 0) (i32.const 0)))))
        (return (call $respond (i32.const 200) (i32.load (i32.const 8964)) (i32.load (i32.const 8968))))))

    (if (call $is (local.get $uri) (local.get $uri_len) (i32.const 480) (i32.const 6))
      (then
        ;; result<_, error> at 9472, result<payload, error> at 9728
        (call $redis_set (local.get $body) (local.get $body_len) (i32.const 496) (i32.const 5)
          (i32.const 512) (i32.const 22) (i32.const 9472))
        ;; (the error enum is one byte: its payload is at offset 1)
        (if (i32.load8_u (i32.const 9472))
          (then (return (call $fail (i32.load8_u (i32.const 9473)) (i32.const 0) (i32.const 0)))))
        (call $redis_get (local.get $body) (local.get $body_len) (i32.const 496) (i32.const 5)
          (i32.const 9728))
        (if (i32.load8_u (i32.const 9728))
          (then (return (call $fail (i32.load8_u (i32.const 9732)) (i32.const 0) (i32.const 0)))))
        (return (call $respond (i32.const 200) (i32.load (i32.const 9732)) (i32.load (i32.const 9736))))))

    (if (call $is (local.get $uri) (local.get $uri_len) (i32.const 544) (i32.const 3))
      (then
        ;; result<u64, pg-error> at 9984: the u64 (and the error) at offset 8
        (call $pg_execute (local.get $body) (local.get $body_len) (i32.const 592) (i32.const 8)
          (i32.const 0) (i32.const 0) (i32.const 9984))
        (if (i32.load8_u (i32.const 9984))
          (then (return (call $fail (i32.load8_u (i32.const 9992))
            (i32.load (i32.const 9996)) (i32.load (i32.const 10000))))))
        (return (call $number (i32.const 624) (i32.const 5) (i64.load (i32.const 9992))))))

    (if (call $is (local.get $uri) (local.get $uri_len) (i32.const 560) (i32.const 6))
      (then
        ;; result<_, mysql-error> at 10240: the error at offset 4
        (call $mysql_execute (local.get $body) (local.get $body_len) (i32.const 592) (i32.const 8)
          (i32.const 0) (i32.const 0) (i32.const 10240))
        (if (i32.load8_u (i32.const 10240))
          (then (return (call $fail (i32.load8_u (i32.const 10244))
            (i32.load (i32.const 10248)) (i32.load (i32.const 10252))))))
        (return (call $respond (i32.const 200) (i32.const 640) (i32.const 2)))))

    (if (call $is (local.get $uri) (local.get $uri_len) (i32.const 576) (i32.const 7))
      (then
        ;; result<connection, error> at 10496
        (call $sqlite_open (i32.const 400) (i32.const 7) (i32.const 10496))
        (if (i32.load8_u (i32.const 10496))
          (then (return (call $fail (i32.load8_u (i32.const 10500)) (i32.const 0) (i32.const 0)))))
        ;; result<query-result, error> at 10752: columns at +4, rows at +12
        (call $sqlite_execute (i32.load (i32.const 10500)) (i32.const 608) (i32.const 13)
          (i32.const 0) (i32.const 0) (i32.const 10752))
        (if (i32.load8_u (i32.const 10752))
          (then (return (call $fail (i32.load8_u (i32.const 10756)) (i32.const 0) (i32.const 0)))))
        ;; rows[0].values[0]: a `value` (16 bytes), integer's s64 at +8
        (return (call $number (i32.const 0) (i32.const 0)
          (i64.load (i32.add (i32.load (i32.load (i32.const 10764))) (i32.const 8)))))))

    (if (call $is (local.get $uri) (local.get $uri_len) (i32.const 304) (i32.const 9))
      (then
        ;; GET <body>: no headers, no params, no body; result at 9216
        (call $http_request (i32.const 0) (local.get $body) (local.get $body_len)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 9216))
        (if (i32.load8_u (i32.const 9216))
          (then (return (call $fail (i32.load8_u (i32.const 9220)) (i32.const 0) (i32.const 0)))))
        (if (i32.eqz (i32.load8_u (i32.const 9236)))
          (then (return (call $respond (i32.load16_u (i32.const 9220)) (i32.const 0) (i32.const 0)))))
        (return (call $respond (i32.load16_u (i32.const 9220))
          (i32.load (i32.const 9240)) (i32.load (i32.const 9244))))))

    (call $respond (i32.const 404) (i32.const 0) (i32.const 0))))
