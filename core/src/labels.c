/*
 * labels.c - ordered label sets and werf export's --add-label parsing
 * (werf-export.md 4.4; werf cmd/werf/export/export.go,
 * cmd/werf/common/key_value.go and util.PredefinedValuesByEnvNamePrefix).
 */
#include "tagexport/labels.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/buf.h"
#include "utf8_int.h"

/* A config with more labels than this is hostile, not real. */
#define LABELS_MAX 10000

#define ENV_PREFIX "WERF_EXPORT_ADD_LABEL_"
#define ENV_SEPARATOR "WERF_EXPORT_ADD_LABEL_SEPARATOR"

struct te_labels {
	char **keys;
	char **values;
	size_t count;
	size_t cap;
};

int te_labels_new(te_labels **out, te_error *err)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}

void te_labels_free(te_labels *labels)
{
	size_t i;

	if (!labels)
		return;
	for (i = 0; i < labels->count; i++) {
		free(labels->keys[i]);
		free(labels->values[i]);
	}
	free(labels->keys);
	free(labels->values);
	free(labels);
}

static int find_key(const te_labels *labels, const char *key, size_t len)
{
	size_t i;

	for (i = 0; i < labels->count; i++)
		if (strncmp(labels->keys[i], key, len) == 0 &&
		    labels->keys[i][len] == '\0')
			return (int)i;
	return -1;
}

static int grow(te_labels *labels, te_error *err)
{
	size_t cap;
	char **k, **v;

	if (labels->count < labels->cap)
		return 0;
	if (labels->count >= LABELS_MAX)
		return te_error_set(err, TE_EINVALID, "more than %d labels",
		                    LABELS_MAX);
	cap = labels->cap ? labels->cap * 2 : 16;
	k = realloc(labels->keys, cap * sizeof(*k));
	if (!k)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	labels->keys = k;
	v = realloc(labels->values, cap * sizeof(*v));
	if (!v)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	labels->values = v;
	labels->cap = cap;
	return 0;
}

/* Set key (klen bytes) to value (vlen bytes); neither need be terminated. */
static int set_n(te_labels *labels, const char *key, size_t klen,
                 const char *value, size_t vlen, te_error *err)
{
	char *k = NULL, *v = NULL;
	int i, rc;

	if (!(v = strndup(value, vlen)))
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if ((i = find_key(labels, key, klen)) >= 0) {
		free(labels->values[i]);
		labels->values[i] = v;
		return 0;
	}
	if ((rc = grow(labels, err)) < 0)
		goto done;
	if (!(k = strndup(key, klen))) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	labels->keys[labels->count] = k;
	labels->values[labels->count] = v;
	labels->count++;
	return 0;
done:
	free(k);
	free(v);
	return rc;
}

int te_labels_set(te_labels *labels, const char *key, const char *value,
                  te_error *err)
{
	return set_n(labels, key, strlen(key), value, strlen(value), err);
}

size_t te_labels_count(const te_labels *labels)
{
	return labels->count;
}

const char *te_labels_key(const te_labels *labels, size_t i)
{
	return i < labels->count ? labels->keys[i] : NULL;
}

const char *te_labels_value(const te_labels *labels, size_t i)
{
	return i < labels->count ? labels->values[i] : NULL;
}

const char *te_labels_get(const te_labels *labels, const char *key)
{
	int i = find_key(labels, key, strlen(key));

	return i >= 0 ? labels->values[i] : NULL;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int bad_pair(const char *value, const char *sep, const char *piece,
                    size_t plen, te_error *err)
{
	char qv[200], qs[40], qp[200];
	char *p = strndup(piece, plen);

	if (!p)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	te__goquote(qv, sizeof(qv), value);
	te__goquote(qs, sizeof(qs), sep);
	te__goquote(qp, sizeof(qp), p);
	free(p);
	return te_error_set(err, TE_EINVALID,
	                    "unsupported --add-label value: invalid value %s "
	                    "(%s): invalid key=value pair %s (\"=\")",
	                    qv, qs, qp);
}

/* One piece "key=value": split at the first '=', key must be non-empty. */
static int parse_piece(te_labels *labels, const char *value, const char *sep,
                       const char *piece, size_t plen, te_error *err)
{
	const char *eq = memchr(piece, '=', plen);

	if (!eq || eq == piece)
		return bad_pair(value, sep, piece, plen, err);
	return set_n(labels, piece, (size_t)(eq - piece), eq + 1,
	             plen - (size_t)(eq - piece) - 1, err);
}

/*
 * Go's strings.Split(value, sep) then keyValueArrayToMap: an empty value
 * is one empty piece (an error), except that an empty separator splits
 * into code points and yields no piece at all for an empty value.
 */
static int parse_value(te_labels *labels, const char *value, const char *sep,
                       te_error *err)
{
	size_t slen = strlen(sep), vlen = strlen(value), n;
	const char *p = value, *hit;
	uint32_t cp;
	int rc;

	if (slen == 0) {
		while (*p) {
			n = te__utf8_next((const unsigned char *)p,
			                  vlen - (size_t)(p - value), &cp);
			if ((rc = parse_piece(labels, value, sep, p, n, err)) <
			    0)
				return rc;
			p += n;
		}
		return 0;
	}
	for (;;) {
		hit = strstr(p, sep);
		n = hit ? (size_t)(hit - p) : strlen(p);
		if ((rc = parse_piece(labels, value, sep, p, n, err)) < 0)
			return rc;
		if (!hit)
			return 0;
		p = hit + slen;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int te_labels_parse_werf(te_labels **out, const char *const *envp,
                         const char *const *flag_values, size_t nflags,
                         const char *separator, te_error *err)
{
	te_labels *labels = NULL;
	const char **env = NULL;
	size_t nenv = 0, total = 0, i;
	const char *sep = separator;
	int rc;

	*out = NULL;
	for (i = 0; envp && envp[i]; i++) {
		total++;
		/* like os.Getenv, the first entry of a duplicated name wins */
		if (!sep && has_prefix(envp[i], ENV_SEPARATOR "=") &&
		    envp[i][strlen(ENV_SEPARATOR "=")] != '\0')
			sep = envp[i] + strlen(ENV_SEPARATOR "=");
	}
	if (!sep)
		sep = "\n";
	if (total && !(env = calloc(total, sizeof(*env)))) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < total; i++) {
		if (!strchr(envp[i], '='))
			continue;
		if (has_prefix(envp[i], ENV_PREFIX) &&
		    !has_prefix(envp[i], ENV_SEPARATOR))
			env[nenv++] = envp[i];
	}
	/* werf sorts the whole environ, so "NAME=VALUE" strings compare. */
	if (nenv > 1)
		qsort(env, nenv, sizeof(*env), cmp_str);
	if ((rc = te_labels_new(&labels, err)) < 0)
		goto done;
	for (i = 0; i < nenv; i++)
		if ((rc = parse_value(labels, strchr(env[i], '=') + 1, sep,
		                      err)) < 0)
			goto done;
	for (i = 0; i < nflags; i++)
		if ((rc = parse_value(labels, flag_values[i], sep, err)) < 0)
			goto done;
	*out = labels;
	labels = NULL;
done:
	te_labels_free(labels);
	free(env);
	return rc;
}
