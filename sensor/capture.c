/* capture.c — libpcap in; see capture.h for the contract. */
#include "capture.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* libpcap reads a file through stdio, by default with a buffer of the file
 * system's block size (4 KB): 563,140 read() calls for the 2.26 GB benchmark
 * capture, 0.6 s of system time. 64 KB: 35,000 calls, 0.25 s. Larger is
 * slower again (128 KB and 1 MB: 1.3 s of system time), as the buffer no
 * longer stays in the L2 cache between refills while the frames are being
 * worked on. */
#define FILE_BUFFER (64u * 1024)

struct capture {
	pcap_t *pcap;
	char *file_buf;     /* the stdio buffer of a file being read; freed after pcap_close */
	bool live;
	double speedup;
	int dlt;
	char filter[CAPTURE_FILTER_MAX];
	uint64_t seen;
	struct capture_count received, dropped, if_dropped; /* live: pcap_stats, widened */
	uint64_t stats_polled_us;
	/* pseudo-realtime pacing */
	bool paced_started;
	uint64_t first_pkt_us, start_wall_us;
};

static uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void capture_widen_filter(const char *filter, char *out, size_t outsz)
{
	/* libpcap: each `vlan` shifts the offsets for the rest of the expression,
	 * so nesting matches untagged, 802.1Q and QinQ frames alike. */
	snprintf(out, outsz, "(%s) or (vlan and ((%s) or (vlan and (%s))))", filter, filter,
		 filter);
}

static int set_filter(struct capture *c, const char *user_filter, char *err, size_t errsz)
{
	const char *f = user_filter ? user_filter : CAPTURE_DEFAULT_FILTER;
	if (!*f) {
		c->filter[0] = 0;
		return 0;
	}
	if (strlen(f) * 3 + 64 >= sizeof c->filter) {
		snprintf(err, errsz, "filter is too long (%zu bytes)", strlen(f));
		return -EINVAL;
	}
	if (c->dlt == DLT_EN10MB)
		capture_widen_filter(f, c->filter, sizeof c->filter);
	else
		snprintf(c->filter, sizeof c->filter, "%s", f);
	struct bpf_program prog;
	if (pcap_compile(c->pcap, &prog, c->filter, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		snprintf(err, errsz, "bad filter '%s': %s", f, pcap_geterr(c->pcap));
		return -EINVAL;
	}
	int r = pcap_setfilter(c->pcap, &prog);
	pcap_freecode(&prog);
	if (r < 0) {
		snprintf(err, errsz, "cannot set filter: %s", pcap_geterr(c->pcap));
		return -EINVAL;
	}
	return 0;
}

static pcap_t *open_live(const struct capture_config *cfg, char *err, size_t errsz)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p = pcap_create(cfg->iface, ebuf);
	if (!p) {
		snprintf(err, errsz, "%s: %s", cfg->iface, ebuf);
		return NULL;
	}
	int mb = cfg->buffer_mb > 0 ? cfg->buffer_mb : CAPTURE_BUFFER_MB;
	pcap_set_snaplen(p, CAPTURE_SNAPLEN);
	pcap_set_promisc(p, 1);       /* a span port delivers other hosts' frames */
	/* Not immediate mode: with it libpcap uses TPACKET_V2, whose ring slots
	 * are sized for the largest frame the interface may deliver — 64 KB
	 * with GRO/TSO on (most NICs' and veth's default) — so 128 MB held
	 * ~2,000 frames, 10 ms at 200k packets/s. TPACKET_V3 packs frames of
	 * any size into blocks; a block is handed over when full or after
	 * CAPTURE_BLOCK_MS, which bounds the latency (a mail rule does not
	 * need better). */
	pcap_set_immediate_mode(p, 0);
	/* libpcap takes an int: options.c bounds mb so that this fits */
	pcap_set_buffer_size(p, (int)((int64_t)mb * 1024 * 1024));
	pcap_set_timeout(p, CAPTURE_BLOCK_MS);
	pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);
	int r = pcap_activate(p);
	if (r >= 0 && pcap_setnonblock(p, 1, ebuf) < 0)
		r = PCAP_ERROR;
	if (r < 0) {
		/* pcap_geterr() has the detail (permission, no such device...);
		 * some statuses leave it empty. */
		const char *detail = pcap_geterr(p);
		snprintf(err, errsz, "%s: %s", cfg->iface, *detail ? detail : pcap_statustostr(r));
		pcap_close(p);
		return NULL;
	}
	return p;
}

