/* fuzz-message.c — libFuzzer target: one mail message through message_feed()
 * in pseudo-random splits, message_gap() and message_finish(); then the header
 * values it kept (and the raw first lines of the input) through
 * rfc2047_decode(), rfc2047_convert(), utf8_sanitize(), address_parse_mailbox(),
 * address_display_spoof(), address_from_path() and address_routed().
 *
 * Input format (tests/fuzz/README.md):
 *   byte 0   seed of the split points
 *   byte 1   bits 0-1: a third run with a gap of gap_len[bits] bytes at a
 *            pseudo-random point (0: none)
 *   the rest the message content, as SMTP hands it over (dot-unstuffed)
 *
 * Oracles: the sanitizers; message.h's bounds and UTF-8 promises on every
 * field; size == bytes fed (+ gap); the parse is the same whether the content
 * comes whole or in pieces (message.h: "any split, including mid-CRLF");
 * with the one workspace of a shared pool taken away at pseudo-random
 * moments, what is parsed agrees with the whole parse (top-level values all
 * or nothing, attachment names a subsequence, sizes equal) and the
 * workspace always comes back;
 * rfc2047.h's output contract: NUL-terminated, valid UTF-8, and a smaller
 * buffer gets a prefix of the full result; address.h's bounds and that the
 * claimed spoof address is lower case. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "fuzzdump.h"
#include "fuzzlib.h"
#include "message.h"
#include "rfc2047.h"

static const uint64_t gap_len[4] = { 0, 1, 100, 70000 };

static struct message *msg;
/* run_contended(): a message and a holder sharing one workspace */
static struct message_workspaces *shared;
static struct message *cmsg, *holder;

static void feed_split(struct message *m, const char *p, size_t n, uint64_t *rng)
{
	while (n) {
		uint32_t r = fuzz_rand(rng);
		size_t k = (r & 3) == 0 ? 1 + (r >> 2) % 200 : 1 + (r >> 2) % 3;
		if (k > n)
			k = n;
		message_feed(m, p, k);
		p += k;
		n -= k;
	}
}

/* rfc2047.h's output contract for any of its three converters. */
static void check_out(const char *what, const char *in, size_t inlen, const char *out,
		      size_t got, size_t outsz, const char *full, size_t full_len)
{
	if (outsz == 0) {
		FUZZ_CHECK(got == 0);
		return;
	}
	FUZZ_CHECK(got < outsz);
	FUZZ_CHECK(out[got] == 0);
	/* Every consumer reads these values as C strings (message.c, record.c):
	 * a NUL made from NUL-free input (=00 in a Q word, AA== in a B word)
	 * would silently cut the value there. A NUL already in the input is
	 * the caller's business (they pass C strings, so it cannot happen). */
	if (!memchr(in, 0, inlen) && strlen(out) != got) {
		fprintf(stderr, "%s: a NUL at byte %zu of %zu came out of NUL-free input "
			"[%.*s]\n", what, strlen(out), got, (int)inlen, in);
		FUZZ_CHECK(!"no NUL made from NUL-free input");
	}
	if (!utf8_valid(out, got)) {
		fprintf(stderr, "%s: output is not valid UTF-8 (outsz %zu): [%s]\n", what, outsz,
			out);
		FUZZ_CHECK(!"valid UTF-8 out");
	}
	if (full && (got > full_len || memcmp(out, full, got) != 0)) {
		fprintf(stderr, "%s: with outsz %zu the output [%s] is not a prefix of [%s]\n",
			what, outsz, out, full);
		FUZZ_CHECK(!"prefix of the full result");
	}
}

static void check_decode(const char *v, size_t n, uint64_t *rng)
{
	size_t cap = 4 * n + 64;
	char *full = malloc(cap), *part = malloc(cap);
	struct rfc2047_stats rs;
	memset(&rs, 0, sizeof rs);
	size_t fl = rfc2047_decode(v, n, full, cap, &rs);
	check_out("rfc2047_decode", v, n, full, fl, cap, NULL, 0);
	FUZZ_CHECK(fl + 1 < cap); /* the full result fitted: the bound above is generous */
	size_t small = fuzz_rand(rng) % (fl + 2);
	size_t pl = rfc2047_decode(v, n, part, small, NULL);
	check_out("rfc2047_decode", v, n, part, pl, small, full, fl);

	unsigned long repl = 0;
	fl = utf8_sanitize(v, n, full, cap, &repl);
	check_out("utf8_sanitize", v, n, full, fl, cap, NULL, 0);
	small = fuzz_rand(rng) % (fl + 2);
	pl = utf8_sanitize(v, n, part, small, NULL);
	check_out("utf8_sanitize", v, n, part, pl, small, full, fl);
	free(full);
	free(part);
}

