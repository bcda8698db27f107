/* test-decode.c — sensor/decode.c: every link type, tags, IPv6 extension
 * headers, fragments, frames cut or lying about their lengths, and TCP
 * checksums. */
#include "testlib.h"

#include "decode.h"

static uint8_t frame[2048];

/* IPv4 + TCP with `plen` payload bytes "SMTP..." at `f`; returns length. */
static size_t put_ipv4_tcp(uint8_t *f, size_t plen, uint16_t frag)
{
	size_t ip = 20, tcp = 20, total = ip + tcp + plen;
	memset(f, 0, total);
	f[0] = 0x45;
	f[2] = (uint8_t)(total >> 8);
	f[3] = (uint8_t)total;
	f[6] = (uint8_t)(frag >> 8);
	f[7] = (uint8_t)frag;
	f[8] = 64;
	f[9] = 6;
	memcpy(f + 12, (uint8_t[]){ 192, 0, 2, 1 }, 4);
	memcpy(f + 16, (uint8_t[]){ 198, 51, 100, 25 }, 4);
	uint8_t *t = f + ip;
	t[0] = 0xc3; t[1] = 0x50;         /* 50000 */
	t[2] = 0; t[3] = 25;
	t[4] = 0; t[5] = 0; t[6] = 0x10; t[7] = 0; /* seq 4096 */
	t[8] = 0; t[9] = 0; t[10] = 0; t[11] = 7;  /* ack 7 */
	t[12] = 5 << 4;
	t[13] = TCP_ACK | TCP_PSH;
	for (size_t i = 0; i < plen; i++)
		t[tcp + i] = (uint8_t)"MAIL FROM:<a@b>\r\n"[i % 17];
	return total;
}

static size_t put_ipv6_tcp(uint8_t *f, size_t plen, const uint8_t *ext, size_t extlen,
			   uint8_t first_nh)
{
	size_t payload = extlen + 20 + plen;
	memset(f, 0, 40 + payload);
	f[0] = 0x60;
	f[4] = (uint8_t)(payload >> 8);
	f[5] = (uint8_t)payload;
	f[6] = extlen ? first_nh : 6;
	f[7] = 64;
	f[8] = 0x20; f[9] = 0x01; f[10] = 0x0d; f[11] = 0xb8; f[23] = 1;
	f[24] = 0x20; f[25] = 0x01; f[26] = 0x0d; f[27] = 0xb8; f[39] = 0x25;
	if (extlen)
		memcpy(f + 40, ext, extlen);
	uint8_t *t = f + 40 + extlen;
	t[1] = 0x99; t[3] = 25; t[12] = 5 << 4; t[13] = TCP_SYN;
	memset(t + 20, 'x', plen);
	return 40 + payload;
}

static void check_tcp(const struct packet *p, size_t plen)
{
	CHECK_INT(p->sport, 50000);
	CHECK_INT(p->dport, 25);
	CHECK_INT(p->seq, 4096);
	CHECK_INT(p->ack, 7);
	CHECK_INT(p->flags, TCP_ACK | TCP_PSH);
	CHECK_INT(p->payload_len, plen);
	CHECK_INT(p->payload_wire_len, plen);
	CHECK(!p->v6);
	CHECK_INT(p->src[0], 192);
	CHECK_INT(p->dst[3], 25);
	if (plen)
		CHECK(memcmp(p->payload, "MAIL", 4) == 0);
}

static void test_ethernet(void)
{
	struct packet p;
	memset(frame, 0, 14);
	frame[12] = 0x08;
	size_t n = 14 + put_ipv4_tcp(frame + 14, 17, 0);
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	check_tcp(&p, 17);
	CHECK_INT(p.vlan, 0);
	CHECK(p.l3 == frame + 14);
	CHECK_INT(p.l3_len, 57);
}

