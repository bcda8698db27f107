/* fixture-record.h — build a struct rw_record as the tracker does, from a
 * header block and a few SMTP facts, without packets. */
#pragma once

#include <arpa/inet.h>

#include "message.h"
#include "record.h"

struct fixture {
	struct flow flow;         /* its first time and serial, for the uid */
	struct flow_endpoints ends;
	struct smtp_txn txn;
	struct message *msg;
	struct rw_record rec;
	char uid[RECORD_UID_MAX];
	const char *body;         /* after the headers; NULL: a one-line body */
};

/* client "a.b.c.d", headers (CRLF lines, no blank line needed), auth_user
 * (NULL: none), mailfrom, up to SMTP_RCPT_KEEP_MAX recipients with their
 * reply codes; the body is fx->body if set (MIME parts). */
static inline struct rw_record *fixture_build(struct fixture *fx, const char *client,
					      const char *headers, const char *auth_user,
					      const char *mailfrom, const char *const *rcpts,
					      const uint16_t *codes, unsigned nrcpt)
{
	memset(&fx->flow, 0, sizeof fx->flow);
	memset(&fx->ends, 0, sizeof fx->ends);
	memset(&fx->txn, 0, sizeof fx->txn);
	inet_pton(AF_INET, client, fx->ends.orig_h);
	inet_pton(AF_INET, "10.1.0.25", fx->ends.resp_h);
	fx->ends.orig_p = 40000;
	fx->ends.resp_p = 25;
	fx->flow.first_us = 1700000000000000ull;
	fx->flow.serial = 1;
	fx->txn.ts_us = fx->flow.first_us + 1000;
	fx->txn.trans_depth = 1;
	fx->txn.helo = "client.example";
	fx->txn.auth_ok = auth_user != NULL;
	fx->txn.auth_user = auth_user;
	fx->txn.auth_mech = auth_user ? "PLAIN" : NULL;
	fx->txn.mailfrom = mailfrom;
	for (unsigned i = 0; i < nrcpt; i++) {
		fx->txn.rcpt[i] = rcpts[i];
		fx->txn.rcpt_code[i] = codes[i];
		if (codes[i] >= 200 && codes[i] < 300)
			fx->txn.rcpt_accepted++;
		else if (codes[i] >= 400)
			fx->txn.rcpt_rejected++;
	}
	fx->txn.n_rcpt = fx->txn.rcpt_total = nrcpt;
	fx->txn.replies_seen = true;
	fx->txn.data_seen = fx->txn.data_done = true;
	fx->txn.data_code = 250;
	fx->txn.last_reply = "250 ok";
	if (!fx->msg)
		fx->msg = message_create(NULL);
	message_reset(fx->msg);
	message_feed(fx->msg, headers, strlen(headers));
	message_feed(fx->msg, "\r\n", 2);
	if (!fx->body)
		message_feed(fx->msg, "body\r\n", 6);
	else
		message_feed(fx->msg, fx->body, strlen(fx->body));
	message_finish(fx->msg);
	fx->txn.msg = message_info(fx->msg);
	fx->txn.size = message_info(fx->msg)->size;
	record_flow_uid(&fx->flow, &fx->ends, fx->uid);
	record_build(&fx->rec, &fx->ends, fx->uid, &fx->txn);
	return &fx->rec;
}
