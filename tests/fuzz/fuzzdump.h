/* fuzzdump.h — a canonical text dump of parser results, so two runs over the
 * same bytes fed in different splits can be compared (the differential
 * oracle of fuzz-smtp and fuzz-message), and the bounds every header
 * promises are checked on the way. Static functions: each target includes
 * it once. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "fuzzlib.h"
#include "message.h"
#include "rfc2047.h"

struct dump {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3)))
static void dump_f(struct dump *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	FUZZ_CHECK(n >= 0);
	if (d->len + (size_t)n + 1 > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		while (d->len + (size_t)n + 1 > cap)
			cap *= 2;
		d->p = realloc(d->p, cap);
		FUZZ_CHECK(d->p != NULL);
		d->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(d->p + d->len, d->cap - d->len, fmt, ap);
	va_end(ap);
	d->len += (size_t)n;
}

static void dump_free(struct dump *d)
{
	free(d->p);
	memset(d, 0, sizeof *d);
}

/* A string field: NULL or at most `max` bytes (the header's bound). */
static void dump_str(struct dump *d, const char *key, const char *v, size_t max)
{
	if (!v) {
		dump_f(d, "%s=(null)\n", key);
		return;
	}
	size_t n = strlen(v);
	if (n > max) {
		fprintf(stderr, "%s: %zu bytes, bound %zu\n", key, n, max);
		FUZZ_CHECK(n <= max);
	}
	dump_f(d, "%s=[%s]\n", key, v);
}

/* A field the header promises is UTF-8. */
static void dump_utf8(struct dump *d, const char *key, const char *v, size_t max)
{
	dump_str(d, key, v, max);
	if (v && !utf8_valid(v, strlen(v))) {
		fprintf(stderr, "%s is not valid UTF-8: [%s]\n", key, v);
		FUZZ_CHECK(!"UTF-8 promised");
	}
}

static void dump_message_info(struct dump *d, const struct message_info *mi)
{
	dump_str(d, "from", mi->from, MESSAGE_FIELD_MAX);
	dump_str(d, "to", mi->to, MESSAGE_ADDRLIST_MAX);
	dump_str(d, "cc", mi->cc, MESSAGE_ADDRLIST_MAX);
	dump_str(d, "reply_to", mi->reply_to, MESSAGE_FIELD_MAX);
	dump_str(d, "subject_raw", mi->subject_raw, MESSAGE_FIELD_MAX);
	dump_utf8(d, "subject", mi->subject, MESSAGE_SUBJECT_MAX);
	dump_utf8(d, "from_decoded", mi->from_decoded, 3 * MESSAGE_FIELD_MAX);
	dump_str(d, "from_mailbox", mi->from_mailbox, MESSAGE_FROM_MAILBOX_MAX);
	FUZZ_CHECK(!mi->from_mailbox || mi->from);
	dump_str(d, "date", mi->date, MESSAGE_FIELD_MAX);
	dump_str(d, "message_id", mi->message_id, MESSAGE_FIELD_MAX);
	dump_str(d, "in_reply_to", mi->in_reply_to, MESSAGE_FIELD_MAX);
	dump_str(d, "references", mi->references, MESSAGE_FIELD_MAX);
	dump_str(d, "user_agent", mi->user_agent, MESSAGE_FIELD_MAX);
	dump_str(d, "x_originating_ip", mi->x_originating_ip, MESSAGE_FIELD_MAX);
	FUZZ_CHECK(mi->n_attachments <= MESSAGE_ATTACH_KEEP_MAX);
	FUZZ_CHECK(mi->n_attachments <= mi->attachments_total);
	for (unsigned i = 0; i < mi->n_attachments; i++) {
		FUZZ_CHECK(mi->attachments[i] != NULL);
		dump_utf8(d, "attachment", mi->attachments[i], MESSAGE_ATTACH_NAME_MAX);
	}
	FUZZ_CHECK(mi->header_bytes <= mi->size);
	dump_f(d, "attachments_total=%u header_bytes=%llu size=%llu headers_done=%d\n",
	       mi->attachments_total, (unsigned long long)mi->header_bytes,
	       (unsigned long long)mi->size, mi->headers_done);
	dump_f(d, "over: bytes=%llu count=%u truncated=%u dup=%u depth=%u bnd=%u gaps=%u "
	       "replaced=%u\n", (unsigned long long)mi->header_bytes_over, mi->header_count_over,
	       mi->truncated_fields, mi->duplicates, mi->mime_depth_over,
	       mi->boundary_too_long, mi->gaps, mi->decode_replaced);
	dump_f(d, "skipped: headers=%d parts=%u\n", mi->headers_skipped, mi->parts_skipped);
}

static void dump_compare(const struct dump *a, const struct dump *b, const char *what)
{
	if (a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0))
		return;
	size_t i = 0;
	while (i < a->len && i < b->len && a->p[i] == b->p[i])
		i++;
	size_t from = i > 300 ? i - 300 : 0;
	fprintf(stderr, "%s: results differ at byte %zu\n--- whole feeds:\n%.*s\n"
		"--- split feeds:\n%.*s\n", what, i,
		(int)(a->len - from > 1200 ? 1200 : a->len - from), a->p ? a->p + from : "",
		(int)(b->len - from > 1200 ? 1200 : b->len - from), b->p ? b->p + from : "");
	abort();
}
