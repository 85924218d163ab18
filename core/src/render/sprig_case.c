/*
 * sprig_case.c - Sprig v3.2.3's case and word functions (strings.go,
 * functions.go; https://masterminds.github.io/sprig/strings.html): upper
 * lower title untitle swapcase camelcase snakecase kebabcase initials
 * abbrev abbrevboth wrap wrapWith.
 *
 * Sprig takes them from Go's strings package (ToUpper, ToLower, Title),
 * github.com/Masterminds/goutils (Uncapitalize, SwapCase, Initials,
 * Abbreviate, Wrap) and github.com/huandu/xstrings (ToCamelCase,
 * ToSnakeCase, ToKebabCase); each is reimplemented here rule by rule,
 * over Go's unicode tables (core/src/unicode).  Where those libraries
 * work on runes, an invalid UTF-8 byte becomes U+FFFD as Go's decoding
 * makes it; goutils' Initials, Wrap and Abbreviate work on bytes.
 */
#include <string.h>

#include "render/sprig_int.h"
#include "unicode/unicode.h"

#define RUNE_ERROR 0xFFFD

static int put_rune(te_buf *b, int32_t r, te_error *err)
{
	char tmp[4];

	return te_buf_put(b, tmp, te_render__put_rune(tmp, r), err);
}

static int32_t next_rune(const char *s, size_t n, size_t *i)
{
	size_t w;
	int32_t r = te_render__rune(s + *i, n - *i, &w);

	*i += w;
	return r;
}

/* The string argument, a step per 64 bytes of it. */
static int want_text(te_render_call *call, const te_render_value *v,
                     te_error *err)
{
	if (WANT_STR(v) < 0)
		return err->code;
	return sp_steps(call, v->u.s.len / 64, err);
}

/* ---- rune maps: strings.Map, goutils' []rune loops ---- */

enum rune_map { MAP_UPPER, MAP_LOWER, MAP_TITLE, MAP_UNTITLE, MAP_SWAP };

