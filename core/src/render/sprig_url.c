/*
 * sprig_url.c - Sprig v3.2.3's urlParse and urlJoin (url.go;
 * https://masterminds.github.io/sprig/url.html) over Go's net/url rules
 * (https://pkg.go.dev/net/url): url.Parse (scheme, opaque, authority with
 * userinfo and host, path, query, fragment, percent-unescaping per part,
 * its error texts) and URL.String (escaping per part).
 */
#include <string.h>

#include "render/sprig_int.h"

/* working strings of one URL: at most a few times the input */
#define URL_TEXT_MAX ((size_t)64 << 20)

enum url_mode {
	ENC_PATH,
	ENC_HOST,
	ENC_ZONE,
	ENC_USER,
	ENC_QUERY,
	ENC_FRAGMENT
};

struct gurl {
	te_buf scheme, opaque, user, pass, host, path, raw_path, query,
	    fragment, raw_fragment;
	bool has_user, has_pass, force_query, omit_host;
};

static void url_init(struct gurl *u)
{
	te_buf *const f[] = {&u->scheme,      &u->opaque, &u->user,
	                     &u->pass,        &u->host,   &u->path,
	                     &u->raw_path,    &u->query,  &u->fragment,
	                     &u->raw_fragment};
	size_t i;

	memset(u, 0, sizeof(*u));
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		*f[i] = (te_buf)TE_BUF_INIT(URL_TEXT_MAX);
}

static void url_dispose(struct gurl *u)
{
	te_buf *const f[] = {&u->scheme,      &u->opaque, &u->user,
	                     &u->pass,        &u->host,   &u->path,
	                     &u->raw_path,    &u->query,  &u->fragment,
	                     &u->raw_fragment};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		te_buf_dispose(f[i]);
}

static const char *str(const te_buf *b)
{
	return b->ptr ? b->ptr : "";
}

static bool alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* net/url's shouldEscape */
static bool should_escape(unsigned char c, enum url_mode m)
{
	if (alnum(c))
		return false;
	if ((m == ENC_HOST || m == ENC_ZONE) && c &&
	    strchr("!$&'()*+,;=:[]<>\"", c))
		return false;
	if (c == '-' || c == '_' || c == '.' || c == '~')
		return false;
	if (c && strchr("$&+,/:;=?@", c)) {
		switch (m) {
		case ENC_PATH:
			return c == '?';
		case ENC_USER:
			return c == '@' || c == '/' || c == '?' || c == ':';
		case ENC_QUERY:
			return true;
		case ENC_FRAGMENT:
			return false;
		default:
			break;
		}
	}
	if (m == ENC_FRAGMENT && c && strchr("!()*", c))
		return false;
	return true;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* net/url's escape into b */
static int escape(te_buf *b, const char *s, size_t n, enum url_mode m,
                  te_error *err)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3] = {'%', 0, 0};
	size_t i;

	for (i = 0; i < n && !err->code; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' && m == ENC_QUERY) {
			te_buf_put(b, "+", 1, err);
		} else if (should_escape(c, m)) {
			e[1] = hex[c >> 4];
			e[2] = hex[c & 15];
			te_buf_put(b, e, 3, err);
		} else {
			te_buf_put(b, s + i, 1, err);
		}
	}
	return err->code;
}

static int quoted_error(te_error *err, const char *pre, const char *s, size_t n,
                        const char *post)
{
	te_buf q = TE_BUF_INIT(URL_TEXT_MAX);
	te_error e2 = TE_ERROR_INIT;

	te_render__quote(&q, s, n, false, &e2);
	te_error_set(err, TE_EINVALID, "%s%s%s", pre, str(&q), post);
	te_buf_dispose(&q);
	return err->code;
}