struct capture *capture_open(const struct capture_config *cfg, char *err, size_t errsz)
{
	if (!!cfg->file == !!cfg->iface) {
		snprintf(err, errsz, "exactly one of a file (-r) or an interface (-i) is needed");
		return NULL;
	}
	struct capture *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	c->speedup = cfg->speedup;
	int why = EIO; /* errno on failure */
	if (cfg->file) {
		char ebuf[PCAP_ERRBUF_SIZE] = "";
		bool std_in = strcmp(cfg->file, "-") == 0;
		FILE *fp = std_in ? stdin : fopen(cfg->file, "rb");
		if (!fp) {
			snprintf(err, errsz, "%s: %s", cfg->file, strerror(errno));
			goto out_free;
		}
		c->file_buf = malloc(FILE_BUFFER);
		if (c->file_buf)
			setvbuf(fp, c->file_buf, _IOFBF, FILE_BUFFER); /* before the first read */
		/* On success the pcap_t owns fp (pcap_close closes it). */
		c->pcap = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO,
								    ebuf);
		if (!c->pcap) {
			fclose(fp); /* not taken on failure; stdin too, as we stop here */
			/* libpcap names the file in some messages, not in others */
			if (!strncmp(ebuf, cfg->file, strlen(cfg->file)))
				snprintf(err, errsz, "%s", ebuf);
			else
				snprintf(err, errsz, "%s: %s", cfg->file, ebuf);
			goto out_free;
		}
	} else {
		c->live = true;
		c->pcap = open_live(cfg, err, errsz);
		if (!c->pcap)
			goto out_free;
	}
	c->dlt = pcap_datalink(c->pcap);
	int r = set_filter(c, cfg->filter, err, errsz);
	if (r < 0) {
		why = -r; /* EINVAL: a configuration error, the caller exits 2 */
		goto out_close_pcap;
	}
	return c;

out_close_pcap:
	pcap_close(c->pcap);
out_free:
	free(c->file_buf);
	free(c);
	errno = why;
	return NULL;
}

void capture_close(struct capture *c)
{
	if (!c)
		return;
	pcap_close(c->pcap); /* closes the file, which stops using file_buf */
	free(c->file_buf);
	free(c);
}

int capture_linktype(const struct capture *c)
{
	return c->dlt;
}

const char *capture_linktype_name(const struct capture *c)
{
	const char *n = pcap_datalink_val_to_name(c->dlt);
	return n ? n : "?";
}

const char *capture_filter(const struct capture *c)
{
	return c->filter;
}

/* --pseudo-realtime: wait until this packet's offset from the first one,
 * divided by the speed-up, has passed on the wall clock. Sleeps in short
 * steps so a stop request is honoured quickly. */
static void pace(struct capture *c, uint64_t ts_us, volatile sig_atomic_t *stop)
{
	if (!c->paced_started) {
		c->paced_started = true;
		c->first_pkt_us = ts_us;
		c->start_wall_us = wall_us();
		return;
	}
	if (ts_us <= c->first_pkt_us)
		return;
	uint64_t due = c->start_wall_us + (uint64_t)((double)(ts_us - c->first_pkt_us) / c->speedup);
	for (;;) {
		uint64_t now = wall_us();
		if (now >= due || (stop && *stop))
			return;
		uint64_t step = due - now > 100000 ? 100000 : due - now;
		struct timespec ts = { (time_t)(step / 1000000), (long)(step % 1000000) * 1000 };
		nanosleep(&ts, NULL);
	}
}

