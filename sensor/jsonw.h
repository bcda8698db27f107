/* jsonw.h — a small JSON writer into a caller buffer.
 *
 * Strings are written as valid JSON whatever bytes they hold: control
 * characters escaped, invalid UTF-8 bytes replaced by U+FFFD (\ufffd) rather
 * than dropped. When the buffer is full, writing stops and `overflow` is set;
 * the caller sizes the buffer so that cannot happen for bounded records and
 * counts it if it does. No allocation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONW_DEPTH_MAX 16

struct jsonw {
	char *buf;
	size_t len, cap;
	bool overflow;
	int depth;
	bool first[JSONW_DEPTH_MAX]; /* nothing written yet at this level */
	bool after_key;
};

void jsonw_init(struct jsonw *w, char *buf, size_t cap);

void jsonw_obj_begin(struct jsonw *w);
void jsonw_obj_end(struct jsonw *w);
void jsonw_arr_begin(struct jsonw *w);
void jsonw_arr_end(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *key);

void jsonw_str(struct jsonw *w, const char *s);           /* NULL -> null */
void jsonw_strn(struct jsonw *w, const char *s, size_t n);
/* A string whose JSON text between the quotes is at most max bytes, for
 * evidence that must fit a buffer whatever the wire sent (escaping makes a
 * control byte six): cut before the character or escape that would pass
 * max, never inside one, so the result stays valid JSON and UTF-8. */
void jsonw_str_max(struct jsonw *w, const char *s, size_t max);  /* NULL -> null */
void jsonw_strn_max(struct jsonw *w, const char *s, size_t n, size_t max);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_uint(struct jsonw *w, uint64_t v);
void jsonw_double(struct jsonw *w, double v);              /* %.6f, NaN -> null */
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);
/* Already-serialised JSON (trusted: produced by this writer). */
void jsonw_raw(struct jsonw *w, const char *json);

/* key + value shorthands */
void jsonw_kstr(struct jsonw *w, const char *key, const char *s);
void jsonw_kuint(struct jsonw *w, const char *key, uint64_t v);
void jsonw_kint(struct jsonw *w, const char *key, int64_t v);
void jsonw_kbool(struct jsonw *w, const char *key, bool v);
void jsonw_kdouble(struct jsonw *w, const char *key, double v);
void jsonw_kstr_max(struct jsonw *w, const char *key, const char *s, size_t max);

/* Back to a copy of *w taken earlier (struct jsonw mark = *w) while it had
 * not overflowed: what was written since is forgotten, overflow included,
 * so a writer that ran out of room can finish with less. */
void jsonw_rewind(struct jsonw *w, const struct jsonw *mark);

/* NUL-terminated result (also on overflow: then truncated). */
const char *jsonw_result(struct jsonw *w);
