/* test-subject.c — sensor/subject.c: normalisation, fingerprint, gibberish. */
#include <stdbool.h>
#include <xxhash.h>

#include "subject.h"
#include "testlib.h"

static char norm[SUBJECT_NORM_MAX + 1];
static bool reply;

static const char *N(const char *s)
{
	reply = false;
	subject_normalise(s, strlen(s), norm, sizeof norm, &reply);
	return norm;
}

static void test_prefixes(void)
{
	CHECK_STR(N("Re: Hello"), "hello");
	CHECK(reply);
	CHECK_STR(N("RE: RE: Can I trust you?"), "can i trust you?");
	CHECK(reply);
	CHECK_STR(N("re:hello"), "hello");
	CHECK_STR(N("Re : x"), "x");
	CHECK_STR(N("Fwd: FW: Fw: fwd:test"), "test");
	CHECK(!reply);
	CHECK_STR(N("FWD: Re: x"), "x");
	CHECK(reply);
	CHECK_STR(N("AW: WG: x"), "x");
	CHECK(reply);
	CHECK_STR(N("SV: VS: x"), "x");
	CHECK_STR(N("Re[2]: x"), "x");
	CHECK_STR(N("Re(3): x"), "x");
	CHECK_STR(N("RE^2: x"), "x");
	CHECK_STR(N("Re[2] : Re: x"), "x");
	CHECK_STR(N("返信：会議の件"), "会議の件");
	CHECK(reply);
	CHECK_STR(N("転送: 資料"), "資料");
	CHECK(!reply);
	CHECK_STR(N("Ｒｅ：打ち合わせ"), "打ち合わせ");
	CHECK(reply);
	CHECK_STR(N("ＲＥ： Ｒｅ：x"), "x");
	CHECK_STR(N("　Re:　x"), "x");
	/* not prefixes */
	CHECK_STR(N("Resume: x"), "resume: x");
	CHECK(!reply);
	CHECK_STR(N("Re x"), "re x");
	CHECK_STR(N("Re[x]: y"), "re[x]: y");
	CHECK_STR(N("Fwdx: y"), "fwdx: y");
	CHECK_STR(N("x Re: y"), "x re: y");
}

static void test_folding(void)
{
	CHECK_STR(N("HELLO World"), "hello world");
	CHECK_STR(N("ＡＢＣ ｄｅｆ"), "abc def");
	CHECK_STR(N("Invoice 12345 due 2024-01-02"), "invoice 0 due 0-0-0");
	CHECK_STR(N("第３回 会議 ０１２"), "第0回 会議 0");
	CHECK_STR(N("Q3 report"), "q0 report");
	CHECK_STR(N("  a \t b\xe3\x80\x80" "c \r\n d  "), "a b c d");
	CHECK_STR(N("日本語"), "日本語");
	CHECK_STR(N("Ünïcödé"), "Ünïcödé");   /* only ASCII and full-width fold */
	/* an invalid byte reads as U+FFFD: output stays valid UTF-8 */
	CHECK_STR(N("a\xff" "b"), "a\xef\xbf\xbd" "b");
}

static void test_empty(void)
{
	struct subject_facts f;

	CHECK_STR(N(""), "");
	CHECK_STR(N("Re:"), "");
	CHECK(reply);
	CHECK_STR(N("   "), "");
	subject_analyse("RE: ", 4, &f);
	CHECK(f.empty);
	CHECK(f.reply_prefix);
	CHECK(!f.gibberish);
	subject_analyse("x", 1, &f);
	CHECK(!f.empty);
}

static void test_bounded(void)
{
	char small[8];
	size_t n;

	/* 日本語 is 9 bytes: never cut inside a character */
	n = subject_normalise("日本語", 9, small, 8, NULL);
	CHECK_INT(n, 6);
	CHECK_STR(small, "日本");
	n = subject_normalise("abcdefghij", 10, small, 8, NULL);
	CHECK_INT(n, 7);
	CHECK_STR(small, "abcdefg");
	n = subject_normalise("ab cd", 5, small, 3, NULL);
	CHECK_STR(small, "ab");
	CHECK_INT(subject_normalise("abc", 3, small, 0, NULL), 0);
	/* a subject longer than SUBJECT_NORM_MAX hashes its first bytes */
	{
		static char big[3 * SUBJECT_NORM_MAX];
		memset(big, 'a', sizeof big);
		n = subject_normalise(big, sizeof big, norm, sizeof norm, NULL);
		CHECK_INT(n, SUBJECT_NORM_MAX);
	}
}

