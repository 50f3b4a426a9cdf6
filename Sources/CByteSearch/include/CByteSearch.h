#ifndef CODEXPOOL_CBYTESEARCH_H
#define CODEXPOOL_CBYTESEARCH_H
#include <stddef.h>

/* glibc's memmem, which Swift's Glibc module leaves out (it is a GNU extension): the first
   occurrence of needle in haystack, or NULL. */
const void *codexpool_find_bytes(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);
#endif
