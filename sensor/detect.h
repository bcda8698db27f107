/* detect.h — the rules: from records, AUTH outcomes and sessions to alerts.
 *
 * Rules are evaluated on every event against the counters' view (Redis
 * totals plus this sensor's deltas not yet flushed), so an alert fires on
 * the message that crosses the line — also while Redis is down. Per-message
 * rules (open_relay, display_spoof) need no counters; with --redis none the
 * counting rules are off.
 *
 * One alert per (rule, measure, entity) per cooldown, in packet time; a new
 * one when the value has doubled since (escalation). A rule that measures two
 * things (auth_failures: failures or accounts tried; tls_blind_burst:
 * sessions or bytes; account_burst: 10 minutes or 1 hour) has a cooldown for
 * each. The stream deduplicates again across sensors (counters/lua/alert.lua).
 *
 * Alerts leave through the callback; the struct and its strings are borrowed
 * until it returns. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "netlist.h"
#include "options.h"
#include "record.h"

enum rule_id {
	RULE_OPEN_RELAY,
	RULE_ACCOUNT_BURST,
	RULE_FINGERPRINT_BURST,
	RULE_RANDOM_SUBJECT_FLOOD,
	RULE_DISPLAY_SPOOF,
	RULE_AUTH_FAILURES,
	RULE_RECIPIENT_REJECTS,
	RULE_TLS_BLIND_BURST,
	RULE_COUNT
};

#define RULE_PARAMS_MAX 4
#define DETECT_TRACKED_DEFAULT 16384u  /* entities with recent-member sets */

struct detect_config {
	bool enabled[RULE_COUNT];
	double param[RULE_COUNT][RULE_PARAMS_MAX];
	struct domain_list local_domains;
	struct domain_list protected_domains;
	struct cidr_list trusted_networks;
	double cooldown_s;
};

/* Defaults, then the [network] lists and every [rule.NAME] setting of o.
 * A bad rule setting is reported as "FILE:LINE: [rule.NAME] key: reason".
 * Returns 0, or -EINVAL with err set (a usage error). */
int detect_config_load(struct detect_config *dc, const struct rw_options *o, char *err,
		       size_t errsz);

/* Print every rule, its settings, their ranges and defaults as the commented
 * [rule.NAME] sections of an INI file (the end of --print-config). */
void detect_print_rules(void);

typedef void (*detect_alert_fn)(void *ctx, const struct counters_alert *a);

struct detect_stats {
	uint64_t fired[RULE_COUNT];
	uint64_t suppressed;      /* inside a cooldown */
	uint64_t escalated;
	uint64_t extra_truncated; /* evidence over its buffer, cut back (never expected) */
};

struct detect;

/* ctr may be NULL (--redis none): the counting rules are then off. */
struct detect *detect_create(const struct detect_config *cfg, struct counters *ctr,
			     detect_alert_fn fn, void *ctx);
void detect_destroy(struct detect *d);

/* After counters_record() for the same record. */
void detect_record(struct detect *d, const struct rw_record *r);
/* After counters_auth(): an AUTH attempt that got an answer; user as
 * counters_auth() takes it (the account, lower-cased). */
void detect_auth(struct detect *d, uint64_t ts_us, const char *client, const char *user,
		 bool ok);
/* After counters_session() / counters_tls_bytes(). */
void detect_session(struct detect *d, uint64_t ts_us, const char *client, bool tls);

const struct detect_stats *detect_get_stats(const struct detect *d);
const char *detect_rule_name(enum rule_id r);
