/* message.c — incremental RFC 5322 / MIME header parser.
 *
 * State machine (one handler per state, fed byte ranges of any size):
 *
 *   HEADERS ──blank line──────────────► BODY ◄──────────────┐
 *                                            │ "--b" line     │ blank line,
 *                                            ▼                │ gap
 *                                          PART_HEADERS ──────┘
 *                                           ▲  │ "--b" line: next part
 *   (gap in HEADERS: BODY;                  └──┘
 *    message_finish(): DONE from any state)
 *
 * Past MESSAGE_HEADER_BYTES_MAX or MESSAGE_HEADER_COUNT_MAX the block is
 * still read to its end and the fields not seen yet are still taken: a
 * header block padded with junk must not hide its Subject or From from the
 * fingerprints (memory stays bounded: nothing is stored per field read,
 * only the kept fields, each capped). The bounds count the oversized block.
 *
 * Header lines are unfolded straight into one field buffer (RFC 5322 §2.2.3:
 * CRLF removed, folding whitespace kept); a field is complete when the next
 * line does not start with WSP. Body lines are not kept: only their first
 * BODY_LINE_KEEP bytes, enough to recognise "--boundary" and "--boundary--"
 * (RFC 2046 §5.1.1), with a note whether the rest was only white space.
 * A CR is held back until the next byte shows whether it ends the line, so
 * CRLF (and a boundary) may be split anywhere between two feeds.
 *
 * All storage is inside struct message: values are copied into an arena
 * sized for the bound of every kept field, so it can never overflow. */
#include "message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rfc2047.h"
#include "utf8.h"

/* "--" boundary "--" is all a body line needs to show. */
#define BODY_LINE_KEEP (2 + MESSAGE_BOUNDARY_MAX + 2)
/* A decoded attachment name: a few bytes over the bound tell "cut". */
#define NAME_BUF (MESSAGE_ATTACH_NAME_MAX + 8)
/* Raw bytes of one RFC 2231 parameter before charset conversion. */
#define PARAM_RAW_MAX (4 * MESSAGE_ATTACH_NAME_MAX)
/* RFC 2231 §3 sections of one parameter followed (name*0 .. name*63). */
#define PARAM_SECTIONS_MAX 64

enum msg_state {
	MSG_HEADERS,       /* top-level header block */
	MSG_PART_HEADERS,  /* header block of a MIME part */
	MSG_BODY,          /* body text: boundary lines only */
	MSG_DONE,          /* message_finish() was called */
};

/* Fields kept from the top-level header block. */
enum slot {
	SLOT_FROM,
	SLOT_TO,
	SLOT_CC,
	SLOT_REPLY_TO,
	SLOT_SUBJECT,
	SLOT_DATE,
	SLOT_MESSAGE_ID,
	SLOT_IN_REPLY_TO,
	SLOT_REFERENCES,
	SLOT_X_MAILER,
	SLOT_USER_AGENT,
	SLOT_X_ORIGINATING_IP,
	SLOT_CONTENT_TYPE,         /* not kept: parsed into the part */
	SLOT_CONTENT_DISPOSITION,  /* idem */
};

static const struct field_def {
	const char *name;
	enum slot slot;
	size_t max;
} field_defs[] = {
	{ "From", SLOT_FROM, MESSAGE_FIELD_MAX },
	{ "To", SLOT_TO, MESSAGE_ADDRLIST_MAX },
	{ "Cc", SLOT_CC, MESSAGE_ADDRLIST_MAX },
	{ "Reply-To", SLOT_REPLY_TO, MESSAGE_FIELD_MAX },
	{ "Subject", SLOT_SUBJECT, MESSAGE_FIELD_MAX },
	{ "Date", SLOT_DATE, MESSAGE_FIELD_MAX },
	{ "Message-ID", SLOT_MESSAGE_ID, MESSAGE_FIELD_MAX },
	{ "In-Reply-To", SLOT_IN_REPLY_TO, MESSAGE_FIELD_MAX },
	{ "References", SLOT_REFERENCES, MESSAGE_FIELD_MAX },
	{ "X-Mailer", SLOT_X_MAILER, MESSAGE_FIELD_MAX },
	{ "User-Agent", SLOT_USER_AGENT, MESSAGE_FIELD_MAX },
	{ "X-Originating-IP", SLOT_X_ORIGINATING_IP, MESSAGE_FIELD_MAX },
	{ "Content-Type", SLOT_CONTENT_TYPE, 0 },
	{ "Content-Disposition", SLOT_CONTENT_DISPOSITION, 0 },
};

