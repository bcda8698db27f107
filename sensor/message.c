/* message.c — incremental RFC 5322 / MIME header parser.
 *
 * State machine (one handler per state, fed byte ranges of any size):
 *
 *   HEADERS ──blank line──────────────► BODY ◄──────────────┐
 *      │                                     │ "--b" line     │ blank line,
 *      │ blank line,                         ▼                │ gap
 *      └─ message/rfc822 ───────────────► PART_HEADERS ──────┘
 *                                           ▲  │ "--b" line: next part;
 *   (gap in HEADERS: BODY;                  └──┘ blank line, message/rfc822:
 *    message_finish(): DONE from any state)      the forwarded message's block
 *
 * A forwarded message (message/rfc822, RFC 2046 §5.2.1) is read as a part
 * whose header block follows its part's: its multipart is followed and its
 * attachments named; its Subject and From are not the message's. It needs
 * no state of its own but a count (rfc822), which each open boundary notes
 * so that the boundary ends the forwarded messages opened inside it; with
 * the boundaries it is bounded by MESSAGE_MIME_DEPTH_MAX.
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
 * Memory. A header block (HEADERS, PART_HEADERS) is parsed in a workspace
 * taken from the shared pool at its first byte and given back at its end:
 * the field buffer, an arena sized for every kept field at its bound (so it
 * can never overflow), the decoding buffers, the part being read. At the
 * end of the top-level block the kept values are copied into one block
 * sized for them; attachment names go into small blocks as they come; the
 * open boundaries and the current body line's first bytes live in a block
 * sized for the boundaries followed, made at the first one. Strings shown by
 * message_info() are never moved. Without a workspace (pool empty) a header
 * block is only read for its end: the top level's values, or a part's
 * names, are lost and counted; the boundaries already open are still
 * followed. */
#include "message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
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
	SLOT_CONTENT_TRANSFER_ENCODING, /* idem */
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
	{ "Content-Transfer-Encoding", SLOT_CONTENT_TRANSFER_ENCODING, 0 },
};

/* Every kept field at its bound, plus NULs: 10 short ones and To, Cc. */
#define ARENA_SIZE (10 * (MESSAGE_FIELD_MAX + 1) + 2 * (MESSAGE_ADDRLIST_MAX + 1))
/* Top-level values kept: the slots before SLOT_CONTENT_TYPE. */
#define SLOTS_KEPT SLOT_CONTENT_TYPE
/* Attachment names are stored in blocks of at least this many bytes. */
#define NAMES_BLOCK_MIN 128
/* the table of kept attachment names, with room to align it */
#define ATTACH_TABLE_BYTES (MESSAGE_ATTACH_KEEP_MAX * sizeof(const char *) + sizeof(void *) - 1)

/* The compact body-phase state counts in small integers. */
_Static_assert(BODY_LINE_KEEP <= UINT8_MAX && MESSAGE_MIME_DEPTH_MAX <= UINT8_MAX,
	       "bl_len and depth are uint8_t");
_Static_assert(MESSAGE_BOUNDARY_MAX <= UINT8_MAX &&
	       MESSAGE_MIME_DEPTH_MAX * MESSAGE_BOUNDARY_MAX <= UINT16_MAX,
	       "struct mime's lengths and offsets");

/* The part whose header block is being read (the top level is a part too). */
struct part {
	bool have_ct, have_cd, have_cte;
	bool multipart;
	bool message;                  /* message/rfc822 or message/global */
	bool encoded;                  /* base64 or quoted-printable */
	bool boundary_too_long;
	size_t boundary_len;
	char boundary[MESSAGE_BOUNDARY_MAX + 1];
	char filename[NAME_BUF];       /* Content-Disposition filename, decoded */
	char ctname[NAME_BUF];         /* Content-Type name, decoded */
	unsigned long filename_replaced, ctname_replaced;
	bool filename_cut, ctname_cut; /* raw value over PARAM_RAW_MAX */
};

/* A From field longer than the value kept as sent (MESSAGE_FIELD_MAX) is
 * read whole by a small lexer (RFC 5322 §3.2-3.4, lenient as address.c
 * is): a display name padded past the cut must not take the address with
 * it. It keeps the display name's first FROM_TEXT_MAX bytes as text (quotes
 * taken off, a run of white space one space: folding and padding) and the
 * last angle-addr of the first mailbox (CFWS and an obs-route dropped),
 * whatever the length of the field: header bytes past MESSAGE_LINE_MAX
 * are fed to it one by one. values_keep() makes of them the short mailbox
 * `"text" <addr>` that message_info's from_mailbox shows. */
#define FROM_TEXT_MAX MESSAGE_FIELD_MAX
#define FROM_ADDR_MAX ADDRESS_MAX

_Static_assert(FROM_TEXT_MAX <= UINT16_MAX && FROM_ADDR_MAX <= UINT16_MAX,
	       "struct from_scan's lengths");
_Static_assert(1 + 2 * FROM_TEXT_MAX + 3 + FROM_ADDR_MAX + 1 <= MESSAGE_FROM_MAILBOX_MAX,
	       "`\"name\" <addr>` within its bound");

