/* subject.c — subject normalisation, fingerprint, gibberish score, shape.
 *
 * Everything works on Unicode code points decoded from the UTF-8 subject
 * (an invalid byte reads as U+FFFD), with full-width ASCII (U+FF01..U+FF5E)
 * read as ASCII, so "Ｒｅ：" is "Re:" and "＃＄％" is "#$%", and invisible
 * (default-ignorable) code points not read at all. The normalised subject
 * (the fingerprint) also reads half-width katakana as full-width; the
 * gibberish score and the shape count both widths as kana already. */
#include "subject.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "utf8.h"

/* Every sensor must compute the same fingerprint: the seed is fixed
 * ("relaywat" in ASCII) and part of the record format. */
#define SUBJECT_SEED UINT64_C(0x72656c6179776174)

/* Code points of a subject the gibberish score and shape look at; contact
 * form floods are 10-20 and 100-120 characters long. */
#define SUBJECT_SCAN_MAX 512

/* ---- code points ------------------------------------------------------- */

static size_t u8_put(uint32_t cp, char b[4])
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | cp >> 18);
	b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Full-width ASCII to ASCII; the case is kept. */
static uint32_t width_fold(uint32_t cp)
{
	return cp >= 0xff01 && cp <= 0xff5e ? cp - 0xfee0 : cp;
}

static uint32_t case_fold(uint32_t cp)
{
	cp = width_fold(cp);
	return cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp;
}

/* Half-width katakana and CJK punctuation (U+FF61..U+FF9F) as full-width:
 * their <narrow> decompositions (UnicodeData.txt), which NFKC applies. The
 * sound marks U+FF9E/U+FF9F become the combining U+3099/U+309A, which
 * kana_compose() then joins to the kana before them. */
static const uint16_t halfwidth_kana[0xff9f - 0xff61 + 1] = {
	0x3002, 0x300c, 0x300d, 0x3001, 0x30fb, 0x30f2,                 /* ｡｢｣､･ｦ */
	0x30a1, 0x30a3, 0x30a5, 0x30a7, 0x30a9, 0x30e3, 0x30e5, 0x30e7, /* ｧｨｩｪｫｬｭｮ */
	0x30c3, 0x30fc,                                                 /* ｯｰ */
	0x30a2, 0x30a4, 0x30a6, 0x30a8, 0x30aa,                         /* ｱｲｳｴｵ */
	0x30ab, 0x30ad, 0x30af, 0x30b1, 0x30b3,                         /* ｶｷｸｹｺ */
	0x30b5, 0x30b7, 0x30b9, 0x30bb, 0x30bd,                         /* ｻｼｽｾｿ */
	0x30bf, 0x30c1, 0x30c4, 0x30c6, 0x30c8,                         /* ﾀﾁﾂﾃﾄ */
	0x30ca, 0x30cb, 0x30cc, 0x30cd, 0x30ce,                         /* ﾅﾆﾇﾈﾉ */
	0x30cf, 0x30d2, 0x30d5, 0x30d8, 0x30db,                         /* ﾊﾋﾌﾍﾎ */
	0x30de, 0x30df, 0x30e0, 0x30e1, 0x30e2,                         /* ﾏﾐﾑﾒﾓ */
	0x30e4, 0x30e6, 0x30e8,                                         /* ﾔﾕﾖ */
	0x30e9, 0x30ea, 0x30eb, 0x30ec, 0x30ed,                         /* ﾗﾘﾙﾚﾛ */
	0x30ef, 0x30f3, 0x3099, 0x309a,                                 /* ﾜﾝﾞﾟ */
};

static uint32_t kana_fold(uint32_t cp)
{
	return cp >= 0xff61 && cp <= 0xff9f ? halfwidth_kana[cp - 0xff61] : cp;
}

/* The kana that `base` followed by the combining voiced (U+3099) or
 * semi-voiced (U+309A) sound mark composes to (Unicode canonical
 * composition, as NFC/NFKC: カ+゙ = ガ, ハ+゚ = パ); 0 if none. Hiragana and
 * katakana compose alike, at the same offsets. */
