/* test-rfc2047.c — sensor/rfc2047.c: encoded-words and charsets to UTF-8. */
#include "rfc2047.h"
#include "utf8.h"
#include "testlib.h"

#define FFFD "\xef\xbf\xbd"

static struct rfc2047_stats st;
static char out[1024];

/* Decode s with fresh stats into `out`. */
static const char *dec(const char *s)
{
	memset(&st, 0, sizeof st);
	rfc2047_decode(s, strlen(s), out, sizeof out, &st);
	return out;
}

static const char *conv(const char *cs, const char *s, size_t n)
{
	memset(&st, 0, sizeof st);
	rfc2047_convert(cs, s, n, out, sizeof out, &st);
	return out;
}

static void test_plain_text(void)
{
	CHECK_STR(dec(""), "");
	CHECK_STR(dec("Hello world"), "Hello world");
	CHECK_STR(dec("a =? b ?= c"), "a =? b ?= c");
	CHECK_STR(dec("日本語はそのまま"), "日本語はそのまま");
	CHECK_INT(st.words, 0);
	CHECK_INT(st.replaced, 0);
}

static void test_iso2022jp(void)
{
	/* こんにちは, as every Japanese MUA sends it (RFC 1468) */
	CHECK_STR(dec("=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?="), "こんにちは");
	CHECK_INT(st.words, 1);
	CHECK_INT(st.replaced, 0);
	CHECK_STR(dec("=?iso-2022-jp?b?WBskQiVGJTklSBsoQg==?="), "Xテスト");
	/* NEC row 13 (①) and JIS X 0201 katakana: CP50221 repertoire */
	CHECK_STR(dec("=?ISO-2022-JP?B?GyRCLSEbKEI=?="), "①");
	CHECK_INT(st.replaced, 0);
	CHECK_STR(dec("=?ISO-2022-JP?B?GyhJMRsoQg==?="), "ｱ");
	/* JIS X 0208 keeps its standard mapping: 0x2141 is WAVE DASH U+301C
	 * (CP932 would say FULLWIDTH TILDE) */
	CHECK_STR(conv("ISO-2022-JP", "\x1b$B!A\x1b(B", 8), "\xe3\x80\x9c");
	/* JIS X 0212 (ESC $ ( D) and JIS-Roman (ESC ( J: 0x5C is YEN SIGN) */
	CHECK_STR(conv("ISO-2022-JP-2", "\x1b$(D\x22\x2f\x1b(B", 9), "\xcb\x98");
	CHECK_STR(conv("ISO-2022-JP", "\x1b(J\\\x1b(B", 7), "¥");
	/* raw JIS in a header without encoded-words (old mailers) */
	CHECK_STR(dec("Re: \x1b$B$3$s$K$A$O\x1b(B!"), "Re: こんにちは!");
	/* a two-byte character cut in half at the end */
	CHECK_STR(dec("\x1b$B$3$"), "こ" FFFD);
	CHECK_INT(st.replaced, 1);
}

static void test_japanese_charsets(void)
{
	CHECK_STR(dec("=?Shift_JIS?B?jI+WvINlg1iDZw==?="), "件名テスト");
	CHECK_STR(dec("=?SJIS?B?jI+WvINlg1iDZw==?="), "件名テスト");
	CHECK_STR(dec("=?EUC-JP?B?svG1xLvxzsE=?="), "会議資料");
	/* Shift_JIS is read as CP932: NEC ① (0x8740) is common in mail */
	CHECK_STR(conv("Shift_JIS", "\x87\x40", 2), "①");
	/* invalid Shift_JIS trail byte: replaced and counted */
	CHECK_STR(conv("Shift_JIS", "a\x81\x20" "b", 4), "a" FFFD " b");
	CHECK_INT(st.replaced, 1);
}

static void test_utf8_b_and_q(void)
{
	CHECK_STR(dec("=?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?="), "日本語の件名");
	CHECK_STR(dec("=?utf-8?Q?caf=C3=A9?="), "café");
	CHECK_STR(dec("=?UTF-8?Q?Hello_World_=E2=9C=93?="), "Hello World ✓");
	CHECK_STR(dec("=?utf-8?q?a_b?="), "a b");
	CHECK_STR(dec("=?UTF-8?B?\?="), "");
	CHECK_INT(st.words, 1);
	/* invalid UTF-8 inside a word */
	CHECK_STR(dec("=?UTF-8?Q?a=FFb?="), "a" FFFD "b");
	CHECK_INT(st.replaced, 1);
	/* RFC 2231 §5 language tag */
	CHECK_STR(dec("=?UTF-8*ja?B?5pel5pys?="), "日本");
	CHECK_STR(dec("=?US-ASCII*EN?Q?Keith_Moore?="), "Keith Moore");
}