/* strings.Title's isSeparator */
static bool title_separator(int32_t r)
{
	if (r <= 0x7F)
		return !((r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') ||
		         (r >= 'A' && r <= 'Z') || r == '_');
	if (te_unicode_is_letter(r) || te_unicode_is_digit(r))
		return false;
	return te_unicode_is_space(r);
}

static int f_rune_map(te_render_value **out, te_render_call *call, sp_args a,
                      size_t n, void *p, te_error *err)
{
	enum rune_map m = (enum rune_map)(uintptr_t)p;
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	const char *s;
	size_t i = 0, len;
	int32_t r, prev = ' ';
	bool gap = true; /* title/untitle: after a separator; swap: space */

	(void)n;
	if (want_text(call, a[0], err) < 0)
		return err->code;
	s = a[0]->u.s.ptr;
	len = a[0]->u.s.len;
	while (i < len && !err->code) {
		r = next_rune(s, len, &i);
		switch (m) {
		case MAP_UPPER:
			r = te_unicode_to_upper(r);
			break;
		case MAP_LOWER:
			r = te_unicode_to_lower(r);
			break;
		case MAP_TITLE:
			gap = title_separator(prev);
			prev = r;
			if (gap)
				r = te_unicode_to_title(r);
			break;
		case MAP_UNTITLE:
			if (te_unicode_is_space(r)) {
				gap = true;
			} else if (gap) {
				r = te_unicode_to_lower(r);
				gap = false;
			}
			break;
		case MAP_SWAP:
			if (te_unicode_is_upper(r) || te_unicode_is_title(r)) {
				r = te_unicode_to_lower(r);
				gap = false;
			} else if (te_unicode_is_lower(r)) {
				r = gap ? te_unicode_to_title(r)
				        : te_unicode_to_upper(r);
				gap = false;
			} else {
				gap = te_unicode_is_space(r);
			}
			break;
		}
		put_rune(&b, r, err);
	}
	return sp_ret_buf(out, &b, err);
}

/* ---- xstrings.ToCamelCase ---- */

static bool is_connector(int32_t r)
{
	return r == '-' || r == '_' || te_unicode_is_space(r);
}

static int f_camelcase(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	const char *s;
	size_t i = 0, len;
	int32_t r0 = 0, r1;

	(void)n;
	(void)p;
	if (want_text(call, a[0], err) < 0)
		return err->code;
	s = a[0]->u.s.ptr;
	len = a[0]->u.s.len;
	/* leading connectors stay */
	while (i < len) {
		r0 = next_rune(s, len, &i);
		if (!is_connector(r0)) {
			r0 = te_unicode_to_upper(r0);
			break;
		}
		put_rune(&b, r0, err);
	}
	if (i == len) {
		/* xstrings writes the last rune once more when every
		 * rune is a connector */
		if (len)
			put_rune(&b, r0, err);
		return sp_ret_buf(out, &b, err);
	}
	while (i < len && !err->code) {
		r1 = r0;
		r0 = next_rune(s, len, &i);
		if (is_connector(r0) && is_connector(r1)) {
			put_rune(&b, r1, err);
			continue;
		}
		if (is_connector(r1)) {
			r0 = te_unicode_to_upper(r0);
		} else {
			r0 = te_unicode_to_lower(r0);
			put_rune(&b, r1, err);
		}
	}
	put_rune(&b, r0, err);
	return sp_ret_buf(out, &b, err);
}

/* ---- xstrings' camelCaseToLowerCase (snakecase, kebabcase) ---- */

enum word_type {
	W_INVALID,
	W_NUMBER,
	W_UPPER,
	W_ALPHA,
	W_CONNECTOR,
	W_PUNCT,
	W_OTHER
};

struct word {
	enum word_type t;
	const char *s; /* the word */
	size_t len;
};

/* xstrings' isAlphabet: letters but the common CJK blocks. */
static bool is_alphabet(int32_t r)
{
	if (!te_unicode_is_letter(r))
		return false;
	if (r < 0x3400)
		return true;
	return !((r >= 0x4E00 && r <= 0x9FCC) || (r >= 0x3400 && r <= 0x4D85) ||
	         (r >= 0x20000 && r <= 0x2B81D));
}

/* xstrings' nextValidRune: skips invalid bytes (and U+FFFD), counting
 * them in *size; prev when none is left. */
static int32_t next_valid(const char *s, size_t n, int32_t prev, size_t *size)
{
	size_t i = 0, w;
	int32_t r;

	*size = 0;
	while (i < n) {
		r = te_render__rune(s + i, n - i, &w);
		i += w;
		*size += w;
		if (r != RUNE_ERROR)
			return r;
	}
	return prev;
}

static bool in_run(enum word_type t, int32_t r)
{
	switch (t) {
	case W_CONNECTOR:
		return is_connector(r);
	case W_PUNCT:
		return te_unicode_is_punct(r);
	case W_NUMBER:
		return te_unicode_is_number(r);
	default: /* W_ALPHA and a capitalised word's tail */
		return is_alphabet(r) && !te_unicode_is_upper(r);
	}
}

/* xstrings' nextWord: the word at the start of *rest, *rest advanced. */
static struct word next_word(const char **rest, size_t *rest_len)
{
	const char *str = *rest, *rem = str;
	size_t n = *rest_len, off, size, remn = n, prev_size;
	struct word w = {W_INVALID, str, 0};
	int32_t r;

	if (n == 0)
		return w;
	r = next_valid(rem, remn, RUNE_ERROR, &size);
	off = size;
	if (r == RUNE_ERROR) {
		w.len = off;
		*rest = str + off;
		*rest_len = n - off;
		return w;
	}
	rem += size;
	remn -= size;
	if (is_connector(r))
		w.t = W_CONNECTOR;
	else if (te_unicode_is_punct(r))
		w.t = W_PUNCT;
	else if (te_unicode_is_upper(r))
		w.t = W_UPPER;
	else if (is_alphabet(r))
		w.t = W_ALPHA;
	else if (te_unicode_is_number(r))
		w.t = W_NUMBER;
	else
		w.t = W_OTHER;
	switch (w.t) {
	case W_UPPER:
		if (remn == 0)
			break;
		r = next_valid(rem, remn, r, &size);
		if (te_unicode_is_upper(r)) {
			prev_size = size;
			off += size;
			rem += size;
			remn -= size;
			while (remn > 0) {
				r = next_valid(rem, remn, r, &size);
				if (!te_unicode_is_upper(r))
					break;
				prev_size = size;
				off += size;
				rem += size;
				remn -= size;
			}
			/* "HTTPStatus": "S" starts the next word */
			if (remn > 0 && is_alphabet(r)) {
				off -= prev_size;
				rem = str + off;
				remn = n - off;
			}
		} else if (is_alphabet(r)) {
			off += size;
			rem += size;
			remn -= size;
			while (remn > 0) {
				r = next_valid(rem, remn, r, &size);
				if (!in_run(W_ALPHA, r))
					break;
				off += size;
				rem += size;
				remn -= size;
			}
		}
		break;
	case W_OTHER:
		while (remn > 0) {
			r = next_valid(rem, remn, r, &size);
			if (size == 0 || is_connector(r) || is_alphabet(r) ||
			    te_unicode_is_number(r) || te_unicode_is_punct(r))
				break;
			off += size;
			rem += size;
			remn -= size;
		}
		break;
	default:
		while (remn > 0) {
			r = next_valid(rem, remn, r, &size);
			if (!in_run(w.t, r))
				break;
			off += size;
			rem += size;
			remn -= size;
		}
	}
	w.len = off;
	*rest = rem;
	*rest_len = remn;
	return w;
}

/* xstrings' toLower: upper-case and connector words rune by rune. */
static int word_lower(te_buf *b, enum word_type t, const char *s, size_t n,
                      int32_t connector, te_error *err)
{
	size_t i = 0;
	int32_t r;

	if (t != W_UPPER && t != W_CONNECTOR)
		return te_buf_put(b, s, n, err);
	while (i < n && !err->code) {
		r = next_rune(s, n, &i);
		if (is_connector(r))
			r = connector;
		else if (te_unicode_is_upper(r))
			r = te_unicode_to_lower(r);
		put_rune(b, r, err);
	}
	return err->code;
}

#define NEXT() (w = next_word(&rest, &rest_n))
#define LOWER(t, wd) word_lower(b, (t), (wd).s, (wd).len, conn, err)
#define CONN() put_rune(b, conn, err)

/* camelCaseToLowerCase's loop, case by case as xstrings writes it. */
static void to_lower_case(te_buf *b, const char *s, size_t n, int32_t conn,
                          te_error *err)
{
	const char *rest = s;
	size_t rest_n = n;
	struct word w, last;
	enum word_type prev;

	NEXT();
	while (rest_n > 0 && !err->code) {
		if (w.t != W_CONNECTOR)
			LOWER(w.t, w);
		prev = w.t;
		last = w;
		NEXT();
		switch (prev) {
		case W_NUMBER:
			while (w.t == W_ALPHA || w.t == W_NUMBER) {
				LOWER(w.t, w);
				NEXT();
			}
			if (w.t != W_INVALID && w.t != W_PUNCT &&
			    w.t != W_CONNECTOR)
				CONN();
			break;
		case W_CONNECTOR:
			LOWER(prev, last);
			break;
		case W_PUNCT:
			break;
		default:
			if (w.t != W_NUMBER) {
				if (w.t != W_CONNECTOR && w.t != W_PUNCT)
					CONN();
				break;
			}
			if (rest_n == 0)
				break;
			last = w;
			NEXT();
			/* a number ends the previous word ("Bld4Floor") */
			if (w.t != W_ALPHA) {
				LOWER(W_NUMBER, last);
				if (w.t != W_CONNECTOR && w.t != W_PUNCT)
					CONN();
				break;
			}
			/* lower-case letters after it: "HTTP2xx" */
			CONN();
			LOWER(W_NUMBER, last);
			while (w.t == W_ALPHA || w.t == W_NUMBER) {
				LOWER(w.t, w);
				NEXT();
			}
			if (w.t != W_INVALID && w.t != W_CONNECTOR &&
			    w.t != W_PUNCT)
				CONN();
		}
	}
	LOWER(w.t, w);
}

#undef NEXT
#undef LOWER
#undef CONN

static int f_snake_kebab(te_render_value **out, te_render_call *call, sp_args a,
                         size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));

	(void)n;
	if (want_text(call, a[0], err) < 0)
		return err->code;
	to_lower_case(&b, a[0]->u.s.ptr, a[0]->u.s.len, p ? '-' : '_', err);
	return sp_ret_buf(out, &b, err);
}