static void check_convert(const char *cs, const char *v, size_t n, uint64_t *rng)
{
	size_t cap = 4 * n + 64;
	char *full = malloc(cap), *part = malloc(cap);
	struct rfc2047_stats rs;
	memset(&rs, 0, sizeof rs);
	long fl = rfc2047_convert(cs, v, n, full, cap, &rs);
	if (fl >= 0) {
		check_out("rfc2047_convert", v, n, full, (size_t)fl, cap, NULL, 0);
		size_t small = fuzz_rand(rng) % ((size_t)fl + 2);
		long pl = rfc2047_convert(cs, v, n, part, small, NULL);
		FUZZ_CHECK(pl >= 0);
		check_out("rfc2047_convert", v, n, part, (size_t)pl, small, full, (size_t)fl);
	} else {
		FUZZ_CHECK(fl == -1);
		FUZZ_CHECK(rs.unknown_charset == 1);
	}
	free(full);
	free(part);
}

static void check_mailbox(const char *v, size_t n, uint64_t *rng)
{
	/* Callers pass C strings (record.c: strlen of a header value): a NUL
	 * ends the value. */
	n = strnlen(v, n);
	struct mailbox mb;
	memset(&mb, 0x5a, sizeof mb);
	bool found = address_parse_mailbox(v, n, &mb);
	FUZZ_CHECK(memchr(mb.display, 0, sizeof mb.display) != NULL);
	FUZZ_CHECK(memchr(mb.addr, 0, sizeof mb.addr) != NULL);
	FUZZ_CHECK(mb.domain != NULL);
	size_t al = strlen(mb.addr);
	FUZZ_CHECK(al <= ADDRESS_MAX);
	FUZZ_CHECK(!found || al > 0);
	if (mb.domain[0]) {
		/* address.h: domain points into addr after the last '@' */
		const char *at = strrchr(mb.addr, '@');
		FUZZ_CHECK(at != NULL && mb.domain == at + 1);
	}
	FUZZ_CHECK(strcmp(address_domain(mb.addr), mb.domain) == 0);
	for (size_t i = 0; i < al; i++)
		FUZZ_CHECK(!isupper((unsigned char)mb.addr[i])); /* lower-cased */
	if (!utf8_valid(mb.display, strlen(mb.display))) {
		fprintf(stderr, "display name is not UTF-8: [%s]\n", mb.display);
		FUZZ_CHECK(!"decoded UTF-8 display name");
	}
	size_t csz = 1 + fuzz_rand(rng) % (ADDRESS_MAX + 1);
	char claimed[ADDRESS_MAX + 1];
	memset(claimed, 0x5a, sizeof claimed);
	if (address_display_spoof(&mb, claimed, csz)) {
		size_t cl = strnlen(claimed, csz);
		FUZZ_CHECK(cl < csz);
		for (size_t i = 0; i < cl; i++)
			FUZZ_CHECK(!isupper((unsigned char)claimed[i]));
		/* the claimed domain differs from the real one (not a subdomain) */
		const char *cd = address_domain(claimed);
		if (cl + 1 < csz && cd[0] && mb.domain[0])
			FUZZ_CHECK(!address_domain_matches(cd, mb.domain) &&
				   !address_domain_matches(mb.domain, cd));
	}
	char path[ADDRESS_MAX + 1];
	size_t psz = 1 + fuzz_rand(rng) % sizeof path;
	memset(path, 0x5a, sizeof path);
	bool got = address_from_path(v, n, path, psz);
	FUZZ_CHECK(memchr(path, 0, psz) != NULL);
	FUZZ_CHECK(!got || path[0]);
	/* the next hop of a routed recipient lies in its local part */
	const char *hop = NULL;
	size_t hl = 0;
	if (got && address_routed(path, &hop, &hl))
		FUZZ_CHECK(hop >= path && hop + hl <= address_domain(path));
}

static void run(const char *c, size_t n, int mode, uint64_t rng, uint64_t gap,
		struct dump *d)
{
	message_reset(msg);
	if (mode == 0) {
		message_feed(msg, c, n);
	} else if (mode == 1) {
		feed_split(msg, c, n, &rng);
	} else {
		size_t at = n ? fuzz_rand(&rng) % n : 0;
		feed_split(msg, c, at, &rng);
		message_gap(msg, gap);
		feed_split(msg, c + at, n - at, &rng);
	}
	message_finish(msg);
	message_feed(msg, "ignored\r\n", 9); /* message.h: ignored after finish */
	const struct message_info *mi = message_info(msg);
	FUZZ_CHECK(mi->size == n + (mode == 2 ? gap : 0));
	dump_message_info(d, mi);
}

static bool str_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The content in pieces again, while a holder takes the only workspace
 * before some pieces (a header block of its own that has not ended) and
 * lets it go before others: some of cmsg's header blocks find the pool
 * empty. Compared with the whole parse `ref`. */
