/*
 * werfcfg_yaml.c - werf's fromYaml and toYaml with gopkg.in/yaml.v2
 * v2.4.0's rules (https://pkg.go.dev/gopkg.in/yaml.v2): yaml.v2 is a Go
 * port of libyaml, so libyaml's own parser and emitter give the same
 * syntax; what yaml.v2 adds (the resolution of plain scalars, the key
 * order, the quoting of strings that would read back as another type,
 * Go's float format) is done here.
 */
#include "werfcfg_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "tagexport/buf.h"

#define NODES_MAX 1000000 /* nodes built, aliases included */
#define DEPTH_MAX 512

/* ---- resolving plain scalars (yaml.v2 resolve.go) --------------------- */

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static const char *const yes_words[] = {"y",    "Y",    "yes",  "Yes",
                                        "YES",  "on",   "On",   "ON",
                                        "true", "True", "TRUE", NULL};
static const char *const no_words[] = {"n",     "N",     "no",    "No",
                                       "NO",    "off",   "Off",   "OFF",
                                       "false", "False", "FALSE", NULL};
static const char *const null_words[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const inf_words[] = {".inf",  ".Inf",  ".INF", "+.inf",
                                        "+.Inf", "+.INF", NULL};
static const char *const ninf_words[] = {"-.inf", "-.Inf", "-.INF", NULL};
static const char *const nan_words[] = {".nan", ".NaN", ".NAN", NULL};

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool yaml_style_float(const char *s)
{
	size_t digits = 0;

	if (*s == '-' || *s == '+')
		s++;
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++)
			digits++;
		if (!digits)
			return false;
	} else {
		for (; isdigit((unsigned char)*s); s++)
			digits++;
		if (!digits)
			return false;
		if (*s == '.')
			for (s++; isdigit((unsigned char)*s); s++)
				;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
	}
	return *s == '\0';
}

/* ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$ */
static bool base60_float(const char *s)
{
	int groups = 0;

	if (*s == '-' || *s == '+')
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s) || *s == '_')
		s++;
	while (*s == ':') {
		s++;
		if (s[0] >= '0' && s[0] <= '5' && isdigit((unsigned char)s[1]))
			s += 2;
		else if (isdigit((unsigned char)*s))
			s++;
		else
			return false;
		groups++;
	}
	if (!groups)
		return false;
	if (*s == '.')
		for (s++; isdigit((unsigned char)*s) || *s == '_'; s++)
			;
	return *s == '\0';
}

