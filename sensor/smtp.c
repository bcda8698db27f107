/* smtp.c — SMTP session parser; see smtp.h for the contract.
 *
 * Row semantics follow Zeek's smtp.log (so the Zeek baselines can be our
 * conformance suite): a transaction record is written on the reply to the
 * end of data ("." or BDAT ... LAST), on the next MAIL FROM while one is
 * open, and at the end of the connection — and only if the client did
 * something (MAIL FROM, RCPT TO or STARTTLS). trans_depth is the number of
 * messages completed before the record was opened, plus one.
 *
 * Session state machine (STYLE.md 7); the client's bytes are read
 * according to the state, the server's bytes are always reply lines:
 *
 *    PROXY --blank lines after "HTTP/1.x 200"--> COMMAND
 *    COMMAND --DATA sent--> DATA --"." line--> COMMAND
 *    DATA --reply to DATA other than 354--> COMMAND
 *    COMMAND --valid BDAT n--> BDAT --n bytes--> COMMAND
 *    COMMAND --334--> AUTH --reply other than 334--> COMMAND
 *    any --bytes lost--> AFTER_GAP --next reply--> COMMAND (or DATA on 354)
 *    any --220 to STARTTLS--> TLS (final)
 *    COMMAND --server line that is not a reply, early on--> NOT_SMTP (final)
 *
 * Deliberate differences from Zeek, each because a mail-abuse sensor needs it:
 *  - a record takes the headers of the last message begun in it (Zeek: the
 *    first), so the message delivered after a gap is the one we see;
 *  - connections whose handshake was not captured are parsed too (a sensor
 *    starts in the middle of sessions); their first 220 is the banner;
 *  - unknown commands are queued, so their replies pair with them;
 *  - BDAT ... last is recognised case-insensitively;
 *  - AUTH is followed: user name, mechanism and outcome, secrets wiped. */
#include "smtp.h"

#include "address.h"
#include "netlist.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SMTP_VIOLATION_WINDOW 10240 /* non-reply server lines before this many bytes
                                     * mean "not SMTP" (as Zeek's DPD does) */
#define SMTP_BDAT_ARG_MAX 25    /* digits + " LAST" */

enum smtp_state {
	ST_PROXY,      /* HTTP CONNECT preamble of an open proxy */
	ST_COMMAND,
	ST_DATA,
	ST_BDAT,
	ST_AUTH,
	ST_AFTER_GAP,
	ST_TLS,
	ST_NOT_SMTP,
};

enum cmd {
	CMD_NONE = 0,
	CMD_CONNECT,     /* the banner answers the connection itself */
	CMD_HELO,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_DOT,         /* end of data */
	CMD_BDAT,
	CMD_RSET,
	CMD_QUIT,
	CMD_STARTTLS,
	CMD_AUTH,
	CMD_AUTH_ANSWER,
	CMD_OTHER,       /* known but uninteresting: NOOP, VRFY, ... */
	CMD_UNKNOWN,
};

#define PEND_BDAT_LAST 0x01

/* A command waiting for its reply: 4 bytes. The generation only has to tell
 * the open record from the closing one and from records already written:
 * between a command and its reply fewer than 2 * SMTP_PENDING_MAX + 2
 * records can open (each one needs a MAIL queued behind the command or an
 * end-of-data reply before it), far fewer than 2^20. */
#define GEN_BITS 20
#define GEN_MAX ((1u << GEN_BITS) - 1)
struct pending {
	unsigned cmd : 4;    /* enum cmd */
	unsigned flags : 1;
	unsigned rcpt : 7;   /* RCPT: kept index + 1, 0 if not kept, RCPT_RELAYED if not
	                      * kept and relayed (cmd_rcpt) */
	unsigned gen : GEN_BITS; /* record generation the command belongs to, 0: none */
};
#define RCPT_RELAYED 127
_Static_assert(CMD_UNKNOWN < 16 && SMTP_RCPT_KEEP_MAX < RCPT_RELAYED && SMTP_PENDING_MAX <= 255,
	       "struct pending's fields are too narrow");

/* The queue lives in the session for up to Q_INLINE commands (8: MAIL
 * FROM, six RCPT TO and DATA in one flight, and the struct ends at 168 B:
 * a ninth would pad it to 176); a client that pipelines more gets a heap
 * array in the session's extension (struct ext), doubled up to
 * SMTP_PENDING_MAX, freed when the burst is answered. */
#define Q_INLINE 8

/* What a content byte means at this point of a DATA line (dot-stuffing). */
enum dot_state { DOT_LINE_START, DOT_MID, DOT_SEEN, DOT_SEEN_CR };

enum auth_mech {
	MECH_OTHER, MECH_PLAIN, MECH_LOGIN, MECH_CRAM_MD5, MECH_XOAUTH2, MECH_OAUTHBEARER,
	MECH_SCRAM,
};

/* --- the string store ---------------------------------------------------------
 *
 * Every string a session keeps lies in one heap block, slot after slot in
 * this order, each slot as long as its content (0: absent; a string counts
 * its NUL). Changing a slot moves the slots after it, so the ones that change
 * most often come last: last_reply changes with every reply line, a
 * recipient is appended per RCPT, the rest once per transaction or AUTH.
 * The slots from SL_MAILFROM on are the open transaction's: emptied when the
 * next one opens, the capacity kept. */
enum slot {
	SL_HELO,        /* HELO/EHLO argument */
	SL_AUTH_MECH,   /* the authenticated identity: mechanism */
	SL_AUTH_USER,   /*   and user name */
	SL_MECH,        /* the AUTH in progress: mechanism, upper-case */
	SL_TRY_USER,    /*   and the user name it carries */
	SL_MAILFROM,    /* first slot of the transaction */
	SL_RCPT,        /* kept recipients, NUL-terminated one after the other */
	SL_RCPT_CODE,   /* their reply codes, a uint16_t each (unaligned) */
	SL_REPLY,       /* last_reply */
	SL_RELAYED,     /* rcpt_relayed_unkept, a uint32_t (unaligned), when not 0 */
	SL_COUNT
};

/* Every slot at its bound: the store never needs more. */
#define STORE_MAX (SMTP_HELO_MAX + 1 + 2 * (SMTP_MECH_MAX + 1) + 2 * (SMTP_USER_MAX + 1) + \
		   SMTP_PATH_MAX + 1 + SMTP_RCPT_ARENA + 2 * SMTP_RCPT_KEEP_MAX + \
		   SMTP_REPLY_MAX + 1 + 4)
_Static_assert(STORE_MAX <= UINT16_MAX, "store lengths are 16 bits");

struct store {
	char *buf;
	uint16_t cap;
	uint16_t used;                  /* the sum of len[] */
	uint16_t len[SL_COUNT];
};

/* --- line carries ----------------------------------------------------------------
 *
 * A line that lies whole in a segment is read where it lies. Only a line the
 * segment cuts is carried to the next one, in a buffer from the line pool
 * (SMTP_CARRY_SMALL bytes, a LINE_KEEP-byte one once it outgrows that),
 * given back when the line ends. Few lines are cut at any moment (at most
 * 428 of 113,337 sessions at once in the 100k-session benchmark), so a
 * buffer in every session would mostly sit idle. */
#define LINE_KEEP ((size_t)SMTP_LINE_MAX + 1) /* bytes of a line kept: the bound and a CR */

struct carry {
	/* 8 B, not 16: a session holds two (106k sessions at once in the
	 * benchmark), and a 32-bit buffer number instead of a pointer */
	unsigned len : 11;   /* bytes kept in the buffer */
	unsigned seen : 11;  /* bytes of the line so far, LINE_KEEP + 1 at most */
	unsigned cr : 1;     /* the last of them was a CR */
	unsigned big : 1;    /* a whole-line buffer (LINE_KEEP bytes), else SMTP_CARRY_SMALL */
	uint32_t buf;        /* the pooled buffer's number while a line is carried, else 0 */
};
_Static_assert(LINE_KEEP + 1 < 1u << 11, "struct carry's lengths are too narrow");

/* The buffers of one size are one array, made in order on first need (the
 * pages of buffers no line has used are never touched): a buffer is known
 * by its number, 1-based. */
struct line_list {
	uint32_t max, made, nfree;
	uint32_t size;       /* bytes of a buffer */
	uint32_t *free;      /* nfree buffer numbers, their buffers wiped */
	char *bufs;          /* max * size bytes */
};

struct smtp_line_pool {
	struct line_list small, big;
};

/* A record's scalars; its strings are in a store. Every session holds one
 * (106k at once in the benchmark), so it holds only what cannot be had
 * elsewhere, in 48 B: the recipients kept are counted by their reply codes
 * in the store (rcpts_kept()), and the reply to the end of data is kept by
 * closing records only (the open record is written as it comes). The
 * counts that reach the records are full 32 or 64 bits. */
struct txn {
	struct message *msg;
	uint64_t ts_us;
	uint64_t size;       /* content bytes */
	unsigned depth;
	unsigned rcpt_total, rcpt_accepted, rcpt_rejected;
	unsigned gaps;
	/* the generation and the flags in one word */
	unsigned gen : GEN_BITS;
	unsigned open : 1;
	unsigned active : 1; /* client activity: MAIL FROM, RCPT TO, STARTTLS */
	unsigned tls : 1;
	unsigned data_seen : 1, data_done : 1;
	unsigned replies_seen : 1;
	unsigned awaiting_end_reply : 1;  /* "." or BDAT LAST sent, its reply not seen */
};
_Static_assert(sizeof(struct txn) == 48, "struct txn grew: every session holds one");