/* Every kept field at its bound, plus NULs: 10 short ones and To, Cc. */
#define ARENA_SIZE (10 * (MESSAGE_FIELD_MAX + 1) + 2 * (MESSAGE_ADDRLIST_MAX + 1))

/* The part whose header block is being read (the top level is a part too). */
struct part {
	bool have_ct, have_cd;
	bool multipart;
	bool boundary_too_long;
	size_t boundary_len;
	char boundary[MESSAGE_BOUNDARY_MAX + 1];
	char filename[NAME_BUF];       /* Content-Disposition filename, decoded */
	char ctname[NAME_BUF];         /* Content-Type name, decoded */
	unsigned long filename_replaced, ctname_replaced;
	bool filename_cut, ctname_cut; /* raw value over PARAM_RAW_MAX */
};

struct message {
	struct message_info info;
	enum msg_state state;

	/* line state shared by all states */
	bool line_start;        /* next byte begins a line */
	bool cr;                /* a CR is held back */
	bool skip_line;         /* after a gap: ignore up to the next LF */

	/* the header field being unfolded */
	bool field_active;
	bool field_cut;         /* longer than MESSAGE_LINE_MAX */
	bool line_is_cont;      /* current line is a continuation */
	size_t field_len;
	size_t field_line_start;  /* field_len when the current line began */
	unsigned nfields;         /* top-level fields looked at */
	char field[MESSAGE_LINE_MAX + 1];

	/* kept top-level values */
	const char *x_mailer, *user_agent;
	size_t arena_len;
	char arena[ARENA_SIZE];
	bool decoded;
	char subject[MESSAGE_SUBJECT_MAX + 1];
	char from_decoded[3 * MESSAGE_FIELD_MAX + 1];

	/* MIME */
	struct part part;
	unsigned depth;           /* boundaries followed */
	size_t blen[MESSAGE_MIME_DEPTH_MAX];
	char bnd[MESSAGE_MIME_DEPTH_MAX][MESSAGE_BOUNDARY_MAX + 1];
	size_t bl_len;            /* body line: first BODY_LINE_KEEP bytes */
	bool bl_tail;             /* non-white bytes past BODY_LINE_KEEP */
	char bl[BODY_LINE_KEEP];
	char attach[MESSAGE_ATTACH_KEEP_MAX][MESSAGE_ATTACH_NAME_MAX + 1];
	char param_raw[PARAM_RAW_MAX];
};

/* ---- small helpers ----------------------------------------------------- */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Copy a value into the arena, cut at `max` (counted). */
static const char *arena_store(struct message *m, const char *v, size_t n, size_t max)
{
	size_t len = utf8_cut(v, n, max);
	char *dst = m->arena + m->arena_len;

	if (len < n)
		m->info.truncated_fields++;
	if (len + 1 > sizeof m->arena - m->arena_len)
		return NULL; /* cannot happen: ARENA_SIZE covers every slot */
	memcpy(dst, v, len);
	dst[len] = '\0';
	m->arena_len += len + 1;
	return dst;
}

/* ---- parameters (RFC 2045 §5.1, RFC 2231) ------------------------------ */

struct param {
	const char *attr;
	size_t alen;
	const char *val;   /* without quotes; escapes still in if quoted */
	size_t vlen;
	bool quoted;
};

