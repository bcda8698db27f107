/* address.c — first mailbox of a From-like field, SMTP paths, and the
 * display-name spoof check.
 *
 * The RFC 5322 §3.4 grammar is applied leniently, the way mail clients show
 * addresses rather than the way a validating parser would reject them: an
 * unquoted comma inside a display name ("Doe, John <j@d>") stays in the name,
 * encoded-words inside quoted strings are decoded (RFC 2047 §5 forbids them,
 * Outlook sends them), and a missing closing quote, parenthesis or angle
 * bracket ends at the end of the value. */
#include "address.h"

#include <stdint.h>
#include <string.h>

#include "netlist.h"
#include "rfc2047.h"
#include "utf8.h"

/* ---- small bounded string builder -------------------------------------- */

struct sbuf {
	char *p;
	size_t cap;   /* usable bytes (size - 1) */
	size_t len;
};

static void sb_init(struct sbuf *b, char *p, size_t size)
{
	b->p = p;
	b->cap = size - 1;
	b->len = 0;
	p[0] = '\0';
}

/* Append what fits; the tail of an over-long value is dropped. */
static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (n > b->cap - b->len)
		n = b->cap - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_addc(struct sbuf *b, char c)
{
	sb_add(b, &c, 1);
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ---- lexer (RFC 5322 §3.2) --------------------------------------------- */

enum tok_kind {
	TOK_END,
	TOK_ATOM,     /* run of non-special characters, '@' and '.' included */
	TOK_QUOTED,   /* contents of "..." (escapes still in) */
	TOK_COMMENT,  /* contents of (...) */
	TOK_ANGLE,    /* contents of <...> */
	TOK_COMMA,
	TOK_COLON,
	TOK_SEMI,
};

struct tok {
	enum tok_kind kind;
	const char *s;
	size_t n;
	bool space_before;
};

struct lexer {
	const char *p, *end;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_atom_end(char c)
{
	return is_space(c) || c == '(' || c == '<' || c == ',' || c == ';' ||
	       c == ':' || c == '"';
}

/* p is just after the opening quote; returns the closing quote or end. */
static const char *skip_quoted(const char *p, const char *end)
{
	while (p < end && *p != '"') {
		if (*p == '\\' && p + 1 < end)
			p++;
		p++;
	}
	return p;
}

/* p is just after '('; comments nest (RFC 5322 §3.2.2). */
static const char *skip_comment(const char *p, const char *end)
{
	unsigned depth = 1;

	for (; p < end; p++) {
		if (*p == '\\' && p + 1 < end)
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p;
	}
	return p;
}

/* p is just after '<'; quoted strings inside may hold '>'. */
static const char *skip_angle(const char *p, const char *end)
{
	for (; p < end && *p != '>'; p++)
		if (*p == '"')
			p = skip_quoted(p + 1, end);
	return p < end ? p : end;
}

/* A closer returned by a skip_* function, or end: step over it if present. */
static const char *after(const char *closer, const char *end)
{
	return closer < end ? closer + 1 : end;
}

static void lex_delimited(struct lexer *lx, struct tok *t, enum tok_kind kind,
			  const char *(*skip)(const char *, const char *))
{
	const char *close = skip(lx->p + 1, lx->end);

	t->kind = kind;
	t->s = lx->p + 1;
	t->n = (size_t)(close - t->s);
	lx->p = after(close, lx->end);
}

static void lex(struct lexer *lx, struct tok *t)
{
	t->space_before = false;
	while (lx->p < lx->end && is_space(*lx->p)) {
		lx->p++;
		t->space_before = true;
	}
	t->s = lx->p;
	t->n = 1;
	if (lx->p == lx->end) {
		t->kind = TOK_END;
		t->n = 0;
		return;
	}
	switch (*lx->p) {
	case '"':
		lex_delimited(lx, t, TOK_QUOTED, skip_quoted);
		return;
	case '(':
		lex_delimited(lx, t, TOK_COMMENT, skip_comment);
		return;
	case '<':
		lex_delimited(lx, t, TOK_ANGLE, skip_angle);
		return;
	case ',':
		t->kind = TOK_COMMA;
		break;
	case ':':
		t->kind = TOK_COLON;
		break;
	case ';':
		t->kind = TOK_SEMI;
		break;
	default:
		t->kind = TOK_ATOM;
		while (lx->p + t->n < lx->end && !is_atom_end(lx->p[t->n]))
			t->n++;
		lx->p += t->n;
		return;
	}
	lx->p++;
}

/* ---- addr-spec --------------------------------------------------------- */

/* Clean an addr-spec as written inside <...> or in an SMTP path: drop CFWS
 * outside quotes, drop an RFC 5321 §4.1.2 source route ("@r1,@r2:"), lower
 * case. Writes at most outsz-1 bytes plus NUL, never cutting UTF-8. */
static void addr_clean(const char *s, size_t n, char *out, size_t outsz)
{
	char tmp[ADDRESS_MAX * 2 + 1];
	struct sbuf b;
	const char *end = s + n, *start;
	size_t len;

	sb_init(&b, tmp, sizeof tmp);
	for (const char *p = s; p < end; p++) {
		if (is_space(*p))
			continue;
		if (*p == '(') {
			p = skip_comment(p + 1, end);
			if (p == end)
				break;
			continue;
		}
		if (*p == '"') {
			const char *q = skip_quoted(p + 1, end);
			sb_add(&b, p, (size_t)(after(q, end) - p));
			p = after(q, end) - 1;
			continue;
		}
		sb_addc(&b, *p);
	}
	for (size_t i = 0; i < b.len; i++)
		tmp[i] = ascii_lower(tmp[i]);
	start = tmp;
	if (tmp[0] == '@') {
		const char *colon = memchr(tmp, ':', b.len);
		start = colon ? colon + 1 : tmp + b.len;
	}
	len = utf8_cut(start, strlen(start), outsz - 1);
	memcpy(out, start, len);
	out[len] = '\0';
}

const char *address_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : addr + strlen(addr);
}

static const char *last_of(const char *s, size_t n, char c)
{
	while (n-- > 0)
		if (s[n] == c)
			return s + n;
	return NULL;
}

bool address_routed(const char *addr, const char **hop, size_t *hoplen)
{
	const char *at = strrchr(addr, '@');
	size_t n = at ? (size_t)(at - addr) : strlen(addr);
	const char *s, *e = addr + n, *p;

	if ((p = last_of(addr, n, '@')) != NULL || (p = last_of(addr, n, '%')) != NULL) {
		s = p + 1;
	} else if ((p = memchr(addr, '!', n)) != NULL) {
		s = addr;
		e = p;
	} else {
		return false;
	}
	while (s < e && *s == '"')
		s++;
	while (e > s && e[-1] == '"')
		e--;
	*hop = s;
	*hoplen = (size_t)(e - s);
	return true;
}

bool address_from_path(const char *path, size_t len, char *out, size_t outsz)
{
	const char *p = path, *end = path + len, *tok_end, *lt;

	if (outsz == 0)
		return false;
	out[0] = '\0';
	while (p < end && is_space(*p))
		p++;
	tok_end = p;
	while (tok_end < end && !is_space(*tok_end))
		tok_end++;
	lt = memchr(p, '<', (size_t)(tok_end - p));
	if (lt) {
		/* "<addr>" followed by ESMTP parameters (RFC 5321 §4.1.2) */
		const char *gt = skip_angle(lt + 1, end);
		addr_clean(lt + 1, (size_t)(gt - lt - 1), out, outsz);
	} else {
		addr_clean(p, (size_t)(tok_end - p), out, outsz);
	}
	return out[0] != '\0';
}

/* ---- mailbox (RFC 5322 §3.4) ------------------------------------------- */

struct mb_state {
	struct sbuf phrase;      /* display name as written, quotes removed */
	struct sbuf bare;        /* atoms joined without spaces: a bare addr-spec */
	struct sbuf comment;     /* first comment (legacy "addr (Name)") */
	char phrase_buf[1024];
	char bare_buf[ADDRESS_MAX + 1];
	char comment_buf[512];
};

static void mb_reset(struct mb_state *st)
{
	sb_init(&st->phrase, st->phrase_buf, sizeof st->phrase_buf);
	sb_init(&st->bare, st->bare_buf, sizeof st->bare_buf);
	sb_init(&st->comment, st->comment_buf, sizeof st->comment_buf);
}

static void phrase_word(struct mb_state *st, const struct tok *t)
{
	if (st->phrase.len && t->space_before)
		sb_addc(&st->phrase, ' ');
	if (t->kind != TOK_QUOTED) {
		sb_add(&st->phrase, t->s, t->n);
		sb_add(&st->bare, t->s, t->n);
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (t->s[i] == '\\' && i + 1 < t->n) {
			i++;
		} else if (is_space(t->s[i])) {
			/* a run of white space shows as one space: padding must not
			 * push the rest of the name out of the display buffer */
			if (st->phrase.len && st->phrase.p[st->phrase.len - 1] == ' ')
				continue;
			sb_addc(&st->phrase, ' ');
			continue;
		}
		sb_addc(&st->phrase, t->s[i]);
	}
	sb_addc(&st->bare, '"');
	sb_add(&st->bare, t->s, t->n);
	sb_addc(&st->bare, '"');
}

/* Decode a display name (RFC 2047) and trim it. */
static void display_set(char *out, size_t outsz, const char *raw, size_t n)
{
	size_t len = rfc2047_decode(raw, n, out, outsz, NULL);
	size_t start = 0;

	while (len > 0 && is_space(out[len - 1]))
		out[--len] = '\0';
	while (start < len && is_space(out[start]))
		start++;
	memmove(out, out + start, len - start + 1);
}

static void mb_set_addr(struct mailbox *out, const char *addr)
{
	size_t len = utf8_cut(addr, strlen(addr), ADDRESS_MAX);

	memcpy(out->addr, addr, len);
	out->addr[len] = '\0';
	for (size_t i = 0; i < len; i++)
		out->addr[i] = ascii_lower(out->addr[i]);
	out->domain = address_domain(out->addr);
}

static bool mb_finish_bare(struct mb_state *st, struct mailbox *out)
{
	if (!memchr(st->bare.p, '@', st->bare.len))
		return false;
	mb_set_addr(out, st->bare.p);
	display_set(out->display, sizeof out->display, st->comment.p, st->comment.len);
	return true;
}

/* The mailbox ends with the angle-addr t; the phrase up to `mark` (where
 * t began) is its display name. */
static bool mb_finish_angle(struct mb_state *st, const struct tok *t, size_t mark,
			    struct mailbox *out)
{
	const struct sbuf *name;

	st->phrase.len = mark;
	st->phrase.p[mark] = '\0';
	name = st->phrase.len ? &st->phrase : &st->comment;
	addr_clean(t->s, t->n, out->addr, sizeof out->addr);
	out->domain = address_domain(out->addr);
	display_set(out->display, sizeof out->display, name->p, name->len);
	return out->addr[0] != '\0';
}

/* An angle-addr that a later one replaces is part of that one's display
 * name: keep it in the phrase as written. */
static void phrase_angle(struct mb_state *st, const struct tok *t)
{
	if (st->phrase.len && t->space_before)
		sb_addc(&st->phrase, ' ');
	sb_addc(&st->phrase, '<');
	sb_add(&st->phrase, t->s, t->n);
	sb_addc(&st->phrase, '>');
}

bool address_parse_mailbox(const char *value, size_t len, struct mailbox *out)
{
	struct lexer lx = { value, value + len };
	struct mb_state st;
	struct tok t, angle = { TOK_END, NULL, 0, false };
	size_t mark = 0;   /* phrase length where `angle` began */

	out->display[0] = '\0';
	out->addr[0] = '\0';
	out->domain = out->addr;
	mb_reset(&st);
	for (;;) {
		lex(&lx, &t);
		switch (t.kind) {
		case TOK_END:
			if (angle.kind == TOK_ANGLE)
				return mb_finish_angle(&st, &angle, mark, out);
			return mb_finish_bare(&st, out);
		case TOK_ATOM:
		case TOK_QUOTED:
			phrase_word(&st, &t);
			break;
		case TOK_COMMENT:
			/* "addr (Name)"; one after the angle-addr names nothing */
			if (st.comment.len == 0 && angle.kind != TOK_ANGLE)
				sb_add(&st.comment, t.s, t.n);
			break;
		case TOK_ANGLE:
			/* RFC 5322 §3.4: name-addr = [display-name] angle-addr, so the
			 * angle-addr ends the mailbox. Another one before the mailbox
			 * ends (`a <b@c> <d@e>`, not valid) makes the text up to it
			 * the display name: the last one wins, as in a field read
			 * whole past its kept value (message.c). */
			addr_clean(t.s, t.n, out->addr, sizeof out->addr);
			if (out->addr[0]) {
				angle = t;
				mark = st.phrase.len;
				phrase_angle(&st, &t);
			} else if (angle.kind != TOK_ANGLE) {
				mb_reset(&st);   /* "<>": try the next mailbox */
			}
			break;
		case TOK_COLON:      /* group name (RFC 5322 §3.4): not a mailbox */
		case TOK_SEMI:       /* end of group */
			if (angle.kind == TOK_ANGLE)
				return mb_finish_angle(&st, &angle, mark, out);
			if (mb_finish_bare(&st, out))
				return true;
			mb_reset(&st);
			break;
		case TOK_COMMA:
			if (angle.kind == TOK_ANGLE)
				return mb_finish_angle(&st, &angle, mark, out);
			if (mb_finish_bare(&st, out))
				return true;
			/* "Doe, John <j@d>": the comma belongs to the name */
			if (st.phrase.len)
				sb_addc(&st.phrase, ',');
			sb_init(&st.bare, st.bare_buf, sizeof st.bare_buf);
			break;
		}
	}
}

/* ---- domains and the spoof check --------------------------------------- */

static bool ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

bool address_domain_matches(const char *domain, const char *suffix)
{
	size_t dl = strlen(domain), sl = strlen(suffix);

	while (dl && domain[dl - 1] == '.')
		dl--;
	while (sl && suffix[sl - 1] == '.')
		sl--;
	if (sl == 0 || dl < sl)
		return false;
	if (dl > sl && domain[dl - sl - 1] != '.')
		return false;
	return ascii_ieq(domain + dl - sl, suffix, sl);
}

/* Fold what makes an address look different but read the same: full-width
 * ASCII (U+FF01..U+FF5E, e.g. ＠) to ASCII, the ideographic full stops that
 * IDNA treats as dots (U+3002, U+FF61) and small commercial at (U+FE6B),
 * ASCII lower case. Output is at most as long as the input. */
static size_t fold_display(const char *in, char *out, size_t outsz)
{
	const unsigned char *u = (const unsigned char *)in;
	size_t o = 0;

	for (size_t i = 0; u[i] && o + 1 < outsz;) {
		uint32_t cp = 0;
		char c = 0;

		/* three-byte sequences only: everything folded lives in U+3000..U+FFFF */
		if ((u[i] & 0xf0) == 0xe0 && (u[i + 1] & 0xc0) == 0x80 &&
		    (u[i + 2] & 0xc0) == 0x80)
			cp = (uint32_t)(u[i] & 0x0f) << 12 | (uint32_t)(u[i + 1] & 0x3f) << 6 |
			     (uint32_t)(u[i + 2] & 0x3f);
		if (cp >= 0xff01 && cp <= 0xff5e)
			c = (char)(cp - 0xfee0);
		else if (cp == 0x3002 || cp == 0xff61)
			c = '.';
		else if (cp == 0xfe6b)
			c = '@';
		if (c) {
			out[o++] = ascii_lower(c);
			i += 3;
		} else {
			out[o++] = ascii_lower((char)u[i]);
			i++;
		}
	}
	out[o] = '\0';
	return o;
}

static bool local_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&*+/=?^_`{|}~.-", c) != NULL);
}

/* Blocks of code points that are spaces, punctuation or symbols, never the
 * letters and digits of a domain name (IDNA2008, RFC 5892, disallows them):
 * a display name's address ends at the first of them, as at an ASCII space.
 * An approximation by block, not the Unicode tables: what it lets through
 * (a rare symbol outside these blocks) only lengthens a claimed domain. */
static const struct { uint32_t lo, hi; } not_domain[] = {
	{ 0x0080, 0x00bf },   /* Latin-1 controls, NBSP, punctuation, symbols */
	{ 0x00d7, 0x00d7 },   /* × */
	{ 0x00f7, 0x00f7 },   /* ÷ */
	{ 0x1680, 0x1680 },   /* ogham space mark */
	{ 0x2000, 0x2bff },   /* general punctuation (spaces, …, quotes) to arrows */
	{ 0x2e00, 0x2e7f },   /* supplemental punctuation */
	{ 0x3000, 0x3004 },   /* ideographic space, 、 。 〃 (U+3005-3007 々〆〇 are letters) */
	{ 0x3008, 0x303f },   /* CJK brackets 【】「」, 〜 and the rest of the block */
	{ 0x30a0, 0x30a0 },   /* ゠ */
	{ 0x30fb, 0x30fb },   /* ・ katakana middle dot */
	{ 0x3200, 0x33ff },   /* enclosed CJK (㈱) and CJK compatibility (㎡) */
	{ 0xe000, 0xf8ff },   /* private use */
	{ 0xfe10, 0xfe1f },   /* vertical forms */
	{ 0xfe30, 0xfe6f },   /* CJK compatibility and small forms */
	{ 0xfeff, 0xfeff },   /* zero-width no-break space */
	{ 0xff00, 0xff65 },   /* full-width punctuation fold_display left, ｢｣､･ */
	{ 0xffe0, 0xffff },   /* full-width signs ￥, specials */
	{ 0x1f000, 0x1fbff }, /* emoji, pictographs and other symbols */
	{ 0xe0000, 0xe007f }, /* tags */
};

/* Length of the character at s (n bytes available) if it can be part of a
 * domain name, else 0: ASCII letters (lower case: folded), digits, '-' and
 * '.', and UTF-8 outside the blocks above (IDN letters: 例え.jp). */
static size_t domain_char_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t l = 0;

	if (u[0] < 0x80)
		return (u[0] >= 'a' && u[0] <= 'z') || (u[0] >= '0' && u[0] <= '9') ||
		       u[0] == '-' || u[0] == '.';
	/* an invalid byte is U+FFFD, in not_domain with the specials */
	uint32_t cp = utf8_next(s, n, &l);
	for (size_t i = 0; i < sizeof not_domain / sizeof not_domain[0]; i++)
		if (cp >= not_domain[i].lo && cp <= not_domain[i].hi)
			return 0;
	return l;
}

/* A plausible domain: labels separated by single dots, at least two. */
static bool domain_plausible(const char *d, size_t n)
{
	bool dot = false;

	if (n == 0 || d[0] == '.' || d[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '.') {
			if (i + 1 == n || d[i + 1] == '.')
				return false;
			dot = true;
		}
	}
	return dot;
}

/* The addr-spec around the '@' at s[at]: [*ls, at) local, (at, *de) domain. */
static bool addr_around(const char *s, size_t len, size_t at, size_t *ls, size_t *de)
{
	size_t l = at, e = at + 1;

	while (l > 0 && local_char(s[l - 1]))
		l--;
	while (l < at && s[l] == '.')
		l++;
	while (e < len) {
		size_t n = domain_char_len(s + e, len - e);

		if (n == 0)
			break;
		e += n;
	}
	while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-'))
		e--;
	*ls = l;
	*de = e;
	return l < at && domain_plausible(s + at + 1, e - at - 1);
}

/* Same organisation: equal, or one a subdomain of the other (a mail.x.jp
 * sender naming x.jp in its display name is not impersonating anyone). */
static bool domains_related(const char *a, const char *b)
{
	return address_domain_matches(a, b) || address_domain_matches(b, a);
}

bool address_display_spoof(const struct mailbox *mb, char *claimed, size_t claimedsz)
{
	char norm[sizeof mb->display];
	size_t len;

	if (!mb->display[0] || !mb->domain || !mb->domain[0])
		return false;
	len = fold_display(mb->display, norm, sizeof norm);
	for (size_t at = 0; at < len; at++) {
		char dom[ADDRESS_MAX + 1];
		size_t ls, de, dl;

		if (norm[at] != '@' || !addr_around(norm, len, at, &ls, &de))
			continue;
		dl = de - at - 1 < ADDRESS_MAX ? de - at - 1 : ADDRESS_MAX;
		memcpy(dom, norm + at + 1, dl);
		dom[dl] = '\0';
		if (domains_related(dom, mb->domain))
			continue;
		if (claimedsz) {
			size_t n = utf8_cut(norm + ls, de - ls, claimedsz - 1);
			memcpy(claimed, norm + ls, n);
			claimed[n] = '\0';
		}
		return true;
	}
	return false;
}

bool address_relayed(const char *addr, const struct domain_list *local, const char **dest,
		     size_t *destlen)
{
	const char *domain = address_domain(addr), *hop;
	size_t hn;
	bool routed = address_routed(addr, &hop, &hn);
	*dest = routed && hn ? hop : domain;
	*destlen = routed && hn ? hn : strlen(domain);
	return routed || (*domain && !domain_list_match(local, domain));
}
