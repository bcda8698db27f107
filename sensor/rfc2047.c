/* rfc2047.c — RFC 2047 encoded-words and charset conversion to UTF-8.
 *
 * Layers, bottom up:
 *   - struct obuf: bounded UTF-8 output that never cuts a sequence;
 *   - charset registry: an allowlist of the charsets mail uses, each mapped to
 *     one or more glibc iconv names tried in order (descriptors cached);
 *   - ISO-2022-JP: the escape-sequence layer (RFC 1468) is parsed here, each
 *     JIS character converted by iconv through EUC-JP with CP932 as fallback
 *     (that is what Microsoft's CP50221 does), because glibc's ISO-2022-JP
 *     rejects the NEC/IBM rows and passes unknown escapes through verbatim;
 *   - rfc2047_decode: the encoded-word scanner (RFC 2047 §2, §5, §6.2).
 *
 * Why an allowlist: charset names come from the wire and glibc has hundreds
 * of gconv modules, some with a history of decoder bugs (CVE-2014-6040,
 * CVE-2020-27618, CVE-2021-3326); mail uses a few dozen. */
#include "rfc2047.h"
#include "utf8.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Decoded bytes of one run of adjacent same-charset words converted at once.
 * Longer runs are converted in pieces (a character split exactly at a piece
 * boundary is then replaced; runs this long do not occur in real headers). */
#define RFC2047_RUN_MAX 4096

static const char REPLACEMENT[3] = { '\xef', '\xbf', '\xbd' }; /* U+FFFD */

/* ---- bounded output ---------------------------------------------------- */

struct obuf {
	char *p;
	size_t cap;   /* usable bytes: outsz - 1 */
	size_t len;
	bool full;    /* something did not fit: write nothing more */
};

static void ob_init(struct obuf *o, char *out, size_t outsz)
{
	o->p = outsz ? out : NULL;
	o->cap = outsz ? outsz - 1 : 0;
	o->len = 0;
	o->full = outsz == 0;
}

/* The output is a C string for every consumer: a NUL decoded from the wire
 * (Q "=00", a base64 zero byte, a raw NUL) would cut a subject short and
 * hide the rest. Each becomes U+FFFD (counted); what then no longer fits is
 * cut at a sequence boundary. */
static void ob_nul_fix(struct obuf *o, unsigned long *replaced)
{
	size_t nuls = 0, keep = 0, outlen = 0;
	for (size_t i = 0; i < o->len; i++)
		nuls += o->p[i] == '\0';
	if (!nuls)
		return;
	/* how much of the input fits once expanded (never mid-sequence) */
	while (keep < o->len) {
		size_t n = o->p[keep] == '\0' ? 1 : utf8_seq((const unsigned char *)o->p + keep,
							  o->len - keep);
		size_t w = o->p[keep] == '\0' ? sizeof REPLACEMENT : (n ? n : 1);
		if (!n)
			n = 1;
		if (outlen + w > o->cap)
			break;
		outlen += w;
		keep += n;
	}
	/* expand from the end so nothing is overwritten before it is moved */
	size_t src = keep, dst = outlen;
	while (src > 0) {
		char c = o->p[--src];
		if (c == '\0') {
			dst -= sizeof REPLACEMENT;
			memcpy(o->p + dst, REPLACEMENT, sizeof REPLACEMENT);
			if (replaced)
				(*replaced)++;
		} else {
			o->p[--dst] = c;
		}
	}
	o->len = outlen;
}

static size_t ob_finish(struct obuf *o)
{
	if (o->p)
		o->p[o->len] = '\0';
	return o->len;
}

/* All or nothing: a sequence that does not fit is not written, and nothing
 * after it is either, so the output is always a prefix of the full result. */