static void test_ethernet_padding_is_not_payload(void)
{
	/* A 40-byte IP packet padded to the 60-byte Ethernet minimum. */
	struct packet p;
	memset(frame, 0, 64);
	frame[12] = 0x08;
	put_ipv4_tcp(frame + 14, 0, 0);
	memset(frame + 54, 0xee, 6); /* padding */
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, 60, 60, &p), DECODE_OK);
	CHECK_INT(p.payload_len, 0);
	CHECK_INT(p.payload_wire_len, 0);
	CHECK_INT(p.l3_len, 40);
}

static void test_vlan_and_qinq(void)
{
	struct packet p;
	/* 802.1Q, VLAN 125 */
	memset(frame, 0, 18);
	frame[12] = 0x81; frame[13] = 0x00; frame[14] = 0x20; frame[15] = 125;
	frame[16] = 0x08;
	size_t n = 18 + put_ipv4_tcp(frame + 18, 17, 0);
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	check_tcp(&p, 17);
	CHECK_INT(p.vlan, 125);
	/* QinQ: 802.1ad outer 300, 802.1Q inner 7 */
	memset(frame, 0, 22);
	frame[12] = 0x88; frame[13] = 0xa8; frame[14] = 0x01; frame[15] = 0x2c;
	frame[16] = 0x81; frame[17] = 0x00; frame[18] = 0x00; frame[19] = 7;
	frame[20] = 0x08;
	n = 22 + put_ipv4_tcp(frame + 22, 17, 0);
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	check_tcp(&p, 17);
	CHECK_INT(p.vlan, 300);
}

static void test_vlan_bound(void)
{
	/* DECODE_VLAN_MAX tags decode; one more is malformed, not a loop. */
	struct packet p;
	for (int tags = DECODE_VLAN_MAX; tags <= DECODE_VLAN_MAX + 1; tags++) {
		memset(frame, 0, sizeof frame);
		size_t off = 12;
		for (int i = 0; i < tags; i++, off += 4) {
			frame[off] = 0x81;
			frame[off + 1] = 0x00;
			frame[off + 3] = (uint8_t)(i + 1);
		}
		frame[off] = 0x08;
		size_t n = off + 2 + put_ipv4_tcp(frame + off + 2, 17, 0);
		enum decode_result r = decode_packet(DECODE_DLT_EN10MB, frame, (uint32_t)n, (uint32_t)n, &p);
		CHECK_INT(r, tags <= DECODE_VLAN_MAX ? DECODE_OK : DECODE_MALFORMED);
	}
}