/* A transaction the client has ended (it pipelined the next MAIL FROM,
 * RFC 2920 and RFC 3030) while replies to its commands are still on their
 * way: its end of data, its RCPTs, an RSET. It waits here for them, with its
 * own strings (the transaction slots of its store), and is written when no
 * command of its generation is left in the queue, oldest first. At most
 * CLOSING_MAX wait per session; past that the oldest is written before its
 * replies (counted: records_early). Allocated per transaction, never per
 * packet. */
struct closing {
	struct txn t;
	struct store st;
	struct closing *next;     /* the next younger one */
	uint16_t data_code;       /* the reply to its end of data, 0 if none yet */
};
#define CLOSING_MAX 4

/* What few sessions need, out of line behind one pointer: the records a
 * pipelined MAIL FROM closed while their replies are on their way, and the
 * command queue of a client that pipelines more than Q_INLINE commands.
 * Made with the first of them, freed with the last (ext_trim()): per
 * command or per transaction at most, never per packet. */
struct ext {
	struct closing *closing;  /* the oldest closing record; NULL: none */
	uint8_t n_closing;        /* records in the closing list */
	uint8_t q_cap;            /* entries of q[] */
	bool q_used;              /* the queue is in q[], not in the session's q_inline */
	struct pending q[];       /* a grown queue */
};

/* 168 B on x86-64 (the slack: 2 bytes at the end of st, 6 bits): 106k are
 * open at once in the 100k-session benchmark, side by side in the
 * tracker's array. What few sessions need is behind ext; the sensor's
 * shared state is passed in (struct smtp_env). Enums are kept in bytes
 * here; switches cast them back, so that the compiler still finds a
 * missing case (STYLE.md 7). */
struct smtp_session {
	/* Read for every segment: the states and the carries, in the first
	 * cache line. */
	uint8_t state;                  /* enum smtp_state */
	uint8_t dot;                    /* enum dot_state */
	uint8_t q_head, q_len;          /* in q_inline, or in ext once it grew */
	uint8_t auth_answers;           /* saturates: only 0, 1 and 2 are told apart */
	uint8_t mech;                   /* enum auth_mech */
	/* One bit each: a session's size counts. */
	bool server_seen : 1;
	bool smtp_seen : 1;             /* a valid reply or a known command was seen */
	bool replies_seen : 1;          /* a valid reply line was seen */
	bool reply_open : 1;            /* inside a multi-line reply */
	bool bdat_last : 1;
	bool mail_command_seen : 1;     /* HELO/EHLO, MAIL, RCPT or AUTH from the client */
	bool proxy_client_done : 1, proxy_server_200 : 1, proxy_server_done : 1;
	bool auth_active : 1;           /* AUTH in progress */
	bool auth_have_user : 1;
	bool auth_ok : 1;               /* the session is authenticated */
	uint32_t bytes_seen;            /* bytes read, counted up to the end of the line
					 * being read: the same whatever the split.
					 * Saturates (count_read): it is only compared
					 * with SMTP_VIOLATION_WINDOW and with the
					 * length of the stream's first line */
	struct pending reply_for;       /* what the open reply answers */
	unsigned gen : GEN_BITS;        /* the last record's generation (txn_open) */
	unsigned reply_code : 10;       /* of the open reply: 100-599 (parse_reply) */
	struct carry cl, sl;            /* cut lines of the client, the server */
	unsigned messages_transferred;
	uint64_t bdat_left;

	/* The open record's scalars; its strings are in st. */
	struct txn t;

	struct ext *ext;                /* NULL: no closing record, the queue inline */
	struct store st;

	struct pending q_inline[Q_INLINE];
};

/* Overwrite a secret so the compiler cannot drop the store as dead. */
static void wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

/* Bytes held beyond the struct change by delta: the sensor's count (a
 * session's own is summed when asked, smtp_session_bytes()). */
static void held(const struct smtp_env *env, int64_t delta)
{
	env->stats->store_bytes = (uint64_t)((int64_t)env->stats->store_bytes + delta);
	if (env->stats->store_bytes > env->stats->store_peak)
		env->stats->store_peak = env->stats->store_bytes;
}

/* Where slot k starts: summed from the nearer end (the transaction's
 * slots, the busy ones, are at the back). */
static size_t slot_off(const struct store *st, enum slot k)
{
	size_t o = 0;
	if (k > SL_COUNT / 2) {
		o = st->used;
		for (unsigned i = k; i < SL_COUNT; i++)
			o -= st->len[i];
	} else {
		for (unsigned i = 0; i < (unsigned)k; i++)
			o += st->len[i];
	}
	return o;
}

/* Capacity classes, each about a fifth larger than the one before (56, 72,
 * 88, 104, 120, 152, 184, 232, 280, ... STORE_MAX): a store is then mostly
 * used (starting at 120 bytes saves 3 in 4 reallocs but costs 1.7 MB at
 * 113k sessions), and grows a few times in a session at most, per command.
 * c - 8 bytes fill one of glibc's c-byte chunks (c a multiple of 16). */
static size_t store_class(size_t need)
{
	size_t c = 64;
	while (c - 8 < need) {
		size_t step = c / 4 & ~(size_t)15;
		c += step > 16 ? step : 16;
	}
	return c - 8 < STORE_MAX ? c - 8 : STORE_MAX;
}

/* Room for extra more bytes. Grows by a class (per command at most); fails
 * only on ENOMEM, or past STORE_MAX, which the slots' bounds rule out. */
static bool store_reserve(const struct smtp_env *env, struct store *st, size_t extra)
{
	size_t need = st->used + extra;
	if (need <= st->cap)
		return true;
	if (need > STORE_MAX)
		return false;
	size_t cap = store_class(need);
	char *b = realloc(st->buf, cap);
	if (!b)
		return false;
	held(env, (int64_t)cap - st->cap);
	st->buf = b;
	st->cap = (uint16_t)cap;
	return true;
}

static void store_free(const struct smtp_env *env, struct store *st)
{
	if (st->buf) {
		free(st->buf);
		held(env, -(int64_t)st->cap);
	}
	memset(st, 0, sizeof *st);
}

/* Give back what a written record left: a store keeps the capacity of the
 * largest record its session sent until the session ends, otherwise — at
 * 113k sessions a third of what the stores held (8.5 MB of 25 MB) was room
 * that earlier, larger transactions had needed. It shrinks to the class
 * that holds what is left: keeping 64 B of room for the next transaction's
 * MAIL FROM cost 1.8 MB of peak RSS there, to save one realloc per
 * transaction. Per record, not per packet; a failed shrink keeps the block
 * as it is. */
static void store_fit(const struct smtp_env *env, struct store *st)
{
	if (!st->used) {
		store_free(env, st);
		return;
	}
	size_t cap = store_class(st->used);
	if (cap >= st->cap)
		return;
	char *b = realloc(st->buf, cap);
	if (!b)
		return;
	held(env, (int64_t)cap - st->cap);
	st->buf = b;
	st->cap = (uint16_t)cap;
}

/* Make slot k n bytes long, moving the slots after it; the room must be
 * reserved. Returns its start. */
static char *slot_resize(struct store *st, enum slot k, size_t n)
{
	if (n == st->len[k])
		return st->buf + slot_off(st, k);
	size_t off = slot_off(st, k);
	size_t tail = st->used - off - st->len[k];
	memmove(st->buf + off + n, st->buf + off + st->len[k], tail);
	st->used = (uint16_t)(st->used + n - st->len[k]);
	st->len[k] = (uint16_t)n;
	return st->buf + off;
}

/* Slot k becomes n bytes of undefined content: returns its start, or NULL
 * (out of memory) with the slot empty. */
static char *slot_put(const struct smtp_env *env, struct store *st, enum slot k, size_t n)
{
	if (n > st->len[k] && !store_reserve(env, st, n - st->len[k])) {
		if (st->len[k])
			slot_resize(st, k, 0);
		return NULL;
	}
	return slot_resize(st, k, n);
}

/* Slot k becomes the string src[0..n). */
static void slot_set(const struct smtp_env *env, struct store *st, enum slot k, const char *src,
		     size_t n)
{
	char *d = slot_put(env, st, k, n + 1);
	if (d) {
		memcpy(d, src, n);
		d[n] = 0;
	}
}

static void slot_clear(struct store *st, enum slot k)
{
	if (st->len[k])
		slot_resize(st, k, 0);
}

/* The string in slot k, NULL if absent. */
static const char *slot_str(const struct store *st, enum slot k)
{
	return st->len[k] ? st->buf + slot_off(st, k) : NULL;
}

/* The closing record whose scalars are t (not the session's open one). */
static struct closing *closing_of(struct txn *t)
{
	return (struct closing *)((char *)t - offsetof(struct closing, t));
}

/* The store of record t: the session's for the open one. */
static struct store *txn_store(struct smtp_session *s, struct txn *t)
{
	return t == &s->t ? &s->st : &closing_of(t)->st;
}

/* --- the extension ------------------------------------------------------------ */

/* Bytes of an extension with room for q_cap queued commands. */
static size_t ext_size(unsigned q_cap)
{
	return sizeof(struct ext) + q_cap * sizeof(struct pending);
}

/* The oldest closing record, NULL if none. */
static struct closing *closings(const struct smtp_session *s)
{
	return s->ext ? s->ext->closing : NULL;
}

/* A new extension with room for q_cap commands, to replace the session's
 * (ext_install()): its closing records are copied over, its queue is the
 * caller's to fill. NULL on ENOMEM. */
static struct ext *ext_alloc(const struct smtp_session *s, unsigned q_cap)
{
	struct ext *e = malloc(ext_size(q_cap));
	if (e) {
		e->closing = closings(s);
		e->n_closing = s->ext ? s->ext->n_closing : 0;
		e->q_cap = (uint8_t)q_cap;
		e->q_used = false;
	}
	return e;
}