static bool ob_put(struct obuf *o, const char *s, size_t n)
{
	if (o->full)
		return false;
	if (n > o->cap - o->len) {
		o->full = true;
		return false;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	return true;
}

static void ob_replacement(struct obuf *o, unsigned long *replaced)
{
	if (ob_put(o, REPLACEMENT, sizeof REPLACEMENT) && replaced)
		(*replaced)++;
}

static void ob_cp(struct obuf *o, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	ob_put(o, b, n);
}

/* ---- UTF-8 (RFC 3629 §4) ----------------------------------------------- */

static void sanitize_into(struct obuf *o, const char *in, size_t inlen,
			  unsigned long *replaced)
{
	const unsigned char *u = (const unsigned char *)in;

	for (size_t i = 0; i < inlen && !o->full;) {
		size_t n = utf8_seq(u + i, inlen - i);
		if (n == 0) {
			ob_replacement(o, replaced);
			i++;
		} else {
			ob_put(o, in + i, n);
			i += n;
		}
	}
}

size_t utf8_sanitize(const char *in, size_t inlen, char *out, size_t outsz,
		     unsigned long *replaced)
{
	struct obuf o;

	ob_init(&o, out, outsz);
	sanitize_into(&o, in, inlen, replaced);
	ob_nul_fix(&o, replaced);
	return ob_finish(&o);
}

/* ---- charset registry -------------------------------------------------- */

enum cs_kind {
	CS_UTF8,   /* validated here, no iconv */
	CS_ICONV,  /* iconv names tried in order, fewest replacements wins */
	CS_JIS,    /* ISO-2022-JP family, escape layer parsed here */
};

#define CS_TRY_MAX 3

struct charset {
	const char *aliases;  /* normalised names (lower case, no - _ . space), ' '-separated */
	enum cs_kind kind;
	const char *iconv[CS_TRY_MAX];
};

/* The charsets seen in mail headers. Supersets are preferred where mail
 * software sends the subset's name for superset text (WHATWG Encoding does
 * the same): Shift_JIS -> CP932, GB2312/GBK -> GB18030, EUC-KR -> CP949,
 * ISO-8859-1 -> windows-1252. */
static const struct charset charsets[] = {
	{ "utf8 unicode11utf8 xunicode20utf8", CS_UTF8, { NULL } },
	{ "usascii ascii ansix341968 iso646us us csascii cp367", CS_ICONV,
	  { "ASCII", "UTF-8", NULL } },
	{ "iso2022jp csiso2022jp iso2022jp1 iso2022jp2 iso2022jp3 cp50220 cp50221 "
	  "cp50222 iso2022jpms xiso2022jp", CS_JIS, { NULL } },
	{ "shiftjis sjis xsjis mskanji csshiftjis windows31j cp932 ms932 xmscp932 "
	  "shiftjis2004", CS_ICONV, { "CP932", "SHIFT_JISX0213", NULL } },
	{ "eucjp xeucjp cseucpkdfmtjapanese eucjpms cp51932 eucjis2004",
	  CS_ICONV, { "EUC-JP", "EUC-JP-MS", "EUC-JISX0213" } },
	{ "gb2312 gbk cp936 ms936 xgbk euccn csgb2312 gb18030 xeuccn chinese",
	  CS_ICONV, { "GB18030", NULL } },
	{ "big5 cnbig5 xxbig5 csbig5 big5hkscs cp950", CS_ICONV,
	  { "BIG5", "BIG5-HKSCS", "CP950" } },
	{ "euckr cseuckr ksc56011987 ksc5601 cp949 uhc windows949 ksc56011989",
	  CS_ICONV, { "CP949", NULL } },
	{ "koi8r cskoi8r koi8", CS_ICONV, { "KOI8-R", NULL } },
	{ "koi8u", CS_ICONV, { "KOI8-U", NULL } },
	{ "iso88591 latin1 l1 cp819 windows1252 cp1252 xcp1252",
	  CS_ICONV, { "CP1252", "ISO-8859-1", NULL } },
	{ "iso885915 latin9", CS_ICONV, { "ISO-8859-15", NULL } },
	{ "iso88592 latin2 l2", CS_ICONV, { "ISO-8859-2", NULL } },
	{ "iso88593 latin3", CS_ICONV, { "ISO-8859-3", NULL } },
	{ "iso88594 latin4", CS_ICONV, { "ISO-8859-4", NULL } },
	{ "iso88595 cyrillic", CS_ICONV, { "ISO-8859-5", NULL } },
	{ "iso88596 arabic", CS_ICONV, { "ISO-8859-6", NULL } },
	{ "iso88597 greek", CS_ICONV, { "ISO-8859-7", NULL } },
	{ "iso88598 iso88598i hebrew", CS_ICONV, { "ISO-8859-8", NULL } },
	{ "iso88599 latin5", CS_ICONV, { "ISO-8859-9", NULL } },
	{ "iso885910 latin6", CS_ICONV, { "ISO-8859-10", NULL } },
	{ "iso885911 tis620 windows874 cp874", CS_ICONV, { "CP874", "TIS-620", NULL } },
	{ "iso885913", CS_ICONV, { "ISO-8859-13", NULL } },
	{ "iso885914", CS_ICONV, { "ISO-8859-14", NULL } },
	{ "iso885916", CS_ICONV, { "ISO-8859-16", NULL } },
	{ "windows1250 cp1250", CS_ICONV, { "CP1250", NULL } },
	{ "windows1251 cp1251", CS_ICONV, { "CP1251", NULL } },
	{ "windows1253 cp1253", CS_ICONV, { "CP1253", NULL } },
	{ "windows1254 cp1254", CS_ICONV, { "CP1254", NULL } },
	{ "windows1255 cp1255", CS_ICONV, { "CP1255", NULL } },
	{ "windows1256 cp1256", CS_ICONV, { "CP1256", NULL } },
	{ "windows1257 cp1257", CS_ICONV, { "CP1257", NULL } },
	{ "windows1258 cp1258", CS_ICONV, { "CP1258", NULL } },
	{ "cp866 ibm866", CS_ICONV, { "CP866", NULL } },
};

/* Lower-case, drop - _ . and spaces: "Shift_JIS" -> "shiftjis". Returns
 * false if the name is too long or holds bytes no charset name has. */
static bool cs_normalise(const char *name, size_t len, char *out, size_t outsz)
{
	size_t n = 0;

	if (len == 0 || len > RFC2047_CHARSET_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '-' || c == '_' || c == '.' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
		if (n + 1 >= outsz)
			return false;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return n > 0;
}

static bool alias_listed(const char *aliases, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = aliases; *p;) {
		size_t wl = strcspn(p, " ");
		if (wl == nl && memcmp(p, name, nl) == 0)
			return true;
		p += wl;
		while (*p == ' ')
			p++;
	}
	return false;
}

static const struct charset *cs_lookup(const char *name, size_t len)
{
	char norm[RFC2047_CHARSET_MAX + 1];

	if (!cs_normalise(name, len, norm, sizeof norm))
		return NULL;
	for (size_t i = 0; i < sizeof charsets / sizeof charsets[0]; i++)
		if (alias_listed(charsets[i].aliases, norm))
			return &charsets[i];
	return NULL;
}

/* ---- iconv descriptor cache -------------------------------------------- */

/* One slot per distinct iconv name the tables above use (and the JIS
 * helpers), so the cache never needs eviction. Keys are the static strings. */
#define CD_CACHE_MAX 48

static struct {
	const char *name;
	iconv_t cd;
} cd_cache[CD_CACHE_MAX];
static size_t cd_cache_len;

/* Descriptor converting `name` to UTF-8, reset to its initial state, or
 * (iconv_t)-1 if glibc lacks it (then cached as missing too). */
static iconv_t cd_get(const char *name)
{
	for (size_t i = 0; i < cd_cache_len; i++) {
		if (strcmp(cd_cache[i].name, name) == 0) {
			if (cd_cache[i].cd != (iconv_t)-1)
				iconv(cd_cache[i].cd, NULL, NULL, NULL, NULL);
			return cd_cache[i].cd;
		}
	}
	if (cd_cache_len == CD_CACHE_MAX)
		return (iconv_t)-1; /* cannot happen with the tables above */
	cd_cache[cd_cache_len].name = name;
	cd_cache[cd_cache_len].cd = iconv_open("UTF-8", name);
	return cd_cache[cd_cache_len++].cd;
}

void rfc2047_cleanup(void)
{
	for (size_t i = 0; i < cd_cache_len; i++)
		if (cd_cache[i].cd != (iconv_t)-1)
			iconv_close(cd_cache[i].cd);
	cd_cache_len = 0;
}

/* Convert with one descriptor into o; every byte iconv rejects (EILSEQ, or
 * an incomplete sequence at the end) becomes one U+FFFD. Returns the number
 * of replacements, or -1 if the descriptor is missing. */
static long iconv_into(const char *name, struct obuf *o, const char *in, size_t inlen)
{
	iconv_t cd = cd_get(name);
	char *ip = (char *)in;
	size_t il = inlen;
	unsigned long replaced = 0;

	if (cd == (iconv_t)-1)
		return -1;
	iconv(cd, NULL, NULL, NULL, NULL); /* a cached descriptor may hold a shift state */
	while (il > 0 && !o->full) {
		char *op = o->p + o->len;
		size_t ol = o->cap - o->len;
		size_t r = iconv(cd, &ip, &il, &op, &ol);

		o->len = (size_t)(op - o->p);
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG) {
			o->full = true;
		} else if (errno == EILSEQ || errno == EINVAL) {
			/* EINVAL: truncated sequence at the end of the input */
			ob_replacement(o, &replaced);
			/* Some converters (glibc's CP949 on A2 E8) consume the whole
			 * input and still say EILSEQ: nothing is left to skip. */
			if (il == 0)
				break;
			ip++;
			il--;
		} else {
			break;
		}
	}
	return (long)replaced;
}