/* ---- goutils: byte-wise ---- */

/* Initials: the first byte of each word, each byte read as a rune (a
 * byte of a multi-byte character comes out as its Latin-1 rune). */
static int f_initials(te_render_value **out, te_render_call *call, sp_args a,
                      size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	const unsigned char *s;
	size_t i;
	bool gap = true;

	(void)n;
	(void)p;
	if (want_text(call, a[0], err) < 0)
		return err->code;
	s = (const unsigned char *)a[0]->u.s.ptr;
	for (i = 0; i < a[0]->u.s.len; i++) {
		if (te_unicode_is_space(s[i])) {
			gap = true;
		} else if (gap) {
			put_rune(&b, s[i], err);
			gap = false;
		}
	}
	return sp_ret_buf(out, &b, err);
}

/* AbbreviateFull(str, offset, width) with its errors as "". */
static void abbreviate(te_buf *b, const char *s, size_t len, int64_t off,
                       int64_t width, te_error *err)
{
	int64_t n = (int64_t)len;

	if (n == 0 || width < 4)
		return;
	if (n <= width) {
		te_buf_put(b, s, len, err);
		return;
	}
	if (off > n)
		off = n;
	if (n - off < width - 3)
		off = n - (width - 3);
	if (off <= 4) {
		te_buf_put(b, s, (size_t)(width - 3), err);
		te_buf_puts(b, "...", err);
		return;
	}
	if (width < 7)
		return;
	te_buf_puts(b, "...", err);
	if (off + width - 3 < n)
		abbreviate(b, s + off, (size_t)(n - off), 0, width - 3, err);
	else
		te_buf_put(b, s + n - (width - 3), (size_t)(width - 3), err);
}