/* net/url's unescape of s into b; Go's EscapeError/InvalidHostError. */
static int unescape(te_buf *b, const char *s, size_t n, enum url_mode m,
                    te_error *err)
{
	size_t i;
	int v;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 2 >= n || hexval((unsigned char)s[i + 1]) < 0 ||
			    hexval((unsigned char)s[i + 2]) < 0)
				return quoted_error(err, "invalid URL escape ",
				                    s + i,
				                    n - i > 3 ? 3 : n - i, "");
			v = hexval((unsigned char)s[i + 1]) << 4 |
			    hexval((unsigned char)s[i + 2]);
			if (m == ENC_HOST &&
			    hexval((unsigned char)s[i + 1]) < 8 &&
			    memcmp(s + i, "%25", 3) != 0)
				return quoted_error(err, "invalid URL escape ",
				                    s + i, 3, "");
			if (m == ENC_ZONE && memcmp(s + i, "%25", 3) != 0 &&
			    v != ' ' &&
			    should_escape((unsigned char)v, ENC_HOST))
				return quoted_error(err, "invalid URL escape ",
				                    s + i, 3, "");
			i += 2;
		} else if ((m == ENC_HOST || m == ENC_ZONE) && c < 0x80 &&
		           should_escape(c, m)) {
			return quoted_error(err, "invalid character ", s + i, 1,
			                    " in host name");
		}
	}
	for (i = 0; i < n && !err->code; i++) {
		char c = s[i];

		if (c == '%') {
			c = (char)(hexval((unsigned char)s[i + 1]) << 4 |
			           hexval((unsigned char)s[i + 2]));
			i += 2;
		} else if (c == '+' && m == ENC_QUERY) {
			c = ' ';
		}
		te_buf_put(b, &c, 1, err);
	}
	return err->code;
}

