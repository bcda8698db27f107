/* detect.c — the rules; see detect.h. Each rule is one function below, with
 * the incident it exists for. Thresholds are `value >= threshold`: a rule
 * fires on the event that brings the count to the threshold. */
#include "detect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "address.h"
#include "decode.h"
#include "jsonw.h"

struct param_def {
	const char *key;
	double def, min, max;
	const char *help;
};

/* A setting named *_factor is a factor (2.5 is one); every other is a count
 * of whole events, and so whole. */
static bool param_fractional(const struct param_def *p)
{
	size_t n = strlen(p->key);
	return n > 7 && !strcmp(p->key + n - 7, "_factor");
}

struct rule_def {
	const char *name;
	const char *help;
	struct param_def p[RULE_PARAMS_MAX];
};

/* Defaults from Exchange Online's recommended sending limits, Rspamd and
 * Postfix habits; README.md has one section per rule. */
static const struct rule_def rules[RULE_COUNT] = {
	[RULE_OPEN_RELAY] = { "open_relay",
		"an unauthenticated client outside trusted_networks gets a 2xx for a recipient "
		"outside local_domains (Postfix's definition of relaying)", { { 0 } } },
	[RULE_ACCOUNT_BURST] = { "account_burst",
		"one account's accepted recipients in 10 min or 1 h, and above its own baseline "
		"once one is learned",
		{ { "rcpts_10m", 100, 1, 1e9, "accepted recipients in 10 minutes" },
		  { "rcpts_1h", 500, 1, 1e9, "accepted recipients in 1 hour" },
		  { "baseline_factor", 10, 1, 1e6,
		    "and at least this many times the learned hourly baseline" } } },
	[RULE_FINGERPRINT_BURST] = { "fingerprint_burst",
		"one subject fingerprint sent many times in 10 min, by few accounts or without AUTH",
		{ { "msgs_10m", 100, 1, 1e9, "messages with the same normalised subject" },
		  { "max_accounts", 3, 1, 1e6, "sent by at most this many authenticated accounts "
		    "(or mostly without AUTH)" } } },
	[RULE_RANDOM_SUBJECT_FLOOD] = { "random_subject_flood",
		"many random-symbol (gibberish) subjects from one client or account",
		{ { "gibberish_10m", 50, 1, 1e9, "gibberish subjects in 10 minutes" } } },
	[RULE_DISPLAY_SPOOF] = { "display_spoof",
		"the From display name holds an address of another domain than the real From "
		"(high if it is a protected or local domain)", { { 0 } } },
	[RULE_AUTH_FAILURES] = { "auth_failures",
		"password guessing: AUTH failures from one client, or one client trying many "
		"accounts; a success after failures names the account",
		{ { "failures_10m", 10, 1, 1e9, "failed AUTH attempts in 10 minutes" },
		  { "accounts_10m", 5, 1, 1e9, "distinct user names tried in 10 minutes" },
		  { "success_after", 3, 1, 1e9, "failures in 10 minutes before a success that "
		    "is then reported" } } },
	[RULE_RECIPIENT_REJECTS] = { "recipient_rejects",
		"many rejected recipients for one account or client (harvesting, stale lists)",
		{ { "rejects_10m", 50, 1, 1e9, "rejected recipients in 10 minutes" } } },
	[RULE_TLS_BLIND_BURST] = { "tls_blind_burst",
		"encrypted sessions (SMTPS, STARTTLS) per client above a floor and its baseline",
		{ { "sessions_10m", 200, 1, 1e9, "encrypted sessions in 10 minutes" },
		  { "bytes_10m", 2e8, 1, 1e15, "encrypted bytes in 10 minutes" },
		  { "baseline_factor", 10, 1, 1e6,
		    "and at least this many times the learned hourly baseline" } } },
};

enum { P0, P1, P2 };

const char *detect_rule_name(enum rule_id r)
{
	return rules[r].name;
}

/* A range bound as the example configuration writes it: 1e9, not 1e+09. */
static const char *range_num(char *buf, size_t n, double v)
{
	char *e;
	snprintf(buf, n, "%g", v);
	if ((e = strstr(buf, "e+")) != NULL) {
		char *d = e + 2;
		while (*d == '0' && d[1])
			d++;
		memmove(e + 1, d, strlen(d) + 1);
	}
	return buf;
}

void detect_print_rules(void)
{
	printf("\n; Detection rules: every rule is enabled by default; a threshold fires on\n"
	       "; the event that brings the count to it. Also --rule NAME.KEY=VALUE.\n");
	for (int r = 0; r < RULE_COUNT; r++) {
		printf("\n[rule.%s]\n; %s\n;enabled = yes\n", rules[r].name, rules[r].help);
		for (int k = 0; k < RULE_PARAMS_MAX && rules[r].p[k].key; k++) {
			const struct param_def *p = &rules[r].p[k];
			/* %.15g: a default of 2e8 is printed as 200000000, as the
			 * example configuration writes it */
			char lo[32], hi[32];
			printf("; %s [%s, %s]\n;%s = %.15g\n", p->help,
			       range_num(lo, sizeof lo, p->min), range_num(hi, sizeof hi, p->max),
			       p->key, p->def);
		}
	}
}

