/* cli_common.c — shared by the Redis readers; see cli_common.h. */
#include "cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "rw-config.h"

void cli_redis_init(struct cli_redis *o)
{
	memset(o, 0, sizeof *o);
	o->url = CLI_URL_DEFAULT;
	o->prefix = CLI_PREFIX_DEFAULT;
}

bool cli_redis_option(struct cli_redis *o, int c, const char *arg)
{
	switch (c) {
	case CLI_OPT_REDIS:
		o->url = arg;
		return true;
	case CLI_OPT_PREFIX:
		o->prefix = arg;
		return true;
	case CLI_OPT_PASSWORD_FILE:
		o->password_file = arg;
		return true;
	case CLI_OPT_NO_COLOR:
		o->no_color = true;
		return true;
	default:
		return false;
	}
}

int cli_redis_target(const struct cli_redis *o, struct redis_target *t, char *err,
		     size_t errsz)
{
	if (!strcmp(o->url, "embedded") || !strcmp(o->url, "none")) {
		snprintf(err, errsz, "--redis %s: a reader needs the sensor's Redis "
			 "(redis://host:port or unix:///path); an embedded one lives inside the "
			 "sensor", o->url);
		return -EINVAL;
	}
	/* The sensor refuses these prefixes too: a reader given one would wait
	 * on keys nothing writes (an empty prefix reads a stream "alerts" among
	 * the database's other keys), silently. */
	if (!*o->prefix || strlen(o->prefix) > CLI_PREFIX_MAX) {
		snprintf(err, errsz, "--redis-prefix: must have 1 to %d bytes, as the sensor's "
			 "(the default is %s)", CLI_PREFIX_MAX, CLI_PREFIX_DEFAULT);
		return -EINVAL;
	}
	int r = redis_target_parse(o->url, t, err, errsz);
	if (r < 0)
		return r;
	return redis_target_load_password(t, o->password_file, err, errsz);
}

bool cli_color_wanted(int fd, bool no_color_flag)
{
	if (no_color_flag || !isatty(fd))
		return false;
	const char *nc = getenv("NO_COLOR");
	if (nc && *nc)
		return false;
	const char *term = getenv("TERM");
	return !(term && !strcmp(term, "dumb"));
}

void cli_print_version(const char *prog)
{
	printf("%s %s (hiredis %d.%d.%d, jansson %s)\n", prog, RW_VERSION, HIREDIS_MAJOR,
	       HIREDIS_MINOR, HIREDIS_PATCH, JANSSON_VERSION);
}

int cli_check_password_option(const char *prog, int argc, char **argv)
{
	char err[256];
	if (redis_password_option_check(argc, argv, err, sizeof err) < 0)
		return cli_usage_error(prog, "%s", err);
	return 0;
}

int cli_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (try --help)\n");
	va_end(ap);
	return CLI_EXIT_USAGE;
}

/* --- entity IDs and text ------------------------------------------------------ */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

size_t cli_id_decode(const char *id, size_t n, char *out, size_t outsz)
{
	size_t o = 0;
	if (!outsz)
		return 0;
	for (size_t i = 0; i < n && o + 1 < outsz; i++) {
		char c = id[i];
		if (c == '%' && i + 2 < n && hexval((unsigned char)id[i + 1]) >= 0 &&
		    hexval((unsigned char)id[i + 2]) >= 0) {
			c = (char)(hexval((unsigned char)id[i + 1]) * 16 +
				   hexval((unsigned char)id[i + 2]));
			i += 2;
		}
		out[o++] = c;
	}
	out[o] = 0;
	return o;
}

/* One UTF-8 character at s (n > 0 bytes left): its code point and length,
 * or length 0 if the bytes are not valid UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF). */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char b = s[0];
	size_t len;
	uint32_t c, min;
	if (b < 0x80) {
		*cp = b;
		return 1;
	} else if ((b & 0xE0) == 0xC0) {
		len = 2, c = b & 0x1F, min = 0x80;
	} else if ((b & 0xF0) == 0xE0) {
		len = 3, c = b & 0x0F, min = 0x800;
	} else if ((b & 0xF8) == 0xF0) {
		len = 4, c = b & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return len;
}

/* Display columns of a printable code point: 0 for combining marks and
 * zero-width joiners, 2 for East Asian wide and fullwidth forms and the
 * common emoji blocks (a fixed table, so the output does not depend on the
 * locale), else 1. */