/* The parameter after *p in a Content-Type/-Disposition value; *p must be
 * past the media type. Lenient: unquoted values run to ';'. */
static bool param_next(const char **pp, const char *end, struct param *pm)
{
	const char *p = *pp;

	while (p < end && (is_wsp(*p) || *p == ';'))
		p++;
	if (p == end)
		return false;
	pm->attr = p;
	while (p < end && *p != '=' && *p != ';' && !is_wsp(*p))
		p++;
	pm->alen = (size_t)(p - pm->attr);
	while (p < end && is_wsp(*p))
		p++;
	pm->val = p;
	pm->vlen = 0;
	pm->quoted = false;
	if (p < end && *p == '=') {
		p++;
		while (p < end && is_wsp(*p))
			p++;
		if (p < end && *p == '"') {
			pm->quoted = true;
			pm->val = ++p;
			while (p < end && *p != '"')
				p += (*p == '\\' && p + 1 < end) ? 2 : 1;
			pm->vlen = (size_t)((p < end ? p : end) - pm->val);
			if (p < end)
				p++;
		} else {
			pm->val = p;
			while (p < end && *p != ';')
				p++;
			pm->vlen = (size_t)(p - pm->val);
			while (pm->vlen && is_wsp(pm->val[pm->vlen - 1]))
				pm->vlen--;
		}
	}
	while (p < end && *p != ';')
		p++;
	*pp = p;
	return true;
}

/* Start of the parameters: after the media type / disposition type. */
static const char *params_start(const char *v, const char *end)
{
	const char *semi = memchr(v, ';', (size_t)(end - v));

	return semi ? semi : end;
}

/* Find attribute `attr` (case-insensitive) in v. */
static bool param_find(const char *v, size_t vlen, const char *attr, struct param *out)
{
	const char *end = v + vlen, *p = params_start(v, end);
	size_t al = strlen(attr);

	while (param_next(&p, end, out))
		if (out->alen == al && strncasecmp(out->attr, attr, al) == 0)
			return true;
	return false;
}

struct raw {
	char *buf;
	size_t len, cap;
	bool cut;
};

static void raw_put(struct raw *r, char c)
{
	if (r->len < r->cap)
		r->buf[r->len++] = c;
	else
		r->cut = true;
}

static void raw_unquote(struct raw *r, const struct param *pm)
{
	for (size_t i = 0; i < pm->vlen; i++) {
		if (pm->quoted && pm->val[i] == '\\' && i + 1 < pm->vlen)
			i++;
		raw_put(r, pm->val[i]);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 2231 §4 extended value: %XX octets (a bad % is kept as written). */
static void raw_pct(struct raw *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			raw_put(r, (char)(hi << 4 | lo));
			i += 2;
		} else {
			raw_put(r, s[i]);
		}
	}
}

/* charset'language'value of a first extended section (RFC 2231 §4). */
static void raw_ext_first(struct raw *r, const char *s, size_t n, char *charset,
			  size_t csz)
{
	const char *q1 = memchr(s, '\'', n), *q2;

	if (!q1 || !(q2 = memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - s)))) {
		raw_pct(r, s, n);   /* no charset: plain %-encoding */
		return;
	}
	if ((size_t)(q1 - s) < csz) {
		memcpy(charset, s, (size_t)(q1 - s));
		charset[q1 - s] = '\0';
	}
	raw_pct(r, q2 + 1, n - (size_t)(q2 + 1 - s));
}

/* Add one section (extended or not) of a parameter to r. */
static void raw_section(struct raw *r, const struct param *pm, bool ext, bool first,
			char *charset, size_t csz)
{
	if (!ext) {
		raw_unquote(r, pm);
	} else if (first) {
		raw_ext_first(r, pm->val, pm->vlen, charset, csz);
	} else {
		raw_pct(r, pm->val, pm->vlen);
	}
}

