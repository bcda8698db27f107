/* decode.c — link layer to TCP segment; see decode.h for the contract. */
#include "decode.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* A cursor over the captured bytes. Every read checks the bound first, in the
 * manner of tcpdump's GET_* macros: a short frame can never be over-read. */
struct cursor {
	const uint8_t *p;
	uint32_t len;  /* bytes captured from p on */
	uint32_t wire; /* bytes the frame had on the wire from p on (>= len) */
};

static bool have(const struct cursor *c, uint32_t off, uint32_t n)
{
	return off <= c->len && n <= c->len - off;
}

static uint16_t get_be16(const struct cursor *c, uint32_t off)
{
	return (uint16_t)(c->p[off] << 8 | c->p[off + 1]);
}

static uint32_t get_be32(const struct cursor *c, uint32_t off)
{
	return (uint32_t)c->p[off] << 24 | (uint32_t)c->p[off + 1] << 16 |
	       (uint32_t)c->p[off + 2] << 8 | c->p[off + 3];
}

static uint32_t get_le32(const struct cursor *c, uint32_t off)
{
	return (uint32_t)c->p[off + 3] << 24 | (uint32_t)c->p[off + 2] << 16 |
	       (uint32_t)c->p[off + 1] << 8 | c->p[off];
}

static void advance(struct cursor *c, uint32_t n)
{
	c->p += n;
	c->len -= n;
	c->wire -= n;
}

#define ETH_IPV4  0x0800
#define ETH_IPV6  0x86dd
#define ETH_8021Q 0x8100
#define ETH_8021AD 0x88a8
#define ETH_QINQ_OLD 0x9100

static enum decode_result decode_tcp(struct cursor *c, uint32_t l4_wire_len,
				     struct packet *out)
{
	if (!have(c, 0, 20))
		return DECODE_TRUNCATED;
	uint32_t hlen = (uint32_t)(c->p[12] >> 4) * 4;
	if (hlen < 20 || hlen > l4_wire_len)
		return DECODE_MALFORMED;
	if (!have(c, 0, hlen))
		return DECODE_TRUNCATED;
	out->sport = get_be16(c, 0);
	out->dport = get_be16(c, 2);
	out->seq = get_be32(c, 4);
	out->ack = get_be32(c, 8);
	out->flags = c->p[13] & 0x3f;
	out->l4 = c->p;
	advance(c, hlen);
	out->payload_wire_len = l4_wire_len - hlen;
	out->payload = c->p;
	out->payload_len = c->len < out->payload_wire_len ? c->len : out->payload_wire_len;
	return DECODE_OK;
}

static enum decode_result decode_ipv4(struct cursor *c, struct packet *out)
{
	if (!have(c, 0, 20))
		return DECODE_TRUNCATED;
	if (c->p[0] >> 4 != 4)
		return DECODE_MALFORMED;
	uint32_t ihl = (uint32_t)(c->p[0] & 0x0f) * 4;
	uint32_t total = get_be16(c, 2);
	/* A frame captured on the host that sent it, before segmentation
	 * offload cut it into packets, may say 0: the frame is the packet
	 * (Wireshark: "reported as 0, presumed to be because of TCP
	 * segmentation offload"), and may be longer than 65,535 bytes. No
	 * receiver takes 0 from the wire: decode_tcp_checksum() calls such a
	 * frame bad, so that it is used only where checksums are not
	 * verified (a capture on the sending host). */
	out->ip_len_zero = total == 0 && c->wire > ihl;
	if (out->ip_len_zero)
		total = c->wire;
	/* Checked before any subtraction: total - ihl must not wrap. */
	if (ihl < 20 || total < ihl)
		return DECODE_MALFORMED;
	if (!have(c, 0, ihl))
		return DECODE_TRUNCATED;
	/* A packet longer than the frame that carried it was cut on the wire,
	 * not by the snap length: every receiver drops it (Zeek's
	 * truncated_IP_len). Taken for a snap-length cut, its missing bytes
	 * would become a gap over the real segment sent at that sequence
	 * number next. */
	if (total > c->wire)
		return DECODE_MALFORMED;
	uint16_t frag = get_be16(c, 6);
	uint8_t proto = c->p[9];
	out->v6 = false;
	memset(out->src, 0, sizeof out->src);
	memset(out->dst, 0, sizeof out->dst);
	memcpy(out->src, c->p + 12, 4);
	memcpy(out->dst, c->p + 16, 4);
	/* Ethernet pads short frames: the IP length, not the frame, ends the packet. */
	out->l3 = c->p;
	out->l3_len = c->len < total ? c->len : total;
	if ((frag & 0x2000) || (frag & 0x1fff))
		return DECODE_FRAGMENT; /* MF set or non-zero offset */
	if (proto != 6)
		return DECODE_NOT_TCP;
	struct cursor l4 = { c->p + ihl, out->l3_len - ihl, total - ihl };
	return decode_tcp(&l4, total - ihl, out);
}