static size_t cp_width(uint32_t c)
{
	if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF) ||
	    (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x200B && c <= 0x200D) ||
	    (c >= 0x20D0 && c <= 0x20FF) || (c >= 0xFE00 && c <= 0xFE0F) ||
	    (c >= 0xFE20 && c <= 0xFE2F))
		return 0;
	if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) ||
	    (c >= 0x3041 && c <= 0x33FF) || (c >= 0x3400 && c <= 0x4DBF) ||
	    (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
	    (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
	    (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
	    (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
	    (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD))
		return 2;
	return 1;
}

/* Code points that must not reach a terminal as they are: controls, and the
 * invisible ones that reorder or break what is around them. */
static bool cp_unsafe(uint32_t c)
{
	return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c == 0x061C ||
	       c == 0x200E || c == 0x200F || (c >= 0x2028 && c <= 0x202E) ||
	       (c >= 0x2066 && c <= 0x2069);
}

struct tok {
	char buf[12];
	size_t len, width;
};

/* The next piece of output for s (n > 0): a character kept as it is, or its
 * escape. Returns the input bytes consumed. */
static size_t next_tok(const unsigned char *s, size_t n, bool quote, struct tok *t)
{
	uint32_t cp;
	size_t len = utf8_char(s, n, &cp);
	if (!len) {
		t->len = (size_t)snprintf(t->buf, sizeof t->buf, "\\x%02X", s[0]);
		t->width = t->len;
		return 1;
	}
	if (cp_unsafe(cp)) {
		if (cp == '\t' || cp == '\n' || cp == '\r')
			t->len = (size_t)snprintf(t->buf, sizeof t->buf, "\\%c",
						  cp == '\t' ? 't' : cp == '\n' ? 'n' : 'r');
		else if (cp < 0x80)
			t->len = (size_t)snprintf(t->buf, sizeof t->buf, "\\x%02X", (unsigned)cp);
		else
			t->len = (size_t)snprintf(t->buf, sizeof t->buf, "\\u%04X", (unsigned)cp);
		t->width = t->len;
		return len;
	}
	if (quote && (cp == '"' || cp == '\\')) {
		t->buf[0] = '\\';
		t->buf[1] = (char)cp;
		t->len = t->width = 2;
		return 1;
	}
	memcpy(t->buf, s, len);
	t->len = len;
	t->width = cp_width(cp);
	return len;
}

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026, one column */

size_t cli_text(const char *str, size_t n, bool quote, size_t max_cols, char *out, size_t outsz)
{
	const unsigned char *s = (const unsigned char *)str;
	struct tok t;
	size_t total = 0, o = 0, cols = 0;
	if (!outsz)
		return 0;
	/* Does all of it fit? Then nothing is cut and no ellipsis is needed. */
	for (size_t i = 0; i < n && total <= max_cols;) {
		i += next_tok(s + i, n - i, quote, &t);
		total += t.width;
	}
	bool cut = total > max_cols;
	size_t room = cut ? (max_cols ? max_cols - 1 : 0) : max_cols;
	for (size_t i = 0; i < n;) {
		size_t used = next_tok(s + i, n - i, quote, &t);
		if (cols + t.width > room || o + t.len + sizeof ELLIPSIS > outsz) {
			cut = true;
			break;
		}
		memcpy(out + o, t.buf, t.len);
		o += t.len;
		cols += t.width;
		i += used;
	}
	if (cut && max_cols && o + sizeof ELLIPSIS <= outsz) {
		memcpy(out + o, ELLIPSIS, sizeof ELLIPSIS - 1);
		o += sizeof ELLIPSIS - 1;
		cols++;
	}
	out[o] = 0;
	return cols;
}

size_t cli_utf8_clean(const char *str, size_t n, char *out, size_t outsz)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t o = 0;
	if (!outsz)
		return 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = utf8_char(s + i, n - i, &cp);
		const char *src = len ? (const char *)s + i : "\xEF\xBF\xBD"; /* U+FFFD */
		size_t sl = len ? len : 3;
		if (o + sl + 1 > outsz)
			break;
		memcpy(out + o, src, sl);
		o += sl;
		i += len ? len : 1;
	}
	out[o] = 0;
	return o;
}

/* --- time arguments ---------------------------------------------------------- */

/* Exactly count digits at *p. */
static bool take_digits(const char **p, int count, int *v)
{
	int x = 0;
	for (int i = 0; i < count; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		x = x * 10 + ((*p)[i] - '0');
	}
	*p += count;
	*v = x;
	return true;
}

static int parse_iso(const char *s, double *out)
{
	const char *p = s;
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0;
	double frac = 0;
	if (!take_digits(&p, 4, &y) || *p++ != '-' || !take_digits(&p, 2, &mo) || *p++ != '-' ||
	    !take_digits(&p, 2, &d))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!take_digits(&p, 2, &h) || *p++ != ':' || !take_digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!take_digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.') {
				char *end;
				frac = strtod(p, &end);
				p = end;
			}
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t;
	if (!*p) {
		tm.tm_isdst = -1;          /* no zone: local time */
		t = mktime(&tm);
	} else if ((*p == 'Z' || *p == 'z') && !p[1]) {
		t = timegm(&tm);
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (!take_digits(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (!take_digits(&p, 2, &om) || *p || oh > 23 || om > 59)
			return -EINVAL;
		t = timegm(&tm) - sign * (oh * 3600 + om * 60);
	} else {
		return -EINVAL;
	}
	if (t == (time_t)-1 || t < 0)
		return -EINVAL;
	*out = (double)t + frac;
	return 0;
}

int cli_parse_time(const char *s, double now, double *out)
{
	if (!s || !*s)
		return -EINVAL;
	if (!strcmp(s, "all") || !strcmp(s, "0")) {
		*out = 0;
		return 0;
	}
	if (strchr(s, '-') && isdigit((unsigned char)s[0]))
		return parse_iso(s, out);
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0 || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	if (!*end) {
		*out = v;                  /* unix seconds */
		return 0;
	}
	if (end[1])
		return -EINVAL;
	double unit;
	switch (*end) {
	case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return -EINVAL;
	}
	*out = now - v * unit;
	if (*out < 0)
		*out = 0;
	return 0;
}

void cli_iso_local(double t, char *out, size_t outsz)
{
	time_t s = (time_t)floor(t);
	struct tm tm;
	char buf[64];
	if (!localtime_r(&s, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm)) {
		snprintf(out, outsz, "%.0f", t);
		return;
	}
	/* ISO 8601 extended format wants "+09:00", strftime gives "+0900". */
	size_t l = strlen(buf);
	if (l >= 5 && (buf[l - 5] == '+' || buf[l - 5] == '-'))
		snprintf(out, outsz, "%.*s:%s", (int)(l - 2), buf, buf + l - 2);
	else
		snprintf(out, outsz, "%s", buf);
}

int cli_parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v) || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

void cli_sleep_ms(long ms, const volatile sig_atomic_t *stop)
{
	while (ms > 0 && !*stop) {
		long step = ms < 50 ? ms : 50;
		struct timespec ts = { 0, step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}
