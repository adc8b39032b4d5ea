// A wasi:http 0.2 handler in plain C. The imports below are the few
// functions of wasi:http/types and wasi:io/streams it calls, in the
// component model's canonical ABI; `wit/` declares them for
// `wasm-tools component embed`.
#include <stdint.h>
#include <string.h>

#define IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define HTTP "wasi:http/types@0.2.0"
#define STREAMS "wasi:io/streams@0.2.0"

IMPORT(HTTP, "[constructor]fields") extern int32_t fields_new(void);
IMPORT(HTTP, "[constructor]outgoing-response") extern int32_t response_new(int32_t headers);
IMPORT(HTTP, "[method]outgoing-response.body") extern void response_body(int32_t response, int32_t *ret);
IMPORT(HTTP, "[static]response-outparam.set")
extern void outparam_set(int32_t outparam, int32_t is_err, int32_t response, int32_t a, int64_t b,
                         int32_t c, int32_t d, int32_t e, int32_t f);
IMPORT(HTTP, "[method]outgoing-body.write") extern void body_write(int32_t body, int32_t *ret);
IMPORT(HTTP, "[static]outgoing-body.finish")
extern void body_finish(int32_t body, int32_t has_trailers, int32_t trailers, int32_t *ret);
IMPORT(HTTP, "[resource-drop]incoming-request") extern void drop_request(int32_t request);
IMPORT(STREAMS, "[method]output-stream.blocking-write-and-flush")
extern void write_and_flush(int32_t stream, const char *data, int32_t len, int32_t *ret);
IMPORT(STREAMS, "[resource-drop]output-stream") extern void drop_stream(int32_t stream);

static const char MESSAGE[] = "Hello from C!\n";

__attribute__((export_name("wasi:http/incoming-handler@0.2.0#handle")))
void handle(int32_t request, int32_t outparam) {
    int32_t ret[4] = {0};
    drop_request(request);
    int32_t response = response_new(fields_new());
    response_body(response, ret);
    int32_t body = ret[1];
    body_write(body, ret);
    int32_t stream = ret[1];
    outparam_set(outparam, 0, response, 0, 0, 0, 0, 0, 0);
    write_and_flush(stream, MESSAGE, (int32_t)strlen(MESSAGE), ret);
    drop_stream(stream);
    body_finish(body, 0, 0, ret);
}

// The host allocates guest memory through this; each instance serves one
// request, so a bump allocator is enough.
static unsigned char heap[64 * 1024];
static uint32_t heap_used;

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old, uint32_t old_size, uint32_t align, uint32_t size) {
    uint32_t start = (heap_used + align - 1) & ~(align - 1);
    if (start + size > sizeof heap) return 0;
    heap_used = start + size;
    if (old && old_size) memcpy(heap + start, old, old_size < size ? old_size : size);
    return heap + start;
}
