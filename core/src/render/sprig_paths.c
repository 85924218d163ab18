/*
 * sprig_paths.c - Sprig v3.2.3's path functions and a few small ones
 * (functions.go, list.go, strings.go;
 * https://masterminds.github.io/sprig/paths.html): base dir clean ext
 * isAbs (Go's path package) and osBase osDir osClean osExt osIsAbs
 * (path/filepath, which on Linux is the same lexical processing with
 * '/'), b32dec, chunk mustChunk and hello.
 */
#include <math.h>
#include <string.h>

#include "render/sprig_int.h"

/* ---- path (https://pkg.go.dev/path) ---- */

/* path.Clean: Rob Pike's lexical rules ("Lexical File Names in Plan 9"),
 * into b. */
static int path_clean(te_buf *b, const char *p, size_t n, te_error *err)
{
	bool rooted;
	size_t r = 0, dotdot = 0, w;
	char *o;

	if (n == 0)
		return te_buf_puts(b, ".", err);
	/* the result is never longer than the path */
	if (te_buf_put(b, p, n, err) < 0)
		return err->code;
	o = b->ptr + b->len - n;
	w = 0;
	rooted = p[0] == '/';
	if (rooted) {
		o[w++] = '/';
		r = dotdot = 1;
	}
	while (r < n) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' &&
		           (r + 2 == n || p[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && o[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					o[w++] = '/';
				o[w++] = '.';
				o[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				o[w++] = '/';
			for (; r < n && p[r] != '/'; r++)
				o[w++] = p[r];
		}
	}
	if (w == 0)
		o[w++] = '.';
	b->len -= n - w;
	b->ptr[b->len] = '\0';
	return 0;
}

enum path_fn { P_BASE, P_DIR, P_CLEAN, P_EXT };

static int f_path(te_render_value **out, te_render_call *call, sp_args a,
                  size_t n, void *p, te_error *err)
{
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	const char *s, *slash;
	size_t len, i;

	(void)n;
	if (WANT_STR(a[0]) < 0 || sp_steps(call, a[0]->u.s.len / 64, err) < 0)
		return err->code;
	s = a[0]->u.s.ptr;
	len = a[0]->u.s.len;
	switch ((enum path_fn)(uintptr_t)p) {
	case P_BASE:
		if (len == 0) {
			te_buf_puts(&b, ".", err);
			break;
		}
		while (len > 0 && s[len - 1] == '/')
			len--;
		for (i = len; i > 0 && s[i - 1] != '/'; i--)
			;
		if (len - i == 0)
			te_buf_puts(&b, "/", err);
		else
			te_buf_put(&b, s + i, len - i, err);
		break;
	case P_DIR:
		slash = NULL;
		for (i = len; i > 0 && !slash; i--)
			if (s[i - 1] == '/')
				slash = s + i - 1;
		path_clean(&b, s, slash ? (size_t)(slash - s) + 1 : 0, err);
		break;
	case P_CLEAN:
		path_clean(&b, s, len, err);
		break;
	case P_EXT:
		for (i = len; i > 0 && s[i - 1] != '/'; i--)
			if (s[i - 1] == '.') {
				te_buf_put(&b, s + i - 1, len - i + 1, err);
				break;
			}
		break;
	}
	return sp_ret_buf(out, &b, err);
}

static int f_isabs(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	(void)call;
	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0)
		return err->code;
	return sp_ret_bool(out, a[0]->u.s.len && a[0]->u.s.ptr[0] == '/', err);
}

/* ---- b32dec: base32.StdEncoding.DecodeString ---- */

static int b32_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

/* Go's decoder on the input without newlines: -1 or the offset its
 * CorruptInputError names. */
static long b32_decode(te_buf *b, const unsigned char *s, size_t n,
                       te_error *err)
{
	size_t si = 0, j, k, dlen, left;
	unsigned char d[8], o[5];
	int v;

	while (si < n && !err->code) {
		memset(d, 0, sizeof(d));
		dlen = 8;
		for (j = 0; j < 8;) {
			if (si == n)
				return (long)(si - j);
			left = n - si - 1; /* after this byte */
			if (s[si] == '=' && j >= 2 && left < 8) {
				si++;
				if (left + j < 7)
					return (long)n;
				for (k = 0; k < 7 - j; k++)
					if (left > k && s[si + k] != '=')
						return (long)(si + k - 1);
				dlen = j;
				if (dlen == 1 || dlen == 3 || dlen == 6)
					return (long)(si - 1);
				si = n;
				break;
			}
			v = b32_value(s[si++]);
			if (v < 0)
				return (long)(si - 1);
			d[j++] = (unsigned char)v;
		}
		o[0] = (unsigned char)(d[0] << 3 | d[1] >> 2);
		o[1] = (unsigned char)(d[1] << 6 | d[2] << 1 | d[3] >> 4);
		o[2] = (unsigned char)(d[3] << 4 | d[4] >> 1);
		o[3] = (unsigned char)(d[4] << 7 | d[5] << 2 | d[6] >> 3);
		o[4] = (unsigned char)(d[6] << 5 | d[7]);
		te_buf_put(b, o,
		           dlen == 8   ? 5
		           : dlen == 7 ? 4
		           : dlen == 5 ? 3
		           : dlen == 4 ? 2
		                       : 1,
		           err);
	}
	return -1;
}

/* b32dec: the bytes, or Go's error text as the result (Sprig returns
 * err.Error()). */
static int f_b32dec(te_render_value **out, te_render_call *call, sp_args a,
                    size_t n, void *p, te_error *err)
{
	te_buf in = TE_BUF_INIT(sp_out_max(call));
	te_buf b = TE_BUF_INIT(sp_out_max(call));
	size_t i;
	long bad;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || sp_steps(call, a[0]->u.s.len / 64, err) < 0)
		return err->code;
	for (i = 0; i < a[0]->u.s.len && !err->code; i++)
		if (a[0]->u.s.ptr[i] != '\n' && a[0]->u.s.ptr[i] != '\r')
			te_buf_put(&in, a[0]->u.s.ptr + i, 1, err);
	bad = err->code
	          ? -1
	          : b32_decode(&b, (const unsigned char *)in.ptr, in.len, err);
	te_buf_dispose(&in);
	if (bad >= 0 && !err->code) {
		te_buf_clear(&b);
		te_buf_printf(&b, err, "illegal base32 data at input byte %ld",
		              bad);
	}
	return sp_ret_buf(out, &b, err);
}

