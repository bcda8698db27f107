/* options.h — command line and configuration file (INI, via inih).
 *
 * One table describes every setting once: its [section] key in the file, its
 * long option on the command line, its type, bounds and help text. The
 * command line overrides the file. A bad value is reported as
 * "FILE:LINE: [section] key: reason" (or "--option: reason") and is a usage
 * error (exit 2).
 *
 * Ownership: options_parse() fills a struct rw_options whose strings it owns;
 * options_free() releases them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPTIONS_RULE_KV_MAX 256   /* [rule.NAME] key = value lines kept */
#define OPTIONS_VALUE_MAX   4096  /* longest value accepted */
#define OPTIONS_DEFS_MAX    64    /* settings in options.c's table, at most */
#define OPTIONS_PREFIX_MAX  63    /* [redis] prefix: COUNTERS_PREFIX_MAX (main.c checks) */

/* A [rule.NAME] setting, checked later by the detection module, which needs
 * the file and line to report a bad value. */
struct rw_rule_kv {
	char *rule, *key, *value;
	char *where;   /* "FILE:LINE" or "--rule" */
};

/* [sensor] checksums, in the order of its choices "auto|on|off". */
enum rw_checksums { RW_CHECKSUMS_AUTO = 0, RW_CHECKSUMS_ON, RW_CHECKSUMS_OFF };

struct rw_options {
	/* capture */
	char *read_file;          /* -r */
	char *iface;              /* -i, [sensor] interface */
	char *filter;             /* -f, [sensor] filter */
	uint64_t buffer_mb;       /* [sensor] buffer_mb */
	double speedup;           /* --pseudo-realtime[=X]; 0 = off */
	char *user;               /* --user, [sensor] user */
	/* sensor */
	char *sensor_name;        /* [sensor] name; default: host name */
	uint64_t max_flows;
	double flow_timeout;
	uint64_t max_sessions;
	uint64_t max_classifying;
	uint64_t max_messages;
	uint64_t max_workspaces;
	double stats_interval;    /* 0 = off */
	unsigned checksums;       /* enum rw_checksums */
	/* outputs */
	char *records;            /* --records FILE|- */
	char *flows;              /* --flows FILE|- */
	char *alerts_json;        /* --alerts-json FILE|- */
	/* redis */
	char *redis_url;          /* --redis URL | embedded | none */
	char *redis_prefix;
	char *redis_password_file;
	double flush_interval;
	uint64_t max_pending;
	/* alerts */
	double alert_cooldown;
	uint64_t stream_maxlen;
	/* network */
	char *local_domains;
	char *trusted_networks;
	char *protected_domains;
	/* privacy */
	bool pseudonymize;
	char *pseudonymize_key_file;
	/* misc */
	char *config_file;        /* -c */
	int verbose;
	bool quiet;

	struct rw_rule_kv rules[OPTIONS_RULE_KV_MAX];
	unsigned n_rules;

	/* the line of config_file that set each setting of the table, 0 if
	 * none did (options_where) */
	int from_line[OPTIONS_DEFS_MAX];
};

enum options_result {
	OPTIONS_OK = 0,     /* run */
	OPTIONS_EXIT = 1,   /* --help or --version was printed: exit 0 */
	OPTIONS_USAGE = 2,  /* bad usage: err holds the reason, exit 2 */
	OPTIONS_PRINT_CONFIG = 3, /* --print-config: print options_print_ini(), then the
				   * rules' sections (detect.h), exit 0 */
};

/* Parse argv (and the -c file). On OPTIONS_USAGE err holds one line. */
enum options_result options_parse(int argc, char **argv, struct rw_options *o, char *err,
				  size_t errsz);
void options_free(struct rw_options *o);

/* Where a setting was given, for a value found wrong only once it is used
 * (a filter libpcap refuses, a user that does not exist, a Redis URL):
 * "FILE:LINE: [section] key" when the -c file set it, else "--option
 * ([section] key)". lopt is the long option's name ("filter"). Returns buf. */
const char *options_where(const struct rw_options *o, const char *lopt, char *buf,
			  size_t bufsz);

/* Print --help to stdout (generated from the table). */
void options_usage(const char *prog);

/* Every setting but the rules' as a commented INI file
 * (deploy/relaywatch.conf.example is checked against this). */
void options_print_ini(void);