static int set_rule(struct detect_config *dc, const struct rw_rule_kv *kv, char *err,
		    size_t errsz)
{
	int r = 0;
	while (r < RULE_COUNT && strcmp(rules[r].name, kv->rule))
		r++;
	if (r == RULE_COUNT) {
		snprintf(err, errsz, "%s: [rule.%s]: unknown rule (rules: open_relay account_burst "
			 "fingerprint_burst random_subject_flood display_spoof auth_failures "
			 "recipient_rejects tls_blind_burst)", kv->where, kv->rule);
		return -EINVAL;
	}
	if (!strcmp(kv->key, "enabled")) {
		const char *v = kv->value;
		if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1") ||
		    !strcasecmp(v, "on"))
			dc->enabled[r] = true;
		else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0") ||
			 !strcasecmp(v, "off"))
			dc->enabled[r] = false;
		else {
			snprintf(err, errsz, "%s: [rule.%s] enabled: '%.40s' is not yes or no",
				 kv->where, kv->rule, v);
			return -EINVAL;
		}
		return 0;
	}
	for (int k = 0; k < RULE_PARAMS_MAX && rules[r].p[k].key; k++) {
		const struct param_def *p = &rules[r].p[k];
		if (strcmp(p->key, kv->key))
			continue;
		char *end;
		double v = strtod(kv->value, &end);
		if (end == kv->value || *end || !isfinite(v)) {
			snprintf(err, errsz, "%s: [rule.%s] %s: '%.40s' is not a number", kv->where,
				 kv->rule, kv->key, kv->value);
			return -EINVAL;
		}
		if (!param_fractional(p) && v != floor(v)) {
			/* a count reached by whole events: 100.5 would mean 101
			 * without saying so */
			snprintf(err, errsz, "%s: [rule.%s] %s: '%.40s' is not a whole number (a "
				 "count)", kv->where, kv->rule, kv->key, kv->value);
			return -EINVAL;
		}
		if (v < p->min || v > p->max) {
			snprintf(err, errsz, "%s: [rule.%s] %s: %g is out of range [%g, %g]",
				 kv->where, kv->rule, kv->key, v, p->min, p->max);
			return -EINVAL;
		}
		dc->param[r][k] = v;
		return 0;
	}
	char keys[256] = "enabled";
	for (int k = 0; k < RULE_PARAMS_MAX && rules[r].p[k].key; k++) {
		strncat(keys, " ", sizeof keys - strlen(keys) - 1);
		strncat(keys, rules[r].p[k].key, sizeof keys - strlen(keys) - 1);
	}
	snprintf(err, errsz, "%s: [rule.%s] %s: unknown setting (settings: %s)", kv->where,
		 kv->rule, kv->key, keys);
	return -EINVAL;
}

int detect_config_load(struct detect_config *dc, const struct rw_options *o, char *err,
		       size_t errsz)
{
	memset(dc, 0, sizeof *dc);
	for (int r = 0; r < RULE_COUNT; r++) {
		dc->enabled[r] = true;
		for (int k = 0; k < RULE_PARAMS_MAX; k++)
			dc->param[r][k] = rules[r].p[k].def;
	}
	dc->cooldown_s = o->alert_cooldown;
	char why[256];
	/* already checked where they were read; these cannot fail now */
	if (domain_list_parse(o->local_domains, &dc->local_domains, why, sizeof why) < 0 ||
	    domain_list_parse(o->protected_domains, &dc->protected_domains, why, sizeof why) < 0 ||
	    cidr_list_parse(o->trusted_networks, &dc->trusted_networks, why, sizeof why) < 0) {
		snprintf(err, errsz, "%s", why);
		return -EINVAL;
	}
	for (unsigned i = 0; i < o->n_rules; i++)
		if (set_rule(dc, &o->rules[i], err, errsz) < 0)
			return -EINVAL;
	return 0;
}

/* --- recent state per entity: cooldowns and small distinct sets ------------------- */

#define TRACK_PROBE 8
#define TRACK_MEMBERS 16
#define TRACK_IPS 5
#define WINDOW_10M_US (600ull * 1000000)

/* Exact small distinct sets (authenticated accounts per fingerprint, user
 * names per client) and the client addresses behind an entity, for the last
 * 10 minutes. Redis' HyperLogLogs are approximate and a flush late; these
 * make "at most 3 accounts" and "5 accounts tried" exact at the message.
 *
 * 248 bytes, so the fixed table of DETECT_TRACKED_DEFAULT is 4 MB (it was
 * 544 bytes, 8.9 MB, with 64-bit member hashes and times and addresses kept
 * as text). A member is known by 32 bits of its hash: two of an entity's
 * sixteen collide once in ~2^28 sets, and then one member is counted too
 * few. Times are whole seconds, the next one up, so a member stays in the
 * window up to a second longer, never shorter. Addresses are kept binary,
 * IPv4 in the first 4 bytes. */
struct track {
	uint64_t key;
	uint64_t last_us;               /* for the LRU choice among TRACK_PROBE slots */
	uint32_t mh[TRACK_MEMBERS];     /* member hashes, 0: a free slot */
	uint32_t mt[TRACK_MEMBERS];     /* seconds: when the member was last seen */
	uint8_t ip[TRACK_IPS][16];
	uint32_t ipt[TRACK_IPS];        /* seconds; 0: a free slot */
	uint8_t ip_v6;                  /* bit i: ip[i] is IPv6 */
};
_Static_assert(sizeof(struct track) == 248, "a track is 248 bytes");

/* now (µs) as the seconds kept in a track: the next whole second, so never
 * earlier than now and never 0 (0 marks a free slot, even for a capture
 * stamped at the epoch). */