static bool ipv6_ext_header(uint8_t nh)
{
	return nh == 0 || nh == 43 || nh == 60 || nh == 51 || nh == 135 || nh == 139 ||
	       nh == 140;
}

static enum decode_result decode_ipv6(struct cursor *c, struct packet *out)
{
	if (!have(c, 0, 40))
		return DECODE_TRUNCATED;
	if (c->p[0] >> 4 != 6)
		return DECODE_MALFORMED;
	uint32_t plen = get_be16(c, 4);
	if (plen == 0)
		return DECODE_MALFORMED; /* jumbogram or garbage: not SMTP on a span port */
	if (40 + plen > c->wire)
		return DECODE_MALFORMED; /* longer than its frame: see decode_ipv4() */
	uint8_t nh = c->p[6];
	out->v6 = true;
	out->ip_len_zero = false;
	memcpy(out->src, c->p + 8, 16);
	memcpy(out->dst, c->p + 24, 16);
	out->l3 = c->p;
	out->l3_len = c->len < 40 + plen ? c->len : 40 + plen;
	struct cursor x = { c->p + 40, out->l3_len - 40, plen };
	uint32_t left = plen; /* wire bytes after the headers consumed so far */
	for (int i = 0; i <= DECODE_IPV6_EXT_MAX; i++) {
		if (nh == 6)
			return decode_tcp(&x, left, out);
		if (nh == 44) { /* fragment header, RFC 8200 §4.5 */
			if (!have(&x, 0, 8))
				return DECODE_TRUNCATED;
			uint16_t off_m = get_be16(&x, 2);
			/* An atomic fragment (offset 0, M clear) is a whole packet
			 * (RFC 6946): look through it. */
			if ((off_m & 0xfff9) != 0)
				return DECODE_FRAGMENT;
			nh = x.p[0];
			if (left < 8)
				return DECODE_MALFORMED;
			left -= 8;
			advance(&x, 8);
			continue;
		}
		if (!ipv6_ext_header(nh))
			return DECODE_NOT_TCP; /* ESP, no-next-header, UDP, ICMPv6 ... */
		if (!have(&x, 0, 2))
			return DECODE_TRUNCATED;
		uint32_t elen = nh == 51 ? ((uint32_t)x.p[1] + 2) * 4 : ((uint32_t)x.p[1] + 1) * 8;
		if (elen > left)
			return DECODE_MALFORMED;
		if (!have(&x, 0, elen))
			return DECODE_TRUNCATED;
		nh = x.p[0];
		left -= elen;
		advance(&x, elen);
	}
	return DECODE_MALFORMED; /* more extension headers than any real stack sends */
}

static enum decode_result decode_ip(struct cursor *c, struct packet *out)
{
	if (!have(c, 0, 1))
		return DECODE_TRUNCATED;
	switch (c->p[0] >> 4) {
	case 4:
		return decode_ipv4(c, out);
	case 6:
		return decode_ipv6(c, out);
	}
	return DECODE_NOT_IP;
}

/* Follow an ethertype at `off`, through VLAN tags, to the network layer. */
static enum decode_result decode_ethertype(struct cursor *c, uint32_t off, struct packet *out)
{
	if (!have(c, off, 2))
		return DECODE_TRUNCATED;
	uint16_t type = get_be16(c, off);
	off += 2;
	for (int tags = 0; type == ETH_8021Q || type == ETH_8021AD || type == ETH_QINQ_OLD;
	     tags++) {
		if (tags == DECODE_VLAN_MAX)
			return DECODE_MALFORMED;
		if (!have(c, off, 4))
			return DECODE_TRUNCATED;
		if (tags == 0)
			out->vlan = get_be16(c, off) & 0x0fff;
		type = get_be16(c, off + 2);
		off += 4;
	}
	advance(c, off);
	switch (type) {
	case ETH_IPV4:
		return decode_ipv4(c, out);
	case ETH_IPV6:
		return decode_ipv6(c, out);
	}
	return DECODE_NOT_IP;
}