/* How many bytes of in the table `name` cannot convert, over the whole
 * input whatever the size of the caller's output (a scratch buffer is
 * reused). -1 if the descriptor is missing. */
static long iconv_count(const char *name, const char *in, size_t inlen)
{
	char scratch[256];
	struct obuf o;
	long total = 0;
	iconv_t cd = cd_get(name);

	if (cd == (iconv_t)-1)
		return -1;
	iconv(cd, NULL, NULL, NULL, NULL);
	char *ip = (char *)in;
	size_t il = inlen;
	while (il > 0) {
		ob_init(&o, scratch, sizeof scratch);
		char *op = o.p;
		size_t ol = o.cap;
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG)
			continue; /* scratch full: start it over */
		if (errno != EILSEQ && errno != EINVAL)
			break;
		total++;
		if (il == 0)
			break;
		ip++;
		il--;
	}
	return total;
}

/* ---- ISO-2022-JP (RFC 1468, with the CP50221 and ISO-2022-JP-2/-3 sets) --- */

enum jis_set {
	JIS_ASCII,
	JIS_ROMAN,     /* ESC ( J: JIS X 0201 Roman */
	JIS_KANA,      /* ESC ( I or SO: JIS X 0201 katakana */
	JIS_X0208,     /* ESC $ @, ESC $ B */
	JIS_X0212,     /* ESC $ ( D */
	JIS_X0213_1,   /* ESC $ ( O, ESC $ ( Q */
	JIS_X0213_2,   /* ESC $ ( P */
	JIS_GB2312,    /* ESC $ A (ISO-2022-JP-2) */
	JIS_KSC5601,   /* ESC $ ( C (ISO-2022-JP-2) */
};

