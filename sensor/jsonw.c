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

/* The string as JSON, its text between the quotes at most max bytes: cut
 * before the plain byte, escape or UTF-8 sequence that would pass max, so
 * never inside an escape or a sequence. */
static void str_body(struct jsonw *w, const char *s, size_t n, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t room = max;
	put(w, "\"", 1);
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		/* copy runs of plain characters in one go */
		while (run < n && run - i < room && p[run] >= 0x20 && p[run] < 0x80 &&
		       p[run] != '"' && p[run] != '\\')
			run++;
		put(w, s + i, run - i);
		room -= run - i;
		i = run;
		if (i >= n || room == 0)
			break;
		unsigned char c = p[i];
		char esc[8];
		size_t el, adv = 1;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			el = 2;
		} else if (c < 0x20) {
			switch (c) {
			case '\n': memcpy(esc, "\\n", 2); el = 2; break;
			case '\r': memcpy(esc, "\\r", 2); el = 2; break;
			case '\t': memcpy(esc, "\\t", 2); el = 2; break;
			default:
				snprintf(esc, sizeof esc, "\\u%04x", c);
				el = 6;
			}
		} else if ((adv = utf8_seq(p + i, n - i)) != 0) {
			if (adv > room)
				break;
			put(w, s + i, adv);
			room -= adv;
			i += adv;
			continue;
		} else {
			memcpy(esc, "\\ufffd", 6); /* invalid byte: replaced, not dropped */
			el = 6;
			adv = 1;
		}
		if (el > room)
			break;
		put(w, esc, el);
		room -= el;
		i += adv;
	}
	put(w, "\"", 1);
}

void jsonw_key(struct jsonw *w, const char *key)
{
	sep(w);
	str_body(w, key, strlen(key), SIZE_MAX);
	put(w, ":", 1);
	w->after_key = true;
}

void jsonw_strn(struct jsonw *w, const char *s, size_t n)
{
	sep(w);
	str_body(w, s, n, SIZE_MAX);
}

void jsonw_strn_max(struct jsonw *w, const char *s, size_t n, size_t max)
{
	sep(w);
	str_body(w, s, n, max);
}

void jsonw_str_max(struct jsonw *w, const char *s, size_t max)
{
	if (!s) {
		jsonw_null(w);
		return;
	}
	jsonw_strn_max(w, s, strlen(s), max);
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

void jsonw_kstr_max(struct jsonw *w, const char *key, const char *s, size_t max)
{
	jsonw_key(w, key);
	jsonw_str_max(w, s, max);
}

void jsonw_rewind(struct jsonw *w, const struct jsonw *mark)
{
	*w = *mark;
	if (w->cap)
		w->buf[w->len] = 0;
}

const char *jsonw_result(struct jsonw *w)
{
	return w->cap ? w->buf : "";
}