/* Assemble parameter `name` of a header value: name*=, then the sections
 * name*0[*], name*1[*]... (RFC 2231 §3-4), else plain name=. The charset of
 * an extended value goes to charset ("" if none). */
static bool param_assemble(const char *v, size_t vlen, const char *name, struct raw *r,
			   char *charset, size_t csz)
{
	char attr[64];
	struct param pm;
	bool found = false;

	charset[0] = '\0';
	snprintf(attr, sizeof attr, "%s*", name);
	if (param_find(v, vlen, attr, &pm)) {
		raw_section(r, &pm, true, true, charset, csz);
		return true;
	}
	for (unsigned n = 0; n < PARAM_SECTIONS_MAX; n++) {
		bool ext = false;
		snprintf(attr, sizeof attr, "%s*%u*", name, n);
		if (param_find(v, vlen, attr, &pm)) {
			ext = true;
		} else {
			snprintf(attr, sizeof attr, "%s*%u", name, n);
			if (!param_find(v, vlen, attr, &pm))
				break;
		}
		raw_section(r, &pm, ext, n == 0, charset, csz);
		found = true;
	}
	if (found)
		return true;
	if (!param_find(v, vlen, name, &pm))
		return false;
	raw_unquote(r, &pm);
	return true;
}

/* Parameter `name` decoded to UTF-8 into out: RFC 2231 charset if given,
 * else RFC 2047 encoded-words (common in practice) or raw UTF-8. */
static bool param_decoded(struct message *m, const char *v, size_t vlen, const char *name,
			  char *out, size_t outsz, unsigned long *replaced, bool *cut)
{
	struct raw r = { m->param_raw, 0, sizeof m->param_raw, false };
	struct rfc2047_stats st = { 0, 0, 0, 0 };
	char charset[RFC2047_CHARSET_MAX + 1];

	if (!param_assemble(v, vlen, name, &r, charset, sizeof charset))
		return false;
	if (charset[0])
		rfc2047_convert(charset, r.buf, r.len, out, outsz, &st);
	else
		rfc2047_decode(r.buf, r.len, out, outsz, &st);
	*replaced = st.replaced;
	*cut = r.cut;
	return true;
}

/* ---- MIME parts -------------------------------------------------------- */

static void part_reset(struct part *p)
{
	memset(p, 0, sizeof *p);
}

/* RFC 2045 §5.1 Content-Type: multipart/x; boundary=...; name=... */
static void part_content_type(struct message *m, const char *v, size_t n)
{
	struct part *p = &m->part;
	struct raw r = { m->param_raw, 0, sizeof m->param_raw, false };
	char charset[RFC2047_CHARSET_MAX + 1];

	p->have_ct = true;
	p->multipart = n >= 10 && strncasecmp(v, "multipart/", 10) == 0;
	if (p->multipart && param_assemble(v, n, "boundary", &r, charset, sizeof charset)) {
		if (r.len == 0 || r.len > MESSAGE_BOUNDARY_MAX || r.cut) {
			p->boundary_too_long = r.len > 0;
		} else {
			memcpy(p->boundary, r.buf, r.len);
			p->boundary_len = r.len;
		}
	}
	param_decoded(m, v, n, "name", p->ctname, sizeof p->ctname, &p->ctname_replaced,
		      &p->ctname_cut);
}

/* RFC 2183 Content-Disposition: attachment; filename=... */
static void part_disposition(struct message *m, const char *v, size_t n)
{
	struct part *p = &m->part;

	p->have_cd = true;
	param_decoded(m, v, n, "filename", p->filename, sizeof p->filename,
		      &p->filename_replaced, &p->filename_cut);
}

static void attachment_add(struct message *m, const char *name, bool raw_cut,
			   unsigned long replaced)
{
	struct message_info *in = &m->info;
	size_t n = strlen(name), len = utf8_cut(name, n, MESSAGE_ATTACH_NAME_MAX);

	in->attachments_total++;
	in->decode_replaced += replaced;
	if (in->n_attachments == MESSAGE_ATTACH_KEEP_MAX)
		return;
	if (len < n || raw_cut)
		in->truncated_fields++;
	memcpy(m->attach[in->n_attachments], name, len);
	m->attach[in->n_attachments][len] = '\0';
	in->attachments[in->n_attachments] = m->attach[in->n_attachments];
	in->n_attachments++;
}