static void test_sll_sll2_null_raw(void)
{
	struct packet p;
	/* Linux SLL: 16-byte header, protocol at 14 */
	memset(frame, 0, 16);
	frame[14] = 0x08;
	size_t n = 16 + put_ipv4_tcp(frame + 16, 17, 0);
	CHECK_INT(decode_packet(DECODE_DLT_LINUX_SLL, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	check_tcp(&p, 17);
	/* SLL2: 20-byte header, protocol first */
	memset(frame, 0, 20);
	frame[0] = 0x08;
	n = 20 + put_ipv4_tcp(frame + 20, 17, 0);
	CHECK_INT(decode_packet(DECODE_DLT_LINUX_SLL2, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	check_tcp(&p, 17);
	/* BSD NULL: AF_INET = 2 in either byte order */
	memcpy(frame, (uint8_t[]){ 2, 0, 0, 0 }, 4);
	n = 4 + put_ipv4_tcp(frame + 4, 17, 0);
	CHECK_INT(decode_packet(DECODE_DLT_NULL, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	check_tcp(&p, 17);
	memcpy(frame, (uint8_t[]){ 0, 0, 0, 2 }, 4);
	CHECK_INT(decode_packet(DECODE_DLT_NULL, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	/* NULL with AF_INET6 as macOS writes it (30) */
	memcpy(frame, (uint8_t[]){ 30, 0, 0, 0 }, 4);
	n = 4 + put_ipv6_tcp(frame + 4, 3, NULL, 0, 0);
	CHECK_INT(decode_packet(DECODE_DLT_NULL, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	CHECK(p.v6);
	/* raw IP, both link type numbers */
	n = put_ipv4_tcp(frame, 17, 0);
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	CHECK_INT(decode_packet(DECODE_DLT_RAW_LT, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	check_tcp(&p, 17);
	CHECK_INT(decode_packet(147, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_BAD_LINKTYPE);
	CHECK(!decode_linktype_supported(147));
	CHECK(decode_linktype_supported(DECODE_DLT_LINUX_SLL2));
}

static void test_ipv6_extension_headers(void)
{
	struct packet p;
	/* hop-by-hop (8 bytes) then destination options (16 bytes) then TCP */
	uint8_t ext[24] = { 0 };
	ext[0] = 60; ext[1] = 0;
	ext[8] = 6; ext[9] = 1;
	size_t n = put_ipv6_tcp(frame, 5, ext, sizeof ext, 0);
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	CHECK(p.v6);
	CHECK_INT(p.dport, 25);
	CHECK_INT(p.payload_len, 5);
	CHECK_INT(p.flags, TCP_SYN);
	CHECK_INT(p.dst[15], 0x25);
	/* a real fragment: skipped */
	uint8_t frag[8] = { 6, 0, 0x00, 0x01, 0, 0, 0, 1 }; /* M set */
	n = put_ipv6_tcp(frame, 5, frag, sizeof frag, 44);
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_FRAGMENT);
	/* an atomic fragment (offset 0, M clear) is a whole packet: RFC 6946 */
	frag[3] = 0;
	n = put_ipv6_tcp(frame, 5, frag, sizeof frag, 44);
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	CHECK_INT(p.payload_len, 5);
	/* an extension header claiming more than the packet holds */
	ext[9] = 200;
	n = put_ipv6_tcp(frame, 5, ext, sizeof ext, 0);
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_MALFORMED);
	/* a payload length past the end of a frame captured whole */
	n = put_ipv6_tcp(frame, 5, NULL, 0, 0);
	frame[5]++;
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_MALFORMED);
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n + 1, &p), DECODE_OK);
	CHECK_INT(p.payload_len, 5);
	CHECK_INT(p.payload_wire_len, 6);
	/* ESP: not TCP */
	uint8_t esp[8] = { 0 };
	n = put_ipv6_tcp(frame, 5, esp, sizeof esp, 50);
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_NOT_TCP);
}

static void test_ipv6_extension_bound(void)
{
	/* DECODE_IPV6_EXT_MAX destination-option headers are followed; one
	 * more is refused. */
	struct packet p;
	for (int k = DECODE_IPV6_EXT_MAX; k <= DECODE_IPV6_EXT_MAX + 1; k++) {
		uint8_t ext[8 * 16] = { 0 };
		for (int i = 0; i < k; i++)
			ext[i * 8] = i + 1 < k ? 60 : 6;
		size_t n = put_ipv6_tcp(frame, 1, ext, (size_t)k * 8, 60);
		CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p),
			  k <= DECODE_IPV6_EXT_MAX ? DECODE_OK : DECODE_MALFORMED);
	}
}

static void test_ipv4_fragments_and_lies(void)
{
	struct packet p;
	size_t n = put_ipv4_tcp(frame, 17, 0x2000); /* MF */
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_FRAGMENT);
	n = put_ipv4_tcp(frame, 17, 0x0010); /* offset 16 */
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_FRAGMENT);
	n = put_ipv4_tcp(frame, 17, 0x4000); /* DF only: a whole packet */
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	/* total length smaller than the header: must not wrap */
	n = put_ipv4_tcp(frame, 17, 0);
	frame[2] = 0; frame[3] = 10;
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_MALFORMED);
	/* IHL 3 */
	n = put_ipv4_tcp(frame, 17, 0);
	frame[0] = 0x43;
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_MALFORMED);
	/* TCP data offset past the IP payload */
	n = put_ipv4_tcp(frame, 0, 0);
	frame[20 + 12] = 15 << 4;
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_MALFORMED);
	/* a total length past the end of a frame captured whole: cut on the
	 * wire, dropped by every receiver; one byte less is the whole packet */
	for (int extra = 0; extra <= 1; extra++) {
		n = put_ipv4_tcp(frame, 17, 0);
		frame[3] = (uint8_t)(n + (size_t)extra);
		CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p),
			  extra ? DECODE_MALFORMED : DECODE_OK);
		/* the same frame cut by the snap length is a short payload */
		CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n + 1500, &p),
			  DECODE_OK);
		CHECK_INT(p.payload_len, 17);
		CHECK_INT(p.payload_wire_len, 17 + extra);
	}
	/* UDP */
	n = put_ipv4_tcp(frame, 17, 0);
	frame[9] = 17;
	CHECK_INT(decode_packet(DECODE_DLT_RAW, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_NOT_TCP);
}