static bool valid_port(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return true;
	if (s[0] != ':')
		return false;
	for (i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static const char *last_of(const char *s, size_t n, char c)
{
	while (n > 0)
		if (s[--n] == c)
			return s + n;
	return NULL;
}

/* parseHost */
static int parse_host(struct gurl *u, const char *h, size_t n, te_error *err)
{
	const char *end, *colon, *zone;
	size_t i;

	if (n && h[0] == '[') {
		end = last_of(h, n, ']');
		if (!end)
			return te_error_set(err, TE_EINVALID,
			                    "missing ']' in host");
		i = (size_t)(end - h);
		if (!valid_port(end + 1, n - i - 1))
			return quoted_error(err, "invalid port ", end + 1,
			                    n - i - 1, " after host");
		zone = memmem(h, i, "%25", 3);
		if (zone) {
			if (unescape(&u->host, h, (size_t)(zone - h), ENC_HOST,
			             err) < 0 ||
			    unescape(&u->host, zone, (size_t)(end - zone),
			             ENC_ZONE, err) < 0)
				return err->code;
			return unescape(&u->host, end, n - i, ENC_HOST, err);
		}
	} else if ((colon = last_of(h, n, ':')) != NULL &&
	           !valid_port(colon, n - (size_t)(colon - h))) {
		return quoted_error(err, "invalid port ", colon,
		                    n - (size_t)(colon - h), " after host");
	}
	return unescape(&u->host, h, n, ENC_HOST, err);
}

static bool valid_userinfo(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!alnum((unsigned char)s[i]) &&
		    !(s[i] && strchr("-._:~!$&'()*+,;=%@", s[i])))
			return false;
	return true;
}

/* parseAuthority */
static int parse_authority(struct gurl *u, const char *a, size_t n,
                           te_error *err)
{
	const char *at = last_of(a, n, '@'), *colon;
	size_t ul;

	if (parse_host(u, at ? at + 1 : a, at ? n - (size_t)(at - a) - 1 : n,
	               err) < 0 ||
	    !at)
		return err->code;
	ul = (size_t)(at - a);
	if (!valid_userinfo(a, ul))
		return te_error_set(err, TE_EINVALID,
		                    "net/url: invalid userinfo");
	u->has_user = true;
	colon = memchr(a, ':', ul);
	if (!colon)
		return unescape(&u->user, a, ul, ENC_USER, err);
	u->has_pass = true;
	if (unescape(&u->user, a, (size_t)(colon - a), ENC_USER, err) < 0)
		return err->code;
	return unescape(&u->pass, colon + 1, ul - (size_t)(colon - a) - 1,
	                ENC_USER, err);
}

/* url.URL.setPath / setFragment: the raw form is kept when escaping the
 * unescaped form does not give it back. */
static int set_escaped(te_buf *val, te_buf *raw, const char *s, size_t n,
                       enum url_mode m, te_error *err)
{
	te_buf esc = TE_BUF_INIT(URL_TEXT_MAX);

	if (unescape(val, s, n, m, err) < 0 ||
	    escape(&esc, str(val), val->len, m, err) < 0) {
		te_buf_dispose(&esc);
		return err->code;
	}
	if (esc.len != n || memcmp(str(&esc), s, n) != 0)
		te_buf_put(raw, s, n, err);
	te_buf_dispose(&esc);
	return err->code;
}

/* parse(rawURL, false) */
static int parse_ref(struct gurl *u, const char *s, size_t n, te_error *err)
{
	const char *rest, *q, *slash, *seg_end;
	size_t i, rn;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return te_error_set(
			    err, TE_EINVALID,
			    "net/url: invalid control character "
			    "in URL");
	if (n == 1 && s[0] == '*')
		return te_buf_puts(&u->path, "*", err);
	/* getScheme */
	rest = s;
	rn = n;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			continue;
		if ((c >= '0' && c <= '9') || c == '+' || c == '-' ||
		    c == '.') {
			if (i == 0)
				break;
			continue;
		}
		if (c == ':') {
			if (i == 0)
				return te_error_set(err, TE_EINVALID,
				                    "missing protocol scheme");
			for (rn = 0; rn < i; rn++) {
				char l = s[rn];
				if (l >= 'A' && l <= 'Z')
					l = (char)(l + 32);
				te_buf_put(&u->scheme, &l, 1, err);
			}
			rest = s + i + 1;
			rn = n - i - 1;
		}
		break;
	}
	q = memchr(rest, '?', rn);
	if (q && q == rest + rn - 1) {
		u->force_query = true;
		rn--;
	} else if (q) {
		te_buf_put(&u->query, q + 1, rn - (size_t)(q - rest) - 1, err);
		rn = (size_t)(q - rest);
	}
	if (!(rn && rest[0] == '/')) {
		if (u->scheme.len)
			return te_buf_put(&u->opaque, rest, rn, err);
		slash = memchr(rest, '/', rn);
		seg_end = slash ? slash : rest + rn;
		if (memchr(rest, ':', (size_t)(seg_end - rest)))
			return te_error_set(err, TE_EINVALID,
			                    "first path segment in URL cannot "
			                    "contain colon");
	}
	if ((u->scheme.len || !(rn >= 3 && !memcmp(rest, "///", 3))) &&
	    rn >= 2 && !memcmp(rest, "//", 2)) {
		slash = memchr(rest + 2, '/', rn - 2);
		i = slash ? (size_t)(slash - rest) : rn;
		if (parse_authority(u, rest + 2, i - 2, err) < 0)
			return err->code;
		rest += i;
		rn -= i;
	} else if (u->scheme.len && rn && rest[0] == '/') {
		u->omit_host = true;
	}
	return set_escaped(&u->path, &u->raw_path, rest, rn, ENC_PATH, err);
}

/* url.Parse, its error as Go's url.Error text: parse "URL": why (the
 * fragment's errors name the whole text, the others the part before '#'). */
static int url_parse(struct gurl *u, const char *s, size_t n, te_error *err)
{
	const char *hash = memchr(s, '#', n);
	size_t named = hash ? (size_t)(hash - s) : n;
	te_buf q = TE_BUF_INIT(URL_TEXT_MAX);
	te_error e2 = TE_ERROR_INIT;

	if (parse_ref(u, s, named, &e2) == 0 && hash && hash + 1 < s + n) {
		named = n;
		set_escaped(&u->fragment, &u->raw_fragment, hash + 1,
		            n - (size_t)(hash - s) - 1, ENC_FRAGMENT, &e2);
	}
	if (!e2.code)
		return 0;
	if (e2.code == TE_ENOMEM)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	te_render__quote(&q, s, named, false, err);
	if (!err->code)
		te_error_set(err, TE_EINVALID, "parse %s: %s", str(&q), e2.msg);
	te_buf_dispose(&q);
	return err->code;
}