enum from_lex {
	FROM_TOP,            /* display name: atoms, specials, white space */
	FROM_QUOTED,         /* "..." in it */
	FROM_COMMENT,        /* (...) in it, nested */
	FROM_ANGLE,          /* <...>: an address */
	FROM_ANGLE_QUOTED,   /* "..." in it: kept with its quotes */
	FROM_ANGLE_COMMENT,  /* (...) in it: dropped */
	FROM_DONE,           /* the first mailbox ended: the rest is not read */
};

struct from_scan {
	uint8_t lex;              /* enum from_lex */
	bool esc;                 /* after a backslash (quoted string, comment) */
	bool space;               /* white space to show before the next text byte */
	bool bare;                /* an '@' outside angles and comments: the first
				   * mailbox may be a bare addr-spec (address.c) */
	uint32_t depth;           /* comment nesting, saturating */
	uint16_t text_len;
	uint16_t cur_mark, mark;  /* text_len where the angle being read, and
				   * the one in addr, began */
	uint16_t cur_len, addr_len;
	/* one byte over each bound tells whether the cut splits a character */
	char text[FROM_TEXT_MAX + 1];
	char cur[FROM_ADDR_MAX + 1];  /* the angle-addr being read */
	char addr[FROM_ADDR_MAX + 1]; /* the last non-empty one; addr_len 0: none */
};

/* Where a long From stands: not known yet, not one, or being read. */
enum from_long {
	FROM_LONG_UNKNOWN,
	FROM_LONG_NO,
	FROM_LONG_SCANNING,       /* past MESSAGE_LINE_MAX: fed byte by byte */
};

/* Everything a header block needs while it is read; pooled. */
struct workspace {
	struct workspace *next;   /* in the pool's free list */
	bool for_part;            /* held by a MIME part's block */

	/* the header field being unfolded */
	bool field_active;
	bool field_cut;           /* longer than MESSAGE_LINE_MAX */
	bool line_is_cont;        /* current line is a continuation */
	size_t field_len;
	size_t field_line_start;  /* field_len when the current line began */
	unsigned nfields;         /* top-level fields looked at */
	uint8_t from_long;        /* enum from_long: the field being unfolded */
	bool from_found;          /* the top level's From was long and `from` has
				   * its address: values_keep() makes from_mailbox */
	char field[MESSAGE_LINE_MAX + 1];

	/* top-level values until the block ends */
	const char *val[SLOTS_KEPT];
	size_t arena_len;
	char arena[ARENA_SIZE];
	/* Subject and From decoded from the whole field as it arrived, not
	 * from the value cut at its bound: a cut inside an encoded-word would
	 * show that word's first half as written. Set with their val[]. */
	size_t subject_len, from_decoded_len;
	char subject[MESSAGE_SUBJECT_MAX + 1];
	char from_decoded[3 * MESSAGE_FIELD_MAX + 1];
	struct from_scan from;    /* a From longer than its kept value */

	struct part part;
	char param_raw[PARAM_RAW_MAX];
};

struct message_workspaces {
	uint32_t max;
	uint32_t parts_max;       /* at most this many held by MIME part blocks */
	uint32_t parts_in_use;
	struct workspace *free;
	struct message_workspaces_stats st;
};

/* Open multiparts (RFC 2046 §5.1), made when the first one is followed and
 * grown as deeper ones are; freed when the outermost closes. */
struct mime {
	uint16_t cap;                          /* bytes in bnd[] */
	uint16_t boff[MESSAGE_MIME_DEPTH_MAX]; /* where each boundary starts in bnd[] */
	uint8_t blen[MESSAGE_MIME_DEPTH_MAX];
	uint8_t rfc822[MESSAGE_MIME_DEPTH_MAX]; /* forwarded messages open around each */
	char bl[BODY_LINE_KEEP];               /* first bytes of the current line */
	char bnd[];                            /* boundaries, outermost first, no NULs */
};

/* Kept strings: filled from the front, never moved, freed at reset. */
struct strblock {
	struct strblock *next;
	size_t used, cap;
	char data[];
};

struct message {
	struct message_info info;
	struct message_workspaces *pool;
	enum msg_state state;
	uint8_t depth;            /* boundaries followed */
	uint8_t rfc822;           /* forwarded messages (message/rfc822) open */
	uint8_t bl_len;           /* body line bytes in mime->bl */
	/* one bit each: with the four fields above they fill 8 bytes */
	bool own_pool : 1;        /* made by message_create(NULL) */
	/* line state shared by all states */
	bool line_start : 1;      /* next byte begins a line */
	bool cr : 1;              /* a CR is held back */
	bool skip_line : 1;       /* after a gap: ignore up to the next LF */
	bool block_skipped : 1;   /* this header block found no workspace */
	bool bl_tail : 1;         /* non-white bytes past BODY_LINE_KEEP */

	struct workspace *ws;     /* while a header block is read, else NULL */
	struct mime *mime;        /* NULL while depth is 0 */
	struct strblock *strs;    /* values and names */
};

/* ---- small helpers ----------------------------------------------------- */