/* e (from ext_alloc()) replaces the session's extension, which is freed. */
static void ext_install(struct smtp_session *s, const struct smtp_env *env, struct ext *e)
{
	if (s->ext) {
		held(env, -(int64_t)ext_size(s->ext->q_cap));
		free(s->ext);
	}
	held(env, (int64_t)ext_size(e->q_cap));
	s->ext = e;
}

/* Free the extension once it holds nothing: no closing record, the queue
 * inline. The room of a queue that emptied stays while closing records
 * wait, which is not long: with nothing queued, none waits for a reply any
 * more, and closing_drain() writes them at the end of that reply. */
static void ext_trim(struct smtp_session *s, const struct smtp_env *env)
{
	struct ext *e = s->ext;
	if (e && !e->closing && !e->q_used) {
		held(env, -(int64_t)ext_size(e->q_cap));
		free(e);
		s->ext = NULL;
	}
}

/* --- the line pool ------------------------------------------------------------ */

static int line_list_init(struct line_list *l, uint32_t max, size_t size)
{
	l->max = max;
	l->size = (uint32_t)size;
	l->free = calloc(max ? max : 1, sizeof *l->free);
	/* calloc: a large array is mapped, and costs only the pages used */
	l->bufs = calloc(max ? max : 1, size);
	return l->free && l->bufs ? 0 : -ENOMEM;
}

static void line_list_finish(struct line_list *l)
{
	free(l->free);
	free(l->bufs);
}

struct smtp_line_pool *smtp_line_pool_create(uint32_t small, uint32_t big)
{
	struct smtp_line_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	if (line_list_init(&p->small, small, SMTP_CARRY_SMALL) < 0 ||
	    line_list_init(&p->big, big, LINE_KEEP) < 0) {
		smtp_line_pool_destroy(p);
		return NULL;
	}
	return p;
}

void smtp_line_pool_destroy(struct smtp_line_pool *p)
{
	if (!p)
		return;
	line_list_finish(&p->small);
	line_list_finish(&p->big);
	free(p);
}

static char *line_list_buf(const struct line_list *l, uint32_t n)
{
	return l->bufs + (size_t)(n - 1) * l->size;
}

void smtp_line_pool_memory(const struct smtp_line_pool *p,
			   void (*fn)(void *arg, const void *b, size_t n), void *arg)
{
	for (uint32_t i = 0; p && i < p->small.nfree; i++)
		fn(arg, line_list_buf(&p->small, p->small.free[i]), SMTP_CARRY_SMALL);
	for (uint32_t i = 0; p && i < p->big.nfree; i++)
		fn(arg, line_list_buf(&p->big, p->big.free[i]), LINE_KEEP);
}

/* The pool's list of whole-line buffers, or of small ones. */
static struct line_list *line_list_of(const struct smtp_env *env, bool big)
{
	return big ? &env->lines->big : &env->lines->small;
}

/* The buffer a carry holds, NULL if none. */
static char *carry_buf(const struct smtp_env *env, const struct carry *c)
{
	if (!c->buf)
		return NULL;
	return line_list_buf(line_list_of(env, c->big), c->buf);
}

/* A recycled buffer's number, or a new one's while the list is under its
 * bound; 0: none. */
static uint32_t line_take(const struct smtp_env *env, bool big)
{
	if (!env->lines)
		return 0;
	struct line_list *l = line_list_of(env, big);
	uint32_t b;
	if (l->nfree)
		b = l->free[--l->nfree];
	else if (l->made < l->max)
		b = ++l->made;
	else
		return 0;
	uint64_t *n = big ? &env->stats->line_bufs_big : &env->stats->line_bufs_small;
	uint64_t *peak = big ? &env->stats->line_bufs_big_peak : &env->stats->line_bufs_small_peak;
	if (++*n > *peak)
		*peak = *n;
	return b;
}

/* A pooled buffer may have held an AUTH line: wiped before anyone else
 * can have it. */
static void line_give(const struct smtp_env *env, uint32_t b, bool big, size_t used)
{
	struct line_list *l = line_list_of(env, big);
	wipe(line_list_buf(l, b), used);
	l->free[l->nfree++] = b;
	if (big)
		env->stats->line_bufs_big--;
	else
		env->stats->line_bufs_small--;
}

/* --- small helpers --------------------------------------------------------- */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Decode base64 (stops at '=' or junk). Returns bytes written (<= outsz). */
static size_t b64decode(const char *in, size_t n, unsigned char *out, size_t outsz)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)in[i]);
		if (v < 0)
			break;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o < outsz)
				out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return o;
}

/* Zeek's email-address match (scripts/base/utils/email.zeek semantics): at
 * the leftmost position that allows it, an optional delimiter from "<,: \t",
 * a local part without "<,: \t@", '@', a domain without ">,; \t", and its
 * terminating delimiter if any. Scanning runs of local-part characters
 * finds the same match in one pass (a character-by-character retry from
 * every position is quadratic on a long argument). */
static bool local_stop(char c)
{
	return c == '<' || c == ',' || c == ':' || c == ' ' || c == '\t' || c == '@' || c == 0;
}

static bool domain_stop(char c)
{
	return c == '>' || c == ',' || c == ';' || c == ' ' || c == '\t' || c == 0;
}

static bool lead_delim(char c)
{
	return c == '<' || c == ',' || c == ':' || c == ' ' || c == '\t';
}

/* Find the next email address in s[*pos..n), cleaned of "<>,:;" and blanks
 * as Zeek logs it. Returns false when there is none. */
static bool next_email(const char *s, size_t n, size_t *pos, char *out, size_t outsz)
{
	size_t i = *pos;
	while (i < n) {
		if (local_stop(s[i])) {
			i++;
			continue;
		}
		size_t a = i; /* a run of local-part characters */
		while (i < n && !local_stop(s[i]))
			i++;
		if (i >= n || s[i] != '@')
			continue;
		size_t j = i + 1;
		while (j < n && !domain_stop(s[j]))
			j++;
		if (j == i + 1) {
			i++; /* "user@" then a stop: no domain */
			continue;
		}
		size_t t = a > *pos && lead_delim(s[a - 1]) ? a - 1 : a;
		size_t e = j < n ? j + 1 : j;
		size_t o = 0;
		for (size_t k = t; k < e && o + 1 < outsz; k++)
			if (!(s[k] == '<' || s[k] == '>' || s[k] == ',' || s[k] == ':' ||
			      s[k] == ';' || s[k] == ' ' || s[k] == '\t'))
				out[o++] = s[k];
		out[o] = 0;
		*pos = e;
		return o > 0;
	}
	*pos = n;
	return false;
}

/* --- records ----------------------------------------------------------------- */

/* Empty the transaction's slots of the session's store. */
static void txn_slots_clear(struct smtp_session *s)
{
	s->st.used = (uint16_t)slot_off(&s->st, SL_MAILFROM);
	for (unsigned k = SL_MAILFROM; k < SL_COUNT; k++)
		s->st.len[k] = 0;
}

static void txn_open(struct smtp_session *s, uint64_t ts)
{
	if (s->t.open)
		return;
	struct message *keep = s->t.msg;
	memset(&s->t, 0, sizeof s->t);
	s->t.msg = keep;
	txn_slots_clear(s);
	s->t.open = true;
	s->gen = s->gen >= GEN_MAX ? 1 : s->gen + 1; /* 0 means no record */
	s->t.gen = s->gen;
	s->t.ts_us = ts;
	/* Zeek's rule (messages completed + 1), counting a closing message
	 * whose reply is still on its way as completed. */
	s->t.depth = s->messages_transferred + 1;
	for (const struct closing *c = closings(s); c; c = c->next)
		s->t.depth += c->t.awaiting_end_reply;
}

static void release_message(const struct smtp_env *env, struct txn *t)
{
	if (t->msg) {
		env->ev->msg_release(env->ctx, t->msg);
		t->msg = NULL;
	}
}

/* The client did something that makes the record worth writing; its time
 * is the time of the first such command. */
static void txn_activity(struct smtp_session *s, uint64_t ts)
{
	txn_open(s, ts);
	if (!s->t.active)
		s->t.ts_us = ts;
	s->t.active = true;
}

/* Recipients kept in a record: its store holds a reply code (2 bytes)
 * for each, appended with the address (cmd_rcpt). */
static unsigned rcpts_kept(const struct store *st)
{
	return st->len[SL_RCPT_CODE] / 2u;
}

/* Write record t if the client did something, then close it. data_code:
 * the reply to its end of data, 0 if none. */
static void txn_write(struct smtp_session *s, const struct smtp_env *env, struct txn *t,
		      uint16_t data_code)
{
	if (t->open && t->active) {
		const struct store *st = txn_store(s, t);
		struct smtp_txn out;
		memset(&out, 0, sizeof out);
		out.ts_us = t->ts_us;
		out.trans_depth = t->depth;
		out.helo = slot_str(&s->st, SL_HELO);
		out.auth_ok = s->auth_ok;
		if (s->auth_ok) {
			/* NULL when the mechanism hides the name (NTLM, GSSAPI,
			 * EXTERNAL): auth_ok says the session is authenticated */
			out.auth_user = slot_str(&s->st, SL_AUTH_USER);
			out.auth_mech = slot_str(&s->st, SL_AUTH_MECH);
		}
		out.mailfrom = slot_str(st, SL_MAILFROM);
		const char *r = slot_str(st, SL_RCPT);
		const char *code = slot_str(st, SL_RCPT_CODE);
		unsigned n_rcpt = rcpts_kept(st);
		for (unsigned i = 0; i < n_rcpt; i++) {
			out.rcpt[i] = r;
			r += strlen(r) + 1;
			memcpy(&out.rcpt_code[i], code + 2 * i, 2);
		}
		out.n_rcpt = n_rcpt;
		out.rcpt_total = t->rcpt_total;
		out.rcpt_accepted = t->rcpt_accepted;
		out.rcpt_rejected = t->rcpt_rejected;
		if (st->len[SL_RELAYED])
			memcpy(&out.rcpt_relayed_unkept, slot_str(st, SL_RELAYED), 4);
		out.last_reply = slot_str(st, SL_REPLY);
		out.tls = t->tls;
		out.data_seen = t->data_seen;
		out.data_done = t->data_done;
		out.data_code = data_code;
		out.replies_seen = t->replies_seen;
		if (t->msg) {
			message_finish(t->msg);
			out.msg = message_info(t->msg);
		}
		out.size = t->size;
		out.gaps = t->gaps;
		env->stats->transactions++;
		if (env->ev->transaction)
			env->ev->transaction(env->ctx, &out);
	}
	release_message(env, t);
	t->open = false;
	if (t == &s->t) {
		/* the strings were the record's: the session needs none of them
		 * until its next transaction */
		txn_slots_clear(s);
		store_fit(env, &s->st);
	}
}