/* Userinfo.String */
static int userinfo_string(te_buf *b, const struct gurl *u, te_error *err)
{
	if (escape(b, str(&u->user), u->user.len, ENC_USER, err) < 0)
		return err->code;
	if (u->has_pass) {
		te_buf_put(b, ":", 1, err);
		escape(b, str(&u->pass), u->pass.len, ENC_USER, err);
	}
	return err->code;
}

static int put_str(te_render_value *m, const char *k, const te_buf *b,
                   te_error *err)
{
	return te_render_map_set(m, k, strlen(k),
	                         te_render_value_string(str(b), b->len), err);
}

/* urlParse URL: a dict of its parts (Sprig panics on a bad URL). */
static int f_url_parse(te_render_value **out, te_render_call *call, sp_args a,
                       size_t n, void *p, te_error *err)
{
	struct gurl u;
	te_buf hn = TE_BUF_INIT(URL_TEXT_MAX), ui = TE_BUF_INIT(URL_TEXT_MAX);
	te_buf tmp = TE_BUF_INIT(URL_TEXT_MAX);
	te_render_value *m = NULL;
	const char *h, *colon;
	size_t hl;

	(void)n;
	(void)p;
	if (WANT_STR(a[0]) < 0 || sp_steps(call, a[0]->u.s.len / 64, err) < 0)
		return err->code;
	url_init(&u);
	if (url_parse(&u, a[0]->u.s.ptr, a[0]->u.s.len, err) < 0) {
		if (err->code != TE_ENOMEM) {
			te_buf_puts(&tmp, err->msg, err);
			*err = (te_error)TE_ERROR_INIT;
			te_error_set(err, TE_EINVALID,
			             "unable to parse url: %s", str(&tmp));
		}
		goto done;
	}
	/* Hostname: the port and the brackets off */
	h = str(&u.host);
	hl = u.host.len;
	colon = last_of(h, hl, ':');
	if (colon && valid_port(colon, hl - (size_t)(colon - h)))
		hl = (size_t)(colon - h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	te_buf_put(&hn, h, hl, err);
	if (u.has_user)
		userinfo_string(&ui, &u, err);
	m = te_render_value_map();
	if (!m) {
		te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	if (put_str(m, "scheme", &u.scheme, err) < 0 ||
	    put_str(m, "host", &u.host, err) < 0 ||
	    put_str(m, "hostname", &hn, err) < 0 ||
	    put_str(m, "path", &u.path, err) < 0 ||
	    put_str(m, "query", &u.query, err) < 0 ||
	    put_str(m, "opaque", &u.opaque, err) < 0 ||
	    put_str(m, "fragment", &u.fragment, err) < 0 ||
	    put_str(m, "userinfo", &ui, err) < 0)
		goto done;
	*out = m;
	m = NULL;
done:
	te_render_value_unref(m);
	te_buf_dispose(&hn);
	te_buf_dispose(&ui);
	te_buf_dispose(&tmp);
	url_dispose(&u);
	return err->code;
}

/* dictGetOrEmpty: a string, "" when absent, Go's panic otherwise. */
static int dict_str(te_buf *b, const te_render_value *d, const char *key,
                    te_error *err)
{
	const te_render_value *v = te_render_map_get(d, key, strlen(key));

	if (!v)
		return 0;
	if (v->kind == TE_RENDER_NIL)
		return te_error_set(err, TE_EINVALID,
		                    "runtime error: invalid memory address or "
		                    "nil pointer dereference");
	if (v->kind != TE_RENDER_STRING)
		return te_error_set(err, TE_EINVALID,
		                    "unable to parse %s key, must be of type "
		                    "string, but %s found",
		                    key, sp_kind(v));
	return te_buf_put(b, v->u.s.ptr, v->u.s.len, err);
}

/* URL.String */
static int url_string(te_buf *b, const struct gurl *u, te_error *err)
{
	te_buf path = TE_BUF_INIT(URL_TEXT_MAX);
	const char *slash, *seg_end;

	if (u->scheme.len) {
		te_buf_put(b, str(&u->scheme), u->scheme.len, err);
		te_buf_put(b, ":", 1, err);
	}
	if (u->opaque.len) {
		te_buf_put(b, str(&u->opaque), u->opaque.len, err);
	} else {
		if ((u->scheme.len || u->host.len || u->has_user) &&
		    !(u->omit_host && !u->host.len && !u->has_user)) {
			if (u->host.len || u->path.len || u->has_user)
				te_buf_puts(b, "//", err);
			if (u->has_user) {
				userinfo_string(b, u, err);
				te_buf_put(b, "@", 1, err);
			}
			escape(b, str(&u->host), u->host.len, ENC_HOST, err);
		}
		if (u->path.len == 1 && u->path.ptr[0] == '*')
			te_buf_puts(&path, "*", err);
		else
			escape(&path, str(&u->path), u->path.len, ENC_PATH,
			       err);
		if (path.len && path.ptr[0] != '/' && u->host.len)
			te_buf_put(b, "/", 1, err);
		if (b->len == 0) {
			slash = memchr(str(&path), '/', path.len);
			seg_end = slash ? slash : str(&path) + path.len;
			if (memchr(str(&path), ':',
			           (size_t)(seg_end - str(&path))))
				te_buf_puts(b, "./", err);
		}
		te_buf_put(b, str(&path), path.len, err);
	}
	if (u->force_query || u->query.len) {
		te_buf_put(b, "?", 1, err);
		te_buf_put(b, str(&u->query), u->query.len, err);
	}
	if (u->fragment.len) {
		te_buf_put(b, "#", 1, err);
		escape(b, str(&u->fragment), u->fragment.len, ENC_FRAGMENT,
		       err);
	}
	te_buf_dispose(&path);
	return err->code;
}

/* urlJoin DICT: the URL of the dict's parts. */
static int f_url_join(te_render_value **out, te_render_call *call, sp_args a,
                      size_t n, void *p, te_error *err)
{
	struct gurl u, tu;
	te_buf b = TE_BUF_INIT(sp_out_max(call)),
	       ui = TE_BUF_INIT(URL_TEXT_MAX);
	te_buf tmp = TE_BUF_INIT(URL_TEXT_MAX);

	(void)n;
	(void)p;
	if (sp_want(a[0], TE_RENDER_MAP, "map[string]interface {}", err) < 0)
		return err->code;
	url_init(&u);
	url_init(&tu);
	if (dict_str(&u.scheme, a[0], "scheme", err) < 0 ||
	    dict_str(&u.host, a[0], "host", err) < 0 ||
	    dict_str(&u.path, a[0], "path", err) < 0 ||
	    dict_str(&u.query, a[0], "query", err) < 0 ||
	    dict_str(&u.opaque, a[0], "opaque", err) < 0 ||
	    dict_str(&u.fragment, a[0], "fragment", err) < 0 ||
	    dict_str(&ui, a[0], "userinfo", err) < 0)
		goto done;
	if (ui.len) {
		/* url.Parse(fmt.Sprintf("proto://%s@host", userinfo)).User */
		te_buf_puts(&tmp, "proto://", err);
		te_buf_put(&tmp, str(&ui), ui.len, err);
		te_buf_puts(&tmp, "@host", err);
		if (!err->code && url_parse(&tu, str(&tmp), tmp.len, err) < 0) {
			te_buf_clear(&tmp);
			te_buf_puts(&tmp, err->msg, err);
			*err = (te_error)TE_ERROR_INIT;
			te_error_set(err, TE_EINVALID,
			             "unable to parse userinfo in dict: %s",
			             str(&tmp));
			goto done;
		}
		u.has_user = tu.has_user;
		u.has_pass = tu.has_pass;
		te_buf_put(&u.user, str(&tu.user), tu.user.len, err);
		te_buf_put(&u.pass, str(&tu.pass), tu.pass.len, err);
	}
	if (url_string(&b, &u, err) < 0)
		goto done;
done:
	te_buf_dispose(&ui);
	te_buf_dispose(&tmp);
	url_dispose(&u);
	url_dispose(&tu);
	if (err->code) {
		te_buf_dispose(&b);
		return err->code;
	}
	return sp_ret_buf(out, &b, err);
}

const struct sp_entry te_render__sp_url[] = {
    {"urlJoin", f_url_join, 1, 1, NULL},
    {"urlParse", f_url_parse, 1, 1, NULL},
};
const size_t te_render__sp_url_len =
    sizeof(te_render__sp_url) / sizeof(te_render__sp_url[0]);