static uint32_t track_s(uint64_t now)
{
	return (uint32_t)(now / 1000000 + 1);
}

/* A time kept in a track lies in the 10 minutes before now. */
static bool track_recent(uint32_t t, uint64_t now)
{
	return t && (uint64_t)t * 1000000 + WINDOW_10M_US > now;
}

struct cool {
	uint64_t key;
	uint64_t last_us;
	double value;
};

struct detect {
	struct detect_config cfg;
	struct counters *ctr;
	detect_alert_fn fn;
	void *ctx;
	struct track *tracks;
	struct cool *cools;
	uint32_t mask;
	struct detect_stats st;
	char extra[8192];
	struct jsonw extra_mark;        /* the evidence kept if extra overflows */
};

static uint64_t hkey(int kind, const char *a, const char *b)
{
	char buf[2 * (COUNTERS_ID_MAX + 1) + 16];
	int n = snprintf(buf, sizeof buf, "%s%c%s", a, 0, b ? b : "");
	if (n < 0 || (size_t)n >= sizeof buf)
		n = (int)sizeof buf - 1;
	return XXH3_64bits_withSeed(buf, (size_t)n, (uint64_t)kind) | 1; /* 0: a free slot */
}

/* Find the slot of key among TRACK_PROBE places; if absent, take a free one
 * or the least recently used of them (bounded memory, O(1)). */
static struct track *track_get(struct detect *d, uint64_t key, uint64_t now)
{
	struct track *oldest = NULL;
	for (uint32_t i = 0; i < TRACK_PROBE; i++) {
		struct track *t = &d->tracks[(key + i) & d->mask];
		if (t->key == key) {
			t->last_us = now;
			return t;
		}
		if (!oldest || t->key == 0 || (oldest->key && t->last_us < oldest->last_us))
			oldest = t;
	}
	memset(oldest, 0, sizeof *oldest);
	oldest->key = key;
	oldest->last_us = now;
	return oldest;
}

static void track_member(struct track *t, const char *m, uint64_t now)
{
	uint32_t h = (uint32_t)XXH3_64bits(m, strlen(m)) | 1;
	int slot = 0;
	for (int i = 0; i < TRACK_MEMBERS; i++) {
		if (t->mh[i] == h) {
			t->mt[i] = track_s(now);
			return;
		}
		if (t->mt[i] < t->mt[slot])
			slot = i;
	}
	t->mh[slot] = h;
	t->mt[slot] = track_s(now);
}

static unsigned track_count(const struct track *t, uint64_t now)
{
	unsigned n = 0;
	for (int i = 0; i < TRACK_MEMBERS; i++)
		n += t->mh[i] && track_recent(t->mt[i], now);
	return n;
}

/* Remember a client address (binary, as in a record: IPv4 in the first 4
 * bytes, the rest zero). */
static void track_ip(struct track *t, bool v6, const uint8_t addr[16], uint64_t now)
{
	int slot = 0;
	for (int i = 0; i < TRACK_IPS; i++) {
		if (t->ipt[i] && !memcmp(t->ip[i], addr, 16) && (t->ip_v6 >> i & 1) == v6) {
			t->ipt[i] = track_s(now);
			return;
		}
		if (t->ipt[i] < t->ipt[slot])
			slot = i;
	}
	memcpy(t->ip[slot], addr, 16);
	t->ip_v6 = (uint8_t)((t->ip_v6 & ~(1u << slot)) | (unsigned)v6 << slot);
	t->ipt[slot] = track_s(now);
}

/* The addresses seen in the last 10 minutes, comma-separated, written as
 * the records write them. */
static void track_ips_text(const struct track *t, uint64_t now, char *out, size_t outsz)
{
	out[0] = 0;
	for (int i = 0; i < TRACK_IPS; i++) {
		char ip[INET6_ADDRSTRLEN];
		if (!track_recent(t->ipt[i], now))
			continue;
		decode_addr_str(t->ip_v6 >> i & 1, t->ip[i], ip, sizeof ip);
		if (out[0])
			strncat(out, ",", outsz - strlen(out) - 1);
		strncat(out, ip, outsz - strlen(out) - 1);
	}
}

/* Cooldown: true if an alert for key may fire now at this value. Packet
 * time; counters/lua/alert.lua decides the same way for the stream, and the
 * two must agree: within the cooldown when now < last alert + cooldown (a
 * time before the last alert's is within it); there only a value at least
 * double the last alert's goes out (escalated). An alert that goes out
 * restarts the cooldown at its time, never earlier than the last one's. */
static bool cool_pass(struct detect *d, uint64_t key, uint64_t now, double value, bool *escalated)
{
	struct cool *slot = NULL;
	for (uint32_t i = 0; i < TRACK_PROBE; i++) {
		struct cool *c = &d->cools[(key + i) & d->mask];
		if (c->key == key) {
			slot = c;
			break;
		}
		if (!slot || c->key == 0 || (slot->key && c->last_us < slot->last_us))
			slot = c;
	}
	*escalated = false;
	/* The same alert twice (the same packet time and value) is one, as
	 * alert.lua decides: with --alert-cooldown 0 it is how a resend after a
	 * lost reply stays out of the stream. */
	if (slot->key == key && now == slot->last_us && value == slot->value) {
		d->st.suppressed++;
		return false;
	}
	if (slot->key == key && now < slot->last_us + counters_cooldown_us(d->cfg.cooldown_s)) {
		if (!(value >= 2 * slot->value && value > 0)) {
			d->st.suppressed++;
			return false;
		}
		*escalated = true;
		d->st.escalated++;
		if (now < slot->last_us)
			now = slot->last_us;
	}
	slot->key = key;
	slot->last_us = now;
	slot->value = value;
	return true;
}