static void test_fingerprint(void)
{
	struct subject_facts a, b;
	char hex[17];

	/* one spam run, many spellings: one fingerprint */
	subject_analyse("Re: Invoice 123", 15, &a);
	subject_analyse("RE:  invoice 4567 ", 18, &b);
	CHECK(a.fingerprint == b.fingerprint);
	CHECK(a.reply_prefix && b.reply_prefix);
	subject_analyse("Ｒｅ：ＨＥＬＬＯ　ＤＥＡＲ", strlen("Ｒｅ：ＨＥＬＬＯ　ＤＥＡＲ"), &a);
	subject_analyse("hello dear", 10, &b);
	CHECK(a.fingerprint == b.fingerprint);
	subject_analyse("hello dear!", 11, &b);
	CHECK(a.fingerprint != b.fingerprint);
	/* the seed is part of the record format: every sensor agrees */
	subject_analyse("Re: Can I trust you?", 20, &a);
	CHECK(a.fingerprint ==
	      XXH3_64bits_withSeed("can i trust you?", 16, UINT64_C(0x72656c6179776174)));
	subject_hex(UINT64_C(0x00ab00cd00ef0012), hex);
	CHECK_STR(hex, "00ab00cd00ef0012");
	subject_hex(0, hex);
	CHECK_STR(hex, "0000000000000000");
}

/* Half-width katakana (U+FF61..U+FF9F) read as full-width, a voiced or
 * semi-voiced sound mark joined to the kana before it, as NFKC does
 * (expected strings: Python's unicodedata.normalize("NFKC", ...)): a spam
 * run that mixes widths per copy is one fingerprint. */
static void test_halfwidth_katakana(void)
{
	struct subject_facts a, b;

	CHECK_STR(N("ｾﾐﾅｰのご案内"), "セミナーのご案内");
	CHECK_STR(N("ｶﾞｲﾄﾞ"), "ガイド");
	CHECK_STR(N("ﾊﾟｽﾜｰﾄﾞ"), "パスワード");
	CHECK_STR(N("ﾎﾟｲﾝﾄ ｳﾞｧｲｵﾘﾝ ﾜﾞ ｦﾞ"), "ポイント ヴァイオリン ヷ ヺ");
	CHECK_STR(N("｢ｺﾝﾆﾁﾊ｣｡､･"), "「コンニチハ」。、・");
	CHECK_STR(N("ｯｬｭｮｧｨｩｪｫｰ"), "ッャュョァィゥェォー");
	/* a mark with nothing to join: the combining mark (U+3099), as NFKC */
	CHECK_STR(N("ｱﾞ"), "ア\u3099");
	CHECK_STR(N("ﾞx"), "\u3099x");
	/* a combining mark after a full-width kana composes too (NFC), and
	 * an invisible character between does not keep them apart */
	CHECK_STR(N("カ\u3099は\u309a"), "ガぱ");
	CHECK_STR(N("ｶ\u200bﾞ"), "ガ");
	CHECK_STR(N("ＡＢＣ ｶﾀｶﾅ"), "abc カタカナ");
	subject_analyse("【重要】ﾊﾟｽﾜｰﾄﾞの有効期限", strlen("【重要】ﾊﾟｽﾜｰﾄﾞの有効期限"), &a);
	subject_analyse("【重要】パスワードの有効期限", strlen("【重要】パスワードの有効期限"), &b);
	CHECK(a.fingerprint == b.fingerprint);
	subject_analyse("【重要】パｽﾜｰド の有効期限", strlen("【重要】パｽﾜｰド の有効期限"), &a);
	CHECK(a.fingerprint != b.fingerprint);   /* the space is real */
}

/* Invisible characters (Unicode Default_Ignorable_Code_Point: zero-width
 * space and joiners, soft hyphen, word joiner, BOM, bidi marks, variation
 * selectors, tags) are how spam varies a subject per message while every
 * copy looks the same in a mail client: they must not split a fingerprint,
 * hide a Re: prefix, or count as a script in the shape. */