/* The header block of the current part is over. A named leaf part is an
 * attachment; a multipart one with a body is followed (RFC 2046 §5.1). */
static void part_end(struct message *m, bool has_body)
{
	struct part *p = &m->part;

	if (!p->multipart) {
		if (p->filename[0])
			attachment_add(m, p->filename, p->filename_cut, p->filename_replaced);
		else if (p->ctname[0])
			attachment_add(m, p->ctname, p->ctname_cut, p->ctname_replaced);
		return;
	}
	if (!has_body)
		return;
	if (p->boundary_too_long) {
		m->info.boundary_too_long++;
	} else if (p->boundary_len == 0) {
		return;   /* multipart without a boundary: nothing to follow */
	} else if (m->depth == MESSAGE_MIME_DEPTH_MAX) {
		m->info.mime_depth_over++;
	} else {
		memcpy(m->bnd[m->depth], p->boundary, p->boundary_len);
		m->blen[m->depth] = p->boundary_len;
		m->depth++;
	}
}

/* ---- header fields ----------------------------------------------------- */

static const char **slot_ptr(struct message *m, enum slot s)
{
	switch (s) {
	case SLOT_FROM:
		return &m->info.from;
	case SLOT_TO:
		return &m->info.to;
	case SLOT_CC:
		return &m->info.cc;
	case SLOT_REPLY_TO:
		return &m->info.reply_to;
	case SLOT_SUBJECT:
		return &m->info.subject_raw;
	case SLOT_DATE:
		return &m->info.date;
	case SLOT_MESSAGE_ID:
		return &m->info.message_id;
	case SLOT_IN_REPLY_TO:
		return &m->info.in_reply_to;
	case SLOT_REFERENCES:
		return &m->info.references;
	case SLOT_X_MAILER:
		return &m->x_mailer;
	case SLOT_USER_AGENT:
		return &m->user_agent;
	case SLOT_X_ORIGINATING_IP:
		return &m->info.x_originating_ip;
	case SLOT_CONTENT_TYPE:
	case SLOT_CONTENT_DISPOSITION:
		break;
	}
	return NULL;
}

static void field_mime(struct message *m, enum slot s, const char *v, size_t n)
{
	bool seen = s == SLOT_CONTENT_TYPE ? m->part.have_ct : m->part.have_cd;

	if (seen) {
		m->info.duplicates++;
		return;
	}
	if (s == SLOT_CONTENT_TYPE)
		part_content_type(m, v, n);
	else
		part_disposition(m, v, n);
}

static void field_store(struct message *m, const struct field_def *d, const char *v,
			size_t n)
{
	const char **dst;

	if (d->slot == SLOT_CONTENT_TYPE || d->slot == SLOT_CONTENT_DISPOSITION) {
		field_mime(m, d->slot, v, n);
		return;
	}
	if (m->state != MSG_HEADERS)
		return;   /* part headers: only the MIME fields matter */
	dst = slot_ptr(m, d->slot);
	if (*dst) {
		m->info.duplicates++;   /* RFC 5322 §3.6: the first one wins */
		return;
	}
	*dst = arena_store(m, v, n, d->max);
}

/* The unfolded field in m->field is complete: split "Name: value" (RFC 5322
 * §2.2, obsolete WSP before the colon allowed) and keep what matters. */