struct detect *detect_create(const struct detect_config *cfg, struct counters *ctr,
			     detect_alert_fn fn, void *ctx)
{
	struct detect *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->cfg = *cfg;
	d->ctr = ctr;
	d->fn = fn;
	d->ctx = ctx;
	d->mask = DETECT_TRACKED_DEFAULT - 1;
	d->tracks = calloc(DETECT_TRACKED_DEFAULT, sizeof *d->tracks);
	d->cools = calloc(DETECT_TRACKED_DEFAULT, sizeof *d->cools);
	if (!d->tracks || !d->cools) {
		detect_destroy(d);
		return NULL;
	}
	return d;
}

void detect_destroy(struct detect *d)
{
	if (!d)
		return;
	free(d->tracks);
	free(d->cools);
	free(d);
}

const struct detect_stats *detect_get_stats(const struct detect *d)
{
	return &d->st;
}

/* --- firing ------------------------------------------------------------------------- */

struct fire {
	enum rule_id rule;
	const char *severity;
	enum entity_type etype;
	const char *entity;        /* raw; pseudonymised for the alert by the counters */
	const char *window;
	const char *measure;       /* what value counts: see struct counters_alert */
	double value, threshold, baseline;
	uint64_t ts_us, first_us;
	uint64_t before;
	const char *subject;
	const char *ips;
};

/* The cooldown's identity, as alert.lua's key: (rule, measure, window,
 * entity type, entity). One rule may measure different things (failures or
 * accounts tried; 10 minutes or 1 hour): each escalates against itself. */
static uint64_t cool_key(const struct fire *f)
{
	char what[96];
	snprintf(what, sizeof what, "%s:%s", f->measure, f->window);
	return hkey(1000 + (int)f->rule * ENT_TYPE_COUNT + (int)f->etype, what, f->entity);
}

static void fire(struct detect *d, const struct fire *f, struct jsonw *extra)
{
	bool escalated;
	uint64_t key = cool_key(f);
	if (!cool_pass(d, key, f->ts_us, f->value, &escalated))
		return;
	if (extra->overflow) {
		/* cut JSON is no JSON: keep the evidence written before the long
		 * fields (extra_mark) and say the rest is missing */
		jsonw_rewind(extra, &d->extra_mark);
		jsonw_kbool(extra, "truncated", true);
		d->st.extra_truncated++;
	}
	if (escalated)
		jsonw_kbool(extra, "escalated", true);
	jsonw_obj_end(extra);
	char entity[COUNTERS_ID_MAX + 1];
	if (d->ctr)
		counters_entity_id(d->ctr, f->etype, f->entity, entity, sizeof entity);
	else
		snprintf(entity, sizeof entity, "%s", f->entity);
	struct counters_alert a = {
		.ts = (double)f->ts_us / 1e6,
		.ts_us = f->ts_us,
		.rule = rules[f->rule].name,
		.severity = f->severity,
		.entity_type = counters_entity_type_name(f->etype),
		.entity = entity,
		.window = f->window,
		.measure = f->measure,
		.value = f->value,
		.threshold = f->threshold,
		.baseline = f->baseline,
		.first_seen = (double)(f->first_us ? f->first_us : f->ts_us) / 1e6,
		.msgs_before_alert = f->before,
		.sample_subject = f->subject,
		.client_ips = f->ips,
		.extra = jsonw_result(extra),
	};
	d->st.fired[f->rule]++;
	d->fn(d->ctx, &a);
}

/* Bytes of JSON text per string in an alert's evidence. Strings from the
 * wire are bounded in bytes, but escaping makes a control byte six
 * (\u0001): 16 attachment names of 255 such bytes are 24 KB. Capped, every
 * rule's evidence fits extra[]: open_relay's, the largest (20 domains, MAIL
 * FROM, HELO, last reply), stays under 6.5 KB; display_spoof's under 5.5 KB. */
#define EXTRA_STR_MAX 256

static void extra_kstr(struct jsonw *w, const char *key, const char *s)
{
	jsonw_kstr_max(w, key, s, EXTRA_STR_MAX);
}

/* An account name (or a mail address that is one) for the evidence: its
 * pseudonym under [privacy] pseudonymize, as in the keys and the entity. */
static void jsonw_kaccount(struct detect *d, struct jsonw *w, const char *key, const char *name)
{
	if (name && *name && d->ctr && counters_pseudonymizing(d->ctr)) {
		char p[COUNTERS_ID_MAX + 1];
		counters_entity_id(d->ctr, ENT_ACCOUNT, name, p, sizeof p);
		extra_kstr(w, key, p);
	} else {
		extra_kstr(w, key, name);
	}
}

static bool pseudonymizing(const struct detect *d)
{
	return d->ctr && counters_pseudonymizing(d->ctr);
}

/* What is written so far is kept if the rest overflows (see fire()): a
 * rule writes its counts and short fields first, then marks, then its lists
 * and headers as sent. */
static void extra_mark(struct detect *d, const struct jsonw *w)
{
	d->extra_mark = *w;
}

static void extra_begin(struct detect *d, struct jsonw *w)
{
	jsonw_init(w, d->extra, sizeof d->extra);
	jsonw_obj_begin(w);
	extra_mark(d, w); /* an empty object, at least */
}