/* BSD loopback AF values for IPv6 differ per OS (Linux 10, NetBSD/OpenBSD 24,
 * FreeBSD 28, macOS 30); IPv4 is 2 everywhere. */
static enum decode_result decode_af(struct cursor *c, uint32_t af, struct packet *out)
{
	advance(c, 4);
	if (af == 2)
		return decode_ipv4(c, out);
	if (af == 10 || af == 24 || af == 28 || af == 30)
		return decode_ipv6(c, out);
	return DECODE_NOT_IP;
}

enum decode_result decode_packet(int dlt, const uint8_t *data, uint32_t caplen,
				 uint32_t wire_len, struct packet *out)
{
	struct cursor c = { data, caplen, wire_len > caplen ? wire_len : caplen };
	out->wire_len = c.wire;
	out->vlan = 0;
	out->l3 = NULL;
	out->l3_len = 0;
	out->ip_len_zero = false;
	out->l4 = NULL;
	out->payload = NULL;
	out->payload_len = out->payload_wire_len = 0;

	switch (dlt) {
	case DECODE_DLT_EN10MB:
		return decode_ethertype(&c, 12, out);
	case DECODE_DLT_LINUX_SLL:
		return decode_ethertype(&c, 14, out);
	case DECODE_DLT_LINUX_SLL2: {
		/* SLL2: protocol type first, then 18 more bytes (pcap-linktype(7)). */
		if (!have(&c, 0, 20))
			return DECODE_TRUNCATED;
		uint16_t type = get_be16(&c, 0);
		advance(&c, 20);
		if (type == ETH_IPV4)
			return decode_ipv4(&c, out);
		if (type == ETH_IPV6)
			return decode_ipv6(&c, out);
		if (type == ETH_8021Q || type == ETH_8021AD) {
			/* Rare: tag not stripped by the kernel; ethertype follows the TCI. */
			return decode_ethertype(&c, 2, out);
		}
		return DECODE_NOT_IP;
	}
	case DECODE_DLT_NULL: {
		if (!have(&c, 0, 4))
			return DECODE_TRUNCATED;
		/* Host byte order of the capturing machine: accept either. */
		uint32_t le = get_le32(&c, 0), be = get_be32(&c, 0);
		return decode_af(&c, le < 256 ? le : be, out);
	}
	case DECODE_DLT_LOOP:
		if (!have(&c, 0, 4))
			return DECODE_TRUNCATED;
		return decode_af(&c, get_be32(&c, 0), out);
	case DECODE_DLT_RAW:
	case DECODE_DLT_RAW_LT:
	case 14: /* DLT_RAW on OpenBSD */
		return decode_ip(&c, out);
	case DECODE_DLT_IPV4:
		return decode_ipv4(&c, out);
	case DECODE_DLT_IPV6:
		return decode_ipv6(&c, out);
	}
	return DECODE_BAD_LINKTYPE;
}

