/* message.h — one mail message (RFC 5322 + MIME), fed incrementally.
 *
 * The SMTP parser pushes the message content exactly as the server will store
 * it (DATA already dot-unstuffed, CRLF line ends, BDAT chunks concatenated) in
 * pieces of any size. This module parses the top-level header block and the
 * header blocks of MIME parts (for attachment names). Bodies are scanned for
 * MIME boundaries only, never copied.
 *
 * Memory: the big state (the unfolding buffer, the values of a header block
 * being read, the decoding buffers: about 36 KB) is a workspace, held only
 * while a header block is read and shared through a bounded pool
 * (struct message_workspaces). When the top-level block ends, the values
 * kept are copied into one allocation sized for them; in the body a message
 * keeps only what finding boundaries needs (the open boundaries, the first
 * bytes of the current line) and the attachment names, so a message whose
 * body takes minutes costs a few hundred bytes, not a workspace.
 *
 * Ownership: message_create() allocates a parser; it allocates its values,
 * open boundaries and names once per message (never per feed) and frees
 * them at message_reset() / message_destroy() (NULL is fine). message_info()
 * returns a pointer into the parser; every string it shows stays valid until
 * the next message_reset() / message_destroy(). Single-threaded: a pool and
 * the messages using it belong to one thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on everything the sender controls (STYLE.md 5). Each is tested at
 * the limit and one past it; going over is counted and parsing continues. */
/* A header block over these is counted as oversized; it is still read to
 * its end for the fields not yet seen (padding must not hide a Subject). */
#define MESSAGE_HEADER_BYTES_MAX  (64 * 1024)  /* header block bytes */
#define MESSAGE_HEADER_COUNT_MAX  500          /* header fields */
#define MESSAGE_LINE_MAX          (8 * 1024)   /* one unfolded header field kept */
#define MESSAGE_FIELD_MAX         1024         /* From, Subject, Date, ids... as sent */
#define MESSAGE_ADDRLIST_MAX      (4 * 1024)   /* To and Cc as sent */
#define MESSAGE_SUBJECT_MAX       (3 * 1024)   /* decoded subject (UTF-8) */
#define MESSAGE_FROM_MAILBOX_MAX  (2 * MESSAGE_FIELD_MAX + 5 + 320) /* from_mailbox: its
						  * name escaped, an ADDRESS_MAX address */
#define MESSAGE_ATTACH_KEEP_MAX   16           /* attachment names kept */
#define MESSAGE_ATTACH_NAME_MAX   255          /* bytes per attachment name (UTF-8) */
#define MESSAGE_MIME_DEPTH_MAX    8            /* nested multiparts and forwarded
						* messages followed */
#define MESSAGE_BOUNDARY_MAX      70           /* RFC 2046 §5.1.1 */

/* Header values are NUL-terminated, unfolded (CRLF removed, the folding
 * whitespace kept), whitespace after the colon and at the end removed, and
 * truncated to the bound without cutting a UTF-8 sequence (counted in
 * `truncated_fields`). NULL when the header was absent. For repeated
 * headers, the first one wins (counted in `duplicates`). They are set when
 * the top-level header block ends (blank line, gap, or message_finish()),
 * `subject`, `from_decoded` and `user_agent` included. `subject` and
 * `from_decoded` are decoded from the whole field (up to MESSAGE_LINE_MAX),
 * not from the value kept as sent, so they may be longer than it; their
 * bounds are MESSAGE_SUBJECT_MAX and 3 * MESSAGE_FIELD_MAX.
 *
 * A From longer than MESSAGE_FIELD_MAX as sent has its address past the
 * cut of `from` (an attacker pads the display name to hide it), so its
 * first mailbox is read from the whole field, of any length: `from_mailbox`
 * is that mailbox rebuilt short, `"name" <addr>`, where addr is the last
 * angle-addr before the mailbox ends (CFWS dropped, at most ADDRESS_MAX
 * bytes) and name the display name's first MESSAGE_FIELD_MAX bytes before
 * it (quotes and backslashes taken off and put back, a run of white space
 * one space), at most MESSAGE_FROM_MAILBOX_MAX bytes. NULL when `from`
 * holds the whole field, or when the field has no angle-addr (a bare
 * addr-spec comes first: `from` has it).
 *
 * An attachment is a non-multipart part (or a single-part message) with a
 * file name: Content-Disposition filename, else Content-Type name, RFC 2231
 * continuations and charsets and RFC 2047 encoded-words decoded. The parts
 * of a forwarded message (message/rfc822 or message/global, not base64 or
 * quoted-printable, which RFC 2046 §5.2.1 forbids) are parts too, after the
 * forwarded message's own name if it has one. A boundary line belongs to
 * the outermost open multipart it names (RFC 2046 §5.1.1: a nested one
 * that reuses an enclosing boundary ends at it). */