static void test_invisible_characters(void)
{
	struct subject_facts a, b;
	static const char *const variants[] = {
		"Re: Can I trust you?\u200b",
		"Re: Can I t\u200brust you?",
		"Re: Can\u00ad I trust you?",
		"Re: Can I \u2060trust\u200c you\u200d?",
		"\ufeffRe: Can I trust you?",
		"R\u200be: Can I trust you?",
		"Re\u200e: Can I trust you?\ufe0f",
		"Re: Can I trust you?\U000e0041",
	};

	subject_analyse("Re: Can I trust you?", 20, &a);
	for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		subject_analyse(variants[i], strlen(variants[i]), &b);
		if (a.fingerprint != b.fingerprint || !b.reply_prefix || a.shape != b.shape)
			fprintf(stderr, "  variant %zu\n", i);
		CHECK(a.fingerprint == b.fingerprint);
		CHECK(b.reply_prefix);
		CHECK(a.shape == b.shape);
	}
	CHECK_STR(N("HELLO!\u200bDEAR!\u200bGOOD NEWS TO YOU,"), "hello!dear!good news to you,");
	CHECK_STR(N("Invoice 12\u200b34"), "invoice 0");
	CHECK_STR(N("\u200b\u200b"), "");
	/* visible characters around them are still told apart */
	subject_analyse("Re: Can I trust you!", 20, &b);
	CHECK(a.fingerprint != b.fingerprint);
}

/* Labelled subjects: the flood strings of the 2012 contact-form incidents
 * and their kind, and ordinary subjects in the languages the sensor sees. */
static const struct {
	const char *s;
	bool gibberish;
} labelled[] = {
	/* gibberish: random symbols and letters, 10-20 or 100+ characters */
	{ "#$%&'kdf!!?@@ZQ", true },
	{ "xK9#pq!!zz@@&&ww", true },
	{ "%$#@!*&^ajdk;lqwe", true },
	{ "ﾃ;&%ｱ#kdlsj@@", true },
	{ "あ#$%kd!!q&&", true },
	{ "!@#$%^&*()_+{}|:\"<>?~`-=[]\\;',./!@#$%^&*()_+{}|:\"<>?~`-=[]\\;',./"
	  "!@#$%^&*()_+{}|:\"<>?~`-=[]\\;',./!@#$", true },
	{ "kdjf;alskdjf;lkajsdf;lkjasdf;lkjasd;flkjasd;lfkjasd;lkfjas;ldkfjas;"
	  "ldkfjas;ldkfj;alskdjf;laksjdf;lkasj", true },
	{ "q@#rT%^yU&*iO(pA)sD", true },
	{ "zXcV!@#bNm$%^", true },
	{ "aSdF##gHjK!!lL", true },
	{ "wE$r^T&y*U(i", true },
	{ "!Q@W#E$R%T^Y", true },
	{ "Pq#3$zL!x@9&", true },
	{ "jfK#@!lqpZ&*", true },
	{ "<>?:{}|~`_+=-)(*&^%", true },
	{ "ＫｄＪ＃＄％ｑＷｚ", true },
	{ "]]]kdk[[[&&^%@!", true },
	{ "ふ%&jK#lQ!pあ", true },
	{ "xjQ$kdL&mzP", true },
	{ "Re: %$#@!*&^ajdk;lqwe", true },
	{ "RkZq'Wm!bJx)", true },
	{ "vBnM,./;'[]kLj", true },
	/* ordinary: English */
	{ "Quarterly report for Q3", false },
	{ "Re: meeting tomorrow at 10", false },
	{ "HELLO!DEAR!GOOD NEWS TO YOU,", false },
	{ "Your invoice #12345", false },
	{ "Weekly digest: 5 new posts", false },
	{ "Re: Can I trust you?", false },
	{ "!!! URGENT !!!", false },
	{ "Save 50% on all items! ($9.99 only, today)", false },
	{ "Price: $1,234.56 (+5%)", false },
	{ "[JIRA] (PROJ-1234) Fix NPE in FooBar::baz()", false },
	{ "Re: [PATCH 1/2] units: Add the HZ_PER_KHZ macro", false },
	{ "[RFC v4] copy_file_range.2: Update cross-filesystem support for 5.12", false },
	{ "Order #A1B2-C3D4 confirmed", false },
	{ "Q&A session - AT&T and R&D", false },
	{ "PowerPoint slides for McDonald's", false },
	{ "New login from 192.168.0.1 at https://acme.example/login?x=1&y=2", false },
	{ "Contact me at john.doe@example.com", false },
	{ "FW: IMG_20240101_123456.jpg", false },
	{ "Delivery Status Notification (Failure)", false },
	{ "Cron <root@host> /usr/local/bin/backup.sh", false },
	{ "Ref: 7G5KQ2X9", false },
	{ "????", false },
	{ "Thanks (^_^)", false },
	{ "ok", false },
	/* ordinary: Japanese, Chinese, Korean, others */
	{ "【重要】システムメンテナンスのお知らせ", false },
	{ "Re: 会議資料の件", false },
	{ "Ｒｅ：打ち合わせの件", false },
	{ "［重要］パスワード変更のお願い", false },
	{ "第3回 ＡＢＣセミナー（東京）のお知らせ", false },
	{ "ｼｽﾃﾑﾒﾝﾃﾅﾝｽのお知らせ", false },
	{ "【楽天市場】注文内容ご確認（自動配信メール）", false },
	{ "Rakuten: ご注文ありがとうございます", false },
	{ "お疲れ様です(^_^;)", false },
	{ "关于会议的通知", false },
	{ "【通知】关于2024年春节放假安排", false },
	{ "會議通知：下週二上午十點", false },
	{ "회의 일정 안내", false },
	{ "[공지] 서버 점검 안내", false },
	{ "Привет! Как дела?", false },
	{ "Re: Ihre Bestellung bei Müller GmbH", false },
	{ "Café à Paris: réservation confirmée", false },
	{ "æ–‡å—åŒ–ã‘", false },
	{ "🔥 Big sale 50% off!!! 🎁", false },
};