static void field_dispatch(struct message *m)
{
	const char *f = m->field, *colon, *v, *end = m->field + m->field_len;
	size_t nlen;

	if (!m->field_active)
		return;
	m->field_active = false;
	if (m->state == MSG_HEADERS && ++m->nfields > MESSAGE_HEADER_COUNT_MAX)
		m->info.header_count_over++; /* counted; the field is still read */
	if (m->field_cut)
		m->info.truncated_fields++;
	colon = memchr(f, ':', m->field_len);
	if (!colon)
		return;   /* not a header field */
	nlen = (size_t)(colon - f);
	while (nlen && is_wsp(f[nlen - 1]))
		nlen--;
	for (v = colon + 1; v < end && is_wsp(*v); v++)
		;
	while (end > v && (is_wsp(end[-1]) || end[-1] == '\r'))
		end--;
	for (size_t i = 0; i < sizeof field_defs / sizeof field_defs[0]; i++) {
		const struct field_def *d = &field_defs[i];
		/* the first letter first: most fields are none of ours */
		if ((d->name[0] | 0x20) == (f[0] | 0x20) && strlen(d->name) == nlen &&
		    strncasecmp(d->name, f, nlen) == 0) {
			field_store(m, d, v, (size_t)(end - v));
			return;
		}
	}
}

static void field_put(struct message *m, char c)
{
	if (c == '\0') {
		/* Values are C strings: a raw NUL would cut the rest of the field
		 * (and hide it from the fingerprints). It is shown as U+FFFD. */
		m->info.decode_replaced++;
		field_put(m, '\xef');
		field_put(m, '\xbf');
		field_put(m, '\xbd');
		return;
	}
	if (m->field_len < MESSAGE_LINE_MAX)
		m->field[m->field_len++] = c;
	else
		m->field_cut = true;
}

/* First byte of a header line: a continuation, or the start of a field. */
static void header_line_begin(struct message *m, bool continuation)
{
	if (continuation && m->field_active) {
		m->line_is_cont = true;
		m->field_line_start = m->field_len;
		return;
	}
	field_dispatch(m);
	m->field_active = true;
	m->field_cut = false;
	m->field_len = 0;
	m->field_line_start = 0;
	m->line_is_cont = false;
}

/* Forget the header line in progress (gap, limit, boundary line). */
static void header_line_drop(struct message *m)
{
	if (m->line_start)
		return;
	if (m->line_is_cont) {
		m->field_len = m->field_line_start;
		m->field_cut = true;    /* a continuation is lost */
	} else {
		m->field_active = false;
	}
}

/* ---- top level --------------------------------------------------------- */

static void decode_fields(struct message *m)
{
	struct message_info *in = &m->info;
	struct rfc2047_stats st = { 0, 0, 0, 0 };

	if (m->decoded)
		return;
	m->decoded = true;
	in->user_agent = m->x_mailer ? m->x_mailer : m->user_agent;
	if (in->subject_raw) {
		rfc2047_decode(in->subject_raw, strlen(in->subject_raw), m->subject,
			       sizeof m->subject, &st);
		in->subject = m->subject;
	}
	if (in->from) {
		rfc2047_decode(in->from, strlen(in->from), m->from_decoded,
			       sizeof m->from_decoded, &st);
		in->from_decoded = m->from_decoded;
	}
	in->decode_replaced += st.replaced;
}

static void line_reset(struct message *m)
{
	m->line_start = true;
	m->cr = false;
	m->bl_len = 0;
	m->bl_tail = false;
}

/* The top-level header block ended (blank line, gap or end of data). */
static void top_headers_end(struct message *m, bool blank_line)
{
	field_dispatch(m);
	m->info.headers_done = blank_line;
	decode_fields(m);
	part_end(m, true);
	part_reset(&m->part);
	m->state = MSG_BODY;
	line_reset(m);
}

static void part_headers_end(struct message *m, bool has_body)
{
	field_dispatch(m);
	part_end(m, has_body);
	part_reset(&m->part);
	m->state = MSG_BODY;
}