/* The info's 32-bit counters saturate rather than wrap. */
static void count_add(uint32_t *c, uint64_t n)
{
	*c = n >= UINT32_MAX - *c ? UINT32_MAX : *c + (uint32_t)n;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Copy a value into the workspace's arena, cut at `max` (counted). */
static const char *arena_store(struct message *m, const char *v, size_t n, size_t max)
{
	struct workspace *w = m->ws;
	size_t len = utf8_cut(v, n, max);
	char *dst = w->arena + w->arena_len;

	if (len < n)
		count_add(&m->info.truncated_fields, 1);
	if (len + 1 > sizeof w->arena - w->arena_len)
		return NULL; /* cannot happen: ARENA_SIZE covers every slot */
	memcpy(dst, v, len);
	dst[len] = '\0';
	w->arena_len += len + 1;
	return dst;
}

/* ---- memory: workspaces, kept strings, open boundaries ----------------- */

static void part_reset(struct part *p)
{
	memset(p, 0, sizeof *p);
}

/* A header block (top: the top-level one) or a value of it is lost to a
 * missing workspace or to memory: counted in the message and in the pool. */
static void count_skipped(struct message *m, bool top)
{
	if (top) {
		m->info.headers_skipped = true;
		m->pool->st.headers_skipped++;
	} else {
		count_add(&m->info.parts_skipped, 1);
		m->pool->st.parts_skipped++;
	}
}

/* A workspace for the header block starting now (top: the top-level one).
 * None free and none more to make: the block is read only for its end,
 * and that is counted. MIME part blocks get at most parts_max: a part
 * header cut by a segment boundary holds its workspace until the next
 * segment of that flow, which may be seconds away, and those must not
 * starve the top-level blocks that give the message its values. */
static void block_begin(struct message *m, bool top)
{
	struct message_workspaces *p = m->pool;
	struct workspace *w = NULL;

	if (top || p->parts_in_use < p->parts_max) {
		w = p->free;
		if (w)
			p->free = w->next;
		else if (p->st.made < p->max && (w = malloc(sizeof *w)) != NULL)
			p->st.made++;   /* malloc: pages are touched only as used */
	}
	if (!w) {
		m->block_skipped = true;
		count_skipped(m, top);
		return;
	}
	if (++p->st.in_use > p->st.peak)
		p->st.peak = p->st.in_use;
	w->for_part = !top;
	p->parts_in_use += w->for_part;
	w->field_active = false;
	w->field_cut = false;
	w->line_is_cont = false;
	w->field_len = 0;
	w->field_line_start = 0;
	w->nfields = 0;
	w->from_long = FROM_LONG_UNKNOWN;
	w->from_found = false;
	for (size_t i = 0; i < SLOTS_KEPT; i++)
		w->val[i] = NULL;
	w->arena_len = 0;
	part_reset(&w->part);
	m->ws = w;
}

/* The header block is over: its workspace goes back to the pool. */
static void block_end(struct message *m)
{
	struct workspace *w = m->ws;

	m->block_skipped = false;
	if (!w)
		return;
	w->next = m->pool->free;
	m->pool->free = w;
	m->pool->st.in_use--;
	m->pool->parts_in_use -= w->for_part;
	m->ws = NULL;
}

/* n bytes that stay where they are until message_reset(): from the newest
 * block if it has room, else from a new one of at least `min` bytes. NULL
 * if out of memory. */
static char *strs_alloc(struct message *m, size_t n, size_t min)
{
	struct strblock *b = m->strs;

	if (!b || b->cap - b->used < n) {
		size_t cap = n > min ? n : min;
		b = malloc(sizeof *b + cap);
		if (!b)
			return NULL;
		b->next = m->strs;
		b->used = 0;
		b->cap = cap;
		m->strs = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

static void strs_free(struct message *m)
{
	while (m->strs) {
		struct strblock *b = m->strs;
		m->strs = b->next;
		free(b);
	}
}

/* Follow one more multipart: push its boundary. False if out of memory. */
static bool mime_push(struct message *m, const char *b, size_t len)
{
	struct mime *x = m->mime;
	size_t off = m->depth ? (size_t)x->boff[m->depth - 1] + x->blen[m->depth - 1] : 0;

	if (!x || x->cap < off + len) {
		/* grow by doubling: a few times per message at most */
		size_t cap = x ? 2 * (size_t)x->cap : 64;
		if (cap < off + len)
			cap = off + len;
		if (cap > MESSAGE_MIME_DEPTH_MAX * MESSAGE_BOUNDARY_MAX)
			cap = MESSAGE_MIME_DEPTH_MAX * MESSAGE_BOUNDARY_MAX;
		x = realloc(x, sizeof *x + cap);
		if (!x)
			return false;   /* the old block, if any, is still m->mime */
		x->cap = (uint16_t)cap;
		m->mime = x;
	}
	memcpy(x->bnd + off, b, len);
	x->boff[m->depth] = (uint16_t)off;
	x->blen[m->depth] = (uint8_t)len;
	x->rfc822[m->depth] = m->rfc822;
	m->depth++;
	return true;
}

static void mime_free(struct message *m)
{
	free(m->mime);
	m->mime = NULL;
	m->depth = 0;
	m->rfc822 = 0;
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
	struct raw r = { m->ws->param_raw, 0, sizeof m->ws->param_raw, false };
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

/* RFC 2045 §5.1 Content-Type: multipart/x; boundary=...; name=... */
static void part_content_type(struct message *m, const char *v, size_t n)
{
	struct part *p = &m->ws->part;
	struct raw r = { m->ws->param_raw, 0, sizeof m->ws->param_raw, false };
	char charset[RFC2047_CHARSET_MAX + 1];

	p->have_ct = true;
	p->multipart = n >= 10 && strncasecmp(v, "multipart/", 10) == 0;
	/* RFC 2046 §5.2.1, RFC 6532 §3.7: a whole message, headers first */
	p->message = (n >= 14 && strncasecmp(v, "message/rfc822", 14) == 0 &&
		      (n == 14 || v[14] == ';' || is_wsp(v[14]))) ||
		     (n >= 14 && strncasecmp(v, "message/global", 14) == 0 &&
		      (n == 14 || v[14] == ';' || is_wsp(v[14])));
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
	struct part *p = &m->ws->part;

	p->have_cd = true;
	param_decoded(m, v, n, "filename", p->filename, sizeof p->filename,
		      &p->filename_replaced, &p->filename_cut);
}

static void attachment_add(struct message *m, const char *name, bool raw_cut,
			   unsigned long replaced)
{
	struct message_info *in = &m->info;
	size_t n = strlen(name), len = utf8_cut(name, n, MESSAGE_ATTACH_NAME_MAX);

	count_add(&in->attachments_total, 1);
	count_add(&in->decode_replaced, replaced);
	if (in->n_attachments == MESSAGE_ATTACH_KEEP_MAX)
		return;
	if (len < n || raw_cut)
		count_add(&in->truncated_fields, 1);
	if (!in->attachments) {
		/* the table, pointer-aligned in the names' block */
		char *t = strs_alloc(m, ATTACH_TABLE_BYTES, NAMES_BLOCK_MIN);
		if (!t) {
			count_skipped(m, false);   /* out of memory: the name is lost */
			return;
		}
		in->attachments = (const char **)(((uintptr_t)t + sizeof(void *) - 1) &
						  ~(uintptr_t)(sizeof(void *) - 1));
	}
	char *dst = strs_alloc(m, len + 1, NAMES_BLOCK_MIN);
	if (!dst) {
		count_skipped(m, false);   /* out of memory: the name is lost */
		return;
	}
	memcpy(dst, name, len);
	dst[len] = '\0';
	in->attachments[in->n_attachments++] = dst;
}

/* RFC 2045 §6.1 Content-Transfer-Encoding: only whether the body is
 * encoded matters (a forwarded message so encoded is not read). */
static void part_transfer_encoding(struct message *m, const char *v, size_t n)
{
	struct part *p = &m->ws->part;

	p->have_cte = true;
	p->encoded = (n >= 6 && strncasecmp(v, "base64", 6) == 0) ||
		     (n >= 16 && strncasecmp(v, "quoted-printable", 16) == 0);
}

/* The header block of the current part is over. A named leaf part is an
 * attachment; a multipart one with a body is followed (RFC 2046 §5.1); so
 * is a forwarded message (RFC 2046 §5.2.1: its body is a header block and
 * a body, not encoded), which returns true: the next bytes are its header
 * block. Multiparts and forwarded messages nest MESSAGE_MIME_DEPTH_MAX
 * deep together. */
static bool part_end(struct message *m, bool has_body)
{
	struct part *p = &m->ws->part;
	bool deep = m->depth + m->rfc822 >= MESSAGE_MIME_DEPTH_MAX;

	if (!p->multipart) {
		if (p->filename[0])
			attachment_add(m, p->filename, p->filename_cut, p->filename_replaced);
		else if (p->ctname[0])
			attachment_add(m, p->ctname, p->ctname_cut, p->ctname_replaced);
		if (!p->message || !has_body || p->encoded)
			return false;
		if (deep) {
			count_add(&m->info.mime_depth_over, 1);
			return false;
		}
		m->rfc822++;
		return true;
	}
	if (!has_body)
		return false;
	if (p->boundary_too_long) {
		count_add(&m->info.boundary_too_long, 1);
	} else if (p->boundary_len == 0) {
		return false;   /* multipart without a boundary: nothing to follow */
	} else if (deep) {
		count_add(&m->info.mime_depth_over, 1);
	} else if (!mime_push(m, p->boundary, p->boundary_len)) {
		count_skipped(m, false);   /* out of memory: not followed */
	}
	return false;
}

/* ---- a From longer than its kept value --------------------------------- */

static bool is_fws(char c)
{
	return is_wsp(c) || c == '\r' || c == '\n';
}

static void from_scan_begin(struct from_scan *s)
{
	s->lex = FROM_TOP;
	s->esc = s->space = s->bare = false;
	s->depth = 0;
	s->text_len = s->cur_mark = s->mark = s->cur_len = s->addr_len = 0;
}

/* A byte of display name text; a run of white space shows as one space. */
static void from_text(struct from_scan *s, char c)
{
	if (is_fws(c)) {
		s->space = s->space || s->text_len > 0;
		return;
	}
	if (s->space && s->text_len < sizeof s->text)
		s->text[s->text_len++] = ' ';
	s->space = false;
	if (s->text_len < sizeof s->text)
		s->text[s->text_len++] = c;
}

/* Start over (RFC 5322 §3.4 group syntax, "<>"): not this mailbox's name. */
static void from_text_reset(struct from_scan *s)
{
	s->text_len = 0;
	s->space = false;
}

static void from_cur(struct from_scan *s, char c)
{
	if (s->cur_len < sizeof s->cur)
		s->cur[s->cur_len++] = c;   /* longer is no address: cut, as address.c cuts */
}

/* An angle-addr ended: the last non-empty one is the mailbox's. "<>"
 * before any names nothing: the next mailbox is tried (address.c). One
 * that still starts with '@' is a route without its colon, which address.c
 * reads as empty too. */
static void from_angle_end(struct from_scan *s)
{
	if (s->cur_len == 0 || s->cur[0] == '@') {
		if (s->addr_len == 0)
			from_text_reset(s);
		return;
	}
	memcpy(s->addr, s->cur, s->cur_len);
	s->addr_len = s->cur_len;
	s->mark = s->cur_mark;
}

static void from_scan_byte(struct from_scan *s, char c)
{
	switch ((enum from_lex)s->lex) {
	case FROM_TOP:
		switch (c) {
		case '"':
			s->lex = FROM_QUOTED;
			return;
		case '(':
			s->lex = FROM_COMMENT;
			s->depth = 1;
			break;
		case '<':
			s->lex = FROM_ANGLE;
			s->cur_len = 0;
			s->cur_mark = s->text_len;
			break;
		case ',':
		case ';':
		case ':':
			/* the first mailbox ends here if it had its address */
			if (s->addr_len || s->bare) {
				s->lex = FROM_DONE;
				return;
			}
			if (c != ',')
				from_text_reset(s);   /* a group's name or end */
			else if (s->text_len)
				from_text(s, c);      /* "Doe, John <j@d>" */
			return;
		case '@':
			s->bare = true;
			break;
		}
		from_text(s, c);
		return;
	case FROM_QUOTED:
		if (s->esc) {
			s->esc = false;
		} else if (c == '\\') {
			s->esc = true;
			return;
		} else if (c == '"') {
			s->lex = FROM_TOP;
			return;
		}
		s->bare = s->bare || c == '@';
		from_text(s, c);
		return;
	case FROM_COMMENT:
	case FROM_ANGLE_COMMENT:
		/* nested (RFC 5322 §3.2.2): text, not part of an address */
		if (s->esc) {
			s->esc = false;
		} else if (c == '\\') {
			s->esc = true;
			return;
		} else if (c == '(') {
			s->depth += s->depth < UINT32_MAX;
		} else if (c == ')' && --s->depth == 0) {
			s->lex = s->lex == FROM_COMMENT ? FROM_TOP : FROM_ANGLE;
		}
		from_text(s, c);
		return;
	case FROM_ANGLE:
		from_text(s, c);   /* should a later angle-addr follow, this is name */
		if (c == '>') {
			from_angle_end(s);
			s->lex = FROM_TOP;
		} else if (c == '"') {
			s->lex = FROM_ANGLE_QUOTED;
			from_cur(s, c);
		} else if (c == '(') {
			s->lex = FROM_ANGLE_COMMENT;
			s->depth = 1;
		} else if (c == ':' && s->cur_len && s->cur[0] == '@') {
			s->cur_len = 0;   /* RFC 5322 §4.4 obs-route "@a,@b:" */
		} else if (!is_fws(c)) {
			from_cur(s, c);
		}
		return;
	case FROM_ANGLE_QUOTED:
		from_text(s, c);
		from_cur(s, c);
		if (s->esc)
			s->esc = false;
		else if (c == '\\')
			s->esc = true;
		else if (c == '"')
			s->lex = FROM_ANGLE;
		return;
	case FROM_DONE:
		return;
	}
}

static void from_scan_feed(struct from_scan *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n && s->lex != FROM_DONE; i++)
		from_scan_byte(s, p[i]);
}

/* The field ended: an angle-addr left open runs to its end (address.c).
 * True if the first mailbox has an angle-addr. */
static bool from_scan_end(struct from_scan *s)
{
	if (s->lex == FROM_ANGLE || s->lex == FROM_ANGLE_QUOTED || s->lex == FROM_ANGLE_COMMENT)
		from_angle_end(s);
	s->lex = FROM_DONE;
	return s->addr_len > 0;
}

/* The display name text before the address, at most FROM_TEXT_MAX bytes
 * cut between characters, without a space at its end. */
static size_t from_name_len(const struct from_scan *s)
{
	size_t n = utf8_cut(s->text, s->mark, FROM_TEXT_MAX);

	while (n && s->text[n - 1] == ' ')
		n--;
	return n;
}

/* Bytes of `"name" <addr>` with its NUL. */
static size_t from_mailbox_size(const struct from_scan *s)
{
	size_t n = from_name_len(s), size = n + 6 + utf8_cut(s->addr, s->addr_len, FROM_ADDR_MAX);

	for (size_t i = 0; i < n; i++)
		size += s->text[i] == '"' || s->text[i] == '\\';
	return size;
}

static const char *from_mailbox_write(const struct from_scan *s, char **pp)
{
	char *start = *pp, *p = start;
	size_t n = from_name_len(s), an = utf8_cut(s->addr, s->addr_len, FROM_ADDR_MAX);

	*p++ = '"';
	for (size_t i = 0; i < n; i++) {
		if (s->text[i] == '"' || s->text[i] == '\\')
			*p++ = '\\';
		*p++ = s->text[i];
	}
	memcpy(p, "\" <", 3);
	p += 3;
	memcpy(p, s->addr, an);
	p += an;
	*p++ = '>';
	*p++ = '\0';
	*pp = p;
	return start;
}

/* The field being unfolded has just passed MESSAGE_LINE_MAX: if it is the
 * top level's first From, the lexer takes what the buffer holds and then
 * every byte that the buffer cannot. */
static void from_long_begin(struct message *m)
{
	struct workspace *w = m->ws;
	const char *colon = memchr(w->field, ':', w->field_len);
	size_t nlen = colon ? (size_t)(colon - w->field) : 0;

	w->from_long = FROM_LONG_NO;
	while (nlen && is_wsp(w->field[nlen - 1]))
		nlen--;
	if (!colon || m->state != MSG_HEADERS || w->val[SLOT_FROM] || nlen != 4 ||
	    strncasecmp(w->field, "From", 4) != 0)
		return;
	w->from_long = FROM_LONG_SCANNING;
	from_scan_begin(&w->from);
	from_scan_feed(&w->from, colon + 1, w->field_len - (size_t)(colon + 1 - w->field));
}

/* From's value v (n bytes, at most MESSAGE_LINE_MAX) is complete. Over the
 * bound of the value kept as sent, its mailbox is read from the whole
 * field, which the lexer has seen if it was longer than v. */
static void from_long_end(struct message *m, const char *v, size_t n)
{
	struct workspace *w = m->ws;

	if (w->from_long != FROM_LONG_SCANNING) {
		if (n <= MESSAGE_FIELD_MAX)
			return;
		from_scan_begin(&w->from);
		from_scan_feed(&w->from, v, n);
	}
	w->from_found = from_scan_end(&w->from);
}

/* ---- header fields ----------------------------------------------------- */

static void field_mime(struct message *m, enum slot s, const char *v, size_t n)
{
	const struct part *p = &m->ws->part;
	bool seen = s == SLOT_CONTENT_TYPE ? p->have_ct
		    : s == SLOT_CONTENT_DISPOSITION ? p->have_cd : p->have_cte;

	if (seen) {
		count_add(&m->info.duplicates, 1);
		return;
	}
	if (s == SLOT_CONTENT_TYPE)
		part_content_type(m, v, n);
	else if (s == SLOT_CONTENT_DISPOSITION)
		part_disposition(m, v, n);
	else
		part_transfer_encoding(m, v, n);
}

static void field_store(struct message *m, const struct field_def *d, const char *v,
			size_t n)
{
	const char **dst;

	if (d->slot == SLOT_CONTENT_TYPE || d->slot == SLOT_CONTENT_DISPOSITION ||
	    d->slot == SLOT_CONTENT_TRANSFER_ENCODING) {
		field_mime(m, d->slot, v, n);
		return;
	}
	if (m->state != MSG_HEADERS)
		return;   /* part headers: only the MIME fields matter */
	dst = &m->ws->val[d->slot];
	if (*dst) {
		count_add(&m->info.duplicates, 1);   /* RFC 5322 §3.6: the first one wins */
		return;
	}
	*dst = arena_store(m, v, n, d->max);
	if (d->slot == SLOT_FROM)
		from_long_end(m, v, n);
	if (d->slot == SLOT_SUBJECT || d->slot == SLOT_FROM) {
		/* RFC 2047 decoding of the whole field (up to MESSAGE_LINE_MAX),
		 * its output bounded by the buffer; decoding never more than
		 * triples, so when that cuts, the raw value was cut and counted. */
		struct workspace *w = m->ws;
		struct rfc2047_stats st = { 0, 0, 0, 0 };
		if (d->slot == SLOT_SUBJECT)
			w->subject_len = rfc2047_decode(v, n, w->subject, sizeof w->subject, &st);
		else
			w->from_decoded_len = rfc2047_decode(v, n, w->from_decoded,
							     sizeof w->from_decoded, &st);
		count_add(&m->info.decode_replaced, st.replaced);
	}
}

/* The unfolded field in the workspace is complete: split "Name: value" (RFC 5322
 * §2.2, obsolete WSP before the colon allowed) and keep what matters. */
static void field_dispatch(struct message *m)
{
	struct workspace *w = m->ws;
	const char *f, *colon, *v, *end;
	size_t nlen;

	if (!w || !w->field_active)
		return;
	w->field_active = false;
	if (m->state == MSG_HEADERS && ++w->nfields > MESSAGE_HEADER_COUNT_MAX)
		count_add(&m->info.header_count_over, 1); /* counted; the field is still read */
	if (w->field_cut)
		count_add(&m->info.truncated_fields, 1);
	f = w->field;
	end = w->field + w->field_len;
	colon = memchr(f, ':', w->field_len);
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

/* One byte of a header line (none without a workspace: the block is only
 * read for its end). */
static void field_put(struct message *m, char c)
{
	struct workspace *w = m->ws;

	if (!w)
		return;
	if (c == '\0') {
		/* Values are C strings: a raw NUL would cut the rest of the field
		 * (and hide it from the fingerprints). It is shown as U+FFFD. */
		count_add(&m->info.decode_replaced, 1);
		field_put(m, '\xef');
		field_put(m, '\xbf');
		field_put(m, '\xbd');
		return;
	}
	if (w->field_len < MESSAGE_LINE_MAX) {
		w->field[w->field_len++] = c;
		return;
	}
	w->field_cut = true;
	if (w->from_long == FROM_LONG_UNKNOWN)
		from_long_begin(m);
	if (w->from_long == FROM_LONG_SCANNING)
		from_scan_byte(&w->from, c);
}

/* First byte of a header line: a continuation, or the start of a field. */
static void header_line_begin(struct message *m, bool continuation)
{
	struct workspace *w = m->ws;

	if (!w)
		return;
	if (continuation && w->field_active) {
		w->line_is_cont = true;
		w->field_line_start = w->field_len;
		return;
	}
	field_dispatch(m);
	w->field_active = true;
	w->field_cut = false;
	w->from_long = FROM_LONG_UNKNOWN;
	w->field_len = 0;
	w->field_line_start = 0;
	w->line_is_cont = false;
}

/* Forget the header line in progress (gap, limit, boundary line). */
static void header_line_drop(struct message *m)
{
	struct workspace *w = m->ws;

	if (m->line_start || !w)
		return;
	if (w->line_is_cont) {
		w->field_len = w->field_line_start;
		w->field_cut = true;    /* a continuation is lost */
	} else {
		w->field_active = false;
	}
}

/* ---- top level --------------------------------------------------------- */

/* Keep one string in block *pp; return where it went. */
static const char *keep(char **pp, const char *v, size_t len)
{
	char *dst = *pp;

	memcpy(dst, v, len + 1);
	*pp += len + 1;
	return dst;
}

/* The top-level block is over: copy every value kept, and the decoded
 * Subject and From (field_store), into one block sized for them, so that
 * the workspace can go back to the pool. A decoded value equal to the raw
 * one is the same string. */
static void values_keep(struct message *m)
{
	struct workspace *w = m->ws;
	struct message_info *in = &m->info;
	const char **dst[SLOTS_KEPT] = {
		[SLOT_FROM] = &in->from,
		[SLOT_TO] = &in->to,
		[SLOT_CC] = &in->cc,
		[SLOT_REPLY_TO] = &in->reply_to,
		[SLOT_SUBJECT] = &in->subject_raw,
		[SLOT_DATE] = &in->date,
		[SLOT_MESSAGE_ID] = &in->message_id,
		[SLOT_IN_REPLY_TO] = &in->in_reply_to,
		[SLOT_REFERENCES] = &in->references,
		[SLOT_X_MAILER] = NULL,     /* one of these two is user_agent */
		[SLOT_USER_AGENT] = NULL,
		[SLOT_X_ORIGINATING_IP] = &in->x_originating_ip,
	};
	const char *raw_subject = w->val[SLOT_SUBJECT], *raw_from = w->val[SLOT_FROM];
	const char *ua = w->val[SLOT_X_MAILER] ? w->val[SLOT_X_MAILER] : w->val[SLOT_USER_AGENT];
	size_t len[SLOTS_KEPT] = { 0 }, ua_len = 0, subj_len = 0, fromd_len = 0, total = 0;
	bool subj_same = true, from_same = true;
	char *p;

	if (raw_subject) {
		subj_len = w->subject_len;
		subj_same = strcmp(w->subject, raw_subject) == 0;
		total += subj_same ? 0 : subj_len + 1;
	}
	if (raw_from) {
		fromd_len = w->from_decoded_len;
		from_same = strcmp(w->from_decoded, raw_from) == 0;
		total += from_same ? 0 : fromd_len + 1;
		if (w->from_found)
			total += from_mailbox_size(&w->from);
	}
	for (size_t i = 0; i < SLOTS_KEPT; i++)
		if (dst[i] && w->val[i])
			total += (len[i] = strlen(w->val[i])) + 1;
	if (ua)
		total += (ua_len = strlen(ua)) + 1;
	if (total == 0)
		return;
	p = strs_alloc(m, total, 0);
	if (!p) {
		count_skipped(m, true);   /* out of memory: the values are lost */
		return;
	}
	for (size_t i = 0; i < SLOTS_KEPT; i++)
		if (dst[i] && w->val[i])
			*dst[i] = keep(&p, w->val[i], len[i]);
	if (ua)
		in->user_agent = keep(&p, ua, ua_len);
	if (raw_subject)
		in->subject = subj_same ? in->subject_raw : keep(&p, w->subject, subj_len);
	if (raw_from)
		in->from_decoded = from_same ? in->from : keep(&p, w->from_decoded, fromd_len);
	if (raw_from && w->from_found)
		in->from_mailbox = from_mailbox_write(&w->from, &p);
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
	bool message = false;

	field_dispatch(m);
	m->info.headers_done = blank_line;
	if (m->ws) {
		values_keep(m);
		message = part_end(m, true);
	}
	block_end(m);
	/* the whole message may be a forwarded one: its header block next */
	m->state = message ? MSG_PART_HEADERS : MSG_BODY;
	line_reset(m);
}

static void part_headers_end(struct message *m, bool has_body)
{
	bool message = false;

	field_dispatch(m);
	if (m->ws)
		message = part_end(m, has_body);
	block_end(m);
	m->state = message ? MSG_PART_HEADERS : MSG_BODY;
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
	if (!m->ws && !m->block_skipped)
		block_begin(m, true);
	while (p < end && m->state == MSG_HEADERS) {
		char c = *p++;

		if (++m->info.header_bytes > MESSAGE_HEADER_BYTES_MAX)
			m->info.header_bytes_over++; /* counted; reading goes on */
		header_byte(m, c);
	}
	return p;
}

/* ---- boundaries and body ----------------------------------------------- */

/* Keep the first bytes of a body line (depth > 0: the mime block exists). */
static void bl_put(struct message *m, const char *s, size_t n)
{
	size_t room = sizeof m->mime->bl - m->bl_len, k = n < room ? n : room;

	memcpy(m->mime->bl + m->bl_len, s, k);
	m->bl_len = (uint8_t)(m->bl_len + k);
	for (size_t i = k; i < n && !m->bl_tail; i++)
		m->bl_tail = !(is_wsp(s[i]) || s[i] == '\r');
}

/* Is the line in bl a boundary of an open multipart? Sets *level (index
 * into the open boundaries) and *close. RFC 2046 §5.1.1: "--" boundary
 * ["--"] LWSP*. The outermost multipart it belongs to wins: §5.1.1 says an
 * enclosing delimiter cannot occur inside the parts, so a nested multipart
 * that reuses it (or its "--" form) is over at that line, as Python's email
 * package reads it. Innermost first, the line's meaning would hang on the
 * nested part's header block, which a parse that found the pool empty
 * never read (it then took the line for the enclosing multipart's and found
 * names the full parse did not), and nested reuses would each go one level
 * deeper towards MESSAGE_MIME_DEPTH_MAX. */
static bool bl_boundary(const struct message *m, unsigned *level, bool *close)
{
	size_t n = m->bl_len;
	const struct mime *x = m->mime;

	if (m->depth == 0 || m->bl_tail || n < 3 || x->bl[0] != '-' || x->bl[1] != '-')
		return false;
	while (n > 2 && (is_wsp(x->bl[n - 1]) || x->bl[n - 1] == '\r'))
		n--;
	for (unsigned i = 0; i < m->depth; i++) {
		size_t bl = x->blen[i];
		if (n < 2 + bl || memcmp(x->bl + 2, x->bnd + x->boff[i], bl) != 0)
			continue;
		if (n == 2 + bl) {
			*close = false;
		} else if (n == 4 + bl && x->bl[2 + bl] == '-' && x->bl[3 + bl] == '-') {
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
 * ends it. Either way the multiparts nested inside it are over. The next
 * part's header block takes a workspace at its first byte. */
static void boundary_hit(struct message *m, unsigned level, bool close)
{
	if (m->state == MSG_PART_HEADERS) {
		header_line_drop(m);        /* the boundary line itself */
		part_headers_end(m, false); /* a part without a blank line */
	}
	m->depth = (uint8_t)(close ? level : level + 1);
	m->rfc822 = m->mime->rfc822[level];   /* those opened inside it are over */
	m->state = close ? MSG_BODY : MSG_PART_HEADERS;
	line_reset(m);
	if (m->depth == 0)
		mime_free(m);   /* the outermost closed: nothing can open again */
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
	while (p < end && m->state == MSG_BODY) {
		if (m->depth == 0)
			return end;   /* no open multipart: nothing left to find */
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

		/* at the block's first byte; a forwarded message's header block
		 * follows its part's at once */
		if (!m->ws && !m->block_skipped)
			block_begin(m, false);
		/* a part's header block may be cut short by the next boundary */
		if (c == '\n' && bl_boundary(m, &level, &close)) {
			boundary_hit(m, level, close);
			return p;   /* the next block begins afresh */
		}
		if (c == '\n') {
			m->bl_len = 0;
			m->bl_tail = false;
		} else if (m->depth) {
			bl_put(m, &c, 1);   /* a forwarded message may have no boundary around */
		}
		header_byte(m, c);
	}
	return p;
}

/* ---- public ------------------------------------------------------------ */

struct message_workspaces *message_workspaces_create(uint32_t max)
{
	struct message_workspaces *p = calloc(1, sizeof *p);

	if (p) {
		p->max = max;
		p->parts_max = max - max / 4;   /* a quarter kept for top-level blocks */
	}
	return p;
}

void message_workspaces_destroy(struct message_workspaces *p)
{
	if (!p)
		return;
	while (p->free) {
		struct workspace *w = p->free;
		p->free = w->next;
		free(w);
	}
	free(p);
}

void message_workspaces_get_stats(const struct message_workspaces *p,
				  struct message_workspaces_stats *out)
{
	*out = p->st;
}

struct message *message_create(struct message_workspaces *pool)
{
	struct message *m = calloc(1, sizeof *m);

	if (!m)
		return NULL;
	if (!pool) {
		pool = message_workspaces_create(1);
		if (!pool) {
			free(m);
			return NULL;
		}
		m->own_pool = true;
	}
	m->pool = pool;
	message_reset(m);
	return m;
}

void message_destroy(struct message *m)
{
	if (!m)
		return;
	message_reset(m);
	if (m->own_pool)
		message_workspaces_destroy(m->pool);
	free(m);
}

void message_reset(struct message *m)
{
	block_end(m);
	strs_free(m);
	mime_free(m);
	memset(&m->info, 0, sizeof m->info);
	m->state = MSG_HEADERS;
	m->skip_line = false;
	line_reset(m);
}

size_t message_sizeof(void)
{
	return sizeof(struct message);
}

size_t message_workspace_sizeof(void)
{
	return sizeof(struct workspace);
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
	count_add(&m->info.gaps, 1);
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
	/* a forwarded message's header block cannot be told from what was lost */
	m->state = MSG_BODY;
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
	m->state = MSG_DONE;
}

const struct message_info *message_info(const struct message *m)
{
	return &m->info;
}