static void test_gibberish_table(void)
{
	size_t n = sizeof labelled / sizeof labelled[0];
	unsigned gib = 0, wrong = 0;

	for (size_t i = 0; i < n; i++) {
		bool got = subject_is_gibberish(labelled[i].s, strlen(labelled[i].s));
		struct subject_facts f;

		subject_analyse(labelled[i].s, strlen(labelled[i].s), &f);
		CHECK(f.gibberish == got);
		gib += labelled[i].gibberish;
		if (got != labelled[i].gibberish) {
			fprintf(stderr, "  misclassified: \"%s\" (expected %s)\n", labelled[i].s,
				labelled[i].gibberish ? "gibberish" : "ordinary");
			wrong++;
		}
	}
	CHECK(n >= 40);
	CHECK(gib >= 15);
	CHECK(n - gib >= 25);
	CHECK_INT(wrong, 0);
}

/* xorshift64: a flood tool's PRNG, seeded so the test is deterministic. */
static uint64_t rng_state;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

/* Random printable ASCII symbols and letters, length in [min, max]. */
static size_t flood_subject(char *buf, unsigned min, unsigned max)
{
	static const char alphabet[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
	size_t n = min + rng() % (max - min + 1);

	for (size_t i = 0; i < n; i++)
		buf[i] = alphabet[rng() % (sizeof alphabet - 1)];
	buf[n] = '\0';
	return n;
}

static void test_flood_shapes(void)
{
	uint64_t shapes[8];
	unsigned nshapes = 0, flagged = 0, fingerprints_same = 0;
	uint64_t last_fp = 0;
	char buf[128];

	rng_state = 20120628; /* the Yamagata flood */
	for (int i = 0; i < 200; i++) {
		size_t n = i < 100 ? flood_subject(buf, 10, 20) : flood_subject(buf, 100, 120);
		struct subject_facts f;
		bool seen = false;

		subject_analyse(buf, n, &f);
		if (f.gibberish)
			flagged++;
		else
			fprintf(stderr, "  not flagged: \"%s\"\n", buf);
		fingerprints_same += i > 0 && f.fingerprint == last_fp;
		last_fp = f.fingerprint;
		for (unsigned k = 0; k < nshapes; k++)
			seen = seen || shapes[k] == f.shape;
		if (!seen && nshapes < 8)
			shapes[nshapes++] = f.shape;
	}
	CHECK_INT(flagged, 200);
	CHECK(nshapes <= 3);
	CHECK_INT(nshapes, 2);             /* one per length range */
	CHECK_INT(fingerprints_same, 0);   /* the fingerprint alone does not group them */
}

static void test_shape(void)
{
	struct subject_facts a, b, c, d;

	subject_analyse("#$%&'kdf!!?@@ZQ", 15, &a);
	subject_analyse("xK9#pq!!zz@@&&ww", 16, &b);
	CHECK(a.shape == b.shape);
	/* hiragana in the soup is another shape, a 100+ string another again */
	subject_analyse("あ#$%kd!!q&&kd", strlen("あ#$%kd!!q&&kd"), &c);
	CHECK(c.shape != a.shape);
	subject_analyse(labelled[5].s, strlen(labelled[5].s), &d);
	CHECK(d.shape != a.shape);
	/* deterministic */
	subject_analyse("#$%&'kdf!!?@@ZQ", 15, &b);
	CHECK(a.shape == b.shape);
	CHECK(a.fingerprint == b.fingerprint);
}

int main(void)
{
	RUN(test_prefixes);
	RUN(test_folding);
	RUN(test_empty);
	RUN(test_bounded);
	RUN(test_fingerprint);
	RUN(test_invisible_characters);
	RUN(test_halfwidth_katakana);
	RUN(test_gibberish_table);
	RUN(test_flood_shapes);
	RUN(test_shape);
	return TEST_EXIT();
}