static void test_ipv4_length_zero_is_tso(void)
{
	/* A frame captured on the sending host before segmentation offload may
	 * carry IPv4 total length 0 (Wireshark: "reported as 0, presumed to be
	 * because of TCP segmentation offload"): the frame's length is the
	 * packet's, on the wire if the snap length cut it. Only 0, and only
	 * when the frame holds more than the header. */
	struct packet p;
	size_t n = 14 + put_ipv4_tcp(frame + 14, 1400, 0);
	memset(frame, 0, 14);
	frame[12] = 0x08;
	frame[14 + 2] = 0;
	frame[14 + 3] = 0;
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, (uint32_t)n, (uint32_t)n, &p), DECODE_OK);
	check_tcp(&p, 1400);
	CHECK_INT(p.l3_len, 20 + 20 + 1400);
	/* cut by the snap length: the rest of the frame on the wire is a gap */
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, 14 + 40 + 100, (uint32_t)n, &p),
		  DECODE_OK);
	CHECK_INT(p.payload_len, 100);
	CHECK_INT(p.payload_wire_len, 1400);
	/* the same with a 64 KB super-frame, longer than any total length */
	static uint8_t big[14 + 40 + 70000];
	memcpy(big, frame, 14 + 40);
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, big, sizeof big, sizeof big, &p), DECODE_OK);
	CHECK_INT(p.payload_wire_len, 70000);
	/* a header alone is still malformed; a TCP header cut short, as
	 * with any total length */
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, 14 + 20, 14 + 20, &p), DECODE_MALFORMED);
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, 14 + 30, 14 + 30, &p), DECODE_TRUNCATED);
	/* 0 is the only length taken from the frame: 1 is a lie */
	frame[14 + 3] = 1;
	CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, (uint32_t)n, (uint32_t)n, &p),
		  DECODE_MALFORMED);
}

static void test_truncated_everywhere(void)
{
	/* Every prefix of a valid frame decodes without reading past it: the
	 * result is TRUNCATED for cut headers and OK with a short payload once
	 * the TCP header is complete (snap length). Run under ASan. */
	struct packet p;
	memset(frame, 0, 18);
	frame[12] = 0x81; frame[13] = 0x00; frame[16] = 0x08;
	size_t n = 18 + put_ipv4_tcp(frame + 18, 17, 0);
	for (size_t cut = 0; cut < n; cut++) {
		static uint8_t copy[2048];
		memcpy(copy, frame, cut);
		enum decode_result r = decode_packet(DECODE_DLT_EN10MB, copy, (uint32_t)cut, (uint32_t)n, &p);
		if (cut < 18 + 40) {
			CHECK_INT(r, DECODE_TRUNCATED);
		} else {
			CHECK_INT(r, DECODE_OK);
			CHECK_INT(p.payload_len, cut - 58);
			CHECK_INT(p.payload_wire_len, 17);
		}
	}
}

/* RFC 9293 §3.1 the slow way: 16-bit big-endian words of the pseudo-header
 * and the segment, its checksum field taken as 0. */
