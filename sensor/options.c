/* options.c — command line + INI file; see options.h for the contract. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <ndpi/ndpi_api.h>
#include <pcap/pcap.h>

#include "capture.h"
#include "classify.h"
#include "netlist.h"
#include "rw-config.h"
#include "tracker.h"

/* OT_CHOICE: one of the words of `arg` ("auto|on|off"), stored as its
 * index in an unsigned. */
enum opt_type { OT_STR, OT_UINT, OT_SECONDS, OT_BOOL, OT_CHOICE };

struct opt_def {
	const char *section;   /* NULL: command line only */
	const char *key;
	const char *lopt;      /* NULL: file only */
	int sopt;              /* short option letter, 0 if none */
	const char *arg;       /* metavariable in --help, NULL for flags */
	enum opt_type type;
	size_t off;
	double min, max;
	const char *def;       /* default as text, for --help and the example file */
	const char *help;
	/* optional: check a value where it is read, so an error names its line */
	int (*check)(const char *v, char *why, size_t whysz);
};

static int check_domains(const char *v, char *why, size_t whysz)
{
	struct domain_list *l = malloc(sizeof *l);
	if (!l)
		return -ENOMEM;
	int r = domain_list_parse(v, l, why, whysz);
	free(l);
	return r;
}

static int check_networks(const char *v, char *why, size_t whysz)
{
	struct cidr_list *l = malloc(sizeof *l);
	if (!l)
		return -ENOMEM;
	int r = cidr_list_parse(v, l, why, whysz);
	free(l);
	return r;
}

/* Every key starts with the prefix: an empty one would put them among the
 * database's other keys, where the ACL patterns (~rw:*) and the exporter
 * cannot tell them apart. */
static int check_prefix(const char *v, char *why, size_t whysz)
{
	if (!*v) {
		snprintf(why, whysz, "an empty prefix would mix relaywatch's keys with every "
			 "other key (the default is rw:)");
		return -EINVAL;
	}
	if (strlen(v) > OPTIONS_PREFIX_MAX) {
		snprintf(why, whysz, "longer than %d bytes", OPTIONS_PREFIX_MAX);
		return -EINVAL;
	}
	return 0;
}

#define O(f) offsetof(struct rw_options, f)