static void test_adjacent_words(void)
{
	/* RFC 2047 §8 examples */
	CHECK_STR(dec("(=?ISO-8859-1?Q?a?=)"), "(a)");
	CHECK_STR(dec("(=?ISO-8859-1?Q?a?= b)"), "(a b)");
	CHECK_STR(dec("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)"), "(ab)");
	CHECK_STR(dec("(=?ISO-8859-1?Q?a?=  \r\n\t=?ISO-8859-1?Q?b?=)"), "(ab)");
	CHECK_STR(dec("(=?ISO-8859-1?Q?a_b?=)"), "(a b)");
	CHECK_STR(dec("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)"), "(a b)");
	CHECK_STR(dec("=?utf-8?q?a?= b =?utf-8?q?c?="), "a b c");
	CHECK_STR(dec("Re: =?utf-8?q?x?="), "Re: x");
	CHECK_STR(dec("=?utf-8?q?x?=!"), "x!");
	CHECK_INT(st.words, 1);
}

static void test_split_multibyte(void)
{
	/* 日本 in UTF-8 cut after the first byte of 本 */
	CHECK_STR(dec("=?UTF-8?B?5pel5g==?= =?UTF-8?B?nKw=?="), "日本");
	CHECK_INT(st.words, 2);
	CHECK_INT(st.replaced, 0);
	/* same charset spelled differently still joins */
	CHECK_STR(dec("=?UTF-8?B?5pel5g==?= =?utf8?B?nKw=?="), "日本");
	/* Shift_JIS 件名 cut inside 名 (0x96 0xBC) */
	CHECK_STR(dec("=?Shift_JIS?Q?=8C=8F=96?= =?Shift_JIS?Q?=BC?="), "件名");
	/* ISO-2022-JP whose second word relies on the first word's ESC $ B */
	CHECK_STR(dec("=?ISO-2022-JP?Q?=1B$B$3$s?= =?ISO-2022-JP?Q?$K$A$O=1B(B?="),
		  "こんにちは");
	CHECK_INT(st.replaced, 0);
	/* text between the halves: each half is incomplete */
	CHECK_STR(dec("=?UTF-8?B?5pel5g==?= x =?UTF-8?B?nKw=?="), "日" FFFD " x " FFFD FFFD);
	CHECK_INT(st.replaced, 3);
}

/* Mailers cut base64 text into words anywhere, also inside a 4-character
 * quantum. Thunderbird joins the encoded text of adjacent B words in one
 * charset until a padded word ends it (Mozilla bug 493544); Python's email
 * decodes each word alone and shows "こ\ufffdT44Gr". Joined, each is こんに. */
