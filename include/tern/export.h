/*
 * tern/export.h - which symbols libtern exports.
 *
 * The library is built with -fvisibility=hidden, so only what is marked
 * TERN_API is visible to programs linking libtern.so: the tern_* functions
 * of tern.h, codec.h and error.h. Everything else (the util and internal
 * helpers) stays private to the library. Other targets (the broker, tests)
 * are built with default visibility, where the mark changes nothing.
 */
#ifndef TERN_EXPORT_H
#define TERN_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define TERN_API __attribute__((visibility("default")))
#else
#define TERN_API
#endif

#endif