static uint16_t ref_checksum(const uint8_t *src, const uint8_t *dst, size_t alen,
			     const uint8_t *tcp, size_t len)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < alen; i += 2)
		sum += (uint32_t)(src[i] << 8 | src[i + 1]) + (uint32_t)(dst[i] << 8 | dst[i + 1]);
	sum += 6 + (uint32_t)len;
	for (size_t i = 0; i < len; i += 2) {
		if (i == 16)
			continue;
		sum += (uint32_t)tcp[i] << 8 | (i + 1 < len ? tcp[i + 1] : 0);
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put_checksum(uint8_t *tcp, uint16_t c)
{
	tcp[16] = (uint8_t)(c >> 8);
	tcp[17] = (uint8_t)c;
}

static enum decode_csum csum_of(const uint8_t *f, size_t caplen, size_t len)
{
	struct packet p;
	if (decode_packet(DECODE_DLT_RAW, f, (uint32_t)caplen, (uint32_t)len, &p) != DECODE_OK)
		return (enum decode_csum)-1;
	return decode_tcp_checksum(&p);
}

static void test_checksum_captured(void)
{
	/* Two frames as captured (tests/captures basic.pcap frame 6, ipv6.pcap
	 * frame 4), checksums filled in by Linux: odd and even payloads,
	 * timestamp options. */
	static const uint8_t v4[] = {
		0x52, 0x54, 0x00, 0x0a, 0x01, 0x19, 0x52, 0x54, 0x00, 0xc0, 0x00, 0x01, 0x08, 0x00,
		0x45, 0x00, 0x00, 0x4b, 0x74, 0xb5, 0x40, 0x00, 0x40, 0x06, 0xf9, 0xd3, 0xc0, 0x00,
		0x02, 0x0a, 0x0a, 0x01, 0x00, 0x19, 0x9c, 0xa4, 0x00, 0x19, 0xf2, 0x74, 0x61, 0x96,
		0x90, 0xb0, 0x43, 0x83, 0x80, 0x18, 0x00, 0x3f, 0xba, 0xfd, 0x00, 0x00, 0x01, 0x01,
		0x08, 0x0a, 0xcd, 0x95, 0xe4, 0x84, 0x06, 0xd8, 0x50, 0x86, 'e', 'h', 'l', 'o', ' ',
		'm', 't', 'a', '1', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'n', 'e', 't', '\r',
		'\n',
	};
	static const uint8_t v6[] = {
		0x52, 0x54, 0x00, 0xc0, 0x00, 0x01, 0x52, 0x54, 0x00, 0x0a, 0x01, 0x19, 0x86, 0xdd,
		0x60, 0x05, 0xc0, 0x0d, 0x00, 0x3e, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x25, 0x20, 0x01, 0x0d, 0xb8,
		0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x15, 0x00, 0x19,
		0xa4, 0x11, 0x97, 0x03, 0x08, 0xf0, 0xb7, 0x2f, 0xb9, 0x7e, 0x80, 0x18, 0x00, 0x3f,
		0x69, 0xbe, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x70, 0xa8, 0xdc, 0xfe, 0xae, 0xb8,
		0x4d, 0x12, '2', '2', '0', ' ', 'm', 'x', '.', 'p', 'r', 'e', 'f', '.', 'e', 'x', 'a',
		'm', 'p', 'l', 'e', '.', 'j', 'p', ' ', 'E', 'S', 'M', 'T', 'P', '\r', '\n',
	};
	const uint8_t *f[2] = { v4, v6 };
	size_t n[2] = { sizeof v4, sizeof v6 }, payload[2] = { 23, 30 };
	for (int i = 0; i < 2; i++) {
		struct packet p;
		memcpy(frame, f[i], n[i]);
		CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, (uint32_t)n[i], (uint32_t)n[i], &p),
			  DECODE_OK);
		CHECK_INT(p.payload_len, payload[i]);
		CHECK_INT(decode_tcp_checksum(&p), DECODE_CSUM_GOOD);
		/* one bit of the payload, of the header, of an address */
		size_t at[3] = { n[i] - 3, i ? 14 + 40 + 4 : 14 + 20 + 4, i ? 14 + 8 + 15 : 14 + 15 };
		for (int k = 0; k < 3; k++) {
			frame[at[k]] ^= 0x10;
			CHECK_INT(decode_packet(DECODE_DLT_EN10MB, frame, (uint32_t)n[i],
						(uint32_t)n[i], &p), DECODE_OK);
			CHECK_INT(decode_tcp_checksum(&p), DECODE_CSUM_BAD);
			frame[at[k]] ^= 0x10;
		}
	}
}