/* Free the oldest closing record (written or not). */
static void closing_free(struct smtp_session *s, const struct smtp_env *env)
{
	struct closing *c = s->ext->closing;
	s->ext->closing = c->next;
	s->ext->n_closing--;
	store_free(env, &c->st);
	free(c);
	held(env, -(int64_t)sizeof(struct closing));
	ext_trim(s, env);
}

/* Write and free the oldest closing record. */
static void closing_write(struct smtp_session *s, const struct smtp_env *env)
{
	struct closing *c = s->ext->closing;
	txn_write(s, env, &c->t, c->data_code);
	closing_free(s, env);
}

/* True if a command of record generation gen still waits for its reply. */
static bool gen_pending(struct smtp_session *s, uint32_t gen);

/* Write the closing records that wait for nothing any more, oldest first
 * (replies come in order: a younger one cannot be done before an older). */
static void closing_drain(struct smtp_session *s, const struct smtp_env *env)
{
	const struct closing *c;
	while ((c = closings(s)) && !gen_pending(s, c->t.gen))
		closing_write(s, env);
}

/* The open record joins the closing list, with a copy of its strings (the
 * session's store keeps its capacity for the next record). */
static bool closing_make(struct smtp_session *s, const struct smtp_env *env)
{
	if (s->ext && s->ext->n_closing >= CLOSING_MAX) {
		env->stats->records_early++;
		closing_write(s, env);
	}
	if (!s->ext) {
		struct ext *e = ext_alloc(s, 0);
		if (!e)
			return false;
		ext_install(s, env, e);
	}
	struct closing *c = malloc(sizeof *c);
	if (!c) {
		ext_trim(s, env);
		return false;
	}
	memset(&c->st, 0, sizeof c->st);
	c->next = NULL;
	c->data_code = 0;
	size_t off = slot_off(&s->st, SL_MAILFROM), n = s->st.used - off;
	if (n) {
		c->st.buf = malloc(store_class(n));
		if (!c->st.buf) {
			free(c);
			ext_trim(s, env);
			return false;
		}
		c->st.cap = (uint16_t)store_class(n);
		memcpy(c->st.buf, s->st.buf + off, n);
		c->st.used = (uint16_t)n;
		for (unsigned k = SL_MAILFROM; k < SL_COUNT; k++)
			c->st.len[k] = s->st.len[k];
	}
	c->t = s->t;
	struct closing **tail = &s->ext->closing;
	while (*tail)
		tail = &(*tail)->next;
	*tail = c;
	s->ext->n_closing++;
	held(env, (int64_t)(sizeof *c + c->st.cap));
	return true;
}

/* Write the closing records, then the open one, with data_code: the
 * reply to its end of data, 0 if none. */
static void txn_flush(struct smtp_session *s, const struct smtp_env *env, uint16_t data_code)
{
	while (closings(s))
		closing_write(s, env);
	txn_write(s, env, &s->t, data_code);
}

/* A message begins (DATA sent, first BDAT chunk, 354 after a gap). */
static void begin_data(struct smtp_session *s, const struct smtp_env *env, uint64_t ts)
{
	txn_open(s, ts);
	s->t.data_seen = true;
	s->t.data_done = false;
	if (!s->t.msg) {
		s->t.msg = env->ev->msg_acquire(env->ctx);
		if (!s->t.msg)
			env->stats->no_message_parser++;
	} else {
		message_reset(s->t.msg); /* a second message in one record: the last wins */
	}
	s->dot = DOT_LINE_START;
}

static void end_data(struct smtp_session *s)
{
	if (s->t.msg)
		message_finish(s->t.msg);
	s->t.data_done = true;
}

static void feed_content(struct smtp_session *s, const uint8_t *p, size_t n)
{
	s->t.size += n;
	if (s->t.msg)
		message_feed(s->t.msg, (const char *)p, n);
}

/* --- the pending-command queue ------------------------------------------------ */

static bool q_grown(const struct smtp_session *s)
{
	return s->ext && s->ext->q_used;
}

static unsigned q_capacity(const struct smtp_session *s)
{
	return q_grown(s) ? s->ext->q_cap : Q_INLINE;
}

/* The queue's entries: inline, or in the extension once it grew. */
static struct pending *q_entries(struct smtp_session *s)
{
	return q_grown(s) ? s->ext->q : s->q_inline;
}

/* Twice the room, up to SMTP_PENDING_MAX (a pipelining client, per command
 * at most); false when at the bound or out of memory. */
static bool q_grow(struct smtp_session *s, const struct smtp_env *env)
{
	unsigned cap = q_capacity(s);
	if (cap >= SMTP_PENDING_MAX)
		return false;
	unsigned ncap = cap * 2 < SMTP_PENDING_MAX ? cap * 2 : SMTP_PENDING_MAX;
	struct ext *e = ext_alloc(s, ncap);
	if (!e)
		return false;
	const struct pending *old = q_entries(s);
	for (unsigned i = 0; i < s->q_len; i++)
		e->q[i] = old[(s->q_head + i) % cap];
	e->q_used = true;
	ext_install(s, env, e);
	s->q_head = 0;
	return true;
}

/* The queue is empty: back inline, its room freed with the extension. */
static void q_free(struct smtp_session *s, const struct smtp_env *env)
{
	if (s->ext)
		s->ext->q_used = false;
	s->q_head = s->q_len = 0;
	ext_trim(s, env);
}

static void push_cmd(struct smtp_session *s, const struct smtp_env *env, enum cmd cmd,
		     unsigned flags, unsigned rcpt)
{
	unsigned cap = q_capacity(s);
	if (s->q_len == cap && !q_grow(s, env)) {
		/* A client that never reads replies (or a one-sided capture): drop
		 * the oldest, count it, and keep going. */
		s->q_head = (uint8_t)((s->q_head + 1) % cap);
		s->q_len--;
		env->stats->pending_overflow++;
	}
	cap = q_capacity(s);
	struct pending *e = &q_entries(s)[(s->q_head + s->q_len) % cap];
	e->cmd = cmd;
	e->flags = flags;
	e->rcpt = rcpt;
	e->gen = s->t.open ? s->t.gen : 0;
	s->q_len++;
}

static bool gen_pending(struct smtp_session *s, uint32_t gen)
{
	const struct pending *q = q_entries(s);
	unsigned cap = q_capacity(s);
	for (unsigned i = 0; i < s->q_len; i++)
		if (q[(s->q_head + i) % cap].gen == gen)
			return true;
	return false;
}

static struct pending pop_cmd(struct smtp_session *s, const struct smtp_env *env)
{
	struct pending e = { CMD_NONE, 0, 0, 0 };
	if (s->q_len) {
		e = q_entries(s)[s->q_head];
		s->q_head = (uint8_t)((s->q_head + 1) % q_capacity(s));
		s->q_len--;
		if (!s->q_len)
			q_free(s, env); /* a burst answered: back to the inline queue */
	}
	return e;
}

/* --- AUTH ---------------------------------------------------------------------- */

static enum auth_mech mech_of(const char *m)
{
	if (!strcasecmp(m, "PLAIN")) return MECH_PLAIN;
	if (!strcasecmp(m, "LOGIN")) return MECH_LOGIN;
	if (!strcasecmp(m, "CRAM-MD5")) return MECH_CRAM_MD5;
	if (!strcasecmp(m, "XOAUTH2")) return MECH_XOAUTH2;
	if (!strcasecmp(m, "OAUTHBEARER")) return MECH_OAUTHBEARER;
	if (!strncasecmp(m, "SCRAM-", 6)) return MECH_SCRAM;
	return MECH_OTHER;
}

static void set_try_user(struct smtp_session *s, const struct smtp_env *env, const char *u,
			 size_t n)
{
	char name[SMTP_USER_MAX] = "";
	size_t o = 0;
	for (size_t i = 0; i < n && o < SMTP_USER_MAX; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c >= 0x20 && c != 0x7f) /* no control bytes from the wire in a name */
			name[o++] = (char)c;
	}
	slot_set(env, &s->st, SL_TRY_USER, name, o);
	s->auth_have_user = o > 0 && s->st.len[SL_TRY_USER];
}

/* Value of "key=" in a list separated by sep (XOAUTH2, OAUTHBEARER, SCRAM). */
static bool kv_value(const unsigned char *d, size_t n, const char *key, char sep,
		     const unsigned char **v, size_t *vn)
{
	size_t kl = strlen(key);
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && d[j] != (unsigned char)sep)
			j++;
		if (j - i > kl && !memcmp(d + i, key, kl)) {
			*v = d + i + kl;
			*vn = j - i - kl;
			return true;
		}
		i = j + 1;
	}
	return false;
}

