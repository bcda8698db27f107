/* smtp.h — one SMTP session, fed both directions of a reassembled stream.
 *
 * The parser is separate from I/O (STYLE.md 6): smtp_feed() takes bytes of
 * either direction in any split, smtp_gap() reports lost bytes, smtp_end()
 * the end of the connection. It pairs client commands with server replies
 * through a bounded queue (PIPELINING, RFC 2920), follows MAIL/RCPT/DATA/BDAT/
 * RSET/AUTH/STARTTLS and hands message content to a struct message parser.
 * Results come out as events through struct smtp_events; every pointer in an
 * event is borrowed and valid only until the callback returns.
 *
 * Secrets: AUTH PLAIN/LOGIN passwords are wiped as soon as the user name is
 * taken out (the decoded bytes, and a client line wherever the parser copied
 * it: its carry, a pooled line buffer before it goes back); CRAM-MD5 digests
 * and XOAUTH2 tokens too. Nothing the parser stores or emits holds a secret.
 *
 * Memory follows what a session holds (STYLE.md 5 bounds every piece): a
 * small struct (smtp_session_sizeof()), a string store that grows by size
 * classes up to the sum of the bounds below and shrinks to what is left
 * when a record is written, a command queue that grows past a few entries
 * only for pipelining clients, and, only while TCP has cut a line, a buffer
 * borrowed from a struct smtp_line_pool (most segments end at a line end:
 * a line that lies whole in one is read where it lies). Allocation happens
 * per command or per transaction at most, never per segment; smtp_end()
 * and smtp_session_reset() free it all.
 *
 * States (the explicit machine of STYLE.md 7; see smtp.c for the diagram):
 * COMMANDS -> DATA_CONTENT (after 354) -> COMMANDS; COMMANDS -> BDAT_CHUNK;
 * COMMANDS -> AUTH_CONT (334 continuation lines); any -> TLS (after 220 to
 * STARTTLS: content is encrypted, only counted). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "message.h"

/* Bounds on what the wire controls (STYLE.md 5). */
#define SMTP_LINE_MAX      1024 /* command/reply line bytes kept: RFC 5321 §4.5.3.1.4-5
                                 * allow 512; a longer line (an AUTH token, a path with
                                 * parameters) keeps its first 1024 bytes, which hold
                                 * the command, the path and the user name */
#define SMTP_PENDING_MAX   100  /* pipelined commands awaiting a reply */
#define SMTP_RCPT_KEEP_MAX 100  /* recipients kept per transaction (RFC 5321
                                 * §4.5.3.1.8: servers must take at least 100) */
#define SMTP_PATH_MAX      320  /* bytes of a MAIL/RCPT path kept */
#define SMTP_HELO_MAX      255
#define SMTP_REPLY_MAX     512  /* bytes of last_reply kept */
#define SMTP_USER_MAX      256  /* bytes of an AUTH user name kept */
#define SMTP_MECH_MAX      23   /* bytes of an AUTH mechanism name kept */
#define SMTP_REPLY_LINES_MAX 64 /* lines of one multi-line reply looked at */
#define SMTP_RCPT_ARENA    4096 /* bytes of kept recipient addresses per transaction */
#define SMTP_CARRY_SMALL   120  /* bytes of a small carry buffer: a command or a
                                 * reply line; a cut line longer than that
                                 * moves to a whole-line buffer */

enum smtp_auth_outcome {
	SMTP_AUTH_SUCCESS,  /* 235 */
	SMTP_AUTH_FAILURE,  /* 535, or another 4xx/5xx to AUTH */
	SMTP_AUTH_ABORTED,  /* client sent "*", or the session ended first */
};

struct smtp_auth_event {
	uint64_t ts_us;
	const char *mech;        /* upper-case: PLAIN, LOGIN, CRAM-MD5, XOAUTH2, ... */
	const char *user;        /* NULL if the mechanism hides it or it was not seen */
	enum smtp_auth_outcome outcome;
	uint16_t code;           /* the reply code that decided it, 0 if none */
};

/* One mail transaction (MAIL ... end of data, RSET, next MAIL or session end),
 * as Zeek's smtp.log has one row. */
