/*
 * tern/export.h - which symbols libtern exports.
 *
 * The library is built with -fvisibility=hidden, so only what is marked
 * TERN_API is visible to programs linking libtern.so: the tern_* functions
 * of tern.h, codec.h and error.h. Everything else (the util and internal
 * helpers) stays private to the library. Other targets (the broker, tests)
 * are built with default visibility, where the mark changes nothing.
 *
 * TERN_MUST_CHECK marks a function whose result must not be dropped: every
 * function that returns an enum tern_err carries it, in the public headers
 * and in the internal ones, so that a caller that ignores a failure gets a
 * warning (an error under -Werror, as tern's own build is checked). GCC
 * warns even through a (void) cast; tern's code that means to drop a result
 * says so with a comment and `if (f() != TERN_OK) { ... }` or an explicit
 * assignment it then reads.
 */
#ifndef TERN_EXPORT_H
#define TERN_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define TERN_API __attribute__((visibility("default")))
#else
#define TERN_API
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TERN_MUST_CHECK __attribute__((warn_unused_result))
#else
#define TERN_MUST_CHECK
#endif

#endif