static void test_split_base64_quantum(void)
{
	/* こんに = 44GT 44KT 44Gr, cut inside a quantum (and inside ん) */
	CHECK_STR(dec("=?utf-8?B?44GT44K?= =?utf-8?B?T44Gr?="), "こんに");
	CHECK_INT(st.words, 2);
	CHECK_INT(st.bad_words, 0);
	CHECK_INT(st.replaced, 0);
	/* two sextets short, one sextet short, a lone sextet in the first word */
	CHECK_STR(dec("=?utf-8?B?44GT44KT44?= =?utf-8?B?Gr?="), "こんに");
	CHECK_STR(dec("=?UTF-8?b?44GT44KT4?=\r\n =?utf-8?B?4Gr?="), "こんに");
	CHECK_STR(dec("=?utf-8?B?4?= =?utf-8?B?4GT44KT44Gr?="), "こんに");
	CHECK_INT(st.bad_words, 0);
	/* over three words, the last one padded; then a word of its own */
	CHECK_STR(dec("Re: =?utf-8?B?44G?= =?utf-8?B?T4?= =?utf-8?B?4KT44Gr44Gh44Gv?= "
		      "=?utf-8?B?77yB?="), "Re: こんにちは！");
	CHECK_INT(st.words, 4);
	/* ISO-2022-JP, split inside the quantum that holds ESC $ B */
	CHECK_STR(dec("=?ISO-2022-JP?B?Gy?= =?ISO-2022-JP?B?RCJDMkcyRLJEEkTxsoQg==?="),
		  "こんにちは");
	CHECK_INT(st.replaced, 0);
	/* not joined: another charset, Q, text between, a padded first word */
	CHECK_STR(dec("=?utf-8?B?44GT44K?= =?iso-8859-1?B?T44Gr?="),
		  "こ" FFFD FFFD " =?iso-8859-1?B?T44Gr?=");
	CHECK_STR(dec("=?utf-8?B?44GT44K?= x =?utf-8?B?T44Gr?="),
		  "こ" FFFD FFFD " x =?utf-8?B?T44Gr?=");
	CHECK_STR(dec("=?utf-8?B?44GT44K=?= =?utf-8?B?T44Gr?="),
		  "こ" FFFD FFFD " =?utf-8?B?T44Gr?=");
	CHECK_STR(dec("=?utf-8?B?44GT44K?= =?utf-8?Q?T44Gr?="), "こ" FFFD FFFD "T44Gr");
	/* a lone sextet that nothing completes is still malformed */
	CHECK_STR(dec("=?utf-8?B?44GT4?= =?utf-8?q?x?="), "=?utf-8?B?44GT4?= x");
	CHECK_INT(st.bad_words, 1);
	/* a long chain stays within the run's bound */
	static char big[32 * 1024];   /* past rfc2047.c's 4 KB run */
	size_t n = 0;
	for (int i = 0; i < 700; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "=?utf-8?B?44G?= =?utf-8?B?T?= ");
	CHECK(n < sizeof big);
	dec(big);
	CHECK(utf8_valid(out, strlen(out)));
	CHECK(strncmp(out, "こここ", 9) == 0);
}

static void test_malformed_words(void)
{
	/* invalid base64 is left as written (RFC 2047 §6.3) */
	CHECK_STR(dec("=?UTF-8?B?5pel!!?="), "=?UTF-8?B?5pel!!?=");
	CHECK_INT(st.bad_words, 1);
	CHECK_INT(st.words, 0);
	CHECK_STR(dec("=?UTF-8?B?5?="), "=?UTF-8?B?5?=");
	CHECK_INT(st.bad_words, 1);
	CHECK_STR(dec("=?UTF-8?B?5pel=x?="), "=?UTF-8?B?5pel=x?=");
	/* missing padding is tolerated */
	CHECK_STR(dec("=?UTF-8?B?5pel?="), "日");
	CHECK_STR(dec("=?UTF-8?Q?a=4?="), "=?UTF-8?Q?a=4?=");
	CHECK_INT(st.bad_words, 1);
	/* the space before a malformed word is not swallowed */
	CHECK_STR(dec("=?utf-8?q?a?= =?utf-8?B?!!?="), "a =?utf-8?B?!!?=");
	/* not words at all: unknown encoding, whitespace inside */
	CHECK_STR(dec("=?utf-8?X?abc?="), "=?utf-8?X?abc?=");
	CHECK_STR(dec("=?utf-8?Q?a b?="), "=?utf-8?Q?a b?=");
	CHECK_INT(st.bad_words, 0);
	CHECK_STR(dec("=?utf-8?Q?abc"), "=?utf-8?Q?abc");
}

/* A '?' in Q text should be "=3F" (RFC 2047 §4.2 (3)), but mailers that
 * forget it are common exactly where a subject ends with a question mark,
 * and mail clients (Thunderbird) read the word up to "?=" all the same.
 * ("?" "?=" below: C11 reads ??= as a trigraph.) */
static void test_q_word_with_question_mark(void)
{
	CHECK_STR(dec("=?utf-8?Q?Re:_Can_I_trust_you?" "?="), "Re: Can I trust you?");
	CHECK_INT(st.words, 1);
	CHECK_INT(st.bad_words, 0);
	CHECK_STR(dec("=?UTF-8?Q?a?b?= =?UTF-8?Q?c?" "?="), "a?bc?");
	CHECK_INT(st.words, 2);
	/* the first "?=" ends the word, as in every reader */
	CHECK_STR(dec("=?utf-8?q?a?=b?="), "ab?=");
	/* B text has no '?': still malformed, shown as written */
	CHECK_STR(dec("=?utf-8?B?5p?el?="), "=?utf-8?B?5p?el?=");
}