static uint64_t minus1(uint64_t v)
{
	return v ? v - 1 : 0;
}

static void view(struct detect *d, enum entity_type t, const char *id, uint64_t now,
		 struct counters_view *v)
{
	if (d->ctr && id && *id)
		counters_view(d->ctr, t, id, now, v);
	else
		memset(v, 0, sizeof *v);
}

/* --- per-message rules ------------------------------------------------------------ */

static bool is_local(const struct detect *d, const char *domain)
{
	return domain_list_match(&d->cfg.local_domains, domain);
}

/* A recipient outside local_domains, or with sender-specified routing
 * (victim%foreign@local, foreign!victim@local, victim@foreign@local):
 * address_relayed(), which smtp.c applies to the recipients it cannot keep.
 * *dom, *n: the next hop the sender named, else the domain. */
static bool rcpt_foreign(const struct detect *d, const char *rcpt, const char **dom, size_t *n)
{
	return address_relayed(rcpt, &d->cfg.local_domains, dom, n);
}

/* The ministry relay (May 2023): an outside client, no AUTH, foreign
 * recipients accepted. Fires on the first such recipient. */
static void rule_open_relay(struct detect *d, const struct rw_record *r, const struct track *ct)
{
	const struct smtp_txn *t = r->txn;
	if (!d->cfg.enabled[RULE_OPEN_RELAY] || !d->cfg.local_domains.n || r->authenticated ||
	    cidr_list_match(&d->cfg.trusted_networks, r->v6, r->orig_addr))
		return;
	unsigned foreign = 0;
	uint16_t code = 0;
	const char *dom[20]; /* the first 20 foreign hops, for the evidence */
	size_t dn[20];
	for (unsigned i = 0; i < t->n_rcpt; i++) {
		const char *hd;
		size_t hn;
		if (t->rcpt_code[i] >= 200 && t->rcpt_code[i] < 300 &&
		    rcpt_foreign(d, t->rcpt[i], &hd, &hn)) {
			if (foreign < 20) {
				dom[foreign] = hd;
				dn[foreign] = hn;
			}
			foreign++;
			code = t->rcpt_code[i];
		}
	}
	/* and those past the kept ones, which the parser held against the
	 * same local_domains (smtp_txn.rcpt_relayed_unkept): their addresses
	 * are gone, their count is not */
	if (!foreign && !t->rcpt_relayed_unkept)
		return;
	struct jsonw w;
	extra_begin(d, &w);
	extra_kstr(&w, "client", r->orig_h);
	jsonw_kaccount(d, &w, "mailfrom", t->mailfrom);
	jsonw_kuint(&w, "foreign_rcpts", foreign + (uint64_t)t->rcpt_relayed_unkept);
	jsonw_kuint(&w, "foreign_rcpts_not_kept", t->rcpt_relayed_unkept);
	jsonw_kuint(&w, "rcpt_reply_code", code);
	extra_mark(d, &w);
	jsonw_key(&w, "rcpt_domains");
	jsonw_arr_begin(&w);
	for (unsigned i = 0; i < foreign && i < 20; i++)
		jsonw_strn_max(&w, dom[i], dn[i], EXTRA_STR_MAX);
	jsonw_arr_end(&w);
	extra_kstr(&w, "last_reply", t->last_reply);
	extra_kstr(&w, "helo", t->helo);
	struct counters_view v;
	view(d, ENT_CLIENT, r->orig_h, r->ts_us, &v);
	char ips[64];
	track_ips_text(ct, r->ts_us, ips, sizeof ips);
	struct fire f = {
		.rule = RULE_OPEN_RELAY,
		.severity = r->fake_reply ? "critical" : "high",
		/* one relayed message: a per-message count must not "escalate" */
		.etype = ENT_CLIENT, .entity = r->orig_h, .window = "message",
		.measure = "relayed", .value = 1, .threshold = 1, .baseline = -1,
		.ts_us = r->ts_us, .first_us = v.first_seen_us,
		.before = minus1(v.v[W_10M][F_MSGS]),
		.subject = r->msg ? r->msg->subject : NULL, .ips = r->orig_h,
	};
	fire(d, &f, &w);
}

/* Emotet thread hijacks (2022): `helpdesk@org.jp <attacker@elsewhere>`. */
static void rule_display_spoof(struct detect *d, const struct rw_record *r)
{
	if (!d->cfg.enabled[RULE_DISPLAY_SPOOF] || !r->display_spoof)
		return;
	const char *claimed = address_domain(r->spoof_claimed);
	bool protected = domain_list_match(&d->cfg.protected_domains, claimed) ||
			 is_local(d, claimed);
	const char *entity = r->account[0] ? r->account : r->from_addr;
	struct jsonw w;
	extra_begin(d, &w);
	extra_kstr(&w, "claimed", r->spoof_claimed);
	jsonw_kaccount(d, &w, "actual", r->from_addr);
	jsonw_kbool(&w, "protected_domain", protected);
	jsonw_kbool(&w, "fake_reply", r->fake_reply);
	extra_mark(d, &w);
	/* the header as sent names the sender: not under pseudonymisation */
	if (!pseudonymizing(d))
		extra_kstr(&w, "from", r->msg ? r->msg->from : NULL);
	if (r->msg && r->msg->n_attachments) {
		jsonw_key(&w, "attachments");
		jsonw_arr_begin(&w);
		for (unsigned i = 0; i < r->msg->n_attachments; i++)
			jsonw_str_max(&w, r->msg->attachments[i], EXTRA_STR_MAX);
		jsonw_arr_end(&w);
	}
	struct counters_view v;
	view(d, ENT_ACCOUNT, entity, r->ts_us, &v);
	/* A claim of a protected or local domain is its own measure, with its
	 * own cooldown (SCHEMA.md "Cooldowns"): as one, an account's first
	 * medium alert (a mailing list's "via" name, or one sent on purpose)
	 * held back its Emotet-style high one for the whole cooldown, a
	 * per-message value of 1 never escalating. */
	struct fire f = {
		.rule = RULE_DISPLAY_SPOOF, .severity = protected ? "high" : "medium",
		.etype = ENT_ACCOUNT, .entity = entity, .window = "message",
		.measure = protected ? "spoofed_protected" : "spoofed",
		.value = 1, .threshold = 1, .baseline = -1,
		.ts_us = r->ts_us, .first_us = v.first_seen_us,
		.before = minus1(v.v[W_10M][F_MSGS]),
		.subject = r->msg ? r->msg->subject : NULL, .ips = r->orig_h,
	};
	fire(d, &f, &w);
}

