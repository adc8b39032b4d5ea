/* A WAGI (CGI) test script: a plain WASI command. It prints CGI headers,
 * then its arguments, selected CGI variables and the request body, so tests
 * can check what the host passed. `/status` answers 201 through a Status
 * header; `/redirect` answers with a Location header only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *VARS[] = {
    "REQUEST_METHOD", "QUERY_STRING", "PATH_INFO", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT",
    "X_MATCHED_ROUTE", "X_COMPONENT_ROUTE", "X_FULL_URL", "HTTP_X_CUSTOM_FOO", "CONTENT_LENGTH",
    "GATEWAY_INTERFACE", "SERVER_SOFTWARE", "WAGI_TEST_ENV", NULL};

int main(int argc, char **argv) {
    const char *path = getenv("PATH_INFO");
    if (path && strcmp(path, "/redirect") == 0) {
        printf("Location: /elsewhere\n\n");
        return 0;
    }
    if (path && strcmp(path, "/status") == 0) {
        printf("Status: 201 Created\n");
    }
    printf("Content-Type: text/plain\n\n");
    for (int i = 0; i < argc; i++) printf("arg%d=%s\n", i, argv[i]);
    for (int i = 0; VARS[i]; i++) {
        const char *v = getenv(VARS[i]);
        printf("%s=%s\n", VARS[i], v ? v : "(unset)");
    }
    char buf[4096];
    size_t n;
    printf("body=");
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
    printf("\n");
    return 0;
}