/* One base64 AUTH response (initial or answer): take the user name out,
 * then wipe the decoded bytes. The line itself is the segment's, or a
 * carried copy that is wiped when its buffer goes back to the pool. */
static void auth_response(struct smtp_session *s, const struct smtp_env *env, const char *b64,
			  size_t n)
{
	unsigned char d[SMTP_LINE_MAX];
	size_t dn = b64decode(b64, n, d, sizeof d);
	const unsigned char *v;
	size_t vn;
	unsigned answer = s->auth_answers;
	if (s->auth_answers < UINT8_MAX)
		s->auth_answers++;
	switch ((enum auth_mech)s->mech) {
	case MECH_PLAIN: {
		/* RFC 4616: [authzid] NUL authcid NUL passwd. The password is
		 * the field after the last NUL and is never taken: with two
		 * NULs the name is authcid (authzid when authcid is empty);
		 * with one (a client that left a field out) it is the field
		 * before it; with none, nothing. */
		unsigned char *a = memchr(d, 0, dn);
		if (a) {
			unsigned char *b = memchr(a + 1, 0, dn - (size_t)(a + 1 - d));
			if (b && b > a + 1)
				set_try_user(s, env, (const char *)a + 1, (size_t)(b - a - 1));
			else if (a > d)
				set_try_user(s, env, (const char *)d, (size_t)(a - d));
		}
		break;
	}
	case MECH_LOGIN:
		/* The user name comes first (initial response or first answer),
		 * then the password, which is never decoded further. */
		if (!s->auth_have_user && answer == 0)
			set_try_user(s, env, (const char *)d, dn);
		break;
	case MECH_CRAM_MD5: {
		/* RFC 2195: "user SP hex-digest" */
		unsigned char *sp = memchr(d, ' ', dn);
		if (sp)
			set_try_user(s, env, (const char *)d, (size_t)(sp - d));
		break;
	}
	case MECH_XOAUTH2:
		if (kv_value(d, dn, "user=", '\x01', &v, &vn))
			set_try_user(s, env, (const char *)v, vn);
		break;
	case MECH_OAUTHBEARER:
		/* RFC 7628: gs2 header "n,a=user," */
		if (kv_value(d, dn, "a=", ',', &v, &vn))
			set_try_user(s, env, (const char *)v, vn);
		break;
	case MECH_SCRAM:
		/* RFC 5802 client-first: "n,,n=user,r=nonce" */
		if (answer == 0 && kv_value(d, dn, "n=", ',', &v, &vn))
			set_try_user(s, env, (const char *)v, vn);
		break;
	case MECH_OTHER:
		break;
	}
	wipe(d, sizeof d);
}

static void auth_done(struct smtp_session *s, const struct smtp_env *env,
		      enum smtp_auth_outcome outcome, uint16_t code, uint64_t ts)
{
	if (!s->auth_active)
		return;
	s->auth_active = false;
	env->stats->auth_attempts++;
	if (outcome == SMTP_AUTH_FAILURE)
		env->stats->auth_failures++;
	if (outcome == SMTP_AUTH_SUCCESS) {
		/* Copied out first: setting a slot moves the slots after it. */
		char user[SMTP_USER_MAX + 1] = "", mech[SMTP_MECH_MAX + 1] = "";
		if (s->auth_have_user)
			memcpy(user, slot_str(&s->st, SL_TRY_USER), s->st.len[SL_TRY_USER]);
		if (s->st.len[SL_MECH])
			memcpy(mech, slot_str(&s->st, SL_MECH), s->st.len[SL_MECH]);
		s->auth_ok = true;
		/* an empty slot is absent: no name ("") is NULL in the records */
		if (user[0])
			slot_set(env, &s->st, SL_AUTH_USER, user, strlen(user));
		else
			slot_clear(&s->st, SL_AUTH_USER);
		if (mech[0])
			slot_set(env, &s->st, SL_AUTH_MECH, mech, strlen(mech));
		else
			slot_clear(&s->st, SL_AUTH_MECH);
	}
	if (env->ev->auth) {
		const char *mech = slot_str(&s->st, SL_MECH);
		struct smtp_auth_event a = {
			.ts_us = ts,
			.mech = mech ? mech : "",
			.user = s->auth_have_user ? slot_str(&s->st, SL_TRY_USER) : NULL,
			.outcome = outcome,
			.code = code,
		};
		env->ev->auth(env->ctx, &a);
	}
	/* The attempt is over: its slots are not kept for the session's life
	 * (what succeeded was copied above), so the transactions reuse their
	 * room in the store. */
	slot_clear(&s->st, SL_MECH);
	slot_clear(&s->st, SL_TRY_USER);
	s->auth_have_user = false;
}

/* --- client commands ------------------------------------------------------------ */

static enum cmd cmd_of(const char *w, size_t n)
{
	static const struct { const char *name; enum cmd cmd; } tab[] = {
		{ "HELO", CMD_HELO }, { "EHLO", CMD_HELO }, { "MAIL", CMD_MAIL },
		{ "RCPT", CMD_RCPT }, { "DATA", CMD_DATA }, { "BDAT", CMD_BDAT },
		{ "RSET", CMD_RSET }, { "QUIT", CMD_QUIT }, { "STARTTLS", CMD_STARTTLS },
		{ "AUTH", CMD_AUTH }, { "NOOP", CMD_OTHER }, { "VRFY", CMD_OTHER },
		{ "EXPN", CMD_OTHER }, { "HELP", CMD_OTHER }, { "TURN", CMD_OTHER },
		{ "ETRN", CMD_OTHER }, { "SEND", CMD_MAIL }, { "SOML", CMD_MAIL },
		{ "SAML", CMD_MAIL }, { "X-ANONYMOUSTLS", CMD_STARTTLS },
	};
	if (n != 4 && n != 8 && n != 14)
		return CMD_UNKNOWN; /* every command word is 4 letters, but two */
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if ((tab[i].name[0] | 0x20) == (w[0] | 0x20) && strlen(tab[i].name) == n &&
		    !strncasecmp(w, tab[i].name, n))
			return tab[i].cmd;
	return CMD_UNKNOWN;
}

static bool prefix_ci(const char *s, size_t n, const char *p)
{
	size_t pl = strlen(p);
	return n >= pl && !strncasecmp(s, p, pl);
}

/* RFC 3030: "BDAT" SP chunk-size [SP end-marker]. Returns false if invalid
 * (empty, not digits, overflowing, junk after the size). */