static void test_checksum_lengths(void)
{
	/* Every payload length from 0 to 70 bytes (odd ones, and every
	 * remainder of the 16-byte turns), and an MSS's, over IPv4, IPv6, and
	 * IPv6 with a hop-by-hop header (not in the TCP length), each at an
	 * odd and an even address: checked against the slow sum, then one
	 * byte changed. */
	static uint8_t buf[1 + 48 + 40 + 1460];
	uint32_t seed = 1;
	size_t lens[72];
	for (size_t i = 0; i <= 70; i++)
		lens[i] = i;
	lens[71] = 1460;
	for (int kind = 0; kind < 3; kind++)
		for (int odd = 0; odd <= 1; odd++)
			for (size_t li = 0; li < 72; li++) {
				size_t plen = lens[li];
				uint8_t *f = buf + odd, hbh[8] = { 6 };
				size_t n = kind == 0 ? put_ipv4_tcp(f, plen, 0) :
					   put_ipv6_tcp(f, plen, kind == 2 ? hbh : NULL,
							kind == 2 ? 8 : 0, 0);
				size_t l4 = kind == 0 ? 20 : kind == 1 ? 40 : 48;
				uint8_t *tcp = f + l4;
				for (size_t i = 0; i < plen; i++) {
					seed = seed * 1103515245u + 12345u;
					tcp[20 + i] = (uint8_t)(seed >> 16);
				}
				const uint8_t *src = kind ? f + 8 : f + 12, *dst = kind ? f + 24 : f + 16;
				put_checksum(tcp, ref_checksum(src, dst, kind ? 16 : 4, tcp, 20 + plen));
				CHECK_INT(csum_of(f, n, n), DECODE_CSUM_GOOD);
				tcp[plen ? 20 + plen - 1 : 0] ^= 0x01;
				CHECK_INT(csum_of(f, n, n), DECODE_CSUM_BAD);
				tcp[plen ? 20 + plen - 1 : 0] ^= 0x01;
				/* the checksum itself wrong */
				tcp[17] ^= 0x80;
				CHECK_INT(csum_of(f, n, n), DECODE_CSUM_BAD);
			}
}

