#include "query.h"

#include <string.h>

static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int query_param(const char *query, const char *name, char *out, size_t size) {
    size_t len = strlen(name);
    for (const char *p = query; *p; ) {
        const char *end = strchr(p, '&');
        if (!end) end = p + strlen(p);
        if ((size_t)(end - p) > len && strncmp(p, name, len) == 0 && p[len] == '=') {
            size_t n = 0;
            for (const char *v = p + len + 1; v < end && n + 1 < size; v++) {
                if (*v == '+') {
                    out[n++] = ' ';
                } else if (*v == '%' && v + 2 < end && hex(v[1]) >= 0 && hex(v[2]) >= 0) {
                    out[n++] = (char)(hex(v[1]) * 16 + hex(v[2]));
                    v += 2;
                } else {
                    out[n++] = *v;
                }
            }
            out[n] = '\0';
            return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}
