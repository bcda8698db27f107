/* utf8.h — the UTF-8 facts every module needs (RFC 3629), in one place.
 * Pure functions, no allocation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if the
 * bytes there do not start one: overlongs, surrogates and code points past
 * U+10FFFF are invalid (RFC 3629 §4). */
size_t utf8_seq(const unsigned char *s, size_t n);

/* The code point at s + *i (*i < len), *i moved past it; an invalid byte
 * is U+FFFD and moves *i by one (the sequences utf8_seq() refuses). */
uint32_t utf8_next(const char *s, size_t len, size_t *i);

/* True if [s, s+len) is valid UTF-8. */
bool utf8_valid(const char *s, size_t len);

/* n, cut to at most max bytes without splitting a UTF-8 sequence: the
 * continuation bytes at the cut go with their lead byte. */
size_t utf8_cut(const char *s, size_t n, size_t max);
