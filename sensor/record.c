/* record.c — build and serialise transaction records; see record.h. */
#include "record.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "decode.h"
#include "jsonw.h"

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void record_flow_uid(const struct flow *f, const struct flow_endpoints *e,
		     char out[RECORD_UID_MAX])
{
	struct {
		uint64_t first_us, serial;
		uint8_t o[16], r[16];
		uint16_t op, rp;
	} k;
	memset(&k, 0, sizeof k);
	k.first_us = f->first_us;
	k.serial = f->serial;
	memcpy(k.o, e->orig_h, 16);
	memcpy(k.r, e->resp_h, 16);
	k.op = e->orig_p;
	k.rp = e->resp_p;
	XXH128_hash_t h = XXH3_128bits(&k, sizeof k);
	uint64_t a = h.high64, b = h.low64;
	out[0] = 'C';
	for (int i = 1; i <= 17; i++) {
		uint64_t *v = i <= 9 ? &a : &b;
		out[i] = base62[*v % 62];
		*v /= 62;
	}
	out[18] = 0;
}

static void lower_copy(char *dst, size_t dstsz, const char *src)
{
	size_t i = 0;
	for (; src && src[i] && i + 1 < dstsz; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = 0;
}

void record_account(char *dst, size_t dstsz, const char *user)
{
	lower_copy(dst, dstsz, user);
}

void record_build(struct rw_record *r, const struct flow_endpoints *e, const char *uid,
		  const struct smtp_txn *t)
{
	memset(r, 0, sizeof *r);
	r->ts_us = t->ts_us;
	snprintf(r->uid, sizeof r->uid, "%s", uid);
	decode_addr_str(e->v6, e->orig_h, r->orig_h, sizeof r->orig_h);
	decode_addr_str(e->v6, e->resp_h, r->resp_h, sizeof r->resp_h);
	r->orig_p = e->orig_p;
	r->resp_p = e->resp_p;
	r->v6 = e->v6;
	memcpy(r->orig_addr, e->orig_h, 16);
	r->txn = t;
	r->msg = t->msg;

	if (t->mailfrom)
		address_from_path(t->mailfrom, strlen(t->mailfrom), r->mailfrom_addr,
				  sizeof r->mailfrom_addr);
	r->sender_domain = address_domain(r->mailfrom_addr);
	/* account: the AUTH user if seen, else the MAIL FROM address (DESIGN.md),
	 * also for a session authenticated by a mechanism that hides the user */
	r->authenticated = t->auth_ok;
	if (t->auth_user && t->auth_user[0])
		record_account(r->account, sizeof r->account, t->auth_user);
	else
		lower_copy(r->account, sizeof r->account, r->mailfrom_addr);

	r->from_domain = "";
	const struct message_info *m = t->msg;
	if (!m)
		return;
	if (m->subject) {
		r->has_subject = true;
		subject_analyse(m->subject, strlen(m->subject), &r->subj);
		subject_hex(r->subj.fingerprint, r->fingerprint);
		subject_hex(r->subj.shape, r->shape);
		/* The ministry relay's "Re: Can I trust you?" answered nothing. */
		r->fake_reply = r->subj.reply_prefix && !m->in_reply_to && !m->references;
	}
	if (m->from) {
		/* a From longer than its value as sent: its mailbox read whole */
		const char *from = m->from_mailbox ? m->from_mailbox : m->from;
		struct mailbox mb;
		if (address_parse_mailbox(from, strlen(from), &mb)) {
			snprintf(r->from_addr, sizeof r->from_addr, "%s", mb.addr);
			r->from_domain = address_domain(r->from_addr);
			r->display_spoof = address_display_spoof(&mb, r->spoof_claimed,
								 sizeof r->spoof_claimed);
		}
	}
}

/* Length of a run of non-comma bytes from i that holds an '@' with at least
 * one byte on each side (the [^,]+@[^,]+ of Zeek's split), else 0. */
static size_t addr_run(const char *v, size_t n, size_t i)
{
	size_t e = i;
	while (e < n && v[e] != ',')
		e++;
	for (size_t k = i + 1; k + 1 < e; k++)
		if (v[k] == '@')
			return e - i;
	return 0;
}

void record_split_list(const char *value, void (*fn)(void *ctx, const char *s, size_t n),
		       void *ctx)
{
	/* Zeek's split_mime_email_addresses: at each position the longest match
	 * of ("[^"]*")?[^,]+@[^,]+ — a quoted display name may hold commas —
	 * then trimmed. Pieces without an '@' are not addresses and are skipped. */
	size_t n = strlen(value), t = 0;
	while (t < n) {
		size_t best = addr_run(value, n, t);
		if (value[t] == '"') {
			const char *q = memchr(value + t + 1, '"', n - t - 1);
			if (q) {
				size_t st = (size_t)(q - value) + 1;
				size_t r = addr_run(value, n, st);
				if (r && st + r - t > best)
					best = st + r - t;
			}
		}
		if (!best) {
			t++;
			continue;
		}
		const char *p = value + t, *e = value + t + best;
		while (p < e && isspace((unsigned char)*p))
			p++;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		if (e > p)
			fn(ctx, p, (size_t)(e - p));
		t += best;
	}
}

static void emit_part(void *ctx, const char *s, size_t n)
{
	jsonw_strn(ctx, s, n);
}

static void list_field(struct jsonw *w, const char *key, const char *value)
{
	jsonw_key(w, key);
	if (!value) {
		jsonw_null(w);
		return;
	}
	jsonw_arr_begin(w);
	record_split_list(value, emit_part, w);
	jsonw_arr_end(w);
}

size_t record_to_json(const struct rw_record *r, char *buf, size_t cap, bool *overflow)
{
	const struct smtp_txn *t = r->txn;
	const struct message_info *m = r->msg;
	struct jsonw w;
	jsonw_init(&w, buf, cap);
	jsonw_obj_begin(&w);
	jsonw_kdouble(&w, "ts", (double)r->ts_us / 1e6);
	jsonw_kstr(&w, "uid", r->uid);
	jsonw_kstr(&w, "orig_h", r->orig_h);
	jsonw_kuint(&w, "orig_p", r->orig_p);
	jsonw_kstr(&w, "resp_h", r->resp_h);
	jsonw_kuint(&w, "resp_p", r->resp_p);
	jsonw_kuint(&w, "trans_depth", t->trans_depth);
	jsonw_kstr(&w, "helo", t->helo);
	jsonw_kstr(&w, "auth_user", t->auth_user);
	jsonw_kstr(&w, "auth_mech", t->auth_mech);
	jsonw_kbool(&w, "authenticated", r->authenticated);
	jsonw_kstr(&w, "mailfrom", t->mailfrom);
	jsonw_key(&w, "rcptto");
	if (t->rcpt_total) {
		jsonw_arr_begin(&w);
		for (unsigned i = 0; i < t->n_rcpt; i++)
			jsonw_str(&w, t->rcpt[i]);
		jsonw_arr_end(&w);
	} else {
		jsonw_null(&w);
	}
	jsonw_kuint(&w, "rcpt_total", t->rcpt_total);
	jsonw_kuint(&w, "rcpt_accepted", t->rcpt_accepted);
	jsonw_kuint(&w, "rcpt_rejected", t->rcpt_rejected);
	jsonw_kstr(&w, "from", m ? m->from : NULL);
	list_field(&w, "to", m ? m->to : NULL);
	list_field(&w, "cc", m ? m->cc : NULL);
	jsonw_kstr(&w, "reply_to", m ? m->reply_to : NULL);
	jsonw_kstr(&w, "date", m ? m->date : NULL);
	jsonw_kstr(&w, "msg_id", m ? m->message_id : NULL);
	jsonw_kstr(&w, "in_reply_to", m ? m->in_reply_to : NULL);
	jsonw_kstr(&w, "subject", m ? m->subject : NULL);
	jsonw_kstr(&w, "subject_raw", m ? m->subject_raw : NULL);
	jsonw_kstr(&w, "fingerprint", r->has_subject ? r->fingerprint : NULL);
	jsonw_kbool(&w, "gibberish", r->has_subject && r->subj.gibberish);
	jsonw_kstr(&w, "shape", r->has_subject && r->subj.gibberish ? r->shape : NULL);
	jsonw_kbool(&w, "fake_reply", r->fake_reply);
	jsonw_kbool(&w, "display_spoof", r->display_spoof);
	jsonw_kstr(&w, "spoof_claimed", r->display_spoof ? r->spoof_claimed : NULL);
	jsonw_key(&w, "attachments");
	if (m && m->n_attachments) {
		jsonw_arr_begin(&w);
		for (unsigned i = 0; i < m->n_attachments; i++)
			jsonw_str(&w, m->attachments[i]);
		jsonw_arr_end(&w);
	} else {
		jsonw_null(&w);
	}
	jsonw_kstr(&w, "user_agent", m ? m->user_agent : NULL);
	jsonw_key(&w, "size");
	if (t->data_seen)
		jsonw_uint(&w, t->size);
	else
		jsonw_null(&w);
	jsonw_kstr(&w, "last_reply", t->last_reply);
	jsonw_kbool(&w, "tls", t->tls);
	jsonw_kstr(&w, "account", r->account[0] ? r->account : NULL);
	if (t->gaps)
		jsonw_kuint(&w, "gaps", t->gaps);
	jsonw_obj_end(&w);
	*overflow = w.overflow;
	return w.len;
}