static int f_abbrev(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	const te_render_value *s = a[n - 1];
	int64_t left = 0, right;

	(void)p;
	if (WANT_INT(a[0]) < 0 || (n == 3 && WANT_INT(a[1]) < 0) ||
	    want_text(call, s, err) < 0)
		return err->code;
	if (n == 3) {
		left = a[0]->u.i;
		right = a[1]->u.i;
		if (right < 4 || (left > 0 && right < 7))
			return sp_ret_ref(out, (te_render_value *)s, err);
	} else {
		right = a[0]->u.i;
		if (right < 4)
			return sp_ret_ref(out, (te_render_value *)s, err);
	}
	abbreviate(&b, s->u.s.ptr, s->u.s.len, left, right, err);
	return sp_ret_buf(out, &b, err);
}

static const char *last_space(const char *s, size_t n)
{
	while (n > 0)
		if (s[--n] == ' ')
			return s + n;
	return NULL;
}

/* WrapCustom(str, width, sep, long_words), byte-wise on ' '. */
static void wrap_custom(te_render_call *call, te_buf *b, const char *s,
                        size_t len, int64_t width, const char *sep,
                        size_t sep_len, bool long_words, te_error *err)
{
	size_t off = 0, w, end;
	const char *sp;

	if (sep_len == 0) {
		sep = "\n";
		sep_len = 1;
	}
	w = width < 1 ? 1 : (uint64_t)width > len ? len : (size_t)width;
	if (width > (int64_t)len)
		w = len; /* the loop below never runs */
	while (len - off > w && !err->code) {
		if (s[off] == ' ') {
			off++;
			continue;
		}
		if (sp_steps(call, w / 64 + 1, err) < 0)
			return;
		end = w + off + 1;
		sp = last_space(s + off, end - off);
		if (sp) {
			te_buf_put(b, s + off, (size_t)(sp - s) - off, err);
			te_buf_put(b, sep, sep_len, err);
			off = (size_t)(sp - s) + 1;
		} else if (long_words) {
			te_buf_put(b, s + off, w, err);
			te_buf_put(b, sep, sep_len, err);
			off += w;
		} else {
			end = w + off;
			sp = memchr(s + end, ' ', len - end);
			if (!sp) {
				te_buf_put(b, s + off, len - off, err);
				off = len;
			} else {
				te_buf_put(b, s + off, (size_t)(sp - s) - off,
				           err);
				te_buf_put(b, sep, sep_len, err);
				off = (size_t)(sp - s) + 1;
			}
		}
	}
	te_buf_put(b, s + off, len - off, err);
}

/* wrap WIDTH STR; wrapWith WIDTH SEP STR (long words cut). */
static int f_wrap(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	const te_render_value *s = a[n - 1];

	(void)p;
	if (WANT_INT(a[0]) < 0 || (n == 3 && WANT_STR(a[1]) < 0) ||
	    want_text(call, s, err) < 0)
		return err->code;
	if (s->u.s.len)
		wrap_custom(call, &b, s->u.s.ptr, s->u.s.len, a[0]->u.i,
		            n == 3 ? a[1]->u.s.ptr : "",
		            n == 3 ? a[1]->u.s.len : 0, n == 3, err);
	return sp_ret_buf(out, &b, err);
}

const struct sp_entry te_render__sp_case[] = {
    {"abbrev", f_abbrev, 2, 2, NULL},
    {"abbrevboth", f_abbrev, 3, 3, NULL},
    {"camelcase", f_camelcase, 1, 1, NULL},
    {"initials", f_initials, 1, 1, NULL},
    {"kebabcase", f_snake_kebab, 1, 1, "kebab"},
    {"lower", f_rune_map, 1, 1, (void *)MAP_LOWER},
    {"snakecase", f_snake_kebab, 1, 1, NULL},
    {"swapcase", f_rune_map, 1, 1, (void *)MAP_SWAP},
    {"title", f_rune_map, 1, 1, (void *)MAP_TITLE},
    {"untitle", f_rune_map, 1, 1, (void *)MAP_UNTITLE},
    {"upper", f_rune_map, 1, 1, (void *)MAP_UPPER},
    {"wrap", f_wrap, 2, 2, NULL},
    {"wrapWith", f_wrap, 3, 3, NULL},
};
const size_t te_render__sp_case_len =
    sizeof(te_render__sp_case) / sizeof(te_render__sp_case[0]);