static uint32_t kana_compose(uint32_t base, uint32_t mark)
{
	/* hiragana bases of a voiced kana one code point after them */
	static const uint16_t voiced[] = {
		0x304b, 0x304d, 0x304f, 0x3051, 0x3053, 0x3055, 0x3057, 0x3059, 0x305b, 0x305d,
		0x305f, 0x3061, 0x3064, 0x3066, 0x3068, 0x306f, 0x3072, 0x3075, 0x3078, 0x307b,
	};
	uint32_t h = base >= 0x30a1 && base <= 0x30f6 ? base - 0x60 : base; /* as hiragana */
	uint32_t kata = h != base ? 0x60 : 0;

	if (mark == 0x309a)   /* semi-voiced: the h row only (ぱ, パ) */
		return (h >= 0x306f && h <= 0x307b && (h - 0x306f) % 3 == 0) ? base + 2 : 0;
	if (mark != 0x3099)
		return 0;
	for (size_t i = 0; i < sizeof voiced / sizeof voiced[0]; i++)
		if (h == voiced[i])
			return base + 1;
	if (h == 0x3046)                       /* う ウ: ゔ ヴ */
		return 0x3094 + kata;
	if (base == 0x309d || base == 0x30fd)  /* ゝ ヽ: ゞ ヾ */
		return base + 1;
	if (base >= 0x30ef && base <= 0x30f2)  /* ワ ヰ ヱ ヲ: ヷ ヸ ヹ ヺ */
		return base + 8;
	return 0;
}