static void test_checksum_carries(void)
{
	/* 0xff bytes make every 64-bit add carry: a 64 KB segment of them,
	 * and of zeros (whose checksum 0xffff or 0 both verify). */
	static uint8_t big[20 + 20 + 65000];
	for (int fill = 0; fill <= 1; fill++) {
		size_t plen = sizeof big - 40;
		memset(big, 0, 40);
		big[0] = 0x45;
		big[2] = (uint8_t)(sizeof big >> 8);
		big[3] = (uint8_t)sizeof big;
		big[9] = 6;
		memset(big + 12, 0xff, 8); /* 255.255.255.255 both ways */
		big[20 + 12] = 5 << 4;
		memset(big + 40, fill ? 0xff : 0, plen);
		put_checksum(big + 20, ref_checksum(big + 12, big + 16, 4, big + 20, 20 + plen));
		CHECK_INT(csum_of(big, sizeof big, sizeof big), DECODE_CSUM_GOOD);
		big[sizeof big - 1] ^= 0x80;
		CHECK_INT(csum_of(big, sizeof big, sizeof big), DECODE_CSUM_BAD);
	}
	/* a sum of all ones without the checksum: ~0 is 0, and 0xffff says the same */
	memset(frame, 0, 40);
	frame[0] = 0x45;
	frame[3] = 40;
	frame[9] = 6;
	frame[20 + 12] = 5 << 4;
	/* pseudo-header 6 + 20, header 0x5000: make the rest sum to 0xffff */
	uint16_t rest = (uint16_t)(0xffff - 6 - 20 - 0x5000);
	frame[20 + 14] = (uint8_t)(rest >> 8);
	frame[20 + 15] = (uint8_t)rest;
	CHECK_INT(ref_checksum(frame + 12, frame + 16, 4, frame + 20, 20), 0);
	put_checksum(frame + 20, 0);
	CHECK_INT(csum_of(frame, 40, 40), DECODE_CSUM_GOOD);
	put_checksum(frame + 20, 0xffff);
	CHECK_INT(csum_of(frame, 40, 40), DECODE_CSUM_GOOD);
}

static void test_checksum_cut_or_unfilled(void)
{
	/* Cut by the snap length: what is missing cannot be summed, so it is
	 * not checked, right or wrong; the segment is taken as the capture
	 * gives it (its missing bytes become a gap). */
	size_t n = put_ipv4_tcp(frame, 100, 0);
	put_checksum(frame + 20, ref_checksum(frame + 12, frame + 16, 4, frame + 20, 120));
	CHECK_INT(csum_of(frame, n, n), DECODE_CSUM_GOOD);
	CHECK_INT(csum_of(frame, n - 1, n), DECODE_CSUM_UNCHECKED);
	CHECK_INT(csum_of(frame, 40, n), DECODE_CSUM_UNCHECKED);
	frame[20 + 16] ^= 0xff;
	CHECK_INT(csum_of(frame, n - 1, n), DECODE_CSUM_UNCHECKED);
	CHECK_INT(csum_of(frame, n, n), DECODE_CSUM_BAD);
	/* an IPv6 one, cut inside the payload */
	n = put_ipv6_tcp(frame, 33, NULL, 0, 0);
	CHECK_INT(csum_of(frame, n - 20, n), DECODE_CSUM_UNCHECKED);
	/* IPv4 total length 0 (captured before segmentation offload): its
	 * checksum is the NIC's to fill in; one that verifies came from the
	 * wire, where no receiver takes such a packet */
	n = put_ipv4_tcp(frame, 100, 0);
	put_checksum(frame + 20, ref_checksum(frame + 12, frame + 16, 4, frame + 20, 120));
	frame[2] = frame[3] = 0;
	CHECK_INT(csum_of(frame, n, n), DECODE_CSUM_BAD);
}

static void test_names(void)
{
	CHECK_STR(decode_result_name(DECODE_FRAGMENT), "fragment");
	char b[64];
	uint8_t a[16] = { 192, 0, 2, 1 };
	decode_addr_str(false, a, b, sizeof b);
	CHECK_STR(b, "192.0.2.1");
	uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	decode_addr_str(true, a6, b, sizeof b);
	CHECK_STR(b, "2001:db8::1");
}

int main(void)
{
	RUN(test_ethernet);
	RUN(test_ethernet_padding_is_not_payload);
	RUN(test_vlan_and_qinq);
	RUN(test_vlan_bound);
	RUN(test_sll_sll2_null_raw);
	RUN(test_ipv6_extension_headers);
	RUN(test_ipv6_extension_bound);
	RUN(test_ipv4_fragments_and_lies);
	RUN(test_ipv4_length_zero_is_tso);
	RUN(test_truncated_everywhere);
	RUN(test_checksum_captured);
	RUN(test_checksum_lengths);
	RUN(test_checksum_carries);
	RUN(test_checksum_cut_or_unfilled);
	RUN(test_names);
	return TEST_EXIT();
}