/* --- counting rules -------------------------------------------------------------- */

/* The prefecture account with a weak password (June 2022). The 10 minutes
 * and the hour are two measures, each judged on every message with its own
 * cooldown and escalation: the hour used to be looked at only while the 10
 * minutes were under rcpts_10m, so an account that crossed rcpts_10m once
 * and then kept under twice it sent for the rest of the hour behind that
 * one alert (value 20 for 120 recipients an hour, in the unit test). A
 * burst now says what its hour adds up to, at most one more alert per
 * doubling of it. */
static void rule_account_burst(struct detect *d, const struct rw_record *r,
			       const struct counters_view *v, const struct track *at)
{
	const double *p = d->cfg.param[RULE_ACCOUNT_BURST];
	if (!d->cfg.enabled[RULE_ACCOUNT_BURST] || !r->account[0])
		return;
	if (v->v[W_10M][F_RCPTS] < p[P0] && v->v[W_1H][F_RCPTS] < p[P1])
		return;
	/* a learned baseline must be exceeded too: some accounts do send a lot */
	if (v->base_learned && v->v[W_1H][F_RCPTS] < p[P2] * v->base_rcpts)
		return;
	char ips[256];
	track_ips_text(at, r->ts_us, ips, sizeof ips);
	for (int w = W_10M; w <= W_1H; w++) {
		double threshold = w == W_10M ? p[P0] : p[P1];
		if (v->v[w][F_RCPTS] < threshold)
			continue;
		struct jsonw je;
		extra_begin(d, &je);
		jsonw_kuint(&je, "rcpts", v->v[w][F_RCPTS]);
		jsonw_kuint(&je, "msgs", v->v[w][F_MSGS]);
		jsonw_kuint(&je, "rcpt_domains", v->distinct[w][H_RDOM]);
		jsonw_kuint(&je, "rcpts_rejected", v->v[w][F_RCPTS_REJ]);
		jsonw_kuint(&je, "fake_reply", v->v[w][F_FAKE_REPLY]);
		jsonw_kbool(&je, "authenticated", r->authenticated);
		jsonw_kbool(&je, "baseline_learned", v->base_learned);
		struct fire f = {
			.rule = RULE_ACCOUNT_BURST,
			.severity = v->v[w][F_FAKE_REPLY] ? "critical" : "high",
			.etype = ENT_ACCOUNT, .entity = r->account,
			.window = w == W_10M ? "10m" : "1h", .measure = "rcpts",
			.value = (double)v->v[w][F_RCPTS], .threshold = threshold,
			.baseline = v->base_learned ? v->base_rcpts : -1,
			.ts_us = r->ts_us, .first_us = v->first_seen_us,
			.before = minus1(v->v[w][F_MSGS]),
			.subject = r->msg ? r->msg->subject : NULL, .ips = ips,
		};
		fire(d, &f, &je);
	}
}

/* "Re: Can I trust you?" x 100,000 (the ministry relay, May 2023). */
static void rule_fingerprint_burst(struct detect *d, const struct rw_record *r,
				   const struct counters_view *v, const struct track *ft)
{
	const double *p = d->cfg.param[RULE_FINGERPRINT_BURST];
	if (!d->cfg.enabled[RULE_FINGERPRINT_BURST] || !r->has_subject ||
	    v->v[W_10M][F_MSGS] < p[P0])
		return;
	uint64_t msgs = v->v[W_10M][F_MSGS];
	/* authenticated accounts: a sender must have proved it owns one to
	 * make the subject look popular (see detect_record) */
	uint64_t accounts = track_count(ft, r->ts_us);
	if (v->distinct[W_10M][H_ACCT] > accounts && accounts >= TRACK_MEMBERS)
		accounts = v->distinct[W_10M][H_ACCT]; /* Redis': over 16 real ones anyway */
	uint64_t unauth = v->v[W_10M][F_UNAUTH];
	if (!(accounts <= p[P1] || 2 * unauth >= msgs))
		return; /* a popular subject from many real accounts: a newsletter, a thread */
	char ips[256];
	track_ips_text(ft, r->ts_us, ips, sizeof ips);
	struct jsonw je;
	extra_begin(d, &je);
	jsonw_kuint(&je, "msgs", msgs);
	jsonw_kuint(&je, "accounts", accounts);
	jsonw_kuint(&je, "unauthenticated", unauth);
	jsonw_kuint(&je, "fake_reply", v->v[W_10M][F_FAKE_REPLY]);
	jsonw_kuint(&je, "rcpts", v->v[W_10M][F_RCPTS]);
	jsonw_kuint(&je, "rcpt_domains", v->distinct[W_10M][H_RDOM]);
	extra_mark(d, &je);
	extra_kstr(&je, "subject_raw", r->msg->subject_raw);
	struct fire f = {
		.rule = RULE_FINGERPRINT_BURST,
		.severity = 2 * v->v[W_10M][F_FAKE_REPLY] >= msgs ? "critical" : "high",
		.etype = ENT_FP, .entity = r->fingerprint, .window = "10m",
		.measure = "msgs", .value = (double)msgs, .threshold = p[P0], .baseline = -1,
		.ts_us = r->ts_us, .first_us = v->first_seen_us, .before = minus1(msgs),
		.subject = r->msg->subject, .ips = ips,
	};
	fire(d, &f, &je);
}