static bool is_ws(uint32_t cp)
{
	return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0xa0 || cp == 0x3000 ||
	       (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f || cp == 0x205f;
}

/* Unicode Default_Ignorable_Code_Point (DerivedCoreProperties.txt): soft
 * hyphen, zero-width space and joiners, word joiner, bidi marks and
 * isolates, BOM, variation selectors, Hangul fillers, tags. A mail client
 * shows nothing for them, so spam sprinkles them to make each copy of one
 * subject a different string: every function here reads past them. */
static bool is_ignorable(uint32_t cp)
{
	if (cp < 0xad)
		return false;
	return cp == 0xad || cp == 0x34f || cp == 0x61c || (cp >= 0x115f && cp <= 0x1160) ||
	       (cp >= 0x17b4 && cp <= 0x17b5) || (cp >= 0x180b && cp <= 0x180f) ||
	       (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2060 && cp <= 0x206f) || cp == 0x3164 ||
	       (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff || cp == 0xffa0 ||
	       (cp >= 0xfff0 && cp <= 0xfff8) || (cp >= 0x1bca0 && cp <= 0x1bca3) ||
	       (cp >= 0x1d173 && cp <= 0x1d17a) || (cp >= 0xe0000 && cp <= 0xe0fff);
}

/* ---- reply / forward prefixes ------------------------------------------ */

struct prefix {
	const char *word;   /* case-folded UTF-8 */
	bool reply;
};

/* Re: and its translations (German AW, Nordic SV, Finnish VS, Dutch Antw,
 * Japanese 返信, Chinese 回复/答复/回覆, Korean 회신) and the forward
 * markers (Fwd, Fw, German WG, French TR, 転送, 转发, 轉寄, 전달). */
static const struct prefix prefixes[] = {
	{ "re", true }, { "aw", true }, { "sv", true }, { "vs", true },
	{ "antw", true }, { "返信", true }, { "回复", true }, { "答复", true },
	{ "回覆", true }, { "회신", true },
	{ "fwd", false }, { "fw", false }, { "wg", false }, { "tr", false },
	{ "転送", false }, { "转发", false }, { "轉寄", false }, { "전달", false },
};

static size_t skip_ignorable(const char *s, size_t len, size_t i)
{
	while (i < len) {
		size_t j = i;
		if (!is_ignorable(utf8_next(s, len, &j)))
			break;
		i = j;
	}
	return i;
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
	while (i < len) {
		size_t j = i;
		uint32_t cp = utf8_next(s, len, &j);
		if (!is_ws(cp) && !is_ignorable(cp))
			break;
		i = j;
	}
	return i;
}

/* Match the folded word at s[i]; returns the position after it or 0. */
static size_t match_word(const char *s, size_t len, size_t i, const char *word)
{
	size_t w = 0, wl = strlen(word);

	while (w < wl) {
		uint32_t a, b;
		if (i >= len)
			return 0;
		a = case_fold(utf8_next(s, len, &i));
		if (is_ignorable(a))
			continue;
		b = utf8_next(word, wl, &w);
		if (a != b)
			return 0;
	}
	return i;
}

/* Optional reply counter: "[2]", "(2)", "^2" (Re[2]:, Re(2):, RE^2:). */
static size_t skip_counter(const char *s, size_t len, size_t i)
{
	size_t j = i, digits = 0;
	uint32_t open, close = 0, cp;

	if (i >= len)
		return i;
	open = case_fold(utf8_next(s, len, &j));
	if (open == '[')
		close = ']';
	else if (open == '(')
		close = ')';
	else if (open != '^')
		return i;
	while (j < len) {
		size_t k = j;
		cp = case_fold(utf8_next(s, len, &k));
		if (cp < '0' || cp > '9')
			break;
		digits++;
		j = k;
	}
	if (digits == 0)
		return i;
	if (close) {
		size_t k = j;
		if (j >= len || case_fold(utf8_next(s, len, &k)) != close)
			return i;
		j = k;
	}
	return j;
}

/* One prefix at s[i] ("Re:", "Ｒｅ：", "Re[2] :", "返信："); returns the
 * position after its colon, or 0. */
static size_t match_prefix(const char *s, size_t len, size_t i, bool *reply)
{
	for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++) {
		size_t j = match_word(s, len, i, prefixes[p].word);
		if (j == 0)
			continue;
		j = skip_ws(s, len, skip_counter(s, len, j));
		if (j < len) {
			size_t k = j;
			if (case_fold(utf8_next(s, len, &k)) == ':') {
				if (prefixes[p].reply)
					*reply = true;
				return k;
			}
		}
	}
	return 0;
}

/* Offset of the subject after every leading reply/forward prefix. */
static size_t strip_prefixes(const char *s, size_t len, bool *reply)
{
	size_t i = skip_ws(s, len, 0), j;

	while ((j = match_prefix(s, len, i, reply)) != 0)
		i = skip_ws(s, len, j);
	return i;
}

/* ---- normalisation ----------------------------------------------------- */

size_t subject_normalise(const char *utf8, size_t len, char *out, size_t outsz,
			 bool *reply_prefix)
{
	bool reply = false, space = false, digit = false;
	size_t o = 0, i;

	if (outsz == 0)
		return 0;
	i = strip_prefixes(utf8, len, &reply);
	while (i < len) {
		uint32_t cp = kana_fold(case_fold(utf8_next(utf8, len, &i)));
		char b[5];
		size_t n;

		if (is_ignorable(cp))
			continue;   /* "12<ZWSP>34" is one number, "t<ZWSP>rust" one word */
		if (cp >= 0x3041 && cp <= 0x30fd) {
			/* a sound mark after a kana (ｶﾞ, カ U+3099) joins it: one
			 * character, as in NFKC, invisible characters between or not */
			size_t j = skip_ignorable(utf8, len, i), k = j;
			uint32_t c = j < len ? kana_compose(cp, kana_fold(utf8_next(utf8, len, &k))) : 0;
			if (c) {
				cp = c;
				i = k;
			}
		}
		if (is_ws(cp)) {
			space = o > 0;
			digit = false;
			continue;
		}
		if (cp >= '0' && cp <= '9') {
			if (digit)
				continue;
			cp = '0';
		}
		digit = cp == '0';
		b[0] = ' ';
		n = space + u8_put(cp, b + space);
		if (n > outsz - 1 - o)
			break;   /* never cut a sequence */
		memcpy(out + o, b, n);
		o += n;
		space = false;
	}
	out[o] = '\0';
	if (reply_prefix)
		*reply_prefix = reply;
	return o;
}

/* ---- character classes ------------------------------------------------- */

enum cclass {
	CC_SPACE,
	CC_LOWER,     /* ASCII a-z */
	CC_UPPER,     /* ASCII A-Z */
	CC_DIGIT,
	CC_PROSE,     /* punctuation of ordinary writing: . , ! ? : ; ' " ( ) [ ] < > - */
	CC_RARE,      /* other ASCII symbols: # $ % & * + / = @ \ ^ _ ` { | } ~ */
	CC_KANA,      /* hiragana, katakana (full and half width) */
	CC_HAN,
	CC_HANGUL,
	CC_OLETTER,   /* letters of other alphabets (Latin-1, Greek, Cyrillic...) */
	CC_OTHER,     /* CJK punctuation, emoji, U+FFFD, controls... */
};

static enum cclass cp_class(uint32_t cp)
{
	if (is_ws(cp))
		return CC_SPACE;
	if (cp >= 'a' && cp <= 'z')
		return CC_LOWER;
	if (cp >= 'A' && cp <= 'Z')
		return CC_UPPER;
	if (cp >= '0' && cp <= '9')
		return CC_DIGIT;
	if (cp < 0x80)
		return cp < 0x21 || cp == 0x7f ? CC_OTHER
		       : strchr(".,!?:;'\"()[]<>-", (int)cp) ? CC_PROSE : CC_RARE;
	if ((cp >= 0x3041 && cp <= 0x30ff) || (cp >= 0x31f0 && cp <= 0x31ff) ||
	    (cp >= 0xff66 && cp <= 0xff9f))
		return CC_KANA;
	if ((cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
	    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x20000 && cp <= 0x3ffff) ||
	    cp == 0x3005)
		return CC_HAN;
	if ((cp >= 0xac00 && cp <= 0xd7af) || (cp >= 0x1100 && cp <= 0x11ff) ||
	    (cp >= 0x3131 && cp <= 0x318e))
		return CC_HANGUL;
	if ((cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7) ||
	    (cp >= 0x370 && cp <= 0x52f) || (cp >= 0x590 && cp <= 0x6ff) ||
	    (cp >= 0x900 && cp <= 0xe7f))
		return CC_OLETTER;
	return CC_OTHER;
}

static bool cc_letter(enum cclass c)
{
	return c == CC_LOWER || c == CC_UPPER;
}

static bool cc_symbol(enum cclass c)
{
	return c == CC_PROSE || c == CC_RARE;
}

static bool cc_cjk(enum cclass c)
{
	return c == CC_KANA || c == CC_HAN || c == CC_HANGUL;
}

/* The subject as classified code points (width-folded, case kept). */
struct scan {
	uint32_t cp[SUBJECT_SCAN_MAX];
	enum cclass cc[SUBJECT_SCAN_MAX];
	size_t n;
};

static void scan_fill(struct scan *sc, const char *s, size_t len)
{
	size_t i = 0;

	sc->n = 0;
	while (i < len && sc->n < SUBJECT_SCAN_MAX) {
		uint32_t cp = width_fold(utf8_next(s, len, &i));
		if (is_ignorable(cp))
			continue;
		sc->cp[sc->n] = cp;
		sc->cc[sc->n] = cp_class(cp);
		sc->n++;
	}
}

/* ---- gibberish score ---------------------------------------------------
 *
 * What the contact-form floods look like (shared/seeds/000_*): "random
 * symbols and alphabets" that "did not make any understandable words",
 * 10-20 characters (sometimes with a hiragana) or over 100. What ordinary
 * subjects look like in any language: words, with punctuation where writing
 * puts it. The score counts points of evidence for each, per whitespace-
 * separated token, on the subject after its Re:/Fwd: prefixes:
 *
 * readable  +len  an ASCII letter run of 3+ that reads as a word: a case
 *                 pattern people write (lower, UPPER, Capitalised, up to two
 *                 camel humps as in PowerPoint, iPhone), a vowel (a e i o u),
 *                 and only consonant pairs that words use (consonant_pairs);
 *           +len  a run of 2+ kana/Han/Hangul (CJK needs no spaces), or of
 *                 3+ letters of another alphabet (Cyrillic, accented Latin).
 * junk      +len  an ASCII letter run that fails that test ("xK", "kdlsj",
 *                 "Dqyeh"): random case flips and consonant clusters;
 *           +1    per ASCII symbol (repeats collapsed: "!!!" is one), +2
 *                 more when glued between letters or digits ("a#b"), +1
 *                 more in a soup of 3+ different symbols, 2+ of them not
 *                 prose punctuation ("%$#@"); nothing where writing puts a
 *                 symbol: "(" opening and ".,!?)" closing a word, a lone
 *                 "!!!" or ":-)", 12:30 and 1,000, #1 $5 5%, e-mail, foo_bar,
 *                 don't, example.com, Q&A, and/or;
 *           +1    a lone kana/Han glued to symbols ("あ#$%");
 *           +2    per lower-to-upper case flip in a token after the first
 *                 (random letters flip every fourth letter, words once);
 *           =len  at least, for a token of 8+ characters that is a soup of
 *                 3+ different non-prose symbols, or 3+ pieces glued by
 *                 symbols with under half of its letters in words (and under
 *                 a quarter digits: file names, dates and ids are fine).
 * neutral         URLs, e-mail addresses, kaomoji "(^_^)", digits, 1- and
 *                 2-letter runs, acronyms up to 5 capitals, "pdf", "pls".
 *
 * Gibberish if junk >= GIB_JUNK_MIN and junk >= 1.2 x readable: enough
 * randomness, and more of it than words. Measured with 200,000 strings per
 * kind drawn uniformly from the 52 letters and 32 ASCII symbols: 0.10% of
 * the 10-20 character ones and none of the 100-120 ones are missed (0.8%
 * with digits in the mix, 0.7% with a hiragana in one char of ten: a flood
 * still groups). Of 170 ordinary subjects in English, Japanese, Chinese,
 * Korean, German, French and Russian (newsletters, tickets, file names,
 * URLs, kaomoji) those scored gibberish are symbol-only or random in fact:
 * "x=1, y=2", a bare "C++/C#", a censored "!@#$ you", a bitcoin address.
 * Mojibake ("????", U+FFFD, Latin-1 soup) scores nothing: a charset problem,
 * not a flood. */
#define GIB_JUNK_MIN 5
#define GIB_RATIO_NUM 6   /* junk >= 1.2 x readable */
#define GIB_RATIO_DEN 5
#define GIB_TOKEN_MIN 8

enum run_kind { RUN_NEUTRAL, RUN_READABLE, RUN_JUNK };

static bool is_vowel(uint32_t c)
{
	c |= 0x20;
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

static bool lo(uint32_t c)
{
	return c >= 'a' && c <= 'z';
}

static bool up(uint32_t c)
{
	return c >= 'A' && c <= 'Z';
}

/* A case pattern people write: lower, UPPER, Capitalised, at most two camel
 * humps, a plural "s" after capitals ("PDFs"). */
static bool case_plausible(const uint32_t *w, size_t n)
{
	unsigned humps = 0;

	for (size_t k = 1; k < n; k++) {
		if (lo(w[k - 1]) && up(w[k])) {
			/* a hump is a capital and 2+ lower case (PowerPoint);
			 * a one-letter head only as in iPhone, eBay */
			if (++humps > 2 || k + 2 >= n || !lo(w[k + 1]) || !lo(w[k + 2]))
				return false;
			if (k == 1 && w[0] != 'i' && w[0] != 'e')
				return false;
		}
		if (k >= 2 && lo(w[k]) && up(w[k - 1]) && up(w[k - 2]) &&
		    !(k == n - 1 && w[k] == 's'))
			return false;
	}
	return true;
}

/* Consonant pairs that English, German, French and Hepburn romaji words
 * use, inside syllables (st, ch, ng, ts) and at common compound joints
 * (out-put, up-date, sub-mit), by first letter. A pair with a vowel (y
 * included here) is always fine, except that q wants u. 178 of the 400
 * consonant pairs are listed: a third of the adjacent pairs of random
 * letters fail, 0.25% of the words of the GPL/BSD/Apache license texts do
 * (acronyms such as "gpl", "html", and a few compounds). */
static const char *const consonant_pairs[26] = {
	['b' - 'a'] = "bdjlmprst",
	['c' - 'a'] = "chklqrst",
	['d' - 'a'] = "dfgjlmnrstvw",
	['f' - 'a'] = "flrst",
	['g' - 'a'] = "fghlmnrst",
	['h' - 'a'] = "dflmnrstw",
	['k' - 'a'] = "bhklnrstw",
	['l' - 'a'] = "bcdfgklmnprstvwz",
	['m' - 'a'] = "bflmnpsv",
	['n' - 'a'] = "bcdfghjklmnpqrstvwxz",
	['p' - 'a'] = "dfhlmnprst",
	['r' - 'a'] = "bcdfghjklmnprstvwz",
	['s' - 'a'] = "bcdfghklmnpqrstw",
	['t' - 'a'] = "bcfhlmnprstwz",
	['w' - 'a'] = "dfhklmnrst",
	['x' - 'a'] = "chpt",
	['z' - 'a'] = "wz",
};

static bool pair_ok(uint32_t a, uint32_t b)
{
	const char *next;

	a |= 0x20;
	b |= 0x20;
	if (a == 'q')
		return b == 'u';
	if (is_vowel(a) || is_vowel(b))
		return true;
	next = consonant_pairs[a - 'a'];
	return next && strchr(next, (int)b);
}

static enum run_kind letter_run(const uint32_t *w, size_t n)
{
	size_t uppers = 0, vowels = 0;
	bool pairs = true;

	if (n == 1)
		return RUN_NEUTRAL;
	if (!case_plausible(w, n))
		return RUN_JUNK;
	if (n == 2)
		return RUN_NEUTRAL;
	for (size_t k = 0; k < n; k++) {
		uppers += up(w[k]);
		vowels += is_vowel(w[k]) && (w[k] | 0x20) != 'y';
		/* a camel hump joins two words: no pair across it */
		if (k > 0 && !(lo(w[k - 1]) && up(w[k]) && w[k - 1] != 'q') &&
		    !pair_ok(w[k - 1], w[k]))
			pairs = false;
	}
	if (vowels && pairs)
		return RUN_READABLE;
	if (uppers == n)                 /* acronyms: PDF, SMTP, NTT */
		return n <= 5 ? RUN_NEUTRAL : RUN_JUNK;
	return n == 3 && !vowels ? RUN_NEUTRAL : RUN_JUNK;   /* pdf, pls */
}

static bool cc_alnum(enum cclass c)
{
	return cc_letter(c) || c == CC_DIGIT;
}

/* The symbol at i sits between two letter/digit runs, one of them 2+ long
 * (e-mail, don't, v2.1, example.com; not the "Z-L" of random strings). */
static bool joins_words(const struct scan *sc, size_t i)
{
	size_t l = i, r = i + 1;

	while (l > 0 && cc_alnum(sc->cc[l - 1]))
		l--;
	while (r < sc->n && cc_alnum(sc->cc[r]))
		r++;
	return i - l >= 1 && r - i - 1 >= 1 && (i - l >= 2 || r - i - 1 >= 2);
}

#define PROSE_CHARS ".,!?:;'\"()[]<>-"
#define OPENERS "([<\"'-"
#define CLOSERS ")]>\"'.,!?:;-"

/* Outside a word: space, the ends, or CJK and other non-ASCII text (which
 * needs no spaces around punctuation). */
static bool word_edge(enum cclass c)
{
	return c == CC_SPACE || c == CC_OTHER || c == CC_KANA || c == CC_HAN ||
	       c == CC_HANGUL;
}

static bool all_of(const struct scan *sc, size_t i, size_t j, const char *set)
{
	for (size_t k = i; k < j; k++)
		if (sc->cp[k] > 0x7f || !strchr(set, (int)sc->cp[k]))
			return false;
	return true;
}

/* Symbols that writing puts there (see the comment above). */
static bool symbol_benign(const struct scan *sc, size_t i, size_t j)
{
	enum cclass prev = i > 0 ? sc->cc[i - 1] : CC_SPACE;
	enum cclass next = j < sc->n ? sc->cc[j] : CC_SPACE;
	uint32_t c = sc->cp[i];
	bool start = word_edge(prev), end = word_edge(next);

	/* "!!!" alone, "(" opening a word, "...!?" closing one */
	if ((start && end && all_of(sc, i, j, PROSE_CHARS)) ||
	    (start && all_of(sc, i, j, OPENERS)) || (end && all_of(sc, i, j, CLOSERS)))
		return true;
	if (j - i != 1)
		return false;
	if (prev == CC_DIGIT && next == CC_DIGIT)
		return true;
	if ((c == '#' || c == '$') && next == CC_DIGIT)
		return true;
	if (c == '%' && prev == CC_DIGIT)
		return true;
	if (c == '-' || c == '_')
		return joins_words(sc, i);          /* e-mail, foo_bar */
	if (c == '&' || c == '/')
		return cc_letter(prev) && cc_letter(next);   /* Q&A, and/or */
	/* don't, example.com, v2.1: what follows is lower case or digits */
	return (c == '\'' || c == '.') && joins_words(sc, i) &&
	       (sc->cc[i + 1] == CC_LOWER || sc->cc[i + 1] == CC_DIGIT);
}

/* Junk points of the symbol cluster [i, j). */
static int symbol_cluster(const struct scan *sc, size_t i, size_t j)
{
	enum cclass prev = i > 0 ? sc->cc[i - 1] : CC_SPACE;
	enum cclass next = j < sc->n ? sc->cc[j] : CC_SPACE;
	int collapsed = 0, distinct = 0, rare = 0, points;

	if (symbol_benign(sc, i, j))
		return 0;
	for (size_t k = i; k < j; k++) {
		bool seen = false;
		if (k == i || sc->cp[k] != sc->cp[k - 1])
			collapsed++;
		for (size_t m = i; m < k && !seen; m++)
			seen = sc->cp[m] == sc->cp[k];
		if (!seen) {
			distinct++;
			rare += sc->cc[k] == CC_RARE;
		}
	}
	points = collapsed;
	if (prev != CC_SPACE && next != CC_SPACE)
		points += 2 * collapsed;  /* glued inside a token */
	if (distinct >= 3 && rare >= 2)
		points += collapsed;      /* soup */
	return points;
}

static bool email_local(uint32_t c)
{
	return cc_letter(cp_class(c)) || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == '%' || c == '+' || c == '-';
}

static bool email_domain(uint32_t c)
{
	return cc_letter(cp_class(c)) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* local@domain.tld, possibly wrapped in prose punctuation ("<a@b.jp>,"). */
static bool token_is_email(const struct scan *sc, size_t i, size_t j)
{
	size_t at, dot = 0;

	while (i < j && sc->cc[i] == CC_PROSE)
		i++;
	while (j > i && sc->cc[j - 1] == CC_PROSE)
		j--;
	for (at = i; at < j && email_local(sc->cp[at]); at++)
		;
	if (at == i || at >= j || sc->cp[at] != '@')
		return false;
	for (size_t k = at + 1; k < j; k++) {
		if (!email_domain(sc->cp[k]))
			return false;
		if (sc->cp[k] == '.')
			dot = k;
		if (lo(sc->cp[k - 1]) && up(sc->cp[k]))
			return false;    /* people write domains in one case */
	}
	return dot > at + 1 && j - dot > 2 && cc_letter(sc->cc[j - 1]);
}

/* URLs and e-mail addresses are not judged: their punctuation is syntax. */
static bool token_is_link(const struct scan *sc, size_t i, size_t j)
{
	static const char *const heads[] = { "http://", "https://", "www." };

	for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++) {
		size_t hl = strlen(heads[h]), k = 0;
		while (k < hl && i + k < j && (sc->cp[i + k] | 0x20) == (uint32_t)heads[h][k])
			k++;
		if (k == hl)
			return true;
	}
	return token_is_email(sc, i, j);
}

static size_t run_end(const struct scan *sc, size_t i, bool (*same)(enum cclass))
{
	while (i < sc->n && same(sc->cc[i]))
		i++;
	return i;
}

static bool cc_nonspace(enum cclass c)
{
	return c != CC_SPACE;
}

static bool cc_oletter(enum cclass c)
{
	return c == CC_OLETTER;
}

struct gib_score {
	int junk;
	int readable;
};

/* Points of one run starting at sc[i] (letters, symbols, CJK, other
 * alphabets, or a single other character); returns the run's end. */
static size_t score_run(const struct scan *sc, size_t i, struct gib_score *t)
{
	enum cclass c = sc->cc[i];
	size_t e = i + 1;

	if (cc_letter(c)) {
		e = run_end(sc, i, cc_letter);
		switch (letter_run(sc->cp + i, e - i)) {
		case RUN_NEUTRAL:
			break;
		case RUN_READABLE:
			t->readable += (int)(e - i);
			break;
		case RUN_JUNK:
			t->junk += (int)(e - i);
			break;
		}
	} else if (cc_symbol(c)) {
		e = run_end(sc, i, cc_symbol);
		t->junk += symbol_cluster(sc, i, e);
	} else if (cc_cjk(c)) {
		e = run_end(sc, i, cc_cjk);
		if (e - i >= 2)
			t->readable += (int)(e - i);
		else if ((i > 0 && cc_symbol(sc->cc[i - 1])) ||
			 (e < sc->n && cc_symbol(sc->cc[e])))
			t->junk += 1;
	} else if (c == CC_OLETTER) {
		e = run_end(sc, i, cc_oletter);
		if (e - i >= 3)
			t->readable += (int)(e - i);
	}
	return e;
}

static bool face_letter(uint32_t c)
{
	return c != 0 && c < 0x80 && strchr("oOTxXvuw", (int)c) != NULL;
}

/* The eyes of a face match: ^ ^, T T, > <. */
static bool eyes(uint32_t a, uint32_t b)
{
	return a == b || (a == '>' && b == '<') || (a == '<' && b == '>');
}

/* A kaomoji at i ("(^_^)", "(^o^;)", "\\(^o^)/", "(T_T)", "(>_<)"): brackets
 * around 2-5 symbols and face letters with matching eyes, a sweat drop ';'
 * allowed. Returns its end, or 0. */
static size_t kaomoji_end(const struct scan *sc, size_t i, size_t j)
{
	size_t k = i, open, close;

	if (k < j && sc->cp[k] == '\\')
		k++;
	if (k >= j || sc->cp[k] != '(')
		return 0;
	open = k;
	for (k++; k < j && k <= open + 7 && sc->cp[k] != ')'; k++)
		if (!cc_symbol(sc->cc[k]) && !face_letter(sc->cp[k]))
			return 0;
	if (k >= j || sc->cp[k] != ')')
		return 0;
	close = k;
	if (sc->cp[close - 1] == ';')
		close--;
	if (close - open < 3 || close - open > 6 || !eyes(sc->cp[open + 1], sc->cp[close - 1]))
		return 0;
	k++;
	return k < j && sc->cp[k] == '/' ? k + 1 : k;
}

/* Different symbols of the "rare" kind (not prose punctuation) in [i, j). */
static unsigned rare_kinds(const struct scan *sc, size_t i, size_t j)
{
	uint32_t seen[4] = { 0, 0, 0, 0 };   /* bit per ASCII code point */
	unsigned kinds = 0;

	for (size_t k = i; k < j; k++) {
		uint32_t c = sc->cp[k];
		if (sc->cc[k] != CC_RARE || (seen[c >> 5] >> (c & 31) & 1))
			continue;
		seen[c >> 5] |= 1u << (c & 31);
		kinds++;
	}
	return kinds;
}

/* Lower-to-upper changes between consecutive letters of [i, j), symbols
 * and digits between them skipped ("aB", "a#B"). */
static int case_flips(const struct scan *sc, size_t i, size_t j)
{
	int flips = 0;
	bool lower = false;

	for (size_t k = i; k < j; k++) {
		if (!cc_letter(sc->cc[k]))
			continue;
		flips += lower && sc->cc[k] == CC_UPPER;
		lower = sc->cc[k] == CC_LOWER;
	}
	return flips;
}

/* Score the whitespace-delimited token [i, j) into g. */
static void score_token(const struct scan *sc, size_t i, size_t j, struct gib_score *g)
{
	struct gib_score t = { 0, 0 };
	size_t start = i, len = j - i, digits = 0;
	int clusters = 0, letters = 0;

	if (token_is_link(sc, i, j))
		return;
	while (i < j) {
		size_t face = kaomoji_end(sc, i, j);
		if (face) {                 /* a face is not noise */
			i = face;
			continue;
		}
		clusters += cc_symbol(sc->cc[i]);
		digits += sc->cc[i] == CC_DIGIT;
		letters += cc_letter(sc->cc[i]) ? (int)(run_end(sc, i, cc_letter) - i) : 0;
		i = score_run(sc, i, &t);
	}
	/* case flips across the token: random letters go lower->upper every
	 * fourth letter, writing at most once per word (PowerPoint, iPhone) */
	if (case_flips(sc, start, j) > 1)
		t.junk += 2 * (case_flips(sc, start, j) - 1);
	/* 8+ characters that are symbol soup (3+ different rare symbols), or
	 * 3+ pieces glued by symbols, less than half of the letters in words,
	 * and not a number, date or file name (those are mostly digits) */
	if (len >= GIB_TOKEN_MIN && t.junk < (int)len &&
	    (rare_kinds(sc, start, j) >= 3 ||
	     (clusters >= 3 && t.readable * 2 < letters && digits * 4 < len)))
		t.junk = (int)len;
	g->junk += t.junk;
	g->readable += t.readable;
}

static bool gib_verdict(const struct scan *sc)
{
	struct gib_score g = { 0, 0 };

	for (size_t i = 0; i < sc->n;) {
		size_t e;
		if (sc->cc[i] == CC_SPACE) {
			i++;
			continue;
		}
		e = run_end(sc, i, cc_nonspace);
		score_token(sc, i, e, &g);
		i = e;
	}
	return g.junk >= GIB_JUNK_MIN && g.junk * GIB_RATIO_DEN >= g.readable * GIB_RATIO_NUM;
}

bool subject_is_gibberish(const char *utf8, size_t len)
{
	struct scan sc;
	bool reply = false;
	size_t start = strip_prefixes(utf8, len, &reply);

	scan_fill(&sc, utf8 + start, len - start);
	return gib_verdict(&sc);
}

/* ---- shape ------------------------------------------------------------- */

/* Shape = (length bucket, set of scripts present). A flood tool drawing
 * random characters from one alphabet over one length range produces one
 * shape however different the strings are. Buckets are wide so that the
 * 10-20 and 100-120 ranges of the 2012 floods each fall in one. */
static uint64_t shape_hash(const struct scan *sc)
{
	unsigned char key[3] = { 'S', 0, 0 };
	size_t len = 0;

	for (size_t i = 0; i < sc->n; i++) {
		enum cclass c = sc->cc[i];
		if (c == CC_SPACE)
			continue;
		len++;
		if (cc_letter(c) || c == CC_DIGIT || cc_symbol(c))
			key[2] |= 1;
		else if (c == CC_KANA)
			key[2] |= 2;
		else if (c == CC_HAN)
			key[2] |= 4;
		else if (c == CC_HANGUL)
			key[2] |= 8;
		else
			key[2] |= 16;
	}
	key[1] = len < 10 ? 0 : len < 40 ? 1 : len < 80 ? 2 : len < 160 ? 3 : 4;
	return XXH3_64bits_withSeed(key, sizeof key, SUBJECT_SEED);
}

/* ---- all facts --------------------------------------------------------- */

void subject_analyse(const char *utf8, size_t len, struct subject_facts *out)
{
	char norm[SUBJECT_NORM_MAX + 1];
	struct scan sc;
	bool reply = false;
	size_t n = subject_normalise(utf8, len, norm, sizeof norm, &reply);
	size_t start = strip_prefixes(utf8, len, &reply);

	scan_fill(&sc, utf8 + start, len - start);
	out->fingerprint = XXH3_64bits_withSeed(norm, n, SUBJECT_SEED);
	out->shape = shape_hash(&sc);
	out->gibberish = gib_verdict(&sc);
	out->reply_prefix = reply;
	out->empty = n == 0;
}

void subject_hex(uint64_t v, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, v);
}
