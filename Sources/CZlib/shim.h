#ifndef CODEXPOOL_CZLIB_SHIM_H
#define CODEXPOOL_CZLIB_SHIM_H
#include <zlib.h>

/* deflateInit2/inflateInit2 are macros over the *_ functions; Swift cannot call macros. */
static inline int codexpool_inflateInit2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}
static inline int codexpool_deflateInit2(z_streamp stream, int level, int windowBits, int memLevel) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}
#endif
