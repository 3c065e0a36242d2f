/*
 * A WAGI program in C: wpaas runs it once per request, with the request in
 * CGI variables (REQUEST_METHOD, PATH_INFO, QUERY_STRING, HTTP_*) and its
 * body on stdin; what it prints on stdout is the response: header lines, a
 * blank line, the body. What it prints on stderr goes to the app's log.
 *
 *   GET /?who=NAME   200 "Hello, NAME, from C! (GREETING=...)" and the request
 *   anything else    404 "no such page"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

static const char *env_or(const char *name, const char *fallback) {
    const char *value = getenv(name);
    return value ? value : fallback;
}

int main(void) {
    const char *method = env_or("REQUEST_METHOD", "GET");
    const char *path = env_or("PATH_INFO", "/");
    const char *query = env_or("QUERY_STRING", "");
    fprintf(stderr, "c-hello: %s %s?%s\n", method, path, query);

    if (strcmp(path, "/") != 0) {
        printf("Status: 404 Not Found\nContent-Type: text/plain\n\nno such page: %s\n", path);
        return 0;
    }
    char who[256];
    if (!query_param(query, "who", who, sizeof who)) {
        strcpy(who, "world");
    }
    printf("Content-Type: text/plain\n\n");
    printf("Hello, %s, from C! (GREETING=%s)\n", who, env_or("GREETING", "unset"));
    printf("method=%s path=%s query=%s dyno=%s\n", method, path, query, env_or("DYNO", "none"));
    return 0;
}