/* LF in a header block: end of a line, or of the block if it was empty. */
static void header_lf(struct message *m)
{
	bool blank = m->line_start;

	m->cr = false;
	m->line_start = true;
	if (!blank)
		return;
	if (m->state == MSG_PART_HEADERS)
		part_headers_end(m, true);
	else
		top_headers_end(m, true);
}

/* One byte of a header block (HEADERS or PART_HEADERS). */
static void header_byte(struct message *m, char c)
{
	if (c == '\n') {
		header_lf(m);
		return;
	}
	if (m->line_start) {
		if (c == '\r' && !m->cr) {
			m->cr = true;           /* maybe a blank line */
			return;
		}
		m->line_start = false;
		header_line_begin(m, is_wsp(c));
	}
	if (m->cr) {
		field_put(m, '\r');             /* a bare CR is data */
		m->cr = false;
	}
	if (c == '\r')
		m->cr = true;
	else
		field_put(m, c);
}

static const char *feed_top_headers(struct message *m, const char *p, const char *end)
{
	while (p < end && m->state == MSG_HEADERS) {
		char c = *p++;

		if (++m->info.header_bytes > MESSAGE_HEADER_BYTES_MAX)
			m->info.header_bytes_over++; /* counted; reading goes on */
		header_byte(m, c);
	}
	return p;
}

/* ---- boundaries and body ----------------------------------------------- */

static void bl_put(struct message *m, const char *s, size_t n)
{
	size_t room = sizeof m->bl - m->bl_len, k = n < room ? n : room;

	memcpy(m->bl + m->bl_len, s, k);
	m->bl_len += k;
	for (size_t i = k; i < n && !m->bl_tail; i++)
		m->bl_tail = !(is_wsp(s[i]) || s[i] == '\r');
}

/* Is the line in bl a boundary of an open multipart? Sets *level (index
 * into bnd) and *close. RFC 2046 §5.1.1: "--" boundary ["--"] LWSP*. */
static bool bl_boundary(struct message *m, unsigned *level, bool *close)
{
	size_t n = m->bl_len;

	if (m->depth == 0 || m->bl_tail || n < 3 || m->bl[0] != '-' || m->bl[1] != '-')
		return false;
	while (n > 2 && (is_wsp(m->bl[n - 1]) || m->bl[n - 1] == '\r'))
		n--;
	for (unsigned i = m->depth; i-- > 0;) {
		size_t bl = m->blen[i];
		if (n < 2 + bl || memcmp(m->bl + 2, m->bnd[i], bl) != 0)
			continue;
		if (n == 2 + bl) {
			*close = false;
		} else if (n == 4 + bl && m->bl[2 + bl] == '-' && m->bl[3 + bl] == '-') {
			*close = true;
		} else {
			continue;
		}
		*level = i;
		return true;
	}
	return false;
}

/* A delimiter opens the next part of that multipart; a close delimiter
 * ends it. Either way the multiparts nested inside it are over. */
static void boundary_hit(struct message *m, unsigned level, bool close)
{
	if (m->state == MSG_PART_HEADERS) {
		header_line_drop(m);        /* the boundary line itself */
		part_headers_end(m, false); /* a part without a blank line */
	}
	m->depth = close ? level : level + 1;
	part_reset(&m->part);
	m->state = close ? MSG_BODY : MSG_PART_HEADERS;
	m->field_active = false;
	line_reset(m);
}

/* End of a body line (LF seen). */
static void body_lf(struct message *m)
{
	unsigned level;
	bool close;

	if (bl_boundary(m, &level, &close))
		boundary_hit(m, level, close);
	line_reset(m);
}