/* ---- chunk SIZE LIST ---- */

static int f_chunk(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	te_render_value *r = NULL, *c = NULL;
	const te_render_value *l = a[1];
	int64_t size, len, cs, i, j, clen; /* clen: the last chunk's */
	double fcs;

	(void)n;
	(void)p;
	if (WANT_INT(a[0]) < 0)
		return err->code;
	if (!l || l->kind == TE_RENDER_NIL) /* reflect.TypeOf(nil).Kind() */
		return te_error_set(err, TE_EINVALID,
		                    "runtime error: invalid memory address or "
		                    "nil pointer dereference");
	if (l->kind != TE_RENDER_LIST)
		return te_error_set(err, TE_EINVALID, "Cannot chunk type %s",
		                    sp_kind(l));
	size = a[0]->u.i;
	len = (int64_t)l->u.list.len;
	/* Go computes the counts in float64; a negative count (a size of
	 * 0 gives one too) makes Go's make() panic */
	fcs = size ? floor((double)(len - 1) / (double)size) + 1 : -1;
	clen = size ? (int64_t)fmod((double)len, (double)size) : 0;
	if (clen == 0)
		clen = size;
	if (!(fcs >= 0 && fcs < 9e18) || (fcs >= 1 && clen < 0))
		return te_error_set(err, TE_EINVALID,
		                    "runtime error: makeslice: len out of "
		                    "range");
	cs = (int64_t)fcs;
	if (sp_list_budget(call, (uint64_t)(cs + len), err) < 0)
		return err->code;
	r = te_render_value_list();
	for (i = 0; r && i < cs && !err->code; i++) {
		c = te_render_value_list();
		for (j = 0; c && j < (i == cs - 1 ? clen : size) && !err->code;
		     j++)
			te_render_list_push(
			    c,
			    te_render_value_ref(l->u.list.items[i * size + j]),
			    err);
		if (!c)
			break;
		te_render_list_push(r, c, err);
	}
	if (!r || (i < cs && !err->code))
		te_error_set(err, TE_ENOMEM, "out of memory");
	if (err->code) {
		te_render_value_unref(r);
		return err->code;
	}
	return sp_ret(out, r, err);
}

static int f_hello(te_render_value **out, te_render_call *call, sp_args a,
                   size_t n, void *p, te_error *err)
{
	(void)call;
	(void)a;
	(void)n;
	(void)p;
	return sp_ret(out, te_render_value_string("Hello!", 6), err);
}

const struct sp_entry te_render__sp_paths[] = {
    {"b32dec", f_b32dec, 1, 1, NULL},
    {"base", f_path, 1, 1, (void *)P_BASE},
    {"chunk", f_chunk, 2, 2, NULL},
    {"clean", f_path, 1, 1, (void *)P_CLEAN},
    {"dir", f_path, 1, 1, (void *)P_DIR},
    {"ext", f_path, 1, 1, (void *)P_EXT},
    {"hello", f_hello, 0, 0, NULL},
    {"isAbs", f_isabs, 1, 1, NULL},
    {"mustChunk", f_chunk, 2, 2, NULL},
    {"osBase", f_path, 1, 1, (void *)P_BASE},
    {"osClean", f_path, 1, 1, (void *)P_CLEAN},
    {"osDir", f_path, 1, 1, (void *)P_DIR},
    {"osExt", f_path, 1, 1, (void *)P_EXT},
    {"osIsAbs", f_isabs, 1, 1, NULL},
};
const size_t te_render__sp_paths_len =
    sizeof(te_render__sp_paths) / sizeof(te_render__sp_paths[0]);