struct message_info {
	const char *from;         /* as sent */
	const char *to;           /* as sent */
	const char *cc;           /* as sent */
	const char *reply_to;
	const char *subject_raw;  /* as sent (may hold =?..?= words or raw 8-bit) */
	const char *subject;      /* decoded to UTF-8 (RFC 2047; invalid -> U+FFFD) */
	const char *from_decoded; /* From with encoded-words decoded (display name) */
	const char *from_mailbox; /* a long From's first mailbox, short (see above) */
	const char *date;
	const char *message_id;
	const char *in_reply_to;
	const char *references;
	const char *user_agent;   /* X-Mailer, else User-Agent */
	const char *x_originating_ip;

	const char **attachments;    /* n_attachments UTF-8 names, decoded; NULL while
				      * there is none (a table of MESSAGE_ATTACH_KEEP_MAX
				      * is made at the first, so that a message without
				      * attachments does not carry it) */
	uint32_t n_attachments;      /* kept */
	uint32_t attachments_total;  /* seen (may exceed kept) */

	uint64_t header_bytes;    /* bytes of the top-level header block, blank line included */
	uint64_t size;            /* all content bytes (headers + body), gap bytes included */
	uint64_t header_bytes_over;  /* header bytes beyond MESSAGE_HEADER_BYTES_MAX; the
				      * line crossing the limit and later ones are not
				      * parsed */

	/* More bound hits and damage. 32 bits, saturating
	 * at UINT32_MAX: a parser is held by every message being received, so
	 * its size counts (30,000 at once in the 100k-session benchmark). */
	uint32_t header_count_over;  /* fields beyond MESSAGE_HEADER_COUNT_MAX (not parsed) */
	uint32_t truncated_fields;   /* values cut at their bound */
	uint32_t duplicates;
	uint32_t mime_depth_over;    /* multiparts nested deeper than the bound (not followed) */
	uint32_t boundary_too_long;  /* multipart boundary over MESSAGE_BOUNDARY_MAX (not followed) */
	uint32_t gaps;               /* message_gap() calls */
	uint32_t decode_replaced;    /* bytes replaced by U+FFFD while decoding */

	/* header blocks not parsed because the workspace pool was empty (for
	 * a part: or its share of the pool in use; or memory ran out):
	 * counted, the message goes on */
	uint32_t parts_skipped;      /* MIME part blocks: their names are not known
				      * and a multipart in them is not followed;
				      * the open boundaries still are. Also an
				      * attachment name or boundary that could not
				      * be stored for want of memory. */
	bool headers_skipped;        /* the top-level block: every header value is
				      * NULL, no attachment is known; size and
				      * header_bytes are still counted */
	bool headers_done;           /* saw the blank line ending the header block */
};

/* A bounded pool of workspaces shared by messages. A workspace is made on
 * first need, up to `max`, and recycled. A message takes one when the first
 * byte of a header block arrives and gives it back when the block ends, so
 * the pool needs to be as large as the number of header blocks read at once
 * (most fit in one TCP segment), not the number of messages under way.
 * MIME part blocks may hold at most max - max/4 of them: the rest is kept
 * for top-level blocks, which give a message its values. */
struct message_workspaces;

struct message_workspaces_stats {
	uint64_t made;             /* workspaces allocated, at most max */
	uint64_t in_use, peak;
	uint64_t headers_skipped;  /* top-level header blocks not parsed (pool empty) */
	uint64_t parts_skipped;    /* MIME part header blocks not parsed (pool empty
				    * or their share in use), and names or
				    * boundaries not stored (no memory) */
};

/* NULL if out of memory. */
struct message_workspaces *message_workspaces_create(uint32_t max);
/* Destroy every message that uses the pool first. NULL is fine. */
void message_workspaces_destroy(struct message_workspaces *w);
void message_workspaces_get_stats(const struct message_workspaces *w,
				  struct message_workspaces_stats *out);

struct message;

/* A parser whose workspaces come from `pool`, which must outlive it; with
 * NULL, from a pool of one of its own (tests, tools). NULL if out of
 * memory. Decoding may open iconv descriptors, which rfc2047.c allocates
 * once per charset for the process lifetime. */
struct message *message_create(struct message_workspaces *pool);
void message_destroy(struct message *m);

/* Forget the previous message; start parsing a new one. */
void message_reset(struct message *m);

/* Feed the next `len` content bytes (any split, including mid-CRLF).
 * Ignored after message_finish(). */
void message_feed(struct message *m, const char *data, size_t len);

/* `len` content bytes were lost (TCP gap). The current line is abandoned; a
 * gap inside the header block ends header parsing for this message (fields
 * kept so far remain). */
void message_gap(struct message *m, uint64_t len);

/* End of content: flush a pending header line, finish decoding. */
void message_finish(struct message *m);

const struct message_info *message_info(const struct message *m);

/* Bytes of a parser without its values, and of one workspace: for memory
 * accounting and the tests that keep them small. */
size_t message_sizeof(void);
size_t message_workspace_sizeof(void);