static const char *feed_body(struct message *m, const char *p, const char *end)
{
	if (m->depth == 0)
		return end;   /* no open multipart: nothing left to find */
	while (p < end && m->state == MSG_BODY) {
		/* RFC 2046 §5.1.1: a boundary line starts with "--"; any other
		 * line (base64, text) is passed over without being looked at. */
		if (m->bl_len == 0 && !m->skip_line && *p != '-')
			m->skip_line = true;
		if (m->skip_line) {
			/* Straight to the next line that starts with '-' (a base64
			 * part has none), or to the end of what we have. */
			const char *q = p;
			const char *dash;
			while ((dash = memchr(q, '-', (size_t)(end - q))) && !(dash > p && dash[-1] == '\n'))
				q = dash + 1;
			if (!dash) {
				if (end[-1] == '\n') { /* the next feed starts a line */
					m->skip_line = false;
					line_reset(m);
				}
				return end;
			}
			m->skip_line = false;
			line_reset(m);
			p = dash;
			continue;
		}
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;

		if (!m->skip_line)
			bl_put(m, p, (size_t)(stop - p));
		if (!nl)
			return end;
		if (m->skip_line)
			m->skip_line = false;
		else
			body_lf(m);
		line_reset(m);
		p = nl + 1;
	}
	return p;
}

static const char *feed_part_headers(struct message *m, const char *p, const char *end)
{
	while (p < end && m->state == MSG_PART_HEADERS) {
		char c = *p++;
		unsigned level;
		bool close;

		/* a part's header block may be cut short by the next boundary */
		if (c == '\n' && bl_boundary(m, &level, &close)) {
			boundary_hit(m, level, close);
			continue;
		}
		if (c == '\n') {
			m->bl_len = 0;
			m->bl_tail = false;
		} else {
			bl_put(m, &c, 1);
		}
		header_byte(m, c);
	}
	return p;
}

/* ---- public ------------------------------------------------------------ */

struct message *message_create(void)
{
	struct message *m = calloc(1, sizeof *m);

	if (m)
		message_reset(m);
	return m;
}

void message_destroy(struct message *m)
{
	free(m);
}

void message_reset(struct message *m)
{
	memset(&m->info, 0, sizeof m->info);
	m->state = MSG_HEADERS;
	m->skip_line = false;
	m->field_active = false;
	m->field_cut = false;
	m->line_is_cont = false;
	m->field_len = 0;
	m->field_line_start = 0;
	m->nfields = 0;
	m->x_mailer = NULL;
	m->user_agent = NULL;
	m->arena_len = 0;
	m->decoded = false;
	m->depth = 0;
	part_reset(&m->part);
	line_reset(m);
}

void message_feed(struct message *m, const char *data, size_t len)
{
	const char *p = data, *end = data + len;

	if (m->state == MSG_DONE)
		return;
	m->info.size += len;
	while (p < end) {
		switch (m->state) {
		case MSG_HEADERS:
			p = feed_top_headers(m, p, end);
			break;
		case MSG_PART_HEADERS:
			p = feed_part_headers(m, p, end);
			break;
		case MSG_BODY:
			p = feed_body(m, p, end);
			break;
		case MSG_DONE:
			return;
		}
	}
}

void message_gap(struct message *m, uint64_t len)
{
	m->info.gaps++;
	m->info.size += len;
	switch (m->state) {
	case MSG_HEADERS:
		header_line_drop(m);
		top_headers_end(m, false);
		break;
	case MSG_PART_HEADERS:
		header_line_drop(m);
		part_headers_end(m, true);
		break;
	case MSG_BODY:
		break;
	case MSG_DONE:
		return;
	}
	line_reset(m);
	m->skip_line = true;    /* the bytes up to the next LF end a lost line */
}

void message_finish(struct message *m)
{
	unsigned level;
	bool close;

	switch (m->state) {
	case MSG_HEADERS:
		top_headers_end(m, false);
		break;
	case MSG_PART_HEADERS:
		part_headers_end(m, false);
		break;
	case MSG_BODY:
		/* a last line without CRLF may close the outer multipart */
		if (!m->skip_line && bl_boundary(m, &level, &close))
			boundary_hit(m, level, close);
		break;
	case MSG_DONE:
		return;
	}
	decode_fields(m);
	m->state = MSG_DONE;
}

const struct message_info *message_info(const struct message *m)
{
	return &m->info;
}
