/* jsonw.c — bounded JSON writer; see jsonw.h for the contract. */
#include "jsonw.h"
#include "utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void jsonw_init(struct jsonw *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof *w);
	w->buf = buf;
	w->cap = cap;
	w->first[0] = true;
	if (cap)
		buf[0] = 0;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
	if (w->overflow)
		return;
	/* keep one byte for the NUL */
	if (w->cap == 0 || n >= w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static void puts_(struct jsonw *w, const char *s)
{
	put(w, s, strlen(s));
}

/* Separator before a value or key at the current level. */
static void sep(struct jsonw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = false;
}

static void open_(struct jsonw *w, const char *c)
{
	sep(w);
	put(w, c, 1);
	if (w->depth + 1 < JSONW_DEPTH_MAX) {
		w->depth++;
		w->first[w->depth] = true;
	} else {
		w->overflow = true;
	}
}

static void close_(struct jsonw *w, const char *c)
{
	if (w->depth > 0)
		w->depth--;
	put(w, c, 1);
}

void jsonw_obj_begin(struct jsonw *w) { open_(w, "{"); }
void jsonw_obj_end(struct jsonw *w) { close_(w, "}"); }
void jsonw_arr_begin(struct jsonw *w) { open_(w, "["); }
void jsonw_arr_end(struct jsonw *w) { close_(w, "]"); }

static void str_body(struct jsonw *w, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	put(w, "\"", 1);
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		/* copy runs of plain characters in one go */
		while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
			run++;
		put(w, s + i, run - i);
		i = run;
		if (i >= n)
			break;
		unsigned char c = p[i];
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(w, esc, 2);
			i++;
		} else if (c < 0x20) {
			switch (c) {
			case '\n': put(w, "\\n", 2); break;
			case '\r': put(w, "\\r", 2); break;
			case '\t': put(w, "\\t", 2); break;
			default:
				snprintf(esc, sizeof esc, "\\u%04x", c);
				put(w, esc, 6);
			}
			i++;
		} else {
			size_t l = utf8_seq(p + i, n - i);
			if (l) {
				put(w, s + i, l);
				i += l;
			} else {
				put(w, "\\ufffd", 6); /* invalid byte: replaced, not dropped */
				i++;
			}
		}
	}
	put(w, "\"", 1);
}

void jsonw_key(struct jsonw *w, const char *key)
{
	sep(w);
	str_body(w, key, strlen(key));
	put(w, ":", 1);
	w->after_key = true;
}

void jsonw_strn(struct jsonw *w, const char *s, size_t n)
{
	sep(w);
	str_body(w, s, n);
}

void jsonw_str(struct jsonw *w, const char *s)
{
	if (!s) {
		jsonw_null(w);
		return;
	}
	jsonw_strn(w, s, strlen(s));
}

void jsonw_int(struct jsonw *w, int64_t v)
{
	char b[24];
	sep(w);
	snprintf(b, sizeof b, "%" PRId64, v);
	puts_(w, b);
}

void jsonw_uint(struct jsonw *w, uint64_t v)
{
	char b[24];
	sep(w);
	snprintf(b, sizeof b, "%" PRIu64, v);
	puts_(w, b);
}

void jsonw_double(struct jsonw *w, double v)
{
	char b[64];
	if (!isfinite(v)) {
		jsonw_null(w);
		return;
	}
	sep(w);
	snprintf(b, sizeof b, "%.6f", v);
	puts_(w, b);
}

void jsonw_bool(struct jsonw *w, bool v)
{
	sep(w);
	puts_(w, v ? "true" : "false");
}

void jsonw_null(struct jsonw *w)
{
	sep(w);
	puts_(w, "null");
}

void jsonw_raw(struct jsonw *w, const char *json)
{
	sep(w);
	puts_(w, json);
}

void jsonw_kstr(struct jsonw *w, const char *key, const char *s) { jsonw_key(w, key); jsonw_str(w, s); }
void jsonw_kuint(struct jsonw *w, const char *key, uint64_t v) { jsonw_key(w, key); jsonw_uint(w, v); }
void jsonw_kint(struct jsonw *w, const char *key, int64_t v) { jsonw_key(w, key); jsonw_int(w, v); }
void jsonw_kbool(struct jsonw *w, const char *key, bool v) { jsonw_key(w, key); jsonw_bool(w, v); }
void jsonw_kdouble(struct jsonw *w, const char *key, double v) { jsonw_key(w, key); jsonw_double(w, v); }

const char *jsonw_result(struct jsonw *w)
{
	return w->cap ? w->buf : "";
}