/* The one's complement sum (RFC 1071) of n bytes at p added to sum, in
 * 64-bit words whose carries are counted: 2^64 - 1 is a multiple of
 * 2^16 - 1, so folding the result gives the 16-bit sum. Words are read in
 * host order, which changes the sum only by a byte swap (RFC 1071 §2(B));
 * p may be odd: memcpy reads unaligned. The payload of every segment that
 * is read goes through here: four independent add-with-carry chains, 32
 * bytes a turn, sum about 12 bytes a TSC tick on the benchmark's EPYC, two
 * and a half times what two chains do (tests/bench/README.md has the cost). */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
	/* scalars, not arrays: GCC keeps these in registers */
	uint64_t s0 = sum, s1 = 0, s2 = 0, s3 = 0, c0 = 0, c1 = 0, c2 = 0, c3 = 0;
	uint64_t w0, w1, w2, w3;
	for (; n >= 32; p += 32, n -= 32) {
		memcpy(&w0, p, 8);
		memcpy(&w1, p + 8, 8);
		memcpy(&w2, p + 16, 8);
		memcpy(&w3, p + 24, 8);
		s0 += w0;
		c0 += s0 < w0;
		s1 += w1;
		c1 += s1 < w1;
		s2 += w2;
		c2 += s2 < w2;
		s3 += w3;
		c3 += s3 < w3;
	}
	if (n & 16) {
		memcpy(&w0, p, 8);
		memcpy(&w1, p + 8, 8);
		s0 += w0;
		c0 += s0 < w0;
		s1 += w1;
		c1 += s1 < w1;
		p += 16;
	}
	if (n & 8) {
		memcpy(&w2, p, 8);
		s2 += w2;
		c2 += s2 < w2;
		p += 8;
	}
	/* The last 0..7 bytes as a sum of their 16-bit words (33 bits at
	 * most). An odd last byte is the first byte of a word whose second
	 * is 0 (RFC 9293 §3.1). */
	w3 = 0;
	if (n & 4) {
		uint32_t x;
		memcpy(&x, p, 4);
		w3 += x;
		p += 4;
	}
	if (n & 2) {
		uint16_t x;
		memcpy(&x, p, 2);
		w3 += x;
		p += 2;
	}
	if (n & 1) {
		uint8_t pad[2] = { p[0], 0 };
		uint16_t x;
		memcpy(&x, pad, 2);
		w3 += x;
	}
	s3 += w3;
	c3 += s3 < w3;
	/* Each carry out of bit 63 is worth 2^64, which is 1; 2^32 is 1 too,
	 * as 2^32 - 1 is a multiple of 2^16 - 1: below 2^36, to go on with. */
	return (s0 & 0xffffffffu) + (s0 >> 32) + (s1 & 0xffffffffu) + (s1 >> 32) +
	       (s2 & 0xffffffffu) + (s2 >> 32) + (s3 & 0xffffffffu) + (s3 >> 32) +
	       c0 + c1 + c2 + c3;
}

static uint16_t csum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)((sum & 0xffffu) + (sum >> 16));
}

enum decode_csum decode_tcp_checksum(const struct packet *p)
{
	if (p->payload_len < p->payload_wire_len)
		return DECODE_CSUM_UNCHECKED;
	if (p->ip_len_zero)
		return DECODE_CSUM_BAD;
	uint32_t tcp_len = (uint32_t)(p->payload - p->l4) + p->payload_len;
	/* The pseudo-header: the addresses (IPv4's zero-padded to 16 bytes,
	 * which adds nothing) as 32-bit halves of 64-bit words, which cannot
	 * carry; the zero byte and protocol 6, and the TCP length, as 32 bits
	 * for IPv6 (RFC 8200 §8.1): the same sum, as the length fits 16 bits
	 * but for an IPv4 frame of length 0, BAD above. */
	uint8_t proto_len[4] = { 0, 6, (uint8_t)(tcp_len >> 8), (uint8_t)tcp_len };
	uint32_t pl;
	memcpy(&pl, proto_len, 4);
	uint64_t sum = pl, w;
	for (int i = 0; i < 16; i += 8) {
		memcpy(&w, p->src + i, 8);
		sum += (w & 0xffffffffu) + (w >> 32);
		memcpy(&w, p->dst + i, 8);
		sum += (w & 0xffffffffu) + (w >> 32);
	}
	sum = csum_add(sum, p->l4, tcp_len);
	/* with the checksum field included, a segment sums to all ones */
	return csum_fold(sum) == 0xffff ? DECODE_CSUM_GOOD : DECODE_CSUM_BAD;
}

bool decode_linktype_supported(int dlt)
{
	switch (dlt) {
	case DECODE_DLT_NULL: case DECODE_DLT_EN10MB: case DECODE_DLT_RAW:
	case DECODE_DLT_LOOP: case DECODE_DLT_RAW_LT: case DECODE_DLT_LINUX_SLL:
	case DECODE_DLT_IPV4: case DECODE_DLT_IPV6: case DECODE_DLT_LINUX_SLL2:
	case 14:
		return true;
	}
	return false;
}

const char *decode_result_name(enum decode_result r)
{
	switch (r) {
	case DECODE_OK: return "tcp";
	case DECODE_NOT_IP: return "not_ip";
	case DECODE_NOT_TCP: return "not_tcp";
	case DECODE_FRAGMENT: return "fragment";
	case DECODE_TRUNCATED: return "truncated";
	case DECODE_MALFORMED: return "malformed";
	case DECODE_BAD_LINKTYPE: return "bad_linktype";
	case DECODE_RESULT_COUNT: break;
	}
	return "?";
}

void decode_addr_str(bool v6, const uint8_t addr[16], char *out, size_t outsz)
{
	if (!inet_ntop(v6 ? AF_INET6 : AF_INET, addr, out, (socklen_t)outsz))
		snprintf(out, outsz, "?");
}