/* Recognise an escape sequence at s; returns its length (0 if unknown). */
static size_t jis_escape(const unsigned char *s, size_t len, enum jis_set *set)
{
	static const struct {
		const char *seq;
		enum jis_set set;
	} esc[] = {
		{ "\x1b(B", JIS_ASCII }, { "\x1b(J", JIS_ROMAN }, { "\x1b(H", JIS_ROMAN },
		{ "\x1b(I", JIS_KANA }, { "\x1b$@", JIS_X0208 }, { "\x1b$B", JIS_X0208 },
		{ "\x1b&@\x1b$B", JIS_X0208 }, { "\x1b$(B", JIS_X0208 },
		{ "\x1b$(D", JIS_X0212 }, { "\x1b$(O", JIS_X0213_1 },
		{ "\x1b$(Q", JIS_X0213_1 }, { "\x1b$(P", JIS_X0213_2 },
		{ "\x1b$A", JIS_GB2312 }, { "\x1b$(C", JIS_KSC5601 },
	};

	for (size_t i = 0; i < sizeof esc / sizeof esc[0]; i++) {
		size_t n = strlen(esc[i].seq);
		if (n <= len && memcmp(s, esc[i].seq, n) == 0) {
			*set = esc[i].set;
			return n;
		}
	}
	return 0;
}

/* JIS X 0208 row/cell to Shift_JIS (the arithmetic CP50221 relies on). */
static void jis_to_sjis(unsigned char j1, unsigned char j2, char out[2])
{
	unsigned char s1 = (unsigned char)(((j1 + 1) >> 1) + (j1 <= 0x5e ? 0x70 : 0xb0));
	unsigned char s2;

	if (j1 & 1)
		s2 = (unsigned char)(j2 + (j2 >= 0x60 ? 0x20 : 0x1f));
	else
		s2 = (unsigned char)(j2 + 0x7e);
	out[0] = (char)s1;
	out[1] = (char)s2;
}