/* Contact forms abused for 11,000 and 16,000 random-symbol mails (2012). */
static bool rule_random_subjects(struct detect *d, const struct rw_record *r, enum entity_type t,
				 const char *id, const struct counters_view *v)
{
	const double *p = d->cfg.param[RULE_RANDOM_SUBJECT_FLOOD];
	if (!d->cfg.enabled[RULE_RANDOM_SUBJECT_FLOOD] || !r->has_subject ||
	    !r->subj.gibberish || !*id || v->v[W_10M][F_GIB] < p[P0])
		return false;
	struct jsonw je;
	extra_begin(d, &je);
	jsonw_kuint(&je, "gibberish", v->v[W_10M][F_GIB]);
	jsonw_kuint(&je, "msgs", v->v[W_10M][F_MSGS]);
	extra_kstr(&je, "shape", r->shape);
	jsonw_kaccount(d, &je, "account", r->account);
	extra_kstr(&je, "client", r->orig_h);
	struct fire f = {
		.rule = RULE_RANDOM_SUBJECT_FLOOD, .severity = "high",
		.etype = t, .entity = id, .window = "10m", .measure = "gibberish",
		.value = (double)v->v[W_10M][F_GIB], .threshold = p[P0], .baseline = -1,
		.ts_us = r->ts_us, .first_us = v->first_seen_us,
		.before = minus1(v->v[W_10M][F_MSGS]),
		.subject = r->msg->subject, .ips = r->orig_h,
	};
	fire(d, &f, &je);
	return true;
}

static bool rule_rejects(struct detect *d, const struct rw_record *r, enum entity_type t,
			 const char *id, const struct counters_view *v)
{
	const double *p = d->cfg.param[RULE_RECIPIENT_REJECTS];
	if (!d->cfg.enabled[RULE_RECIPIENT_REJECTS] || !*id || !r->txn->rcpt_rejected ||
	    v->v[W_10M][F_RCPTS_REJ] < p[P0])
		return false;
	struct jsonw je;
	extra_begin(d, &je);
	jsonw_kuint(&je, "rcpts_rejected", v->v[W_10M][F_RCPTS_REJ]);
	jsonw_kuint(&je, "rcpts_accepted", v->v[W_10M][F_RCPTS]);
	extra_kstr(&je, "last_reply", r->txn->last_reply);
	struct fire f = {
		.rule = RULE_RECIPIENT_REJECTS, .severity = "medium",
		.etype = t, .entity = id, .window = "10m", .measure = "rcpts_rejected",
		.value = (double)v->v[W_10M][F_RCPTS_REJ], .threshold = p[P0], .baseline = -1,
		.ts_us = r->ts_us, .first_us = v->first_seen_us,
		.before = minus1(v->v[W_10M][F_MSGS]),
		.subject = r->msg ? r->msg->subject : NULL, .ips = r->orig_h,
	};
	fire(d, &f, &je);
	return true;
}

void detect_record(struct detect *d, const struct rw_record *r)
{
	uint64_t now = r->ts_us;
	/* keep the small exact sets up to date first */
	struct track *ct = track_get(d, hkey(ENT_CLIENT, r->orig_h, NULL), now);
	track_ip(ct, r->v6, r->orig_addr, now);
	struct track *at = NULL, *ft = NULL;
	if (r->account[0]) {
		at = track_get(d, hkey(ENT_ACCOUNT, r->account, NULL), now);
		track_ip(at, r->v6, r->orig_addr, now);
	}
	if (r->has_subject) {
		ft = track_get(d, hkey(ENT_FP, r->fingerprint, NULL), now);
		track_ip(ft, r->v6, r->orig_addr, now);
		/* Authenticated accounts only: a MAIL FROM without AUTH is
		 * whatever the sender typed, and three such mails with made-up
		 * senders made a hijacked account's burst pass for four
		 * accounts' thread (rule_fingerprint_burst). Unauthenticated
		 * mail counts as unauth there. */
		if (r->account[0] && r->authenticated)
			track_member(ft, r->account, now);
	}

	rule_open_relay(d, r, ct);
	rule_display_spoof(d, r);
	if (!d->ctr)
		return; /* --redis none: nothing is counted */

	struct counters_view va, vc, vf;
	view(d, ENT_ACCOUNT, r->account, now, &va);
	view(d, ENT_CLIENT, r->orig_h, now, &vc);
	if (at)
		rule_account_burst(d, r, &va, at);
	if (ft) {
		view(d, ENT_FP, r->fingerprint, now, &vf);
		rule_fingerprint_burst(d, r, &vf, ft);
	}
	/* one alert per message for the two-entity rules: the client first */
	if (!rule_random_subjects(d, r, ENT_CLIENT, r->orig_h, &vc))
		rule_random_subjects(d, r, ENT_ACCOUNT, r->account, &va);
	if (!rule_rejects(d, r, ENT_CLIENT, r->orig_h, &vc))
		rule_rejects(d, r, ENT_ACCOUNT, r->account, &va);
}