static void test_unknown_charset(void)
{
	CHECK_STR(dec("=?x-unknown?Q?Hello_=E9?="), "Hello " FFFD);
	CHECK_INT(st.unknown_charset, 1);
	CHECK_INT(st.replaced, 1);
	CHECK_INT(st.words, 1);
	/* charsets outside the allowlist are not handed to iconv */
	CHECK_STR(dec("=?IBM930?Q?=C1?="), FFFD);
	CHECK_INT(st.unknown_charset, 1);
	CHECK_INT(rfc2047_convert("no-such", "ab\xff", 3, out, sizeof out, NULL), -1);
	CHECK_STR(out, "ab" FFFD);
	/* a charset name longer than RFC2047_CHARSET_MAX is not a word */
	CHECK_STR(dec("=?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?Q?x?="),
		  "=?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?Q?x?=");
}

static void test_other_charsets(void)
{
	CHECK_STR(dec("=?GB2312?B?udjT2rvh0um1xM2o1qo=?="), "关于会议的通知");
	CHECK_STR(dec("=?Big5?B?t3zEs7Nxqr4=?="), "會議通知");
	CHECK_STR(dec("=?KOI8-R?B?8NLJ18XU?="), "Привет");
	CHECK_STR(dec("=?EUC-KR?B?yLjAxyC+yLO7?="), "회의 안내");
	CHECK_STR(dec("=?windows-1252?B?Q2Fm6SCANQ==?="), "Café €5");
	/* ISO-8859-1 labels carry windows-1252 in practice */
	CHECK_STR(conv("ISO-8859-1", "\x80 \xe9", 3), "€ é");
	/* 0x81 is undefined in windows-1252: Latin-1 then maps it */
	CHECK_STR(conv("iso-8859-1", "\x81", 1), "\xc2\x81");
	CHECK_INT(st.replaced, 0);
	CHECK_STR(conv("ISO-8859-2", "\xb1", 1), "ą");
	CHECK_STR(conv("windows-1251", "\xcf\xf0", 2), "Пр");
	CHECK_STR(conv("GBK", "\xc4\xe3\xba\xc3", 4), "你好");
	CHECK_STR(conv("GB18030", "\x81\x30\x81\x30", 4), "\xc2\x80");
	/* US-ASCII mislabelling UTF-8 is kept; stray 8-bit is replaced */
	CHECK_STR(conv("us-ascii", "caf\xc3\xa9", 5), "café");
	CHECK_STR(conv("us-ascii", "caf\xe9", 4), "caf" FFFD);
	CHECK_INT(st.replaced, 1);
}

static void test_raw_8bit(void)
{
	CHECK_STR(dec("caf\xc3\xa9"), "café");
	CHECK_INT(st.replaced, 0);
	CHECK_STR(dec("caf\xe9!"), "caf" FFFD "!");
	CHECK_INT(st.replaced, 1);
	/* raw Shift_JIS bytes: every byte that is not UTF-8 is replaced */
	CHECK_STR(dec("\x8c\x8f"), FFFD FFFD);
	CHECK_INT(st.replaced, 2);
	CHECK_STR(dec("x =?utf-8?q?=E6=97=A5?= \xff"), "x 日 " FFFD);
}

static void test_bounded_output(void)
{
	char small[8];
	size_t n;

	/* 日本語 is 9 bytes: never cut inside a character */
	n = rfc2047_decode("=?UTF-8?B?5pel5pys6Kqe?=", 24, small, 5, NULL);
	CHECK_INT(n, 3);
	CHECK_STR(small, "日");
	n = rfc2047_decode("=?UTF-8?B?5pel5pys6Kqe?=", 24, small, 7, NULL);
	CHECK_INT(n, 6);
	CHECK_STR(small, "日本");
	n = rfc2047_decode("日本語", 9, small, 1, NULL);
	CHECK_INT(n, 0);
	CHECK_STR(small, "");
	CHECK_INT(rfc2047_decode("abc", 3, NULL, 0, NULL), 0);
	/* a replacement that does not fit ends the output: a prefix, not a hole */
	n = utf8_sanitize("ab\xff" "c", 4, small, 4, NULL);
	CHECK_STR(small, "ab");
	CHECK_INT(n, 2);
	n = rfc2047_convert("ISO-2022-JP", "\x1b$B$3$s\x1b(B", 10, small, 4, NULL);
	CHECK_STR(small, "こ");
	CHECK_INT(n, 3);
	n = rfc2047_convert("Shift_JIS", "\x8c\x8f\x96\xbc", 4, small, 6, NULL);
	CHECK_STR(small, "件");
	CHECK_INT(n, 3);
	/* exactly fitting: 6 bytes + NUL */
	n = rfc2047_convert("Shift_JIS", "\x8c\x8f\x96\xbc", 4, small, 7, NULL);
	CHECK_STR(small, "件名");
}

