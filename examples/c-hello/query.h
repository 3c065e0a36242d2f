/* Reading one parameter of a URL query string. */
#ifndef QUERY_H
#define QUERY_H

#include <stddef.h>

/* Copies the decoded value of `name` in `query` (`a=1&b=x%20y`) into `out`
 * (at most `size` bytes with its NUL, cut short past that); 1 if present. */
int query_param(const char *query, const char *name, char *out, size_t size);

#endif