/* One two-byte character of `set` to UTF-8; false if no table has it. */
static bool jis_pair(struct obuf *o, enum jis_set set, unsigned char j1, unsigned char j2)
{
	char b[3];
	size_t before = o->len;

	b[0] = (char)(j1 | 0x80);
	b[1] = (char)(j2 | 0x80);
	switch (set) {
	case JIS_X0208:
		if (iconv_into("EUC-JP", o, b, 2) == 0)
			return true;
		o->len = before;
		o->full = false;
		jis_to_sjis(j1, j2, b); /* NEC row 13, IBM extensions */
		if (iconv_into("CP932", o, b, 2) == 0)
			return true;
		break;
	case JIS_X0212:
	case JIS_X0213_2:
		b[0] = '\x8f';
		b[1] = (char)(j1 | 0x80);
		b[2] = (char)(j2 | 0x80);
		if (iconv_into(set == JIS_X0212 ? "EUC-JP" : "EUC-JISX0213", o, b, 3) == 0)
			return true;
		break;
	case JIS_X0213_1:
		if (iconv_into("EUC-JISX0213", o, b, 2) == 0)
			return true;
		break;
	case JIS_GB2312:
		if (iconv_into("GB18030", o, b, 2) == 0)
			return true;
		break;
	case JIS_KSC5601:
		if (iconv_into("CP949", o, b, 2) == 0)
			return true;
		break;
	case JIS_ASCII:
	case JIS_ROMAN:
	case JIS_KANA:
		break;
	}
	if (o->len > before && !o->full)
		o->len = before; /* drop partial U+FFFD output of the attempts */
	return false;
}

static bool jis_two_byte(enum jis_set set)
{
	switch (set) {
	case JIS_ASCII:
	case JIS_ROMAN:
	case JIS_KANA:
		return false;
	case JIS_X0208:
	case JIS_X0212:
	case JIS_X0213_1:
	case JIS_X0213_2:
	case JIS_GB2312:
	case JIS_KSC5601:
		return true;
	}
	return false;
}

/* One byte in a single-byte set. */
static void jis_single(struct obuf *o, enum jis_set set, unsigned char c,
		       unsigned long *replaced)
{
	if (c >= 0x80) {
		ob_replacement(o, replaced);
	} else if (set == JIS_KANA && c >= 0x21 && c <= 0x5f) {
		ob_cp(o, 0xff61 + (uint32_t)(c - 0x21)); /* halfwidth katakana */
	} else if (set == JIS_ROMAN && c == 0x5c) {
		ob_cp(o, 0xa5);   /* YEN SIGN (WHATWG iso-2022-jp decoder) */
	} else if (set == JIS_ROMAN && c == 0x7e) {
		ob_cp(o, 0x203e); /* OVERLINE */
	} else {
		char ch = (char)c;
		ob_put(o, &ch, 1);
	}
}

/* Decode ISO-2022-JP text into o. Returns the number of replaced bytes. */
static unsigned long jis_into(struct obuf *o, const char *in, size_t inlen)
{
	const unsigned char *u = (const unsigned char *)in;
	enum jis_set set = JIS_ASCII, saved = JIS_ASCII;
	unsigned long replaced = 0;

	for (size_t i = 0; i < inlen && !o->full;) {
		unsigned char c = u[i];
		size_t n;

		if (c == 0x1b && (n = jis_escape(u + i, inlen - i, &set)) > 0) {
			i += n;
		} else if (c == 0x0e) {            /* SO: CP50222 katakana shift */
			saved = set;
			set = JIS_KANA;
			i++;
		} else if (c == 0x0f) {            /* SI */
			set = saved == JIS_KANA ? JIS_ASCII : saved;
			i++;
		} else if (jis_two_byte(set) && c >= 0x21 && c <= 0x7e) {
			if (i + 1 < inlen && u[i + 1] >= 0x21 && u[i + 1] <= 0x7e) {
				if (!jis_pair(o, set, c, u[i + 1])) {
					ob_replacement(o, &replaced);
					ob_replacement(o, &replaced);
				}
				i += 2;
			} else {               /* lone first byte */
				ob_replacement(o, &replaced);
				i++;
			}
		} else if (c == 0x1b || (c >= 0x80)) {
			ob_replacement(o, &replaced);
			i++;
		} else {
			/* controls and space are taken literally even in a two-byte
			 * set: broken mailers omit ESC ( B before them */
			jis_single(o, jis_two_byte(set) ? JIS_ASCII : set, c, &replaced);
			i++;
		}
	}
	return replaced;
}

/* True if raw header text carries ISO-2022-JP escapes (old Japanese mailers
 * put JIS in headers without encoded-words). */
static bool looks_jis(const char *s, size_t len)
{
	for (size_t i = 0; i + 2 < len; i++)
		if (s[i] == 0x1b && (s[i + 1] == '$' || (s[i + 1] == '(' && s[i + 2] == 'I')))
			return true;
	return false;
}