static void test_utf8_valid(void)
{
	CHECK(utf8_valid("", 0));
	CHECK(utf8_valid("abc", 3));
	CHECK(utf8_valid("日本", 6));
	CHECK(utf8_valid("\xf0\x9f\x98\x80", 4));        /* U+1F600 */
	CHECK(!utf8_valid("\xc0\x80", 2));               /* overlong NUL */
	CHECK(!utf8_valid("\xe0\x80\xaf", 3));           /* overlong '/' */
	CHECK(!utf8_valid("\xed\xa0\x80", 3));           /* surrogate */
	CHECK(!utf8_valid("\xf4\x90\x80\x80", 4));       /* > U+10FFFF */
	CHECK(!utf8_valid("\xe6\x97", 2));               /* truncated */
	CHECK(!utf8_valid("\x80", 1));
}

static void test_utf8_sanitize(void)
{
	unsigned long rep = 0;
	char buf[32];

	utf8_sanitize("a\xc0\x80" "b\xed\xa0\x80", 7, buf, sizeof buf, &rep);
	CHECK_STR(buf, "a" FFFD FFFD "b" FFFD FFFD FFFD);
	CHECK_INT(rep, 5);
	rep = 0;
	utf8_sanitize("日本", 6, buf, sizeof buf, &rep);
	CHECK_STR(buf, "日本");
	CHECK_INT(rep, 0);
}

/* F5: glibc's CP949 consumes A2 E8 whole and then says EILSEQ. */
static void test_iconv_consumes_invalid_pair(void)
{
	char dst[64];
	size_t n = rfc2047_decode("=?euc-kr?q?=A2=E8?=", 19, dst, sizeof dst, NULL);
	CHECK(utf8_valid(dst, n));
	CHECK_STR(dst, "\xef\xbf\xbd");
	/* the same pair in ISO-2022-JP-2's KS C 5601 set: one U+FFFD per byte */
	n = rfc2047_decode("\x1b$(C\"h\x1b(B", 9, dst, sizeof dst, NULL);
	CHECK(utf8_valid(dst, n));
	CHECK_STR(dst, "\xef\xbf\xbd\xef\xbf\xbd");
}

/* F1: a U+FFFD that does not fit ends the output; the word after it too. */
static void test_cut_before_word_is_prefix(void)
{
	char dst[4];
	CHECK_INT(rfc2047_decode("T\xfd=?Big5?B?Tj?=", 15, dst, sizeof dst, NULL), 1);
	CHECK_STR(dst, "T");
}

/* F2: the table chosen must not depend on the room left. */
static void test_best_charset_independent_of_outsz(void)
{
	char full[64], part[3];
	const char *w = "=?windows-1252?Q?=8A=90?=";
	size_t fl = rfc2047_decode(w, strlen(w), full, sizeof full, NULL);
	size_t pl = rfc2047_decode(w, strlen(w), part, sizeof part, NULL);
	CHECK(pl <= fl && memcmp(part, full, pl) == 0);
}

/* F4: no NUL dst of NUL-free input (consumers read C strings). */
static void test_no_nul_out(void)
{
	char dst[64];
	size_t n = rfc2047_decode("=?utf-8?q?=00?=abc", 18, dst, sizeof dst, NULL);
	CHECK_INT(strlen(dst), n);
	n = rfc2047_decode("=?utf-8?b?AA==?=abc", 19, dst, sizeof dst, NULL);
	CHECK_INT(strlen(dst), n);
}


int main(void)
{
	RUN(test_plain_text);
	RUN(test_iso2022jp);
	RUN(test_japanese_charsets);
	RUN(test_utf8_b_and_q);
	RUN(test_adjacent_words);
	RUN(test_split_multibyte);
	RUN(test_split_base64_quantum);
	RUN(test_malformed_words);
	RUN(test_q_word_with_question_mark);
	RUN(test_unknown_charset);
	RUN(test_other_charsets);
	RUN(test_raw_8bit);
	RUN(test_bounded_output);
	RUN(test_utf8_valid);
	RUN(test_utf8_sanitize);
	rfc2047_cleanup();
	RUN(test_cut_before_word_is_prefix);
	RUN(test_best_charset_independent_of_outsz);
	RUN(test_no_nul_out);
	RUN(test_iconv_consumes_invalid_pair);
	return TEST_EXIT();
}