static void run_contended(const char *c, size_t n, uint64_t rng,
			  const struct message_info *ref)
{
	message_reset(cmsg);
	message_reset(holder);
	while (n) {
		uint32_t r = fuzz_rand(&rng);
		size_t k = (r & 3) == 0 ? 1 + (r >> 2) % 200 : 1 + (r >> 2) % 3;
		if (k > n)
			k = n;
		switch (r >> 29) {
		case 0:
		case 1:
			message_reset(holder);
			message_feed(holder, "X-Hold: y", 9); /* takes it if free */
			break;
		case 2:
			message_reset(holder);  /* gives it back */
			break;
		default:
			break;
		}
		message_feed(cmsg, c, k);
		c += k;
		n -= k;
	}
	message_finish(cmsg);
	message_reset(holder);

	const struct message_info *mi = message_info(cmsg);
	struct message_workspaces_stats st;
	message_workspaces_get_stats(shared, &st);
	FUZZ_CHECK(st.in_use == 0);
	FUZZ_CHECK(st.made <= 1);
	FUZZ_CHECK(mi->size == ref->size);
	FUZZ_CHECK(mi->header_bytes == ref->header_bytes);
	FUZZ_CHECK(mi->headers_done == ref->headers_done);
	const char *const a[] = { mi->from, mi->to, mi->cc, mi->reply_to, mi->subject_raw,
				  mi->subject, mi->from_decoded, mi->from_mailbox, mi->date,
				  mi->message_id, mi->in_reply_to, mi->references,
				  mi->user_agent, mi->x_originating_ip };
	const char *const b[] = { ref->from, ref->to, ref->cc, ref->reply_to, ref->subject_raw,
				  ref->subject, ref->from_decoded, ref->from_mailbox, ref->date,
				  ref->message_id, ref->in_reply_to, ref->references,
				  ref->user_agent, ref->x_originating_ip };
	for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
		FUZZ_CHECK(mi->headers_skipped ? a[i] == NULL : str_same(a[i], b[i]));
	if (mi->headers_skipped)
		FUZZ_CHECK(mi->attachments_total == 0);
	if (!mi->headers_skipped && !mi->parts_skipped)
		FUZZ_CHECK(mi->attachments_total == ref->attachments_total);
	/* A skipped block loses its name and the subtree under it, no more --
	 * when the whole parse stayed within the nesting bound. Past it, a
	 * multipart not followed under a skipped block no longer counts
	 * towards the depth, so a part the whole parse left beyond the bound
	 * is seen (regressions/message/deep-under-skipped). */
	if (ref->mime_depth_over)
		return;
	FUZZ_CHECK(mi->attachments_total <= ref->attachments_total);
	if (ref->attachments_total <= MESSAGE_ATTACH_KEEP_MAX) {
		unsigned j = 0;
		for (unsigned i = 0; i < mi->n_attachments; i++) {
			while (j < ref->n_attachments && !str_same(mi->attachments[i],
								   ref->attachments[j]))
				j++;
			if (j == ref->n_attachments) {
				fprintf(stderr, "attachment [%s] is not in the whole parse\n",
					mi->attachments[i]);
				FUZZ_CHECK(!"names a subsequence of the whole parse's");
			}
			j++;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (!msg) {
		msg = message_create(NULL);
		shared = message_workspaces_create(1);
		FUZZ_CHECK(msg != NULL && shared != NULL);
		cmsg = message_create(shared);
		holder = message_create(shared);
		FUZZ_CHECK(cmsg != NULL && holder != NULL);
	}
	uint64_t rng = 0x9e3779b97f4a7c15ull * ((uint64_t)data[0] + 1);
	unsigned gapsel = data[1] & 3;
	const char *c = (const char *)data + 2;
	size_t n = size - 2;

	struct dump whole = { 0 }, split = { 0 }, gapped = { 0 };
	run(c, n, 0, rng, 0, &whole);
	run(c, n, 1, rng, 0, &split);
	dump_compare(&whole, &split, "message: whole feed vs split feed");
	if (gapsel)
		run(c, n, 2, rng, gap_len[gapsel], &gapped);

	/* Header values as the parser kept them (from the whole feed). */
	run(c, n, 0, rng, 0, &gapped);
	const struct message_info *mi = message_info(msg);
	run_contended(c, n, rng, mi);
	const char *vals[] = { mi->from, mi->to, mi->cc, mi->reply_to, mi->subject_raw,
			       mi->from_mailbox };
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
		if (vals[i]) {
			check_decode(vals[i], strlen(vals[i]), &rng);
			check_mailbox(vals[i], strlen(vals[i]), &rng);
		}

	/* And the raw first lines: line 1 as a header value and a charset name,
	 * line 2 as text in that charset. */
	if (mi->from_mailbox) {
		/* message.h: a long From's mailbox, rebuilt so that it parses */
		struct mailbox mb;
		FUZZ_CHECK(address_parse_mailbox(mi->from_mailbox, strlen(mi->from_mailbox), &mb));
	}
	const char *nl = memchr(c, '\n', n);
	size_t l1 = nl ? (size_t)(nl - c) : n;
	check_decode(c, l1, &rng);
	check_mailbox(c, l1, &rng);
	if (nl) {
		char cs[RFC2047_CHARSET_MAX + 8];
		size_t cl = l1 < sizeof cs - 1 ? l1 : sizeof cs - 1;
		memcpy(cs, c, cl);
		cs[cl] = 0;
		check_convert(cs, nl + 1, n - l1 - 1, &rng);
	}
	dump_free(&whole);
	dump_free(&split);
	dump_free(&gapped);
	return 0;
}
