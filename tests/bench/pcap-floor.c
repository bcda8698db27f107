/* pcap-floor.c — the floor: a bare libpcap read loop over a capture file.
 *
 * Reads every frame with pcap_next_ex() and touches one word of every
 * 64-byte cache line of it (so the frame really comes through the cache, as
 * it does for a sensor that decodes it), nothing more. run.py reports
 * relaywatch as a fraction of this.
 *
 * libpcap reads files through stdio. By default (pcap_open_offline, as
 * ndpiReader and tcpdump do) the stdio buffer is the file system's block, 4
 * KB: about half of this loop's time is then read() calls. With -b BYTES the
 * file is opened with a stdio buffer of that size (relaywatch uses 64 KB):
 * the floor for a reader that tunes its I/O, which no libpcap reader of the
 * same file beats.
 *
 *   cc -O2 -o pcap-floor pcap-floor.c -lpcap
 *   pcap-floor [-f BPF] [-b BYTES] FILE
 *
 * Prints one line: "packets=N bytes=N seconds=S checksum=X". With -f, the
 * filter runs in libpcap as it does in the sensor (counted frames are those
 * that pass). Exit status 0, or 1 with a reason on stderr. */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *filter = NULL;
	long bufsize = 0;
	int opt;
	while ((opt = getopt(argc, argv, "f:b:")) != -1) {
		if (opt == 'f') {
			filter = optarg;
		} else if (opt == 'b' && (bufsize = strtol(optarg, NULL, 10)) > 0) {
			continue;
		} else {
			fprintf(stderr, "usage: %s [-f BPF] [-b BYTES] FILE\n", argv[0]);
			return 1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: %s [-f BPF] [-b BYTES] FILE\n", argv[0]);
		return 1;
	}
	char err[PCAP_ERRBUF_SIZE];
	double t0 = now_s();
	pcap_t *p;
	char *buf = NULL;
	if (bufsize) {
		FILE *fp = fopen(argv[optind], "rb");
		buf = malloc((size_t)bufsize);
		if (!fp || !buf) {
			perror(argv[optind]);
			return 1;
		}
		setvbuf(fp, buf, _IOFBF, (size_t)bufsize);
		p = pcap_fopen_offline(fp, err);
	} else {
		p = pcap_open_offline(argv[optind], err);
	}
	if (!p) {
		fprintf(stderr, "pcap-floor: %s\n", err);
		return 1;
	}
	if (filter) {
		struct bpf_program prog;
		if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0 ||
		    pcap_setfilter(p, &prog) < 0) {
			fprintf(stderr, "pcap-floor: %s\n", pcap_geterr(p));
			return 1;
		}
		pcap_freecode(&prog);
	}
	uint64_t packets = 0, bytes = 0, sum = 0;
	struct pcap_pkthdr *h;
	const u_char *d;
	int r;
	while ((r = pcap_next_ex(p, &h, &d)) == 1) {
		packets++;
		bytes += h->caplen;
		for (uint32_t i = 0; i + 8 <= h->caplen; i += 64) {
			uint64_t w;
			memcpy(&w, d + i, sizeof w);
			sum ^= w;
		}
	}
	if (r == -1) {
		fprintf(stderr, "pcap-floor: %s\n", pcap_geterr(p));
		pcap_close(p);
		return 1;
	}
	pcap_close(p);
	free(buf);
	double t = now_s() - t0;
	printf("packets=%" PRIu64 " bytes=%" PRIu64 " seconds=%.6f checksum=%016" PRIx64 "\n",
	       packets, bytes, t, sum);
	return 0;
}
