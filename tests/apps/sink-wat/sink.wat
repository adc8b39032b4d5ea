;; Streams the request body to nowhere and answers with its length in bytes.
;; Reads go into one fixed 64 KiB buffer, so however large the upload, the
;; guest's memory stays the same: what the host holds is what tests measure.
(module
  (import "wasi:http/types@0.2.0" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.0" "[constructor]outgoing-response" (func $response_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-response.body" (func $response_body (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[static]response-outparam.set"
    (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[static]outgoing-body.finish" (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]incoming-request.consume" (func $consume (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]incoming-body.stream" (func $incoming_stream (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[resource-drop]incoming-request" (func $drop_request (param i32)))
  (import "wasi:http/types@0.2.0" "[resource-drop]incoming-body" (func $drop_incoming_body (param i32)))
  (import "wasi:io/streams@0.2.0" "[method]input-stream.blocking-read" (func $read (param i32 i64 i32)))
  (import "wasi:io/streams@0.2.0" "[resource-drop]input-stream" (func $drop_input (param i32)))
  (import "wasi:io/error@0.2.0" "[resource-drop]error" (func $drop_error (param i32)))
  (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush"
    (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.0" "[resource-drop]output-stream" (func $drop_stream (param i32)))

  (memory (export "memory") 3)

  (func (export "wasi:http/incoming-handler@0.2.0#handle") (param $request i32) (param $outparam i32)
    (local $body i32) (local $input i32) (local $total i64)
    (local $response i32) (local $out_body i32) (local $stream i32) (local $pos i32)
    (call $consume (local.get $request) (i32.const 32))
    (local.set $body (i32.load (i32.const 36)))
    (call $incoming_stream (local.get $body) (i32.const 32))
    (local.set $input (i32.load (i32.const 36)))
    (block $done
      (loop $next
        (call $read (local.get $input) (i64.const 65536) (i32.const 32))
        (br_if $done (i32.load8_u (i32.const 32)))
        (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (i32.load (i32.const 40)))))
        (br $next)))
    ;; stream-error::last-operation-failed carries an error resource.
    (if (i32.eqz (i32.load8_u (i32.const 36)))
      (then (call $drop_error (i32.load (i32.const 40)))))
    (call $drop_input (local.get $input))
    (call $drop_incoming_body (local.get $body))
    (call $drop_request (local.get $request))

    ;; Decimal digits of $total, written backwards ending at 1100.
    (local.set $pos (i32.const 1100))
    (loop $digit
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $total) (i64.const 10)))))
      (local.set $total (i64.div_u (local.get $total) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $total) (i64.const 0))))

    (local.set $response (call $response_new (call $fields_new)))
    (call $response_body (local.get $response) (i32.const 64))
    (local.set $out_body (i32.load (i32.const 68)))
    (call $body_write (local.get $out_body) (i32.const 64))
    (local.set $stream (i32.load (i32.const 68)))
    (call $outparam_set (local.get $outparam)
      (i32.const 0) (local.get $response) (i32.const 0) (i64.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $write (local.get $stream) (local.get $pos) (i32.sub (i32.const 1100) (local.get $pos)) (i32.const 64))
    (call $drop_stream (local.get $stream))
    (call $body_finish (local.get $out_body) (i32.const 0) (i32.const 0) (i32.const 64)))

  ;; Every allocation is a read buffer that is consumed before the next one.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (i32.const 65536)))