struct smtp_txn {
	uint64_t ts_us;          /* time of the transaction's first command */
	unsigned trans_depth;    /* 1-based position in the session */
	const char *helo;        /* HELO/EHLO argument, NULL if none */
	const char *auth_user;   /* who AUTH made the session: NULL unless auth_ok, and
				  * NULL with auth_ok when the mechanism hides the
				  * name (NTLM, GSSAPI, EXTERNAL) */
	const char *auth_mech;   /* NULL unless auth_ok */
	bool auth_ok;            /* the session is authenticated (235 seen) */
	const char *mailfrom;    /* MAIL FROM path as Zeek logs it, NULL if none */
	const char *rcpt[SMTP_RCPT_KEEP_MAX];
	uint16_t rcpt_code[SMTP_RCPT_KEEP_MAX]; /* reply code per kept RCPT, 0 = none seen */
	unsigned n_rcpt;         /* kept */
	unsigned rcpt_total;     /* RCPT commands in this transaction */
	unsigned rcpt_accepted;  /* 2xx replies */
	unsigned rcpt_rejected;  /* 4xx/5xx replies */
	/* Accepted (2xx) recipients not kept (past SMTP_RCPT_KEEP_MAX or the
	 * arena) whose destination is not one of env->local_domains, or that
	 * name a route (user%elsewhere@ours): relayed, as detect.c's open_relay
	 * judges the kept ones. So 100 local recipients first cannot hide the
	 * foreign ones after them. 0 when local_domains is not known. */
	unsigned rcpt_relayed_unkept;
	const char *last_reply;  /* "250 2.0.0 Ok ..." , NULL if no reply seen */
	bool tls;                /* STARTTLS was accepted in this session */
	bool data_seen;          /* DATA/BDAT content started */
	bool data_done;          /* end of data seen (. or BDAT LAST) */
	bool replies_seen;       /* the server side was seen in this transaction */
	uint16_t data_code;      /* reply code to end of data, 0 if none */
	const struct message_info *msg; /* NULL if no content was parsed */
	uint64_t size;           /* content bytes (after dot-unstuffing) */
	unsigned gaps;           /* content gaps inside this transaction */
};

struct smtp_events {
	void (*transaction)(void *ctx, const struct smtp_txn *t);
	void (*auth)(void *ctx, const struct smtp_auth_event *a);
	void (*starttls)(void *ctx, uint64_t ts_us);
	/* Message parsers come from the owner's bounded pool; acquire may return
	 * NULL (pool empty): the transaction is then recorded without headers. */
	struct message *(*msg_acquire)(void *ctx);
	void (*msg_release)(void *ctx, struct message *m);
};

/* Bound hits and protocol oddities, shared by all sessions of a sensor. */
struct smtp_stats {
	uint64_t sessions;
	uint64_t transactions;
	uint64_t lines_too_long;     /* lines cut at SMTP_LINE_MAX */
	uint64_t lines_no_buffer;    /* lines cut short: no pooled buffer was free */
	uint64_t pending_overflow;   /* commands dropped past SMTP_PENDING_MAX */
	uint64_t records_early;      /* records written before their replies: more
				      * than 4 transactions pipelined ahead of them */
	uint64_t rcpt_over_keep;     /* recipients beyond SMTP_RCPT_KEEP_MAX */
	uint64_t unmatched_replies;  /* replies with no command waiting */
	uint64_t bad_replies;        /* server lines that are not replies */
	uint64_t bdat_invalid;       /* BDAT with a bad or overflowing size */
	uint64_t gaps, gap_bytes;
	uint64_t auth_attempts, auth_failures;
	uint64_t starttls;
	uint64_t no_message_parser;  /* msg_acquire returned NULL */
	/* Memory of the sessions beyond their structs: string stores and their
	 * extensions (grown command queues, closing records), in bytes now and
	 * at most; and pooled carry buffers lent now and at most, small ones
	 * (SMTP_CARRY_SMALL bytes) and whole-line ones (SMTP_LINE_MAX + 1). */
	uint64_t store_bytes, store_peak;
	uint64_t line_bufs_small, line_bufs_small_peak;
	uint64_t line_bufs_big, line_bufs_big_peak;
};

