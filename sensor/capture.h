/* capture.h — packets in: a capture file (pcap/pcapng) or a live interface.
 *
 * Owns the pcap handle. capture_run() calls the packet callback for every
 * frame that passes the filter, in capture order, and an idle callback about
 * every CAPTURE_IDLE_MS of wall-clock time on a live interface so that time
 * advances when the wire is quiet. Library-style: returns errors, never
 * prints (STYLE.md 4). */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAPTURE_DEFAULT_FILTER \
	"tcp port 25 or tcp port 465 or tcp port 587 or tcp port 2525"
#define CAPTURE_SNAPLEN        65535
#define CAPTURE_BUFFER_MB      128      /* kernel ring for live capture */
#define CAPTURE_IDLE_MS        200
#define CAPTURE_BLOCK_MS       20       /* kernel ring block timeout (TPACKET_V3) */
#define CAPTURE_FILTER_MAX     4096     /* bytes of BPF text we build */

/* libpcap's pcap_stats() counters are u_int: at 200k packets a second
 * ps_recv wraps every 6 hours, at 14.9 Mpps (10 Gbit/s of small frames)
 * every 5 minutes. Read at least every CAPTURE_STATS_POLL_S, their deltas
 * are added up in 64 bits, so the health hash's counters never go back. */
#define CAPTURE_STATS_POLL_S   10

struct capture_count {
	uint64_t total;
	unsigned int last;      /* the u_int as last read */
};

/* Add what a wrapping u_int counter gained since it was last read. */
void capture_count_update(struct capture_count *c, unsigned int now);

struct capture_config {
	const char *file;       /* -r: a pcap or pcapng file ("-" = stdin) */
	const char *iface;      /* -i: a live interface */
	const char *filter;     /* BPF; NULL = CAPTURE_DEFAULT_FILTER; "" = none */
	int buffer_mb;          /* 0 = CAPTURE_BUFFER_MB */
	double speedup;         /* >0: replay a file at its recorded pace × speedup */
};

struct capture_packet {
	uint64_t ts_us;
	uint32_t caplen, len;
	const uint8_t *data;    /* valid until the callback returns */
};

struct capture_stats {
	uint64_t received, dropped, if_dropped; /* pcap_stats (live only) */
	uint64_t seen;                           /* frames given to the callback */
	bool live;
};

typedef void (*capture_packet_fn)(void *ctx, const struct capture_packet *p);
typedef void (*capture_idle_fn)(void *ctx, uint64_t now_us);

struct capture;

/* Open per cfg. On failure returns NULL and writes one clear line to err
 * (the pcap error text, the filter error, ...); errno is EINVAL for a bad
 * filter (a configuration error), else EIO. */
struct capture *capture_open(const struct capture_config *cfg, char *err, size_t errsz);
void capture_close(struct capture *c);

int capture_linktype(const struct capture *c);
const char *capture_linktype_name(const struct capture *c);

/* The filter actually compiled (the user's filter widened to VLAN-tagged
 * frames on Ethernet). */
const char *capture_filter(const struct capture *c);

/* Read until the end of the file, a read error, or *stop becomes non-zero.
 * Returns 0 at end of file or on stop, -EIO on a read error (a corrupt or
 * truncated file: frames before the damage have been delivered) with the
 * reason in err. */
int capture_run(struct capture *c, capture_packet_fn on_packet, capture_idle_fn on_idle,
		void *ctx, volatile sig_atomic_t *stop, char *err, size_t errsz);

/* Ask capture_run() to return soon (async-signal-safe). */
void capture_break(struct capture *c);

void capture_get_stats(struct capture *c, struct capture_stats *out);

/* Drop root after the capture is open (--user); nothing to do if the
 * process already runs as that user. Returns 0 or -errno. */
int capture_drop_privileges(const char *user);

/* Give up every capability (CAP_NET_RAW, CAP_NET_ADMIN given by systemd)
 * once the capture is open; nothing to do for root. Returns 0 or -errno. */
int capture_drop_capabilities(void);

/* Build the VLAN-widened filter for `filter` into out (for tests). */
void capture_widen_filter(const char *filter, char *out, size_t outsz);
