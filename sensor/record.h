/* record.h — the record of one mail transaction: what --records writes, what
 * the counters count and what the rules judge.
 *
 * A plain struct passed by pointer (STYLE.md 2). record_build() fills it from
 * a flow's endpoints and an SMTP transaction; the record borrows the
 * transaction's strings, so it is
 * valid only as long as the transaction event that produced it (the callback).
 * Field names follow Zeek's smtp.log where Zeek has the field (DESIGN.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "flow.h"
#include "smtp.h"
#include "subject.h"

#define RECORD_UID_MAX 24
#define RECORD_JSON_MAX (256 * 1024) /* bounded fields fit with room to spare */

struct rw_record {
	uint64_t ts_us;
	char uid[RECORD_UID_MAX];
	char orig_h[46], resp_h[46];
	uint16_t orig_p, resp_p;
	bool v6;
	uint8_t orig_addr[16];          /* binary client address, for matching networks */
	const struct smtp_txn *txn;
	const struct message_info *msg; /* txn->msg, NULL if no headers were parsed */

	/* derived */
	char account[ADDRESS_MAX + 1];  /* AUTH user, else MAIL FROM address; lower-case; "" if none */
	bool authenticated;
	char mailfrom_addr[ADDRESS_MAX + 1];
	const char *sender_domain;      /* domain of mailfrom_addr, "" if none */
	bool has_subject;
	struct subject_facts subj;
	char fingerprint[17], shape[17];
	bool fake_reply;                /* "Re:" without In-Reply-To or References */
	bool display_spoof;
	char spoof_claimed[ADDRESS_MAX + 1]; /* address in the display name */
	char from_addr[ADDRESS_MAX + 1];     /* real From address */
	const char *from_domain;
};

/* Zeek-style connection uid: "C" + 17 base62 digits, a function of flow f's
 * first time and serial and of its endpoints e (flow_table_endpoints()), so
 * replays give the same uids. */
void record_flow_uid(const struct flow *f, const struct flow_endpoints *e,
		     char out[RECORD_UID_MAX]);

void record_build(struct rw_record *r, const struct flow_endpoints *e, const char *uid,
		  const struct smtp_txn *t);

/* Serialise as one JSON object (no newline). Returns the length; sets
 * *overflow if cap was too small (never for cap >= RECORD_JSON_MAX). */
size_t record_to_json(const struct rw_record *r, char *buf, size_t cap, bool *overflow);

/* Split an address-list header the way Zeek's smtp.log does (on commas with
 * optional blanks around them), calling fn for each non-empty part. */
/* The account an AUTH user name is counted and alerted as: lower-cased, as
 * in rw_record.account, so that "Alice@X.JP" guessing and then sending is
 * one account everywhere (dstsz: ADDRESS_MAX + 1 holds any). */
void record_account(char *dst, size_t dstsz, const char *user);

void record_split_list(const char *value, void (*fn)(void *ctx, const char *s, size_t n),
		       void *ctx);