/* Go's strconv.ParseInt(s, 0, 64) after yaml.v2 dropped underscores. */
static bool go_parse_int(int64_t *out, const char *s)
{
	bool neg = false;
	int base = 10;
	unsigned long long v = 0, limit;
	const char *p = s;

	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		base = 16, p += 2;
	else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
		base = 8, p += 2;
	else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
		base = 2, p += 2;
	else if (p[0] == '0' && p[1])
		base = 8, p += 1;
	if (!*p)
		return false;
	limit = neg ? (unsigned long long)INT64_MAX + 1 : INT64_MAX;
	for (; *p; p++) {
		int d = isdigit((unsigned char)*p) ? *p - '0'
		        : isalpha((unsigned char)*p)
		            ? tolower((unsigned char)*p) - 'a' + 10
		            : 99;

		if (d >= base || v > (limit - (unsigned)d) / (unsigned)base)
			return false;
		v = v * (unsigned)base + (unsigned)d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* yaml.v2 reads "YYYY-..." dates as timestamps: only the shape matters
 * here (toYaml quotes them; fromYaml keeps the text). */
static bool timestamp_like(const char *s)
{
	int i, n;

	for (i = 0; i < 4; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	if (s[4] != '-')
		return false;
	s += 5;
	for (n = 0; isdigit((unsigned char)s[n]); n++)
		;
	if (n < 1 || n > 2 || s[n] != '-')
		return false;
	s += n + 1;
	for (n = 0; isdigit((unsigned char)s[n]); n++)
		;
	if (n < 1 || n > 2)
		return false;
	s += n;
	return *s == '\0' || *s == 'T' || *s == 't' || *s == ' ';
}

enum rkind { R_STR, R_NULL, R_BOOL, R_INT, R_FLOAT, R_OTHER };

/* What a plain scalar means to yaml.v2; *i, *f, *b get the value. */
static enum rkind resolve(const char *s, int64_t *i, double *f, bool *b)
{
	char *plain, *q;
	const char *p;
	enum rkind k = R_STR;

	if (in_list(s, null_words))
		return R_NULL;
	if (in_list(s, yes_words) || in_list(s, no_words)) {
		*b = in_list(s, yes_words);
		return R_BOOL;
	}
	if (in_list(s, inf_words) || in_list(s, ninf_words) ||
	    in_list(s, nan_words)) {
		*f = in_list(s, nan_words)   ? NAN
		     : in_list(s, inf_words) ? INFINITY
		                             : -INFINITY;
		return R_FLOAT;
	}
	if (!strcmp(s, "<<"))
		return R_STR; /* yaml.v2 writes the merge key plain */
	if (!strchr("+-.0123456789", s[0]))
		return R_STR;
	if (timestamp_like(s))
		return R_OTHER;
	plain = malloc(strlen(s) + 1);
	if (!plain)
		return R_STR;
	for (p = s, q = plain; *p; p++)
		if (*p != '_')
			*q++ = *p;
	*q = '\0';
	if (go_parse_int(i, plain))
		k = R_INT;
	else if (yaml_style_float(plain)) {
		*f = strtod(plain, NULL);
		k = R_FLOAT;
	} else if (base60_float(s))
		k = R_OTHER;
	free(plain);
	return k;
}

/* ---- fromYaml ---------------------------------------------------------- */

struct load {
	yaml_document_t *doc;
	unsigned long nodes;
	te_error *err;
};

static te_render_value *scalar_value(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;
	int64_t i = 0;
	double f = 0;
	bool b = false;

	/* the loader tags every untagged scalar !!str: only the style
	 * tells plain from quoted */
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return te_render_value_string(s, len);
	switch (resolve(s, &i, &f, &b)) {
	case R_NULL:
		return te_render_value_nil();
	case R_BOOL:
		return te_render_value_bool(b);
	case R_INT:
		return te_render_value_int(i);
	case R_FLOAT:
		return te_render_value_float(f);
	default:
		return te_render_value_string(s, len);
	}
}

static int load_node(te_render_value **out, struct load *l,
                     const yaml_node_t *n, int depth);

static const char *scalar_tag(const yaml_node_t *n)
{
	int64_t i;
	double f;
	bool b;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return "!!str";
	switch (resolve((const char *)n->data.scalar.value, &i, &f, &b)) {
	case R_INT:
		return "!!int";
	case R_FLOAT:
		return "!!float";
	case R_BOOL:
		return "!!bool";
	default:
		return "!!str";
	}
}

static int load_children(te_render_value *v, struct load *l,
                         const yaml_node_t *n, int depth)
{
	yaml_node_item_t *it;
	yaml_node_pair_t *pr;
	te_render_value *child = NULL;

	if (n->type == YAML_SEQUENCE_NODE) {
		for (it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			if (load_node(&child, l,
			              yaml_document_get_node(l->doc, *it),
			              depth + 1) < 0 ||
			    te_render_list_push(v, child, l->err) < 0)
				return l->err->code;
		}
		return 0;
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		const yaml_node_t *k = yaml_document_get_node(l->doc, pr->key);

		/* the value model has string keys: a key is its text */
		if (!k || k->type != YAML_SCALAR_NODE)
			return te_error_set(l->err, TE_EINVALID,
			                    "yaml: line %lu: a key must be a "
			                    "scalar",
			                    (unsigned long)k->start_mark.line +
			                        1);
		if (load_node(&child, l,
		              yaml_document_get_node(l->doc, pr->value),
		              depth + 1) < 0 ||
		    te_render_map_set(v, (const char *)k->data.scalar.value,
		                      k->data.scalar.length, child, l->err) < 0)
			return l->err->code;
	}
	return 0;
}

static int load_node(te_render_value **out, struct load *l,
                     const yaml_node_t *n, int depth)
{
	te_render_value *v;

	*out = NULL;
	if (!n)
		return te_error_set(l->err, TE_EINVALID, "yaml: bad node");
	if (++l->nodes > NODES_MAX || depth > DEPTH_MAX)
		return te_error_set(l->err, TE_EINVALID,
		                    "yaml: more than %d nodes or %d levels "
		                    "(aliases count every time)",
		                    NODES_MAX, DEPTH_MAX);
	if (n->type == YAML_SCALAR_NODE)
		v = scalar_value(n);
	else
		v = n->type == YAML_SEQUENCE_NODE ? te_render_value_list()
		                                  : te_render_value_map();
	if (!v)
		return te_error_set(l->err, TE_ENOMEM, "out of memory");
	if (n->type != YAML_SCALAR_NODE && load_children(v, l, n, depth) < 0) {
		te_render_value_unref(v);
		return l->err->code;
	}
	*out = v;
	return 0;
}

/* yaml.v2's parser error: its line is the 0-based mark, plus one for
 * scanner errors only, else the context's. */
static int parse_fail(const yaml_parser_t *p, te_error *err)
{
	unsigned long line = p->problem_mark.line;

	if (line != 0) {
		if (p->error == YAML_SCANNER_ERROR)
			line++;
	} else {
		line = p->context_mark.line;
	}
	if (line)
		return te_error_set(err, TE_EINVALID, "yaml: line %lu: %s",
		                    line,
		                    p->problem ? p->problem
		                               : "unknown problem parsing "
		                                 "YAML content");
	return te_error_set(err, TE_EINVALID, "yaml: %s",
	                    p->problem ? p->problem
	                               : "unknown problem parsing YAML "
	                                 "content");
}

int te_werfcfg__from_yaml(te_render_value **out, const char *text, size_t len,
                          te_error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	struct load l = {&doc, 0, err};
	int rc;

	*out = NULL;
	if (len > TE_WERFCFG_YAML_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "yaml: input larger than %zu bytes",
		                    TE_WERFCFG_YAML_MAX);
	if (!yaml_parser_initialize(&parser))
		return te_error_set(err, TE_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = parse_fail(&parser, err);
		yaml_parser_delete(&parser);
		return rc;
	}
	root = yaml_document_get_root_node(&doc);
	if (!root ||
	    (root->type == YAML_SCALAR_NODE &&
	     resolve((const char *)root->data.scalar.value, &(int64_t){0},
	             &(double){0}, &(bool){0}) == R_NULL &&
	     root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
		*out = te_render_value_map();
		rc = *out ? 0 : te_error_set(err, TE_ENOMEM, "out of memory");
	} else if (root->type == YAML_SEQUENCE_NODE) {
		/* yaml.v2 puts a newline and indent before "line" */
		rc =
		    te_error_set(err, TE_EINVALID,
		                 "yaml: unmarshal errors: line %lu: cannot "
		                 "unmarshal !!seq into map[string]interface {}",
		                 (unsigned long)root->start_mark.line + 1);
	} else if (root->type != YAML_MAPPING_NODE) {
		rc = te_error_set(
		    err, TE_EINVALID,
		    "yaml: unmarshal errors: line %lu: cannot "
		    "unmarshal %s `%.64s` into map[string]interface "
		    "{}",
		    (unsigned long)root->start_mark.line + 1, scalar_tag(root),
		    (const char *)root->data.scalar.value);
	} else {
		rc = load_node(out, &l, root, 0);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- toYaml ------------------------------------------------------------ */

static int write_out(void *data, unsigned char *buffer, size_t size)
{
	te_error e = TE_ERROR_INIT;

	return te_buf_put(data, buffer, size, &e) == 0;
}

/* Go's strconv.FormatFloat(f, 'g', -1, 64): the shortest digits that
 * read back, %e form when the exponent is < -4 or >= 6 (Go decides with
 * precision 6 for the shortest form). */
static void go_float(char *out, size_t cap, double f)
{
	char buf[40], digits[24], *e;
	int prec, exp, nd = 0, i;
	size_t o = 0;

	if (isnan(f) || isinf(f)) {
		snprintf(out, cap, "%s",
		         isnan(f) ? ".nan" : (f > 0 ? ".inf" : "-.inf"));
		return;
	}
	if (f == 0) {
		snprintf(out, cap, "%s", signbit(f) ? "-0" : "0");
		return;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, f);
		if (strtod(buf, NULL) == f)
			break;
	}
	e = strchr(buf, 'e');
	exp = atoi(e + 1);
	for (i = buf[0] == '-'; buf + i < e; i++)
		if (isdigit((unsigned char)buf[i]))
			digits[nd++] = buf[i];
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	if (f < 0)
		out[o++] = '-';
	if (exp < -4 || exp >= 6) {
		snprintf(out + o, cap - o, "%c%s%.*s%c%c%02d", digits[0],
		         nd > 1 ? "." : "", nd - 1, digits + 1, 'e',
		         exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
		return;
	}
	if (exp < 0) {
		snprintf(out + o, cap - o, "0.%0*d%s", -exp - 1, 0, digits);
		if (-exp - 1 == 0)
			snprintf(out + o, cap - o, "0.%s", digits);
		return;
	}
	for (i = 0; i <= exp || i < nd; i++) {
		if (i == exp + 1)
			out[o++] = '.';
		out[o++] = i < nd ? digits[i] : '0';
	}
	out[o] = '\0';
}

/* yaml.v2's map key order (keyList.Less) for string keys: runs of digits
 * compare as numbers, letters before other characters. */
static bool is_letter(unsigned char c)
{
	return isalpha(c) || c >= 0x80;
}

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	size_t i, ai, bi;

	for (i = 0; i < al && i < bl; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		bool xl, yl;
		long long an = 0, bn = 0;
		size_t j;

		if (x == y)
			continue;
		xl = is_letter(x);
		yl = is_letter(y);
		if (xl && yl)
			return x < y ? -1 : 1;
		if (xl || yl)
			return yl ? -1 : 1;
		if (x == '0' || y == '0')
			for (j = i; j-- > 0 && isdigit((unsigned char)a[j]);)
				if (a[j] != '0') {
					an = bn = 1;
					break;
				}
		/* Go's int64 arithmetic wraps on long digit runs; so does
		 * this, in unsigned arithmetic (signed overflow is undefined
		 * in C), to sort keys exactly as yaml.v2 does. */
		for (ai = i; ai < al && isdigit((unsigned char)a[ai]); ai++)
			an = (long long)((unsigned long long)an * 10 +
			                 (unsigned)(a[ai] - '0'));
		for (bi = i; bi < bl && isdigit((unsigned char)b[bi]); bi++)
			bn = (long long)((unsigned long long)bn * 10 +
			                 (unsigned)(b[bi] - '0'));
		if (an != bn)
			return an < bn ? -1 : 1;
		if (ai != bi)
			return ai < bi ? -1 : 1;
		return x < y ? -1 : 1;
	}
	return al < bl ? -1 : al > bl ? 1 : 0;
}

struct emit {
	yaml_emitter_t e;
	te_error *err;
	unsigned long nodes;
};

static int emit_event(struct emit *m, yaml_event_t *ev)
{
	if (!yaml_emitter_emit(&m->e, ev))
		return te_error_set(m->err, TE_EINVALID, "toYaml: %s",
		                    m->e.problem ? m->e.problem
		                                 : "output too large");
	return 0;
}

static int emit_scalar(struct emit *m, const char *s, size_t len,
                       yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL,
	                                  (yaml_char_t *)(uintptr_t)s, (int)len,
	                                  1, 1, style))
		return te_error_set(m->err, TE_ENOMEM, "out of memory");
	return emit_event(m, &ev);
}

/* yaml.v2 stringv: literal style with a newline; double quotes when the
 * plain text would read back as something else; else plain (libyaml
 * quotes it anyway if plain cannot hold it). */
static int emit_string(struct emit *m, const char *s, size_t len)
{
	int64_t i;
	double f;
	bool b;

	if (memchr(s, '\n', len))
		return emit_scalar(m, s, len, YAML_LITERAL_SCALAR_STYLE);
	if (strlen(s) != len || resolve(s, &i, &f, &b) != R_STR ||
	    base60_float(s))
		return emit_scalar(m, s, len, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	return emit_scalar(m, s, len, YAML_PLAIN_SCALAR_STYLE);
}

struct kv {
	const char *k;
	size_t len;
	const te_render_value *v;
};

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;

	return key_cmp(x->k, x->len, y->k, y->len);
}

static int emit_value(struct emit *m, const te_render_value *v, int depth);

static int emit_map(struct emit *m, const te_render_value *v, int depth)
{
	size_t n = te_render_value_len(v), i;
	struct kv *kv = calloc(n ? n : 1, sizeof(*kv));
	yaml_event_t ev;
	int rc = 0;

	if (!kv)
		return te_error_set(m->err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		kv[i].k = te_render_map_key_at(v, i, &kv[i].len);
		kv[i].v = te_render_map_value_at(v, i);
	}
	qsort(kv, n, sizeof(*kv), kv_cmp);
	yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	                                    YAML_BLOCK_MAPPING_STYLE);
	rc = emit_event(m, &ev);
	for (i = 0; i < n && rc == 0; i++) {
		rc = emit_string(m, kv[i].k, kv[i].len);
		if (rc == 0)
			rc = emit_value(m, kv[i].v, depth + 1);
	}
	if (rc == 0) {
		yaml_mapping_end_event_initialize(&ev);
		rc = emit_event(m, &ev);
	}
	free(kv);
	return rc;
}

static int emit_value(struct emit *m, const te_render_value *v, int depth)
{
	yaml_event_t ev;
	char num[64];
	size_t i, len = 0;
	const char *s;
	int rc = 0;

	if (++m->nodes > NODES_MAX || depth > DEPTH_MAX)
		return te_error_set(m->err, TE_EINVALID,
		                    "toYaml: more than %d nodes or %d levels",
		                    NODES_MAX, DEPTH_MAX);
	switch (te_render_value_kind(v)) {
	case TE_RENDER_BOOL:
		s = te_render_value_bool_get(v) ? "true" : "false";
		return emit_scalar(m, s, strlen(s), YAML_PLAIN_SCALAR_STYLE);
	case TE_RENDER_INT:
		snprintf(num, sizeof(num), "%lld",
		         (long long)te_render_value_int_get(v));
		return emit_scalar(m, num, strlen(num),
		                   YAML_PLAIN_SCALAR_STYLE);
	case TE_RENDER_FLOAT:
		go_float(num, sizeof(num), te_render_value_float_get(v));
		return emit_scalar(m, num, strlen(num),
		                   YAML_PLAIN_SCALAR_STYLE);
	case TE_RENDER_STRING:
		s = te_render_value_str(v, &len);
		return emit_string(m, s, len);
	case TE_RENDER_LIST:
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                     YAML_BLOCK_SEQUENCE_STYLE);
		rc = emit_event(m, &ev);
		for (i = 0; i < te_render_value_len(v) && rc == 0; i++)
			rc = emit_value(m, te_render_list_at(v, i), depth + 1);
		if (rc == 0) {
			yaml_sequence_end_event_initialize(&ev);
			rc = emit_event(m, &ev);
		}
		return rc;
	case TE_RENDER_MAP:
		return emit_map(m, v, depth);
	default:
		return emit_scalar(m, "null", 4, YAML_PLAIN_SCALAR_STYLE);
	}
}

typedef int (*emit_body_fn)(struct emit *m, const void *payload);

/* One YAML document whose body emit_body writes, as yaml.Marshal frames
 * it, with one trailing newline removed (werf's toYaml; `werf config
 * graph` trims the same way).  *out is heap, NUL-terminated. */
static int emit_document(char **out, size_t *out_len, emit_body_fn emit_body,
                         const void *payload, te_error *err)
{
	struct emit m;
	te_buf buf = TE_BUF_INIT(TE_WERFCFG_YAML_MAX);
	yaml_event_t ev;
	int rc;

	memset(&m, 0, sizeof(m));
	m.err = err;
	if (!yaml_emitter_initialize(&m.e))
		return te_error_set(err, TE_ENOMEM, "out of memory");
	yaml_emitter_set_output(&m.e, write_out, &buf);
	yaml_emitter_set_unicode(&m.e, 1);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	rc = emit_event(&m, &ev);
	if (rc == 0) {
		yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
		rc = emit_event(&m, &ev);
	}
	if (rc == 0)
		rc = emit_body(&m, payload);
	if (rc == 0) {
		yaml_document_end_event_initialize(&ev, 1);
		rc = emit_event(&m, &ev);
	}
	if (rc == 0) {
		yaml_stream_end_event_initialize(&ev);
		rc = emit_event(&m, &ev);
	}
	if (rc == 0 && !yaml_emitter_flush(&m.e))
		rc = te_error_set(err, TE_EINVALID, "toYaml: output too large");
	yaml_emitter_delete(&m.e);
	if (rc < 0) {
		te_buf_dispose(&buf);
		return rc;
	}
	/* libyaml 0.2.5 closes a document ending in a `|+` scalar with
	 * "..."; yaml.v2's older emitter does not */
	if (buf.len >= 5 && !memcmp(buf.ptr + buf.len - 5, "\n...\n", 5))
		buf.len -= 4;
	if (buf.len && buf.ptr[buf.len - 1] == '\n')
		buf.len--;
	*out_len = buf.len;
	*out = te_buf_detach(&buf);
	if (!*out)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	(*out)[*out_len] = '\0';
	return 0;
}

static int emit_root_value(struct emit *m, const void *payload)
{
	return emit_value(m, payload, 0);
}

int te_werfcfg__to_yaml(char **out, size_t *out_len, const te_render_value *v,
                        te_error *err)
{
	return emit_document(out, out_len, emit_root_value, v, err);
}

static int emit_block(struct emit *m, bool mapping, bool start)
{
	yaml_event_t ev;

	if (mapping && start)
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		                                    YAML_BLOCK_MAPPING_STYLE);
	else if (mapping)
		yaml_mapping_end_event_initialize(&ev);
	else if (start)
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                     YAML_BLOCK_SEQUENCE_STYLE);
	else
		yaml_sequence_end_event_initialize(&ev);
	return emit_event(m, &ev);
}

