/* decode.h — link layer to TCP segment.
 *
 * decode_packet() looks at one captured frame and, when it carries a TCP
 * segment over IPv4 or IPv6, fills a struct packet whose pointers borrow the
 * frame (valid as long as the frame is). Nothing is allocated. Every field read
 * from the wire goes through a bounds-checked helper (STYLE.md 5).
 * decode_tcp_checksum() verifies a decoded segment's checksum; decoding does
 * not, so that only the segments whose bytes are read pay for it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Link types (pcap LINKTYPE_/DLT_ values) we understand. */
#define DECODE_DLT_NULL       0    /* BSD loopback: 4-byte host-order AF */
#define DECODE_DLT_EN10MB     1    /* Ethernet, with 802.1Q / 802.1ad tags */
#define DECODE_DLT_RAW        12   /* raw IP (DLT_RAW on most systems) */
#define DECODE_DLT_LOOP       108  /* OpenBSD loopback: 4-byte network-order AF */
#define DECODE_DLT_RAW_LT     101  /* LINKTYPE_RAW as stored in files */
#define DECODE_DLT_LINUX_SLL  113
#define DECODE_DLT_IPV4       228
#define DECODE_DLT_IPV6       229
#define DECODE_DLT_LINUX_SLL2 276

/* VLAN tags followed before we give up on a frame (QinQ is 2; a wire-crafted
 * frame could stack tags to the MTU). */
#define DECODE_VLAN_MAX       4
/* IPv6 extension headers skipped before we give up. */
#define DECODE_IPV6_EXT_MAX   8

enum decode_result {
	DECODE_OK = 0,        /* a TCP segment: *out is filled */
	DECODE_NOT_IP,        /* ARP, LLDP, ... */
	DECODE_NOT_TCP,       /* IP carrying UDP, ICMP, ... */
	DECODE_FRAGMENT,      /* an IP fragment: counted and skipped */
	DECODE_TRUNCATED,     /* a header runs past the captured bytes */
	DECODE_MALFORMED,     /* inconsistent lengths, bad version, too many tags */
	DECODE_BAD_LINKTYPE,  /* a link type we do not decode */
	DECODE_RESULT_COUNT
};

/* TCP flags, as in the header. */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

struct packet {
	uint64_t ts_us;            /* packet time (µs since the epoch); set by the caller */
	uint32_t wire_len;         /* frame length on the wire (never below caplen) */
	bool v6;
	uint8_t src[16], dst[16];  /* IPv4 in the first 4 bytes, rest zero */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;             /* TCP_* */
	uint16_t vlan;             /* outermost VLAN id, 0 if untagged */
	const uint8_t *l3;         /* IP header, for nDPI */
	uint32_t l3_len;           /* captured bytes from l3, trimmed to the IP length */
	bool ip_len_zero;          /* IPv4 total length 0: the frame's length was taken */
	const uint8_t *l4;         /* TCP header */
	const uint8_t *payload;    /* TCP payload actually captured */
	uint32_t payload_len;
	uint32_t payload_wire_len; /* payload length per the IP header (>= payload_len
	                            * when the snap length cut the frame) */
};

/* Decode one frame of link type `dlt`. `caplen` bytes are present at `data`
 * of the `wire_len` the frame had on the wire (pcap's caplen and len). An IP
 * packet longer than its frame on the wire is DECODE_MALFORMED; one cut by
 * the snap length (caplen < wire_len) is DECODE_OK with payload_len <
 * payload_wire_len. An IPv4 total length of 0 in a frame longer than the IP
 * header (captured before segmentation offload) is the frame's length. On
 * DECODE_OK every field of *out except ts_us is set. */
enum decode_result decode_packet(int dlt, const uint8_t *data, uint32_t caplen,
				 uint32_t wire_len, struct packet *out);

/* What a segment's TCP checksum says. */
enum decode_csum {
	DECODE_CSUM_GOOD = 0,
	DECODE_CSUM_BAD,
	DECODE_CSUM_UNCHECKED, /* the snap length cut the segment: it cannot be summed */
};

/* Verify the TCP checksum of a segment decode_packet() returned DECODE_OK
 * for (RFC 9293 §3.1): the one's complement sum of the pseudo-header (the
 * addresses of the IP header, protocol 6, the TCP length; RFC 8200 §8.1
 * for IPv6), the header and the payload. A segment the snap length cut is
 * UNCHECKED. A frame whose IPv4 total length is 0 is BAD: only the sending
 * host captures such frames, before segmentation offload, and the NIC fills
 * in their checksums after the capture; on the wire no receiver takes one.
 * An IPv6 packet with a routing header not yet at its final destination
 * (segments left) is summed with the destination it is sent to, not the
 * final one the sender summed: BAD, and its receiver forwards it rather
 * than take it. Reads only the captured bytes p points to. */
enum decode_csum decode_tcp_checksum(const struct packet *p);

/* True if decode_packet() understands `dlt`. */
bool decode_linktype_supported(int dlt);

/* Stable lower-case name for counters and logs ("fragment", ...). */
const char *decode_result_name(enum decode_result r);

/* Format an address of a packet/flow ("192.0.2.1", "2001:db8::1"). */
void decode_addr_str(bool v6, const uint8_t addr[16], char *out, size_t outsz);