static const struct opt_def defs[] = {
	{ NULL, NULL, "read", 'r', "FILE", OT_STR, O(read_file), 0, 0, NULL,
	  "read packets from a pcap or pcapng file ('-' = stdin)", NULL },
	{ "sensor", "interface", "interface", 'i', "IFACE", OT_STR, O(iface), 0, 0, NULL,
	  "capture live from IFACE (promiscuous, TPACKET_V3 ring, 20 ms latency at most)", NULL },
	{ "sensor", "filter", "filter", 'f', "BPF", OT_STR, O(filter), 0, 0, CAPTURE_DEFAULT_FILTER,
	  "capture filter, also applied inside 802.1Q/QinQ tags; '' = all", NULL },
	{ "sensor", "name", "sensor-name", 0, "NAME", OT_STR, O(sensor_name), 0, 0, "(host name)",
	  "this sensor's name in Redis and in alerts", NULL },
	{ "sensor", "user", "user", 0, "USER", OT_STR, O(user), 0, 0, NULL,
	  "when started as root, drop to USER once the capture is open", NULL },
	{ "sensor", "buffer_mb", "buffer-mb", 0, "MB", OT_UINT, O(buffer_mb), 1, 2047, "128",
	  "kernel capture buffer for -i (mapped into the process: it counts in its RSS)", NULL },
	{ "sensor", "max_flows", "max-flows", 0, "N", OT_UINT, O(max_flows), 1, 1 << 30, "262144",
	  "flows tracked at once; when full one is evicted (and counted): one with no payload yet, else a closed one, else the least recently active", NULL },
	{ "sensor", "flow_timeout", "flow-timeout", 0, "DURATION", OT_SECONDS, O(flow_timeout), 1,
	  86400, "300",
	  "a flow with no packet for this long (packet time) ends", NULL },
	{ "sensor", "max_sessions", "max-sessions", 0, "N", OT_UINT, O(max_sessions), 1, 1 << 24,
	  "49152", "SMTP sessions parsed at once, about 0.4 KB each; over it a session's flow "
	  "is only accounted (and counted: sessions_over)", NULL },
	{ "sensor", "max_classifying", "max-classifying", 0, "N", OT_UINT, O(max_classifying), 1,
	  1 << 24, "16384",
	  "flows under nDPI at once, from their first payload byte to its verdict (about "
	  "2.7 KB each); past it a flow is classified by its ports (counted)", NULL },
	{ "sensor", "max_messages", "max-messages", 0, "N", OT_UINT, O(max_messages), 1, 1 << 24,
	  "65536", "messages under way at once (a few hundred bytes each in the body)", NULL },
	{ "sensor", "max_header_workspaces", "max-header-workspaces", 0, "N", OT_UINT,
	  O(max_workspaces), 1, 1 << 20, "128",
	  "message header blocks parsed at once (about 36 KB each)", NULL },
	{ "sensor", "stats_interval", "stats-interval", 0, "DURATION", OT_SECONDS,
	  O(stats_interval), 0, 86400, "60 live, 0 (off) for files and with -q",
	  "print capture and processing rates to stderr this often", NULL },
	{ "sensor", "checksums", "checksums", 0, "auto|on|off", OT_CHOICE, O(checksums), 0, 0,
	  "auto",
	  "verify TCP checksums, leaving out segments with bad ones as their receiver does; "
	  "auto: stop if a tenth of the first 1000 are bad (checksum offload)", NULL },
	{ "sensor", "records", "records", 0, "FILE|-", OT_STR, O(records), 0, 0, NULL,
	  "write one JSON object per mail transaction", NULL },
	{ "sensor", "flows", "flows", 0, "FILE|-", OT_STR, O(flows), 0, 0, NULL,
	  "write one JSON object per ended flow (nDPI protocol, bytes, packets)", NULL },
	{ "redis", "url", "redis", 0, "URL", OT_STR, O(redis_url), 0, 0, "redis://127.0.0.1:6379",
	  "redis://[user[:pass]@]host[:port][/db], unix:///path[?db=N], 'embedded' (a private "
	  "redis-server) or 'none'", NULL },
	{ "redis", "prefix", "redis-prefix", 0, "PREFIX", OT_STR, O(redis_prefix), 0, 0, "rw:",
	  "prefix of every key", check_prefix },
	{ "redis", "password_file", "redis-password-file", 0, "FILE", OT_STR,
	  O(redis_password_file), 0, 0, NULL,
	  "read the Redis password from FILE (else $REDISCLI_AUTH, else the URL)", NULL },
	{ "redis", "flush_interval", "flush-interval", 0, "DURATION", OT_SECONDS,
	  O(flush_interval), 0.01, 3600, "1", "send counters to Redis this often (packet time)", NULL },
	{ "redis", "max_pending", "max-pending", 0, "N", OT_UINT, O(max_pending), 1, 1ull << 32,
	  "600000",
	  "messages' worth of counter updates kept while Redis is away; beyond, counted and dropped", NULL },
	{ "alerts", "json", "alerts-json", 0, "FILE|-", OT_STR, O(alerts_json), 0, 0, NULL,
	  "also write each alert as a JSON line", NULL },
	{ "alerts", "cooldown", "alert-cooldown", 0, "DURATION", OT_SECONDS, O(alert_cooldown), 0,
	  30 * 86400, "1h", "one alert per rule and entity this often (unless the value doubles)", NULL },
	{ "alerts", "stream_maxlen", "stream-maxlen", 0, "N", OT_UINT, O(stream_maxlen), 1,
	  1ull << 32, "100000", "trim the alert stream to about N entries", NULL },
	{ "network", "local_domains", "local-domains", 0, "LIST", OT_STR, O(local_domains), 0, 0,
	  NULL, "our own mail domains (comma-separated; subdomains included)", check_domains },
	{ "network", "trusted_networks", "trusted-networks", 0, "LIST", OT_STR,
	  O(trusted_networks), 0, 0, NULL,
	  "networks allowed to relay without AUTH (CIDR, comma-separated)", check_networks },
	{ "network", "protected_domains", "protected-domains", 0, "LIST", OT_STR,
	  O(protected_domains), 0, 0, NULL,
	  "names attackers impersonate in display names (local_domains are always protected)",
	  check_domains },
	{ "privacy", "pseudonymize", "pseudonymize", 0, NULL, OT_BOOL, O(pseudonymize), 0, 0, "no",
	  "hash account names with a keyed hash before they reach Redis", NULL },
	{ "privacy", "key_file", "pseudonymize-key-file", 0, "FILE", OT_STR,
	  O(pseudonymize_key_file), 0, 0, NULL, "the key for --pseudonymize (kept secret)", NULL },
};