static int emit_cstr(struct emit *m, const char *s)
{
	return emit_string(m, s, strlen(s));
}

/* key: [a, b] as a block sequence; nothing for an empty list
 * (omitempty). */
static int emit_name_list(struct emit *m, const char *key,
                          const char *const *names, size_t n)
{
	size_t i;
	int rc;

	if (n == 0)
		return 0;
	if ((rc = emit_cstr(m, key)) < 0 ||
	    (rc = emit_block(m, false, true)) < 0)
		return rc;
	for (i = 0; i < n && rc == 0; i++)
		rc = emit_cstr(m, names[i]);
	return rc < 0 ? rc : emit_block(m, false, false);
}

/* werf's imageGraph{image, dependsOn{from, import, dependencies}}, every
 * field omitempty, in struct field order (yaml.v2 keeps it). */
static int emit_graph_node(struct emit *m, const te_werfcfg_graph_node *g)
{
	bool depends = g->from || g->nimports || g->ndependencies;
	int rc = emit_block(m, true, true);

	if (rc == 0 && g->image[0] &&
	    ((rc = emit_cstr(m, "image")) < 0 ||
	     (rc = emit_cstr(m, g->image)) < 0))
		return rc;
	if (rc == 0 && depends) {
		if ((rc = emit_cstr(m, "dependsOn")) < 0 ||
		    (rc = emit_block(m, true, true)) < 0)
			return rc;
		if (g->from && ((rc = emit_cstr(m, "from")) < 0 ||
		                (rc = emit_cstr(m, g->from)) < 0))
			return rc;
		if ((rc = emit_name_list(m, "import", g->imports,
		                         g->nimports)) < 0 ||
		    (rc = emit_name_list(m, "dependencies", g->dependencies,
		                         g->ndependencies)) < 0 ||
		    (rc = emit_block(m, true, false)) < 0)
			return rc;
	}
	return rc < 0 ? rc : emit_block(m, true, false);
}

struct graph {
	const te_werfcfg_graph_node *nodes;
	size_t n;
};

static int emit_graph(struct emit *m, const void *payload)
{
	const struct graph *g = payload;
	size_t i;
	int rc = emit_block(m, false, true);

	for (i = 0; i < g->n && rc == 0; i++)
		rc = emit_graph_node(m, &g->nodes[i]);
	return rc < 0 ? rc : emit_block(m, false, false);
}

int te_werfcfg__graph_yaml(char **out, size_t *out_len,
                           const te_werfcfg_graph_node *nodes, size_t n,
                           te_error *err)
{
	struct graph g = {nodes, n};

	return emit_document(out, out_len, emit_graph, &g, err);
}