/* ---- conversion -------------------------------------------------------- */

/* Non-ASCII bytes of an unknown charset: each one U+FFFD. */
static void ascii_into(struct obuf *o, const char *in, size_t inlen, unsigned long *replaced)
{
	for (size_t i = 0; i < inlen && !o->full; i++) {
		if ((unsigned char)in[i] >= 0x80)
			ob_replacement(o, replaced);
		else
			ob_put(o, in + i, 1);
	}
}

/* Try each iconv name of cs; the first conversion without replacements wins,
 * else the one with fewest (the first of equals). */
static void iconv_best_into(const struct charset *cs, struct obuf *o, const char *in,
			    size_t inlen, unsigned long *replaced)
{
	long best = -1;
	int best_i = -1;

	/* The table with the fewest bytes it cannot convert, judged on the
	 * whole input, so that the choice does not depend on the room left. */
	for (int i = 0; i < CS_TRY_MAX && cs->iconv[i]; i++) {
		long r = iconv_count(cs->iconv[i], in, inlen);
		if (r < 0)
			continue;
		if (best < 0 || r < best) {
			best = r;
			best_i = i;
		}
		if (r == 0)
			break;
	}
	if (best_i < 0) {            /* glibc lacks every table: bytes as ASCII */
		ascii_into(o, in, inlen, replaced);
		return;
	}
	/* Once full, nothing more is written (the output stays a prefix of the
	 * full result), but what could not be converted is still counted. */
	if (!o->full)
		iconv_into(cs->iconv[best_i], o, in, inlen);
	if (replaced)
		*replaced += (unsigned long)best;
}

static void convert_into(const struct charset *cs, struct obuf *o, const char *in,
			 size_t inlen, struct rfc2047_stats *st)
{
	unsigned long rep = 0;

	switch (cs->kind) {
	case CS_UTF8:
		sanitize_into(o, in, inlen, &rep);
		break;
	case CS_ICONV:
		iconv_best_into(cs, o, in, inlen, &rep);
		break;
	case CS_JIS:
		rep = jis_into(o, in, inlen);
		break;
	}
	if (st)
		st->replaced += rep;
}

long rfc2047_convert(const char *charset, const char *in, size_t inlen, char *out,
		     size_t outsz, struct rfc2047_stats *stats)
{
	const struct charset *cs = cs_lookup(charset, strlen(charset));
	struct obuf o;

	ob_init(&o, out, outsz);
	if (!cs) {
		unsigned long rep = 0;
		ascii_into(&o, in, inlen, &rep);
		if (stats) {
			stats->replaced += rep;
			stats->unknown_charset++;
		}
		ob_finish(&o);
		return -1;
	}
	convert_into(cs, &o, in, inlen, stats);
	ob_nul_fix(&o, stats ? &stats->replaced : NULL);
	return (long)ob_finish(&o);
}

/* ---- encoded-words (RFC 2047 §2, §4, §5) -------------------------------- */