#define N_DEFS (sizeof defs / sizeof defs[0])
_Static_assert(N_DEFS <= OPTIONS_DEFS_MAX, "raise OPTIONS_DEFS_MAX");

/* long-only option ids start past any character */
enum { OPT_BASE = 1000, OPT_PSEUDO = 2000, OPT_RULE, OPT_PRINT_CONFIG };

static void *field(struct rw_options *o, const struct opt_def *d)
{
	return (char *)o + d->off;
}

static void set_defaults(struct rw_options *o)
{
	memset(o, 0, sizeof *o);
	o->buffer_mb = 128;
	o->max_flows = 262144;
	o->flow_timeout = 300;
	o->max_sessions = TRACKER_SESSIONS_DEFAULT;
	o->max_classifying = CLASSIFY_POOL_DEFAULT;
	o->max_messages = 65536;
	o->max_workspaces = 128;
	o->stats_interval = -1; /* auto: 60 s live, off for files */
	o->flush_interval = 1;
	o->max_pending = 600000;
	o->alert_cooldown = 3600;
	o->stream_maxlen = 100000;
	o->redis_url = strdup("redis://127.0.0.1:6379");
	o->redis_prefix = strdup("rw:");
}

/* "90", "90s", "1.5m", "2h", "1d", "250ms" -> seconds. */
static int parse_duration(const char *v, double *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (end == v || errno || !isfinite(x))
		return -EINVAL;
	while (*end == ' ')
		end++;
	double mul = 1;
	if (!*end || !strcmp(end, "s"))
		mul = 1;
	else if (!strcmp(end, "ms"))
		mul = 0.001;
	else if (!strcmp(end, "m") || !strcmp(end, "min"))
		mul = 60;
	else if (!strcmp(end, "h"))
		mul = 3600;
	else if (!strcmp(end, "d"))
		mul = 86400;
	else
		return -EINVAL;
	*out = x * mul;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	static const char *yes[] = { "yes", "true", "on", "1", NULL }, *no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Store value into the field of d. Returns 0, or -EINVAL with a reason.
 * A file, a device, a user or a name cannot be empty: in the file `key =`
 * leaves it unset (as the commented-out template line does), on the command
 * line it is refused. The filter and the URL say themselves what '' is. */
static int set_value(struct rw_options *o, const struct opt_def *d, const char *v, bool in_file,
		     char *why, size_t whysz)
{
	if (strlen(v) > OPTIONS_VALUE_MAX) {
		snprintf(why, whysz, "value longer than %d bytes", OPTIONS_VALUE_MAX);
		return -EINVAL;
	}
	switch (d->type) {
	case OT_STR: {
		char **p = field(o, d);
		if (!*v && (!d->def || d->def[0] == '(') && strcmp(d->arg, "LIST")) {
			if (!in_file) {
				snprintf(why, whysz, "an empty %s: leave the option out", d->arg);
				return -EINVAL;
			}
			free(*p);
			*p = NULL;
			return 0;
		}
		if (d->check && d->check(v, why, whysz) < 0)
			return -EINVAL;
		char *copy = strdup(v);
		if (!copy) {
			snprintf(why, whysz, "out of memory");
			return -ENOMEM;
		}
		free(*p);
		*p = copy;
		return 0;
	}
	case OT_UINT: {
		char *end;
		errno = 0;
		/* digits only: strtoull would take " -1" for 2^64 - 1 */
		unsigned long long x = strtoull(v, &end, 10);
		if (!isdigit((unsigned char)v[0]) || *end) {
			snprintf(why, whysz, "'%.80s' is not a whole number", v);
			return -EINVAL;
		}
		/* v, not x: past 2^64 strtoull gives ULLONG_MAX (ERANGE) */
		if (errno == ERANGE || (double)x < d->min || (double)x > d->max) {
			snprintf(why, whysz, "%.80s is out of range [%.0f, %.0f]", v, d->min, d->max);
			return -EINVAL;
		}
		*(uint64_t *)field(o, d) = x;
		return 0;
	}
	case OT_SECONDS: {
		double x;
		if (parse_duration(v, &x) < 0) {
			snprintf(why, whysz, "'%.80s' is not a duration (e.g. 30, 10m, 1h)", v);
			return -EINVAL;
		}
		if (x < d->min || x > d->max) {
			snprintf(why, whysz, "%g s is out of range [%g, %g] s", x, d->min, d->max);
			return -EINVAL;
		}
		*(double *)field(o, d) = x;
		return 0;
	}
	case OT_BOOL:
		if (parse_bool(v, field(o, d)) < 0) {
			snprintf(why, whysz, "'%.80s' is not yes or no", v);
			return -EINVAL;
		}
		return 0;
	case OT_CHOICE: {
		size_t len = strlen(v);
		unsigned i = 0;
		for (const char *w = d->arg; *w; i++) {
			size_t wl = strcspn(w, "|");
			if (len && wl == len && !strncmp(w, v, len)) {
				*(unsigned *)field(o, d) = i;
				return 0;
			}
			w += wl + (w[wl] == '|');
		}
		snprintf(why, whysz, "'%.80s' is not one of %s", v, d->arg);
		return -EINVAL;
	}
	}
	return -EINVAL;
}

/* A rule's setting as the file and --rule take it: `enabled` is yes or no
 * (detect.c checks it with the rule), any other key a decimal number: 100,
 * 2.5, 2e8 (and -5, to be told it is out of range), not the other forms
 * strtod() would also read (" 100", "+100", "0x64", "0x1p7", ".5"). The
 * rule, the key and the range are detect.c's to check. */
static int check_rule_value(const char *key, const char *v, char *why, size_t whysz)
{
	if (!strcmp(key, "enabled"))
		return 0;
	const char *p = v + (*v == '-');
	bool ok = isdigit((unsigned char)*p);
	while (isdigit((unsigned char)*p))
		p++;
	if (ok && *p == '.') {
		ok = isdigit((unsigned char)*++p);
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (ok && (*p == 'e' || *p == 'E')) {
		p += p[1] == '+' || p[1] == '-' ? 2 : 1;
		ok = isdigit((unsigned char)*p);
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (!ok || *p) {
		snprintf(why, whysz, "'%.40s' is not a decimal number", v);
		return -EINVAL;
	}
	return 0;
}

static int add_rule(struct rw_options *o, const char *rule, const char *key, const char *value,
		    const char *where, char *why, size_t whysz)
{
	if (o->n_rules >= OPTIONS_RULE_KV_MAX) {
		snprintf(why, whysz, "more than %d rule settings", OPTIONS_RULE_KV_MAX);
		return -E2BIG;
	}
	struct rw_rule_kv *kv = &o->rules[o->n_rules];
	kv->rule = strdup(rule);
	kv->key = strdup(key);
	kv->value = strdup(value);
	kv->where = strdup(where);
	if (!kv->rule || !kv->key || !kv->value || !kv->where) {
		free(kv->rule); free(kv->key); free(kv->value); free(kv->where);
		snprintf(why, whysz, "out of memory");
		return -ENOMEM;
	}
	o->n_rules++;
	return 0;
}

/* --- the configuration file ------------------------------------------------ */

struct ini_ctx {
	struct rw_options *o;
	const bool *set_by_cli;
	const char *path;
	int line;           /* inih does not pass lines: counted by the reader */
	char err[512];
	int err_line;
	FILE *f;
	bool listed[N_DEFS]; /* a LIST setting the file has given: more of it appends */
};

/* inih reads lines into a fixed buffer (200 bytes in Debian's build) and
 * would take the rest of a longer line for a line of its own: such a line
 * is an error here, never a second setting. A long list goes on over
 * indented lines below its key (see config_setting). */
static char *config_read_line(char *str, int num, void *stream)
{
	struct ini_ctx *c = stream;
	char *r = fgets(str, num, c->f);
	if (!r)
		return NULL;
	c->line++;
	size_t n = strlen(r);
	if (num > 1 && n == (size_t)num - 1 && r[n - 1] != '\n' && !feof(c->f)) {
		if (!c->err[0]) {
			snprintf(c->err, sizeof c->err,
				 "%s:%d: line longer than %d bytes: continue a long list on "
				 "indented lines below its key", c->path, c->line, num - 2);
			c->err_line = c->line;
		}
		int ch;
		while ((ch = fgetc(c->f)) != EOF && ch != '\n')
			;
		str[0] = 0; /* an empty line to inih */
	}
	return r;
}

static int config_setting(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *c = user;
	char why[300] = "";
	if (c->err[0])
		return 1; /* report the first error only */
	if (!strncmp(section, "rule.", 5) && section[5]) {
		char where[300];
		snprintf(where, sizeof where, "%s:%d", c->path, c->line);
		if (check_rule_value(name, value, why, sizeof why) == 0 &&
		    add_rule(c->o, section + 5, name, value, where, why, sizeof why) == 0)
			return 1;
	} else {
		for (size_t i = 0; i < N_DEFS; i++) {
			const struct opt_def *d = &defs[i];
			if (!d->section || strcmp(d->section, section) || strcmp(d->key, name))
				continue;
			if (c->set_by_cli[i])
				return 1; /* the command line wins */
			/* A list given again (an indented continuation line, or the
			 * key repeated) grows; any other setting is replaced. */
			char *joined = NULL;
			const char *v = value;
			char **cur = field(c->o, d);
			if (d->arg && !strcmp(d->arg, "LIST") && c->listed[i] && *cur && **cur &&
			    *value) {
				size_t a = strlen(*cur), b = strlen(value);
				joined = malloc(a + b + 3);
				if (!joined) {
					snprintf(why, sizeof why, "out of memory");
					goto bad;
				}
				memcpy(joined, *cur, a);
				memcpy(joined + a, ", ", 2);
				memcpy(joined + a + 2, value, b + 1);
				v = joined;
			}
			int r = set_value(c->o, d, v, true, why, sizeof why);
			bool appended = joined != NULL;
			free(joined);
			if (r == 0) {
				c->listed[i] = true;
				if (!appended) /* a list is where it begins */
					c->o->from_line[i] = c->line;
				return 1;
			}
			goto bad;
		}
		snprintf(why, sizeof why, "unknown setting");
	}
bad:
	snprintf(c->err, sizeof c->err, "%s:%d: [%s] %s: %s", c->path, c->line, section, name, why);
	c->err_line = c->line;
	return 0;
}

static int load_file(struct rw_options *o, const bool *set_by_cli, char *err, size_t errsz)
{
	struct ini_ctx c = { .o = o, .set_by_cli = set_by_cli, .path = o->config_file };
	c.f = fopen(o->config_file, "r");
	if (!c.f) {
		snprintf(err, errsz, "%s: %s", o->config_file, strerror(errno));
		return -errno;
	}
	struct stat st;
	if (fstat(fileno(c.f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(c.f);
		snprintf(err, errsz, "%s: is a directory, not a configuration file", o->config_file);
		return -EISDIR;
	}
	int r = ini_parse_stream(config_read_line, &c, config_setting, &c);
	bool read_error = ferror(c.f);
	fclose(c.f);
	if (read_error) {
		snprintf(err, errsz, "%s: cannot be read", o->config_file);
		return -EIO;
	}
	/* inih reports the first line it could not parse; report whichever
	 * error comes first in the file */
	if (c.err[0] && (r <= 0 || c.err_line <= r)) {
		snprintf(err, errsz, "%s", c.err);
		return -EINVAL;
	}
	if (r != 0) {
		snprintf(err, errsz, "%s:%d: not a valid INI line", o->config_file, r);
		return -EINVAL;
	}
	return 0;
}

/* --- the command line -------------------------------------------------------- */

void options_usage(const char *prog)
{
	printf("Usage: %s -r FILE | -i IFACE [options]\n"
	       "Passive sensor for outbound mail abuse: reassembles SMTP from packets, counts what\n"
	       "each account, client and subject sends in Redis, and raises alerts on spam bursts,\n"
	       "open relaying, password guessing and display-name spoofing.\n\n",
	       prog);
	const char *section = "";
	for (size_t i = 0; i < N_DEFS; i++) {
		const struct opt_def *d = &defs[i];
		if (!d->lopt)
			continue;
		const char *s = d->section ? d->section : "input";
		if (strcmp(s, section)) {
			printf("%s%s:\n", i ? "\n" : "", s);
			section = s;
		}
		char left[80];
		if (d->sopt)
			snprintf(left, sizeof left, "-%c, --%s%s%s", d->sopt, d->lopt, d->arg ? " " : "",
				 d->arg ? d->arg : "");
		else
			snprintf(left, sizeof left, "    --%s%s%s", d->lopt, d->arg ? " " : "",
				 d->arg ? d->arg : "");
		printf("  %-34s %s", left, d->help);
		if (d->def)
			printf(" [%s]", d->def);
		if (d->section)
			printf(" {%s.%s}", d->section, d->key);
		printf("\n");
	}
	printf("\nother:\n"
	       "  -c, --config FILE                  read settings from an INI file; the command line wins\n"
	       "      --pseudo-realtime[=SPEEDUP]    replay -r at the recorded pace (times SPEEDUP)\n"
	       "      --rule NAME.KEY=VALUE          set a rule threshold, as [rule.NAME] KEY = VALUE\n"
	       "                                     (--print-config lists every rule and key)\n"
	       "      --print-config                 print every setting, rules included, as a\n"
	       "                                     commented INI file with the defaults\n"
	       "  -q, --quiet                        no summary and no alert lines on stderr, and no\n"
	       "                                     stats lines unless --stats-interval is given\n"
	       "  -v, --verbose                      more detail on stderr\n"
	       "  -h, --help                         this help\n"
	       "  -V, --version                      version and library versions\n"
	       "\n{section.key} names the same setting in the -c file.\n"
	       "Durations take a unit: 90, 90s, 10m, 1h, 1d. Exit status: 0 done, 1 runtime error,\n"
	       "2 usage or configuration error. SIGINT/SIGTERM stop (pending counters are sent, a\n"
	       "second one exits at once); SIGHUP reopens the output files (log rotation).\n"
	       "\nExamples:\n"
	       "  %s -r incident.pcap --redis embedded --records -\n"
	       "  %s -i eth1 -c /etc/relaywatch/relaywatch.conf\n"
	       "  %s -r span.pcap -f 'tcp' --redis none --records records.json --flows flows.json\n",
	       prog, prog, prog);
}

void options_print_ini(void)
{
	const char *section = "";
	printf("; relaywatch configuration: every setting, with its default.\n"
	       "; Command-line options override this file (relaywatch --help).\n");
	for (size_t i = 0; i < N_DEFS; i++) {
		const struct opt_def *d = &defs[i];
		if (!d->section)
			continue;
		if (strcmp(d->section, section)) {
			printf("\n[%s]\n", d->section);
			section = d->section;
		}
		printf("; %s (--%s)\n", d->help, d->lopt);
		/* a default that is a description ("(host name)", "60 live, 0 (off)
		 * for files") is said in the comment: uncommented, the line must
		 * still be a valid setting */
		if (d->def && strchr(d->def, '('))
			printf("; default: %s\n;%s =\n", d->def, d->key);
		else
			printf(";%s = %s\n", d->key, d->def ? d->def : "");
	}
}

__attribute__((format(printf, 3, 4)))
static enum options_result usage_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return OPTIONS_USAGE;
}

enum options_result options_parse(int argc, char **argv, struct rw_options *o, char *err,
				  size_t errsz)
{
	struct option lopts[N_DEFS + 10];
	char sopts[64] = "+hVqvc:";
	size_t n = 0;
	for (size_t i = 0; i < N_DEFS; i++) {
		if (!defs[i].lopt)
			continue;
		lopts[n++] = (struct option){ defs[i].lopt,
					      defs[i].arg ? required_argument : no_argument, NULL,
					      defs[i].sopt ? defs[i].sopt : (int)(OPT_BASE + i) };
		if (defs[i].sopt) {
			size_t l = strlen(sopts);
			sopts[l] = (char)defs[i].sopt;
			sopts[l + 1] = ':';
			sopts[l + 2] = 0;
		}
	}
	lopts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
	lopts[n++] = (struct option){ "pseudo-realtime", optional_argument, NULL, OPT_PSEUDO };
	lopts[n++] = (struct option){ "rule", required_argument, NULL, OPT_RULE };
	lopts[n++] = (struct option){ "print-config", no_argument, NULL, OPT_PRINT_CONFIG };
	lopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lopts[n++] = (struct option){ "version", no_argument, NULL, 'V' };
	lopts[n++] = (struct option){ "quiet", no_argument, NULL, 'q' };
	lopts[n++] = (struct option){ "verbose", no_argument, NULL, 'v' };
	lopts[n] = (struct option){ 0, 0, 0, 0 };

	set_defaults(o);
	bool set_by_cli[N_DEFS] = { false };
	struct rw_options cli_rules; /* --rule settings, appended after the file's */
	memset(&cli_rules, 0, sizeof cli_rules);
	char why[300];
	enum options_result res = OPTIONS_OK;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, sopts, lopts, NULL)) != -1) {
		const struct opt_def *d = NULL;
		size_t di = 0;
		for (size_t i = 0; i < N_DEFS; i++)
			if ((defs[i].sopt && c == defs[i].sopt) || c == (int)(OPT_BASE + i)) {
				d = &defs[i];
				di = i;
			}
		if (d) {
			const char *v = d->type == OT_BOOL && !optarg ? "yes" : optarg;
			if (set_value(o, d, v, false, why, sizeof why) < 0) {
				res = usage_err(err, errsz, "--%s: %s", d->lopt, why);
				goto out;
			}
			set_by_cli[di] = true;
			continue;
		}
		switch (c) {
		case 'h':
			options_usage(argv[0]);
			res = OPTIONS_EXIT;
			goto out;
		case 'V':
			printf("relaywatch %s\n%s, nDPI %s, hiredis %d.%d.%d\n", RW_VERSION,
			       pcap_lib_version(), ndpi_revision(), HIREDIS_MAJOR, HIREDIS_MINOR,
			       HIREDIS_PATCH);
			res = OPTIONS_EXIT;
			goto out;
		case OPT_PRINT_CONFIG:
			res = OPTIONS_PRINT_CONFIG; /* main adds the rules' part */
			goto out;
		case 'q':
			o->quiet = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'c':
			free(o->config_file);
			o->config_file = strdup(optarg);
			break;
		case OPT_PSEUDO: {
			double x = 1;
			char *end = NULL;
			if (optarg) {
				errno = 0;
				x = strtod(optarg, &end);
			}
			/* a factor: "2h" is not one */
			if (optarg && (end == optarg || *end || errno || !(x > 0) || x > 1e6)) {
				res = usage_err(err, errsz, "--pseudo-realtime: '%s' is not a speed-up "
					       "factor above 0", optarg);
				goto out;
			}
			o->speedup = x;
			break;
		}
		case OPT_RULE: {
			/* NAME.KEY=VALUE */
			char buf[OPTIONS_VALUE_MAX + 256];
			if (strlen(optarg) >= sizeof buf) {
				res = usage_err(err, errsz, "--rule: longer than %zu bytes",
						sizeof buf - 1);
				goto out;
			}
			snprintf(buf, sizeof buf, "%s", optarg);
			char *eq = strchr(buf, '='), *dot = strchr(buf, '.');
			if (!eq || !dot || dot > eq || dot == buf || dot + 1 == eq) {
				res = usage_err(err, errsz, "--rule '%s': expected NAME.KEY=VALUE",
						optarg);
				goto out;
			}
			*eq = *dot = 0;
			/* the file trims blanks around names; here they would be
			 * part of the name, told as an unknown rule or setting */
			if (strpbrk(buf, " \t") || strpbrk(dot + 1, " \t")) {
				res = usage_err(err, errsz, "--rule '%s': no spaces in NAME.KEY "
						"(NAME.KEY=VALUE)", optarg);
				goto out;
			}
			if (check_rule_value(dot + 1, eq + 1, why, sizeof why) < 0) {
				res = usage_err(err, errsz, "--rule: [rule.%s] %s: %s", buf, dot + 1,
						why);
				goto out;
			}
			if (add_rule(&cli_rules, buf, dot + 1, eq + 1, "--rule", why, sizeof why) < 0) {
				res = usage_err(err, errsz, "--rule: %s", why);
				goto out;
			}
			break;
		}
		case '?':
		default:
			if (optopt && optopt < 256)
				snprintf(why, sizeof why, "-%c", optopt);
			else
				snprintf(why, sizeof why, "%s", argv[optind - 1]);
			res = usage_err(err, errsz, "unknown option or missing argument: %s "
				       "(try --help)", why);
			goto out;
		}
	}
	if (optind < argc) {
		res = usage_err(err, errsz, "unexpected argument '%s' (try --help)", argv[optind]);
		goto out;
	}
	if (o->config_file && load_file(o, set_by_cli, err, errsz) < 0) {
		res = OPTIONS_USAGE;
		goto out;
	}
	/* -r on the command line wins over the file's interface: a production
	 * configuration can be tried on a capture. */
	if (o->read_file && o->iface) {
		bool iface_from_cli = false;
		for (size_t i = 0; i < N_DEFS; i++)
			if (defs[i].off == O(iface))
				iface_from_cli = set_by_cli[i];
		if (!iface_from_cli) {
			free(o->iface);
			o->iface = NULL;
		}
	}
	for (unsigned i = 0; i < cli_rules.n_rules; i++) {
		struct rw_rule_kv *kv = &cli_rules.rules[i];
		if (add_rule(o, kv->rule, kv->key, kv->value, kv->where, why, sizeof why) < 0) {
			res = usage_err(err, errsz, "--rule: %s", why);
			goto out;
		}
	}
	if (!o->read_file == !o->iface) {
		res = usage_err(err, errsz, "%s",
				o->read_file ? "-r and -i cannot be used together"
					     : "nothing to read: give -r FILE or -i IFACE (try --help)");
		goto out;
	}
	if (o->speedup > 0 && !o->read_file) {
		res = usage_err(err, errsz, "--pseudo-realtime replays a file: it needs -r");
		goto out;
	}
	if (o->pseudonymize && !o->pseudonymize_key_file) {
		res = usage_err(err, errsz, "--pseudonymize needs a key: [privacy] key_file or "
			       "--pseudonymize-key-file");
		goto out;
	}
	if (!o->sensor_name) {
		char host[256] = "sensor";
		gethostname(host, sizeof host - 1);
		o->sensor_name = strdup(host);
	}
	/* -q quiets the default stats lines, not the ones asked for */
	if (o->stats_interval < 0)
		o->stats_interval = o->iface && !o->quiet ? 60 : 0;
out:
	for (unsigned i = 0; i < cli_rules.n_rules; i++) {
		free(cli_rules.rules[i].rule);
		free(cli_rules.rules[i].key);
		free(cli_rules.rules[i].value);
		free(cli_rules.rules[i].where);
	}
	return res;
}

const char *options_where(const struct rw_options *o, const char *lopt, char *buf,
			  size_t bufsz)
{
	for (size_t i = 0; i < N_DEFS; i++) {
		const struct opt_def *d = &defs[i];
		if (!d->lopt || strcmp(d->lopt, lopt))
			continue;
		if (o->from_line[i] && o->config_file)
			snprintf(buf, bufsz, "%s:%d: [%s] %s", o->config_file, o->from_line[i],
				 d->section, d->key);
		else if (d->section)
			snprintf(buf, bufsz, "--%s ([%s] %s)", d->lopt, d->section, d->key);
		else
			snprintf(buf, bufsz, "--%s", d->lopt);
		return buf;
	}
	snprintf(buf, bufsz, "--%s", lopt);
	return buf;
}

void options_free(struct rw_options *o)
{
	for (size_t i = 0; i < N_DEFS; i++)
		if (defs[i].type == OT_STR) {
			char **p = field(o, &defs[i]);
			free(*p);
			*p = NULL;
		}
	free(o->config_file);
	o->config_file = NULL;
	for (unsigned i = 0; i < o->n_rules; i++) {
		free(o->rules[i].rule);
		free(o->rules[i].key);
		free(o->rules[i].value);
		free(o->rules[i].where);
	}
	o->n_rules = 0;
}