static bool parse_bdat(const char *a, size_t n, uint64_t *size, bool *last)
{
	if (n == 0 || n > SMTP_BDAT_ARG_MAX || !isdigit((unsigned char)a[0]))
		return false;
	uint64_t v = 0;
	size_t i = 0;
	for (; i < n && isdigit((unsigned char)a[i]); i++) {
		unsigned d = (unsigned)(a[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false; /* checked before the multiply: no wrap */
		v = v * 10 + d;
	}
	if (v > (uint64_t)INT64_MAX)
		return false;
	*last = false;
	if (i < n) {
		if (n - i != 5 || strncasecmp(a + i, " LAST", 5))
			return false;
		*last = true;
	}
	*size = v;
	return true;
}

static bool ends_with_last(const char *a, size_t n)
{
	return n >= 5 && !strncasecmp(a + n - 5, " LAST", 5);
}

static void cmd_mail(struct smtp_session *s, const struct smtp_env *env, const char *arg, size_t n,
		     uint64_t ts)
{
	if (!prefix_ci(arg, n, "FROM:"))
		return;
	if (s->t.open && s->t.active && s->replies_seen && gen_pending(s, s->t.gen)) {
		/* Pipelined: replies to this record's commands (its end of
		 * data, RCPTs, an RSET) are still on their way; they close it. */
		if (closing_make(s, env)) {
			s->t.open = false;
			s->t.msg = NULL;
		} else {
			txn_flush(s, env, 0); /* no memory: write it now, without its replies */
		}
	} else {
		txn_flush(s, env, 0); /* answered, or no server side to wait for */
	}
	txn_activity(s, ts);
	char path[SMTP_PATH_MAX + 1];
	size_t pos = 0;
	if (next_email(arg, n, &pos, path, sizeof path))
		slot_set(env, &s->st, SL_MAILFROM, path, strlen(path));
}

/* A recipient not kept is held against local_domains by the judgement
 * open_relay applies to a kept one (address_relayed()): a route
 * (user%elsewhere@ours) or a domain not ours is relayed if accepted
 * (rcpt_reply() counts it). Without it, a client of an open relay sent 100
 * accepted local recipients first and its foreign ones went unseen.
 * O(local domains) per recipient past the bound, nothing kept: the wire
 * cannot make it cost more. Not known (no local_domains): nothing is. */
static bool rcpt_relayed(const struct smtp_env *env, const char *addr)
{
	const char *dest;
	size_t n;
	return env->local_domains && env->local_domains->n &&
	       address_relayed(addr, env->local_domains, &dest, &n);
}

static uint16_t cmd_rcpt(struct smtp_session *s, const struct smtp_env *env, const char *arg,
			 size_t n, uint64_t ts)
{
	if (!prefix_ci(arg, n, "TO:"))
		return 0;
	txn_activity(s, ts);
	struct txn *t = &s->t;
	struct store *st = &s->st;
	t->rcpt_total++;
	/* Keep the first address of the argument (the forward-path; ESMTP
	 * parameters such as ORCPT repeat it). */
	char addr[SMTP_PATH_MAX + 1];
	size_t pos = 0;
	if (!next_email(arg, n, &pos, addr, sizeof addr))
		return 0;
	size_t len = strlen(addr) + 1, used = st->len[SL_RCPT];
	unsigned n_rcpt = rcpts_kept(st);
	if (n_rcpt >= SMTP_RCPT_KEEP_MAX || used + len > SMTP_RCPT_ARENA) {
		env->stats->rcpt_over_keep++;
		return rcpt_relayed(env, addr) ? RCPT_RELAYED : 0;
	}
	if (!store_reserve(env, st, len + 2))
		return 0; /* out of memory: not kept */
	memcpy(slot_resize(st, SL_RCPT, used + len) + used, addr, len);
	memset(slot_resize(st, SL_RCPT_CODE, 2u * n_rcpt + 2) + 2 * n_rcpt, 0, 2);
	return (uint16_t)(n_rcpt + 1);
}

static void cmd_auth(struct smtp_session *s, const struct smtp_env *env, const char *arg, size_t n)
{
	/* "AUTH" SP mechanism [SP initial-response] (RFC 4954 §4) */
	size_t m = 0;
	while (m < n && arg[m] != ' ')
		m++;
	char mech[SMTP_MECH_MAX + 1];
	size_t ml = m < SMTP_MECH_MAX ? m : SMTP_MECH_MAX;
	for (size_t i = 0; i < ml; i++)
		mech[i] = (char)toupper((unsigned char)arg[i]);
	mech[ml] = 0;
	ml = strlen(mech); /* a NUL from the wire ends the name */
	slot_set(env, &s->st, SL_MECH, mech, ml);
	s->mech = mech_of(mech);
	s->auth_active = true;
	s->auth_answers = 0;
	s->auth_have_user = false;
	slot_clear(&s->st, SL_TRY_USER);
	if (m < n) {
		const char *ir = arg + m + 1;
		size_t irn = n - m - 1;
		/* RFC 4954 §4: "=" is an empty initial response. The initial
		 * response is not an answer to a 334, except that SCRAM's
		 * client-first message has then been sent. */
		if (!(irn == 1 && ir[0] == '=')) {
			auth_response(s, env, ir, irn);
			s->auth_answers = s->mech == MECH_SCRAM ? 1 : 0;
		}
	}
}

static void client_command(struct smtp_session *s, const struct smtp_env *env, const char *line,
			   size_t n, uint64_t ts)
{
	/* The command word runs from the start of the line to the first blank
	 * (RFC 5321 §4.1.1); the argument is the rest after blanks. */
	size_t w = 0;
	while (w < n && line[w] != ' ' && line[w] != '\t')
		w++;
	enum cmd c = cmd_of(line, w);
	const char *arg = line + w;
	size_t an = n - w;
	while (an && (*arg == ' ' || *arg == '\t')) {
		arg++;
		an--;
	}
	unsigned rcpt = 0;
	unsigned flags = 0;
	if (c != CMD_UNKNOWN)
		s->smtp_seen = true;
	switch (c) {
	case CMD_HELO:
		slot_set(env, &s->st, SL_HELO, arg, an < SMTP_HELO_MAX ? an : SMTP_HELO_MAX);
		s->mail_command_seen = true;
		break;
	case CMD_MAIL:
		cmd_mail(s, env, arg, an, ts);
		s->mail_command_seen = true;
		break;
	case CMD_RCPT:
		rcpt = cmd_rcpt(s, env, arg, an, ts);
		s->mail_command_seen = true;
		break;
	case CMD_DATA:
		/* Content starts now, not at the 354: the client cannot send it
		 * earlier, and one-sided captures never show the 354. */
		push_cmd(s, env, CMD_DATA, 0, 0);
		begin_data(s, env, ts);
		s->state = ST_DATA;
		return;
	case CMD_BDAT: {
		uint64_t size;
		bool last;
		if (ends_with_last(arg, an)) {
			flags |= PEND_BDAT_LAST;
			if (s->t.open)
				s->t.awaiting_end_reply = true;
		}
		push_cmd(s, env, CMD_BDAT, flags, 0);
		if (!parse_bdat(arg, an, &size, &last)) {
			/* No chunk follows that we could measure: the next bytes are
			 * read as commands, and the server will reject this one. */
			env->stats->bdat_invalid++;
			return;
		}
		if (!s->t.data_seen || s->t.data_done || !s->t.open)
			begin_data(s, env, ts);
		s->bdat_left = size;
		s->bdat_last = last;
		s->state = ST_BDAT;
		if (size == 0 && last)
			end_data(s);
		if (size == 0)
			s->state = ST_COMMAND;
		return;
	}
	case CMD_AUTH:
		cmd_auth(s, env, arg, an);
		break;
	case CMD_RSET:
	case CMD_QUIT:
	case CMD_STARTTLS:
	case CMD_OTHER:
	case CMD_UNKNOWN:
		break;
	case CMD_NONE:
	case CMD_CONNECT:
	case CMD_DOT:
	case CMD_AUTH_ANSWER:
		break; /* never parsed from a line */
	}
	push_cmd(s, env, c, flags, rcpt);
}

/* A line answering a 334 (or, with no server side visible, an AUTH that
 * still expects answers). Never a command, whatever it looks like. */
static void client_auth_answer(struct smtp_session *s, const struct smtp_env *env, const char *line,
			       size_t n, uint64_t ts)
{
	push_cmd(s, env, CMD_AUTH_ANSWER, 0, 0);
	if (n == 1 && line[0] == '*') {
		auth_done(s, env, SMTP_AUTH_ABORTED, 0, ts); /* RFC 4954 §4: client cancels */
		return;
	}
	auth_response(s, env, line, n);
}

/* Without replies, how many answers does this AUTH still owe? */
static bool auth_expects_answer_blind(const struct smtp_session *s)
{
	if (!s->auth_active || s->server_seen)
		return false;
	switch ((enum auth_mech)s->mech) {
	case MECH_LOGIN:
		return s->auth_answers < (s->auth_have_user ? 1u : 2u);
	case MECH_PLAIN:
		return !s->auth_have_user && s->auth_answers == 0;
	case MECH_CRAM_MD5:
		return s->auth_answers == 0;
	case MECH_XOAUTH2:
	case MECH_OAUTHBEARER:
	case MECH_SCRAM:
	case MECH_OTHER:
		return false;
	}
	return false;
}

/* One client line: where it lies in the segment, or in a carry buffer
 * (wiped when it goes back: AUTH secrets, and anything else). */
static void client_line(struct smtp_session *s, const struct smtp_env *env, const char *line,
			size_t n, uint64_t ts)
{
	switch ((enum smtp_state)s->state) {
	case ST_PROXY:
		if (!s->proxy_client_done) {
			if (n == 0)
				s->proxy_client_done = true; /* end of the CONNECT request */
			return;
		}
		client_command(s, env, line, n, ts); /* tunnel commands before the 200 */
		break;
	case ST_AFTER_GAP:
		return; /* until the next reply tells us where we are */
	case ST_AUTH:
		client_auth_answer(s, env, line, n, ts);
		s->state = ST_COMMAND;
		break;
	case ST_COMMAND:
		if (auth_expects_answer_blind(s))
			client_auth_answer(s, env, line, n, ts);
		else
			client_command(s, env, line, n, ts);
		break;
	case ST_DATA:
	case ST_BDAT:
	case ST_TLS:
	case ST_NOT_SMTP:
		break; /* not line-based: handled by the caller */
	}
}

/* --- server replies ----------------------------------------------------------- */

/* The record a reply belongs to: the closing one of its command's
 * generation, else the open one; NULL when that record is written already
 * (a reply must not land in a younger record's fields). */
static struct txn *reply_txn(struct smtp_session *s, const struct pending *p)
{
	if (p->cmd != CMD_NONE && p->gen) {
		for (struct closing *c = closings(s); c; c = c->next)
			if (c->t.gen == p->gen)
				return &c->t;
		if (p->gen != s->t.gen)
			return NULL;
	}
	return &s->t;
}

/* "250 message", the message cut to fit SMTP_REPLY_MAX. Per reply line: the
 * store grows only when a reply is longer than every one before it. */
static void set_last_reply(struct smtp_session *s, const struct smtp_env *env, struct txn *t,
			   uint16_t code, const char *msg, size_t n)
{
	if (n > SMTP_REPLY_MAX - 4)
		n = SMTP_REPLY_MAX - 4;
	char *o = slot_put(env, txn_store(s, t), SL_REPLY, 4 + n + 1);
	if (o) {
		o[0] = (char)('0' + code / 100);
		o[1] = (char)('0' + code / 10 % 10);
		o[2] = (char)('0' + code % 10);
		o[3] = ' ';
		memcpy(o + 4, msg, n);
		o[4 + n] = 0;
	}
	t->replies_seen = true;
}

static void rcpt_reply(struct smtp_session *s, const struct smtp_env *env,
		       const struct pending *p, uint16_t code)
{
	struct txn *t = reply_txn(s, p);
	if (!t || !t->open || p->gen != t->gen)
		return; /* the record it belonged to is gone */
	if (code >= 200 && code < 300)
		t->rcpt_accepted++;
	else if (code >= 400)
		t->rcpt_rejected++;
	struct store *st = txn_store(s, t);
	if (p->rcpt && p->rcpt <= rcpts_kept(st)) {
		memcpy(st->buf + slot_off(st, SL_RCPT_CODE) + 2 * (p->rcpt - 1u), &code, 2);
	} else if (p->rcpt == RCPT_RELAYED && code >= 200 && code < 300) {
		uint32_t n = 0;
		if (st->len[SL_RELAYED])
			memcpy(&n, slot_str(st, SL_RELAYED), 4);
		n += n < UINT32_MAX;
		char *d = slot_put(env, st, SL_RELAYED, 4);
		if (d)
			memcpy(d, &n, 4);
	}
}

/* The first line of a reply: pair it with the oldest pending command and
 * act on the answer. */
static void reply_start(struct smtp_session *s, const struct smtp_env *env, uint16_t code,
			uint64_t ts)
{
	struct pending p = pop_cmd(s, env);
	s->reply_for = p;
	if (s->state == ST_AFTER_GAP) {
		/* Resynchronise: this reply answers something we lost. A 354 means
		 * the client's DATA was lost and content follows. */
		s->q_len = 0;
		s->reply_for.cmd = CMD_NONE;
		s->state = ST_COMMAND;
		if (code == 354) {
			begin_data(s, env, ts);
			s->state = ST_DATA;
		}
		return;
	}
	switch ((enum cmd)p.cmd) {
	case CMD_RCPT:
		rcpt_reply(s, env, &p, code);
		break;
	case CMD_DATA:
		if (code != 354 && s->state == ST_DATA) {
			end_data(s); /* rejected: what follows are commands again */
			s->state = ST_COMMAND;
		}
		break;
	case CMD_AUTH:
	case CMD_AUTH_ANSWER:
		if (code == 334) {
			s->state = ST_AUTH;
		} else {
			if (s->state == ST_AUTH)
				s->state = ST_COMMAND;
			auth_done(s, env, code >= 200 && code < 300 ? SMTP_AUTH_SUCCESS
							       : SMTP_AUTH_FAILURE, code, ts);
		}
		break;
	case CMD_STARTTLS:
		if (code == 220) {
			/* The record that sees the 220 is the TLS one (Zeek: smtp_starttls
			 * before the reply, so the 220 becomes last_reply). */
			txn_activity(s, ts);
			s->t.tls = true;
			s->state = ST_TLS;
			env->stats->starttls++;
			if (env->ev->starttls)
				env->ev->starttls(env->ctx, ts);
		}
		break;
	case CMD_NONE:
	case CMD_CONNECT:
	case CMD_HELO:
	case CMD_MAIL:
	case CMD_DOT:
	case CMD_BDAT:
	case CMD_RSET:
	case CMD_QUIT:
	case CMD_OTHER:
	case CMD_UNKNOWN:
		break;
	}
	if (p.cmd == CMD_NONE)
		env->stats->unmatched_replies++;
}

/* After last_reply is set: replies that end a message write the record. */
static void reply_line_done(struct smtp_session *s, const struct smtp_env *env, uint16_t code,
			    bool cont)
{
	const struct pending *p = &s->reply_for;
	bool ends = (p->cmd == CMD_DOT && !cont) ||
		    (p->cmd == CMD_BDAT && (p->flags & PEND_BDAT_LAST) && !cont);
	if (!ends)
		return;
	struct txn *t = reply_txn(s, p);
	s->messages_transferred++;
	s->reply_for.cmd = CMD_NONE; /* later lines of this reply end nothing */
	if (!t)
		return; /* its record was written early (records_early) */
	t->awaiting_end_reply = false;
	if (t == &s->t)
		txn_flush(s, env, code); /* the closing ones before it were answered first */
	else
		closing_of(t)->data_code = code; /* it goes when nothing of it is
						  * queued: closing_drain */
}

static bool parse_reply(const char *line, size_t n, uint16_t *code, bool *cont,
			const char **msg, size_t *msgn)
{
	if (n < 3 || !isdigit((unsigned char)line[0]) || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return false;
	uint16_t c = (uint16_t)((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
	if (c < 100 || c > 599)
		return false;
	*code = c;
	*cont = n > 3 && line[3] == '-';
	size_t i = 3;
	if (*cont)
		i++;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	*msg = line + i;
	*msgn = n - i;
	return true;
}

static void server_proxy_line(struct smtp_session *s, const struct smtp_env *env, const char *line,
			      size_t n)
{
	if (!s->proxy_server_200) {
		/* "HTTP/1.x 200 ..." opens the tunnel; anything else closes the case */
		if (n >= 12 && !strncmp(line, "HTTP/1.", 7) && !strncmp(line + 8, " 200", 4))
			s->proxy_server_200 = true;
		else
			s->state = ST_NOT_SMTP;
		return;
	}
	if (n == 0) {
		/* Tunnel open: SMTP from here on, the banner answers the "connection". */
		s->proxy_server_done = true;
		s->state = ST_COMMAND;
		s->q_len = 0;
		push_cmd(s, env, CMD_CONNECT, 0, 0);
	}
}

static void server_line(struct smtp_session *s, const struct smtp_env *env, const char *line,
			size_t n, uint64_t ts)
{
	if (s->state == ST_PROXY) {
		server_proxy_line(s, env, line, n);
		return;
	}
	uint16_t code;
	bool cont;
	const char *msg;
	size_t msgn;
	if (!parse_reply(line, n, &code, &cont, &msg, &msgn)) {
		env->stats->bad_replies++;
		/* Early garbage from the server: this is not SMTP (TLS, HTTP...). */
		if (!s->smtp_seen && s->bytes_seen <= SMTP_VIOLATION_WINDOW)
			s->state = ST_NOT_SMTP;
		return;
	}
	if (!s->replies_seen && s->q_len == 0 && code == 220)
		push_cmd(s, env, CMD_CONNECT, 0, 0); /* joined mid-stream: still the banner */
	s->replies_seen = true;
	s->smtp_seen = true;
	if (s->reply_open && code != s->reply_code)
		s->reply_open = false; /* a new code closes a continuation */
	if (!s->reply_open)
		reply_start(s, env, code, ts);
	s->reply_open = cont;
	s->reply_code = code;
	struct txn *t = reply_txn(s, &s->reply_for);
	if (t == &s->t)
		txn_open(s, ts);
	if (t)
		set_last_reply(s, env, t, code, msg, msgn);
	reply_line_done(s, env, code, cont);
	if (!cont)
		closing_drain(s, env);
}

/* --- byte streams ----------------------------------------------------------------- */

/* Bytes of the buffer a carry holds. */
static size_t carry_bytes(const struct carry *c)
{
	return !c->buf ? 0 : c->big ? LINE_KEEP : SMTP_CARRY_SMALL;
}

/* Append the k bytes p of a line that the segment cuts. Up to LINE_KEEP
 * bytes are kept, in a small pooled buffer, then in a whole-line one taken
 * when the small one is full (per line, not per segment). With none free,
 * the line keeps what fits in what it has; once cut, nothing more of it is
 * kept, so it never has a hole. */
static void carry_add(const struct smtp_env *env, struct carry *c, const uint8_t *p, size_t k)
{
	if (!k)
		return;
	size_t before = c->seen;
	if (before <= LINE_KEEP) {
		if (k > LINE_KEEP - before) {
			/* counted when the bound is passed: a line may never end */
			env->stats->lines_too_long++;
			c->seen = LINE_KEEP + 1;
		} else {
			c->seen = (unsigned)(before + k);
		}
	}
	c->cr = p[k - 1] == '\r';
	if (c->len < before)
		return; /* already cut */
	size_t room = LINE_KEEP - c->len;
	size_t keep = k < room ? k : room;
	size_t cap = carry_bytes(c);
	if (c->len + keep > cap) {
		bool big = c->len + keep > SMTP_CARRY_SMALL;
		uint32_t b = line_take(env, big);
		if (!b && big && !c->buf) {
			big = false; /* no whole-line buffer: keep what a small one holds */
			b = line_take(env, false);
		}
		if (b) {
			if (c->buf) {
				memcpy(line_list_buf(line_list_of(env, big), b), carry_buf(env, c),
				       c->len);
				line_give(env, c->buf, c->big, c->len);
			}
			c->buf = b;
			c->big = big;
			cap = carry_bytes(c);
		}
		if (c->len + keep > cap)
			keep = cap - c->len;
	}
	if (keep)
		memcpy(carry_buf(env, c) + c->len, p, keep);
	c->len = (unsigned)(c->len + keep);
}

/* The carried line was read (or lost): its buffer goes back, wiped. */
static void carry_clear(const struct smtp_env *env, struct carry *c)
{
	if (c->buf)
		line_give(env, c->buf, c->big, c->len);
	memset(c, 0, sizeof *c);
}

/* Take bytes up to and including '\n'. Returns the bytes consumed. When a
 * line ended, *line is set to it, without its CR LF and cut at SMTP_LINE_MAX:
 * where it lies in p when p holds all of it (the usual case: segments end at
 * line ends), else in the carry, which the caller clears once it is read. */
static size_t take_line(const struct smtp_env *env, struct carry *c, const uint8_t *p, size_t n,
			const char **line, size_t *len)
{
	const uint8_t *nl = memchr(p, '\n', n);
	size_t use = nl ? (size_t)(nl - p) : n;
	*line = NULL;
	if (!nl) {
		carry_add(env, c, p, use);
		return n;
	}
	size_t seen, kept;
	bool cr;
	if (c->seen == 0) {
		seen = kept = use;
		cr = use && p[use - 1] == '\r';
		*line = (const char *)p;
		if (seen > LINE_KEEP)
			env->stats->lines_too_long++;
	} else {
		carry_add(env, c, p, use);
		seen = c->seen;
		kept = c->len;
		cr = c->cr;
		*line = c->buf ? carry_buf(env, c) : "";
	}
	size_t eff = SMTP_LINE_MAX; /* past LINE_KEEP: counted when passed */
	if (seen <= LINE_KEEP) {
		eff = seen - cr;
		if (eff > SMTP_LINE_MAX) {
			env->stats->lines_too_long++;
			eff = SMTP_LINE_MAX;
		}
	}
	if (kept < eff) {
		env->stats->lines_no_buffer++;
		eff = kept;
	}
	*len = eff;
	return use + 1;
}

/* DATA content: dot-unstuffing (RFC 5321 §4.5.2) and the "." line that ends
 * it, across any segmentation. Returns the bytes consumed; stops right after
 * the end of data so that pipelined commands are read as commands. */
static size_t data_bytes(struct smtp_session *s, const struct smtp_env *env, const uint8_t *p,
			 size_t n, uint64_t ts)
{
	size_t i = 0;
	while (i < n) {
		switch ((enum dot_state)s->dot) {
		case DOT_LINE_START:
			if (p[i] == '.') {
				s->dot = DOT_SEEN;
				i++;
				continue;
			}
			s->dot = DOT_MID;
			continue;
		case DOT_SEEN:
			if (p[i] == '\r') {
				s->dot = DOT_SEEN_CR;
				i++;
				continue;
			}
			if (p[i] == '\n')
				goto end_of_data;
			s->dot = DOT_MID; /* a stuffed dot: dropped */
			continue;
		case DOT_SEEN_CR:
			if (p[i] == '\n')
				goto end_of_data;
			feed_content(s, (const uint8_t *)"\r", 1);
			s->dot = DOT_MID;
			continue;
		case DOT_MID: {
			/* Only a '.' that starts a line can end the data or be
			 * stuffed: everything up to the next one goes to the message
			 * in one piece (a base64 body has no '.' at all). */
			size_t j = i;
			for (;;) {
				const uint8_t *dot = memchr(p + j, '.', n - j);
				if (!dot) {
					feed_content(s, p + i, n - i);
					s->dot = p[n - 1] == '\n' ? DOT_LINE_START : DOT_MID;
					return n;
				}
				size_t d = (size_t)(dot - p);
				if (d > i && p[d - 1] == '\n') {
					feed_content(s, p + i, d - i);
					i = d;
					s->dot = DOT_LINE_START;
					break;
				}
				j = d + 1;
			}
			continue;
		}
		}
	}
	return i;

end_of_data:
	end_data(s);
	push_cmd(s, env, CMD_DOT, 0, 0);
	s->t.awaiting_end_reply = true;
	s->state = ST_COMMAND;
	(void)ts;
	return i + 1;
}

/* n more bytes were read (bytes_seen): 4 bytes, not 8, in every session. */
static void count_read(struct smtp_session *s, size_t n)
{
	s->bytes_seen = n < UINT32_MAX - s->bytes_seen ? s->bytes_seen + (uint32_t)n : UINT32_MAX;
}

static void feed_client(struct smtp_session *s, const struct smtp_env *env, const uint8_t *p,
			size_t n, uint64_t ts)
{
	while (n) {
		size_t used = n;
		switch ((enum smtp_state)s->state) {
		case ST_DATA:
			used = data_bytes(s, env, p, n, ts);
			count_read(s, used);
			break;
		case ST_BDAT: {
			used = n < s->bdat_left ? n : (size_t)s->bdat_left;
			count_read(s, used);
			feed_content(s, p, used);
			s->bdat_left -= used;
			if (s->bdat_left == 0) {
				if (s->bdat_last)
					end_data(s);
				s->state = ST_COMMAND;
			}
			break;
		}
		case ST_TLS:
		case ST_NOT_SMTP:
			return;
		case ST_PROXY:
		case ST_COMMAND:
		case ST_AUTH:
		case ST_AFTER_GAP: {
			const char *line;
			size_t len;
			used = take_line(env, &s->cl, p, n, &line, &len);
			count_read(s, used);
			if (line) {
				/* When the stream's first line (no byte before it either
				 * way, however the segments cut it) is an HTTP CONNECT
				 * request, this is an open proxy carrying SMTP: skip to
				 * the tunnel; this line is the request's first. */
				uint64_t line_bytes = s->cl.seen ? (uint64_t)s->cl.seen + 1 : used;
				if (s->state == ST_COMMAND && !s->smtp_seen &&
				    s->bytes_seen == line_bytes && len >= 8 &&
				    memcmp(line, "CONNECT ", 8) == 0)
					s->state = ST_PROXY;
				client_line(s, env, line, len, ts);
				if (s->cl.seen)
					carry_clear(env, &s->cl);
			}
			break;
		}
		}
		p += used;
		n -= used;
	}
}

static void feed_server(struct smtp_session *s, const struct smtp_env *env, const uint8_t *p,
			size_t n, uint64_t ts)
{
	s->server_seen = true;
	while (n && s->state != ST_TLS && s->state != ST_NOT_SMTP) {
		const char *line;
		size_t len;
		size_t used = take_line(env, &s->sl, p, n, &line, &len);
		count_read(s, used); /* before the line is read: the same for any split */
		if (line) {
			server_line(s, env, line, len, ts);
			if (s->sl.seen)
				carry_clear(env, &s->sl);
		}
		p += used;
		n -= used;
	}
}

/* --- public API -------------------------------------------------------------------- */

struct smtp_session *smtp_session_create(void)
{
	struct smtp_session *s = malloc(sizeof *s);
	if (s)
		smtp_session_init(s);
	return s;
}

void smtp_session_init(struct smtp_session *s)
{
	memset(s, 0, sizeof *s); /* nothing held */
	s->state = ST_COMMAND;
}

/* Everything beyond the struct goes: strings, queue, closing record, line
 * buffers (wiped). Scalars are left for the caller. */
static void release_memory(struct smtp_session *s, const struct smtp_env *env)
{
	while (closings(s)) {
		release_message(env, &s->ext->closing->t);
		closing_free(s, env);
	}
	store_free(env, &s->st);
	q_free(s, env);
	carry_clear(env, &s->cl);
	carry_clear(env, &s->sl);
}

void smtp_session_fini(struct smtp_session *s, const struct smtp_env *env)
{
	release_message(env, &s->t);
	release_memory(s, env);
}

void smtp_session_destroy(struct smtp_session *s, const struct smtp_env *env)
{
	if (!s)
		return;
	smtp_session_fini(s, env);
	free(s);
}

void smtp_session_reset(struct smtp_session *s, const struct smtp_env *env)
{
	smtp_session_fini(s, env);
	smtp_session_init(s);
}

void smtp_session_start(struct smtp_session *s, const struct smtp_env *env, bool handshake_seen)
{
	/* With the handshake captured, the first reply is the banner even if the
	 * client speaks first (Zeek's CONN_ESTABLISHMENT). */
	if (handshake_seen)
		push_cmd(s, env, CMD_CONNECT, 0, 0);
}

void smtp_feed(struct smtp_session *s, const struct smtp_env *env, bool from_client,
	       const uint8_t *data, size_t len, uint64_t ts_us)
{
	if (len == 0)
		return;
	if (from_client)
		feed_client(s, env, data, len, ts_us);
	else
		feed_server(s, env, data, len, ts_us);
}

void smtp_gap(struct smtp_session *s, const struct smtp_env *env, bool from_client, uint64_t len,
	      uint64_t ts_us)
{
	(void)ts_us;
	if (len == 0 || s->state == ST_TLS || s->state == ST_NOT_SMTP)
		return;
	env->stats->gaps++;
	env->stats->gap_bytes += len;
	if (s->state == ST_DATA || s->state == ST_BDAT) {
		if (s->t.msg)
			message_gap(s->t.msg, len);
		end_data(s);
	}
	if (s->t.open)
		s->t.gaps++;
	/* Whatever was pending cannot be paired any more; wait for a reply. */
	s->q_len = 0;
	s->reply_open = false;
	s->reply_for.cmd = CMD_NONE;
	s->bdat_left = 0;
	carry_clear(env, from_client ? &s->cl : &s->sl);
	s->state = s->state == ST_PROXY ? ST_NOT_SMTP : ST_AFTER_GAP;
}

void smtp_end(struct smtp_session *s, const struct smtp_env *env, uint64_t ts_us)
{
	if (s->auth_active)
		auth_done(s, env, SMTP_AUTH_ABORTED, 0, ts_us);
	if (s->state == ST_DATA || s->state == ST_BDAT)
		end_data(s);
	txn_flush(s, env, 0);
	release_memory(s, env);
}

size_t smtp_session_sizeof(void)
{
	return sizeof(struct smtp_session);
}

/* Summed from what the session holds, not counted as it goes: a count
 * would take 4 bytes of every session for a question asked by tests and
 * tools. */
size_t smtp_session_bytes(const struct smtp_session *s)
{
	size_t n = sizeof *s + s->st.cap + carry_bytes(&s->cl) + carry_bytes(&s->sl);
	if (s->ext)
		n += ext_size(s->ext->q_cap);
	for (const struct closing *c = closings(s); c; c = c->next)
		n += sizeof *c + c->st.cap;
	return n;
}

void smtp_session_memory(const struct smtp_session *s, const struct smtp_env *env,
			 void (*fn)(void *arg, const void *p, size_t n), void *arg)
{
	fn(arg, s, sizeof *s);
	if (s->st.buf)
		fn(arg, s->st.buf, s->st.cap);
	if (s->ext)
		fn(arg, s->ext, ext_size(s->ext->q_cap));
	for (const struct closing *c = closings(s); c; c = c->next) {
		fn(arg, c, sizeof *c);
		if (c->st.buf)
			fn(arg, c->st.buf, c->st.cap);
	}
	if (s->cl.buf)
		fn(arg, carry_buf(env, &s->cl), carry_bytes(&s->cl));
	if (s->sl.buf)
		fn(arg, carry_buf(env, &s->sl), carry_bytes(&s->sl));
}

bool smtp_in_tls(const struct smtp_session *s)
{
	return s->state == ST_TLS;
}

bool smtp_looks_like_smtp(const struct smtp_session *s)
{
	/* A greeting or a mail command, answered by a reply when the server
	 * is visible: what FTP or a banner-only service does not show. */
	return s->state != ST_NOT_SMTP && s->mail_command_seen &&
	       (s->replies_seen || !s->server_seen);
}

bool smtp_failed(const struct smtp_session *s)
{
	return s->state == ST_NOT_SMTP;
}