struct word {
	const char *charset;   /* without the RFC 2231 §5 "*lang" suffix */
	size_t charset_len;
	char enc;              /* 'B' or 'Q' */
	const char *text;
	size_t text_len;
	size_t len;            /* whole "=?...?=" */
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parse "=?charset[*lang]?B|Q?text?=" at s. The encoded text holds no
 * whitespace (RFC 2047 §2); the 75-byte limit is not enforced because real
 * mailers ignore it. Nor is "no '?'" in Q text (§4.2 wants "=3F"): mailers
 * that forget it write "you??=" for a subject ending in a question mark,
 * and mail clients (Thunderbird) end the word at the first "?=" all the
 * same. B text with a '?' is malformed whichever way it is read. */
static bool word_parse(const char *s, size_t len, struct word *w)
{
	size_t i = 2, cs_start = 2, star = 0;

	if (len < 8 || s[0] != '=' || s[1] != '?')
		return false;
	for (; i < len && s[i] != '?'; i++) {
		if (is_wsp(s[i]) || (unsigned char)s[i] < 0x21 || i - cs_start > 100)
			return false;
		if (s[i] == '*' && !star)
			star = i;
	}
	w->charset = s + cs_start;
	w->charset_len = (star ? star : i) - cs_start;
	if (w->charset_len == 0 || w->charset_len > RFC2047_CHARSET_MAX)
		return false;
	if (i + 3 >= len || s[i + 2] != '?')
		return false;
	w->enc = (char)(s[i + 1] & ~0x20);
	if (w->enc != 'B' && w->enc != 'Q')
		return false;
	w->text = s + i + 3;
	for (i += 3; i + 1 < len; i++) {
		if (s[i] == '?' && s[i + 1] == '=') {
			w->text_len = (size_t)(s + i - w->text);
			w->len = i + 2;
			return true;
		}
		if (is_wsp(s[i]) || (s[i] == '?' && w->enc == 'B'))
			return false;
	}
	return false;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* RFC 2045 §6.8 base64; missing padding is tolerated, anything outside the
 * alphabet (or a lone trailing sextet) makes the word malformed. */
static bool b_decode(const char *t, size_t n, char *out, size_t *outlen)
{
	uint32_t acc = 0;
	size_t k = 0, o = 0, i = 0;

	for (; i < n && t[i] != '='; i++) {
		int v = b64_value(t[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		if (++k == 4) {
			out[o++] = (char)(acc >> 16);
			out[o++] = (char)(acc >> 8);
			out[o++] = (char)acc;
			acc = 0;
			k = 0;
		}
	}
	for (; i < n; i++)
		if (t[i] != '=')
			return false;
	if (k == 1)
		return false;
	if (k == 2)
		out[o++] = (char)(acc >> 4);
	if (k == 3) {
		out[o++] = (char)(acc >> 10);
		out[o++] = (char)(acc >> 2);
	}
	*outlen = o;
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c & ~0x20);
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 2047 §4.2 Q: "_" is 0x20, "=XX" a byte; a bad "=" makes it malformed. */
static bool q_decode(const char *t, size_t n, char *out, size_t *outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (t[i] == '_') {
			out[o++] = ' ';
		} else if (t[i] == '=') {
			int hi, lo;
			if (i + 2 >= n || (hi = hex_value(t[i + 1])) < 0 ||
			    (lo = hex_value(t[i + 2])) < 0)
				return false;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = t[i];
		}
	}
	*outlen = o;
	return true;
}

/* Adjacent words in one charset, decoded bytes concatenated (so a character
 * split across two words, as many mailers do, is converted whole). */
struct run {
	const struct charset *cs;   /* NULL: no run pending */
	size_t len;
	char bytes[RFC2047_RUN_MAX];
};

static void run_flush(struct run *r, struct obuf *o, struct rfc2047_stats *st)
{
	if (r->cs && r->len)
		convert_into(r->cs, o, r->bytes, r->len, st);
	r->cs = NULL;
	r->len = 0;
}

/* Text outside encoded-words: UTF-8 kept, JIS escapes decoded, other bytes
 * replaced one by one. */
static void raw_into(struct obuf *o, const char *s, size_t n, struct rfc2047_stats *st)
{
	unsigned long rep = 0;

	if (looks_jis(s, n))
		rep = jis_into(o, s, n);
	else
		sanitize_into(o, s, n, &rep);
	if (st)
		st->replaced += rep;
}

static bool only_wsp(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_wsp(s[i]))
			return false;
	return true;
}

/* The payload bytes of a word; false if malformed (RFC 2047 §6.3).
 * Both decoders emit at most text_len bytes. */
static bool word_payload(const struct word *w, char *out, size_t outsz, size_t *n)
{
	if (w->text_len > outsz)
		return false;
	return w->enc == 'B' ? b_decode(w->text, w->text_len, out, n)
			     : q_decode(w->text, w->text_len, out, n);
}

/* Add a decoded word (or nwords joined by b_join()) to the run, flushing
 * first if the charset changes or the run is full. Words in unknown
 * charsets are written at once. */
static void word_into_run(const struct word *w, unsigned long nwords, const char *bytes,
			  size_t n, struct run *r, struct obuf *o, struct rfc2047_stats *st)
{
	const struct charset *cs = cs_lookup(w->charset, w->charset_len);

	if (st)
		st->words += nwords;
	if (!cs) {
		unsigned long rep = 0;
		run_flush(r, o, st);
		ascii_into(o, bytes, n, &rep);
		if (st) {
			st->unknown_charset++;
			st->replaced += rep;
		}
		return;
	}
	if (r->cs != cs || r->len + n > sizeof r->bytes)
		run_flush(r, o, st);
	r->cs = cs;
	memcpy(r->bytes + r->len, bytes, n);
	r->len += n;
}

/* Sextets of a B word's text; *padded if '=' padding ends it (its last
 * quantum is then complete). */
static size_t b_sextets(const struct word *w, bool *padded)
{
	size_t n = w->text_len;

	while (n && w->text[n - 1] == '=')
		n--;
	*padded = n < w->text_len;
	return n;
}

/* One charset: the same registry entry, or the same unknown name. */
static bool same_charset(const struct word *a, const struct word *b)
{
	const struct charset *ca = cs_lookup(a->charset, a->charset_len);
	const struct charset *cb = cs_lookup(b->charset, b->charset_len);

	if (ca || cb)
		return ca == cb;
	return a->charset_len == b->charset_len &&
	       strncasecmp(a->charset, b->charset, a->charset_len) == 0;
}

/* Mailers cut base64 text into words anywhere, also inside a 4-character
 * quantum, though RFC 2047 §5 wants each word decodable alone: each half
 * then decodes to garbage or not at all. Thunderbird joins the text of
 * adjacent B words in one charset until a padded one ends it (Mozilla bug
 * 493544); so here, from the word *w at in[i] whose last quantum is short,
 * the text of the adjacent B words in its charset (only white space
 * between) is joined to it until the quantum is whole, a padded word is
 * taken or bufsz would be passed. The joined text goes to buf (*len bytes),
 * the input index after the last word taken to *end, their number to
 * *nwords. False if w's quanta are whole or no such word follows: then it
 * is decoded alone, as before. */
static bool b_join(const char *in, size_t inlen, size_t i, const struct word *w, char *buf,
		   size_t bufsz, size_t *len, size_t *end, unsigned long *nwords)
{
	bool padded;
	size_t sextets = b_sextets(w, &padded), n = w->text_len, j = i + w->len;
	unsigned long k = 1;

	if (w->enc != 'B' || padded || sextets % 4 == 0 || n > bufsz)
		return false;
	memcpy(buf, w->text, n);
	while (sextets % 4 != 0 && !padded) {
		struct word x;
		size_t s = j;

		while (s < inlen && is_wsp(in[s]))
			s++;
		if (s == inlen || in[s] != '=' || !word_parse(in + s, inlen - s, &x) ||
		    x.enc != 'B' || !same_charset(w, &x) || x.text_len > bufsz - n)
			break;
		memcpy(buf + n, x.text, x.text_len);
		n += x.text_len;
		sextets += b_sextets(&x, &padded);
		j = s + x.len;
		k++;
	}
	*len = n;
	*end = j;
	*nwords = k;
	return k > 1;
}

size_t rfc2047_decode(const char *in, size_t inlen, char *out, size_t outsz,
		      struct rfc2047_stats *stats)
{
	struct obuf o;
	struct run run;
	char payload[RFC2047_RUN_MAX];
	char joined[RFC2047_RUN_MAX];   /* b_join()'s text */
	size_t text = 0;        /* start of pending raw text */
	bool after_word = false;

	ob_init(&o, out, outsz);
	run.cs = NULL;
	run.len = 0;
	for (size_t i = 0; i < inlen && !o.full;) {
		struct word w;
		size_t n, jlen, jend;
		unsigned long nwords = 1;
		bool ok;

		if (in[i] != '=' || !word_parse(in + i, inlen - i, &w)) {
			i++;
			continue;
		}
		if (b_join(in, inlen, i, &w, joined, sizeof joined, &jlen, &jend, &nwords) &&
		    b_decode(joined, jlen, payload, &n)) {
			ok = true;
			w.len = jend - i;   /* the words joined are one from here */
		} else {
			nwords = 1;
			ok = word_payload(&w, payload, sizeof payload, &n);
		}
		/* RFC 2047 §6.2: whitespace between two encoded-words is dropped */
		if (!(ok && after_word && only_wsp(in + text, i - text))) {
			run_flush(&run, &o, stats);
			raw_into(&o, in + text, i - text, stats);
		}
		if (ok) {
			word_into_run(&w, nwords, payload, n, &run, &o, stats);
		} else {
			/* RFC 2047 §6.3: a malformed word is shown as written */
			if (stats)
				stats->bad_words++;
			raw_into(&o, in + i, w.len, stats);
		}
		after_word = ok;
		i += w.len;
		text = i;
	}
	run_flush(&run, &o, stats);
	if (text < inlen && !o.full)
		raw_into(&o, in + text, inlen - text, stats);
	ob_nul_fix(&o, stats ? &stats->replaced : NULL);
	return ob_finish(&o);
}
