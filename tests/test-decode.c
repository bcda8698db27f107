/* test-decode.c — sensor/decode.c: every link type, tags, IPv6 extension
 * headers, fragments, and frames cut or lying about their lengths. */
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
	RUN(test_names);
	return TEST_EXIT();
}