/* Password guessing before a hijack; the success that follows it. */
void detect_auth(struct detect *d, uint64_t ts_us, const char *client, const char *user,
		 bool ok)
{
	const double *p = d->cfg.param[RULE_AUTH_FAILURES];
	struct track *ct = track_get(d, hkey(ENT_CLIENT, client, "auth"), ts_us);
	if (user && *user)
		track_member(ct, user, ts_us);
	if (!d->ctr || !d->cfg.enabled[RULE_AUTH_FAILURES])
		return;
	struct counters_view v;
	view(d, ENT_CLIENT, client, ts_us, &v);
	uint64_t fails = v.v[W_10M][F_AUTH_FAIL];
	uint64_t tried = track_count(ct, ts_us);
	if (v.distinct[W_10M][H_TRIED] > tried && tried >= TRACK_MEMBERS)
		tried = v.distinct[W_10M][H_TRIED];
	struct jsonw je;
	if (ok) {
		if (!user || !*user)
			return;
		/* The failures before a success are the client's or the
		 * account's, whichever are more: guesses spread over many
		 * addresses (one each, under every per-client threshold) and
		 * then a login from a fresh one are the hijack too (the
		 * prefecture's account, "often from a new client address"). */
		struct counters_view va;
		view(d, ENT_ACCOUNT, user, ts_us, &va);
		uint64_t afails = va.v[W_10M][F_AUTH_FAIL];
		uint64_t worst = afails > fails ? afails : fails;
		if (worst < p[P2])
			return;
		extra_begin(d, &je);
		extra_kstr(&je, "client", client);
		jsonw_kuint(&je, "failures", fails);
		jsonw_kuint(&je, "account_failures", afails);
		jsonw_kuint(&je, "accounts_tried", tried);
		jsonw_kaccount(d, &je, "account", user);
		struct fire f = {
			.rule = RULE_AUTH_FAILURES, .severity = "critical",
			.etype = ENT_ACCOUNT, .entity = user, .window = "10m",
			.measure = "failures", .value = (double)worst, .threshold = p[P2],
			.baseline = -1, .ts_us = ts_us,
			.first_us = afails > fails ? va.first_seen_us : v.first_seen_us,
			.before = worst, .ips = client,
		};
		fire(d, &f, &je);
		return;
	}
	bool by_fails = fails >= p[P0], by_accounts = tried >= p[P1];
	if (!by_fails && !by_accounts)
		return;
	extra_begin(d, &je);
	jsonw_kuint(&je, "failures", fails);
	jsonw_kuint(&je, "accounts_tried", tried);
	jsonw_kaccount(d, &je, "last_user", user);
	struct fire f = {
		.rule = RULE_AUTH_FAILURES, .severity = "medium",
		.etype = ENT_CLIENT, .entity = client, .window = "10m",
		.measure = by_fails ? "failures" : "accounts_tried",
		.value = by_fails ? (double)fails : (double)tried,
		.threshold = by_fails ? p[P0] : p[P1], .baseline = -1,
		.ts_us = ts_us, .first_us = v.first_seen_us, .before = minus1(fails),
		.ips = client,
	};
	fire(d, &f, &je);
}

/* STARTTLS/SMTPS hide the content: watch the volume of sessions per client. */
void detect_session(struct detect *d, uint64_t ts_us, const char *client, bool tls)
{
	const double *p = d->cfg.param[RULE_TLS_BLIND_BURST];
	if (!tls || !d->ctr || !d->cfg.enabled[RULE_TLS_BLIND_BURST])
		return;
	struct counters_view v;
	view(d, ENT_CLIENT, client, ts_us, &v);
	uint64_t sess = v.v[W_10M][F_TLS_SESSIONS], bytes = v.v[W_10M][F_TLS_BYTES];
	bool by_sess = sess >= p[P0], by_bytes = bytes >= p[P1];
	if (!by_sess && !by_bytes)
		return;
	if (v.base_learned && v.v[W_1H][F_TLS_SESSIONS] < p[P2] * v.base_tls_sessions)
		return;
	struct jsonw je;
	extra_begin(d, &je);
	jsonw_kuint(&je, "tls_sessions", sess);
	jsonw_kuint(&je, "tls_bytes", bytes);
	jsonw_kuint(&je, "sessions", v.v[W_10M][F_SESSIONS]);
	struct fire f = {
		.rule = RULE_TLS_BLIND_BURST, .severity = "medium",
		.etype = ENT_CLIENT, .entity = client, .window = "10m",
		.measure = by_sess ? "tls_sessions" : "tls_bytes",
		.value = by_sess ? (double)sess : (double)bytes,
		.threshold = by_sess ? p[P0] : p[P1],
		.baseline = v.base_learned ? v.base_tls_sessions : -1,
		.ts_us = ts_us, .first_us = v.first_seen_us, .before = minus1(sess),
		.ips = client,
	};
	fire(d, &f, &je);
}