/* Buffers for the lines that TCP cuts, shared by the sessions of one sensor
 * (one thread): a cut line is carried in a small buffer, and in a
 * whole-line one once it outgrows that. A session holds at most one per
 * direction, and only until the line ends. Buffers are made on first need,
 * at most small and big of each kind, and recycled, wiped. When none is
 * free the line keeps what fits in what it has (nothing without a small
 * one) and is counted (lines_no_buffer): two small buffers per session
 * means a line is never cut for want of a small one.
 * Destroy it after every session that uses it. */
struct smtp_line_pool;

/* Returns NULL on ENOMEM. */
struct smtp_line_pool *smtp_line_pool_create(uint32_t small, uint32_t big);
void smtp_line_pool_destroy(struct smtp_line_pool *p);

struct smtp_session;
struct domain_list;   /* netlist.h */

/* What the sessions of one sensor share: the callbacks and their context,
 * the counters, the line pool (NULL: nothing of a cut line is kept). It
 * must outlive them.
 *
 * A session keeps no pointer to it (8 bytes in each of the 106k sessions
 * open at once in the benchmark): every call that can act on what a
 * session holds takes it, and it must be the same env from
 * smtp_session_start() to the smtp_session_fini(), _reset() or _destroy()
 * that ends the session (the line buffers a session borrows are its
 * pool's, its message parsers its callbacks'). */
struct smtp_env {
	const struct smtp_events *ev;
	void *ctx;
	struct smtp_stats *stats;
	struct smtp_line_pool *lines;
	/* The domains that are ours ([network] local_domains; NULL or empty:
	 * not known). Only recipients past what a transaction keeps are held
	 * against them, so that one relayed is counted though not kept
	 * (smtp_txn.rcpt_relayed_unkept). */
	const struct domain_list *local_domains;
};

/* Allocate a session. Returns NULL on ENOMEM. NULL is fine for destroy. */
struct smtp_session *smtp_session_create(void);
void smtp_session_destroy(struct smtp_session *s, const struct smtp_env *env);

/* The same in the caller's memory (a pool's block: no allocator header per
 * session): smtp_session_init() makes a session in smtp_session_sizeof()
 * bytes aligned to 8; smtp_session_fini() frees what it holds
 * beyond them. */
void smtp_session_init(struct smtp_session *s);
void smtp_session_fini(struct smtp_session *s, const struct smtp_env *env);

/* Make a used session new again (for pools): what it held beyond its
 * struct is freed, a borrowed line buffer given back. Its next life may
 * have another env. */
void smtp_session_reset(struct smtp_session *s, const struct smtp_env *env);

/* Call once before the first byte. With the TCP handshake captured, the
 * first server reply is the banner even if the client speaks first. */
void smtp_session_start(struct smtp_session *s, const struct smtp_env *env,
			bool handshake_seen);

void smtp_feed(struct smtp_session *s, const struct smtp_env *env, bool from_client,
	       const uint8_t *data, size_t len, uint64_t ts_us);
void smtp_gap(struct smtp_session *s, const struct smtp_env *env, bool from_client,
	      uint64_t len, uint64_t ts_us);

/* Connection over: a pending transaction is reported, a message parser
 * handed back, the session's memory beyond its struct freed. The session
 * can then be destroyed or reset. */
void smtp_end(struct smtp_session *s, const struct smtp_env *env, uint64_t ts_us);

bool smtp_in_tls(const struct smtp_session *s);

/* Bytes of a session's struct, and of everything it holds now (struct,
 * store, queue, closing record, borrowed line buffers). */
size_t smtp_session_sizeof(void);
size_t smtp_session_bytes(const struct smtp_session *s);

/* Every block of memory a session holds (its struct included), and every
 * free buffer of a pool: for the tests that look for secrets in them. */
void smtp_session_memory(const struct smtp_session *s, const struct smtp_env *env,
			 void (*fn)(void *arg, const void *p, size_t n), void *arg);
void smtp_line_pool_memory(const struct smtp_line_pool *p,
			   void (*fn)(void *arg, const void *p, size_t n), void *arg);

/* True once the session shows SMTP: a HELO/EHLO, MAIL or RCPT from the
 * client, answered by a reply when the server side is visible. Used when
 * nDPI names a mail flow otherwise (it guesses by port, client ports
 * included). */
bool smtp_looks_like_smtp(const struct smtp_session *s);

/* True once the parser gave up: the stream is not SMTP. */
bool smtp_failed(const struct smtp_session *s);