void capture_count_update(struct capture_count *c, unsigned int now)
{
	c->total += (unsigned int)(now - c->last); /* modulo 2^32: a wrap is a gain */
	c->last = now;
}

static void poll_stats(struct capture *c)
{
	struct pcap_stat ps;
	if (!c->live || pcap_stats(c->pcap, &ps) != 0)
		return;
	capture_count_update(&c->received, ps.ps_recv);
	capture_count_update(&c->dropped, ps.ps_drop);
	capture_count_update(&c->if_dropped, ps.ps_ifdrop);
	c->stats_polled_us = wall_us();
}

int capture_run(struct capture *c, capture_packet_fn on_packet, capture_idle_fn on_idle,
		void *ctx, volatile sig_atomic_t *stop, char *err, size_t errsz)
{
	uint64_t last_idle = wall_us();
	while (!(stop && *stop)) {
		struct pcap_pkthdr *h;
		const u_char *data;
		int r = pcap_next_ex(c->pcap, &h, &data);
		if (r == 1) {
			struct capture_packet p = {
				.ts_us = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec,
				.caplen = h->caplen,
				.len = h->len,
				.data = data,
			};
			if (!c->live && c->speedup > 0)
				pace(c, p.ts_us, stop);
			c->seen++;
			on_packet(ctx, &p);
		} else if (r == 0) {
			/* Nothing to read. libpcap's read timeout does not fire with
			 * TPACKET_V3 while the wire is quiet, so the handle is
			 * non-blocking and we wait here, for at most one idle tick. */
			int fd = pcap_get_selectable_fd(c->pcap);
			if (fd >= 0) {
				struct pollfd pfd = { .fd = fd, .events = POLLIN };
				poll(&pfd, 1, CAPTURE_IDLE_MS);
			}
		} else if (r == PCAP_ERROR_BREAK) {
			if (!c->live)
				return 0; /* end of file */
		} else {
			if (stop && *stop)
				return 0; /* a read the stop signal interrupted (-r - from a pipe) */
			snprintf(err, errsz, "%s", pcap_geterr(c->pcap));
			return -EIO;
		}
		if (c->live) {
			uint64_t now = wall_us();
			if (now - c->stats_polled_us >= CAPTURE_STATS_POLL_S * 1000000u)
				poll_stats(c); /* asked or not: see CAPTURE_STATS_POLL_S */
			if (on_idle && now - last_idle >= CAPTURE_IDLE_MS * 1000u) {
				last_idle = now;
				struct timespec rt;
				clock_gettime(CLOCK_REALTIME, &rt);
				on_idle(ctx, (uint64_t)rt.tv_sec * 1000000u + (uint64_t)rt.tv_nsec / 1000u);
			}
		}
	}
	return 0;
}

void capture_break(struct capture *c)
{
	pcap_breakloop(c->pcap);
}

int capture_drop_capabilities(void)
{
	/* An open capture needs no capability: give them all up (capset(2),
	 * without libcap), so a flaw in a parser cannot use CAP_NET_RAW or
	 * CAP_NET_ADMIN. Root keeps its uid: use --user to leave it. */
	if (geteuid() == 0)
		return 0;
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

void capture_get_stats(struct capture *c, struct capture_stats *out)
{
	memset(out, 0, sizeof *out);
	out->seen = c->seen;
	out->live = c->live;
	poll_stats(c);
	out->received = c->received.total;
	out->dropped = c->dropped.total;
	out->if_dropped = c->if_dropped.total;
}

int capture_drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return -ENOENT;
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)
		return 0; /* already that user (e.g. systemd's User=) */
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		return -errno;
	/* Make sure there is no way back. */
	if (pw->pw_uid != 0 && setuid(0) == 0)
		return -EPERM;
	return 0;
}
