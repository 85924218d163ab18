/*
 * imagespec.c - werf's imageSpec: merge, canonical text, apply to an image
 * config (see imagespec.h for the rules and their sources).
 *
 * Config field names are those of the Docker image config and of the OCI
 * image config "config" object (https://github.com/opencontainers/
 * image-spec/blob/main/config.md): User, ExposedPorts, Env, Entrypoint,
 * Cmd, Volumes, WorkingDir, Labels, StopSignal; Healthcheck is Docker's
 * (its durations are Go time.Duration nanoseconds).
 */
#include "tagexport/imagespec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tagexport/regex.h"

#define SECONDS_MAX (366LL * 24 * 3600)
#define NS_PER_S 1000000000LL

static const char *const essential_labels[] = {
    "werf", "werf-stage-content-digest", "werf.io/parent-stage-id",
    "werf-project-repo-commit", NULL};

void te_imagespec_dispose(te_imagespec *s)
{
	if (!s)
		return;
	free(s->author);
	free(s->user);
	free(s->working_dir);
	free(s->stop_signal);
	te_strvec_dispose(&s->labels);
	te_strvec_dispose(&s->remove_labels);
	te_strvec_dispose(&s->env);
	te_strvec_dispose(&s->remove_env);
	te_strvec_dispose(&s->volumes);
	te_strvec_dispose(&s->remove_volumes);
	te_strvec_dispose(&s->expose);
	te_strvec_dispose(&s->cmd);
	te_strvec_dispose(&s->entrypoint);
	te_strvec_dispose(&s->hc_test);
	memset(s, 0, sizeof(*s));
}

bool te_imagespec_is_empty(const te_imagespec *s)
{
	return !s->author && !s->clear_history && !s->labels.count &&
	       !s->remove_labels.count && !s->keep_essential_werf_labels &&
	       !s->env.count && !s->remove_env.count && !s->volumes.count &&
	       !s->remove_volumes.count && !s->has_expose && !s->user &&
	       !s->working_dir && !s->stop_signal && !s->has_cmd &&
	       !s->has_entrypoint && !s->has_healthcheck && !s->clear_cmd &&
	       !s->clear_entrypoint && !s->clear_user && !s->clear_working_dir;
}

/* ---- patterns ------------------------------------------------------- */

static bool is_regex(const char *p)
{
	size_t n = strlen(p);

	return n >= 2 && p[0] == '/' && p[n - 1] == '/';
}

/*
 * Compile "/RE/" as werf does (pkg/build/stage/image_spec.go,
 * compileRemovePatterns): Go's regexp of "^RE$", not grouped, so /a|b/ is
 * "^a|b$" (a name starting with a or ending with b), as in werf.
 */
static int compile(te_regex **out, const char *pattern, te_error *err)
{
	size_t n = strlen(pattern);
	te_buf expr = TE_BUF_INIT(TE_IMAGESPEC_PATTERN_MAX + 2);
	int rc;

	*out = NULL;
	if (n > TE_IMAGESPEC_PATTERN_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "regular expression longer than %d bytes",
		                    TE_IMAGESPEC_PATTERN_MAX);
	rc = te_buf_printf(&expr, err, "^%.*s$", (int)(n - 2), pattern + 1);
	if (rc == 0)
		rc = te_regex_compile(out, expr.ptr, expr.len, 0, err);
	if (rc == TE_EINVALID)
		te_error_wrap(err, "invalid regular expression %.200s",
		              pattern);
	te_buf_dispose(&expr);
	return rc;
}

int te_imagespec_check_pattern(const char *pattern, te_error *err)
{
	te_regex *re = NULL;
	int rc;

	if (!is_regex(pattern))
		return 0;
	rc = compile(&re, pattern, err);
	te_regex_free(re);
	return rc;
}

int te_imagespec_pattern_match(bool *match, const char *pattern,
                               const char *name, te_error *err)
{
	te_regex *re = NULL;
	uint64_t steps = TE_IMAGESPEC_MATCH_STEPS;
	int rc;

	*match = false;
	if (!is_regex(pattern)) {
		*match = strcmp(pattern, name) == 0;
		return 0;
	}
	rc = compile(&re, pattern, err);
	if (rc == 0)
		rc = te_regex_match(match, re, name, strlen(name), &steps, err);
	te_regex_free(re);
	return rc;
}

bool te_imagespec_warns_essential(const te_imagespec *s)
{
	te_error ignored = TE_ERROR_INIT;
	bool match = false;
	size_t i, e;

	if (s->keep_essential_werf_labels)
		return false;
	for (i = 0; i < s->remove_labels.count && !match; i++)
		for (e = 0; essential_labels[e] && !match; e++)
			if (te_imagespec_pattern_match(
			        &match, s->remove_labels.items[i],
			        essential_labels[e], &ignored) < 0)
				match = false;
	return match;
}

/* Compiled removeLabels/removeEnv patterns, with one work budget for all
 * the names of one config (matching is linear, but a 4 MiB config times a
 * large program is still work a werf.yaml asks for). */
struct matcher {
	const te_strvec *patterns;
	te_regex **re; /* one per pattern, NULL for an exact name */
	uint64_t steps;
};

static int matcher_init(struct matcher *m, const te_strvec *patterns,
                        te_error *err)
{
	size_t i, n = patterns->count;
	int rc;

	m->patterns = patterns;
	m->steps = TE_IMAGESPEC_MATCH_STEPS;
	m->re = calloc(n + 1, sizeof(*m->re));
	if (!m->re)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		if (!is_regex(patterns->items[i]))
			continue;
		if ((rc = compile(&m->re[i], patterns->items[i], err)) < 0)
			return rc;
	}
	return 0;
}

static int matcher_match(bool *match, struct matcher *m, const char *name,
                         te_error *err)
{
	size_t i;
	int rc;

	*match = false;
	for (i = 0; i < m->patterns->count && !*match; i++) {
		if (!m->re[i]) {
			*match = strcmp(m->patterns->items[i], name) == 0;
			continue;
		}
		rc = te_regex_match(match, m->re[i], name, strlen(name),
		                    &m->steps, err);
		if (rc < 0)
			return te_error_wrap(err, "%.200s",
			                     m->patterns->items[i]);
	}
	return 0;
}

static void matcher_dispose(struct matcher *m)
{
	size_t i;

	for (i = 0; m->re && i < m->patterns->count; i++)
		te_regex_free(m->re[i]);
	free(m->re);
}

/* ---- durations -------------------------------------------------------- */

int te_imagespec_seconds_parse(long long *out, const char *text, te_error *err)
{
	static const char units[] = "hms";
	static const long long scale[] = {3600, 60, 1};
	const char *p = text;
	long long total = 0, v;
	size_t next = 0, u;

	*out = 0;
	if (!p || !*p)
		goto bad;
	if (strspn(p, "0123456789") == strlen(p)) {
		if (strlen(p) > 9)
			goto bad;
		*out = strtoll(p, NULL, 10);
		return 0;
	}
	while (*p) {
		const char *digits = p;

		for (v = 0; *p >= '0' && *p <= '9' && v <= SECONDS_MAX; p++)
			v = v * 10 + (*p - '0');
		if (p == digits || !*p || !strchr(units, *p))
			goto bad;
		u = (size_t)(strchr(units, *p) - units);
		if (u < next)
			goto bad;
		next = u + 1;
		total += v * scale[u];
		if (total > SECONDS_MAX)
			goto bad;
		p++;
	}
	*out = total;
	return 0;
bad:
	return te_error_set(err, TE_EINVALID,
	                    "invalid duration \"%.64s\": use seconds (30) or "
	                    "a duration like 30s, 5m or 1m30s",
	                    text ? text : "");
}

/* ---- merge ------------------------------------------------------------ */

static int copy_vec(te_strvec *out, const te_strvec *in, te_error *err)
{
	size_t i;
	int rc;

	for (i = 0; i < in->count; i++)
		if ((rc = te_strvec_push(out, in->items[i], err)) < 0)
			return rc;
	return 0;
}

static int copy_str(char **out, const char *in, te_error *err)
{
	*out = NULL;
	if (!in)
		return 0;
	*out = te_strdup(in, err);
	return *out ? 0 : TE_ENOMEM;
}

static bool pairs_have(const te_strvec *pairs, const char *key)
{
	size_t i;

	for (i = 0; i + 1 < pairs->count; i += 2)
		if (strcmp(pairs->items[i], key) == 0)
			return true;
	return false;
}

static int copy_image_fields(te_imagespec *o, const te_imagespec *im,
                             te_error *err)
{
	int rc;

	o->clear_history = im->clear_history;
	o->keep_essential_werf_labels = im->keep_essential_werf_labels;
	o->has_expose = im->has_expose;
	o->has_cmd = im->has_cmd;
	o->has_entrypoint = im->has_entrypoint;
	o->has_healthcheck = im->has_healthcheck;
	o->hc_interval = im->hc_interval;
	o->hc_timeout = im->hc_timeout;
	o->hc_start_period = im->hc_start_period;
	o->hc_retries = im->hc_retries;
	o->clear_cmd = im->clear_cmd;
	o->clear_entrypoint = im->clear_entrypoint;
	o->clear_user = im->clear_user;
	o->clear_working_dir = im->clear_working_dir;
	if ((rc = copy_str(&o->author, im->author, err)) < 0 ||
	    (rc = copy_str(&o->user, im->user, err)) < 0 ||
	    (rc = copy_str(&o->working_dir, im->working_dir, err)) < 0 ||
	    (rc = copy_str(&o->stop_signal, im->stop_signal, err)) < 0 ||
	    (rc = copy_vec(&o->labels, &im->labels, err)) < 0 ||
	    (rc = copy_vec(&o->remove_labels, &im->remove_labels, err)) < 0 ||
	    (rc = copy_vec(&o->env, &im->env, err)) < 0 ||
	    (rc = copy_vec(&o->remove_env, &im->remove_env, err)) < 0 ||
	    (rc = copy_vec(&o->volumes, &im->volumes, err)) < 0 ||
	    (rc = copy_vec(&o->remove_volumes, &im->remove_volumes, err)) < 0 ||
	    (rc = copy_vec(&o->expose, &im->expose, err)) < 0 ||
	    (rc = copy_vec(&o->cmd, &im->cmd, err)) < 0 ||
	    (rc = copy_vec(&o->entrypoint, &im->entrypoint, err)) < 0 ||
	    (rc = copy_vec(&o->hc_test, &im->hc_test, err)) < 0)
		return rc;
	return 0;
}

int te_imagespec_merge(te_imagespec *out, const te_imagespec *global,
                       const te_imagespec *image, te_error *err)
{
	size_t i;
	int rc;

	if ((rc = copy_image_fields(out, image, err)) < 0)
		goto done;
	if (!global)
		return 0;
	if (!out->author &&
	    (rc = copy_str(&out->author, global->author, err)) < 0)
		goto done;
	out->clear_history |= global->clear_history;
	out->keep_essential_werf_labels |= global->keep_essential_werf_labels;
	for (i = 0; i + 1 < global->labels.count; i += 2) {
		if (pairs_have(&out->labels, global->labels.items[i]))
			continue;
		if ((rc = te_strvec_push(&out->labels, global->labels.items[i],
		                         err)) < 0 ||
		    (rc = te_strvec_push(&out->labels,
		                         global->labels.items[i + 1], err)) < 0)
			goto done;
	}
	for (i = 0; i < global->remove_labels.count; i++) {
		const char *p = global->remove_labels.items[i];

		if (!te_strvec_contains(&out->remove_labels, p) &&
		    (rc = te_strvec_push(&out->remove_labels, p, err)) < 0)
			goto done;
	}
done:
	if (rc < 0)
		te_imagespec_dispose(out);
	return rc;
}

/* ---- canonical text --------------------------------------------------- */

static int set_new(json_t *obj, const char *key, json_t *v, te_error *err)
{
	if (!v || json_object_set_new(obj, key, v) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}

static json_t *str_array(const te_strvec *v, bool sorted)
{
	te_strvec copy = TE_STRVEC_INIT;
	te_error ignored = TE_ERROR_INIT;
	const te_strvec *src = v;
	json_t *a = json_array();
	size_t i;

	if (!a)
		return NULL;
	if (sorted) {
		if (copy_vec(&copy, v, &ignored) < 0) {
			json_decref(a);
			return NULL;
		}
		te_strvec_sort(&copy);
		src = &copy;
	}
	for (i = 0; i < src->count; i++)
		if (json_array_append_new(a, json_string(src->items[i])) < 0) {
			json_decref(a);
			a = NULL;
			break;
		}
	te_strvec_dispose(&copy);
	return a;
}

static json_t *pair_object(const te_strvec *pairs)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; o && i + 1 < pairs->count; i += 2)
		if (json_object_set_new(o, pairs->items[i],
		                        json_string(pairs->items[i + 1])) < 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

static int put_list(json_t *o, const char *key, const te_strvec *v, bool sorted,
                    bool force, te_error *err)
{
	if (!v->count && !force)
		return 0;
	return set_new(o, key, str_array(v, sorted), err);
}

static int put_flag(json_t *o, const char *key, bool v, te_error *err)
{
	return v ? set_new(o, key, json_true(), err) : 0;
}

static int put_str(json_t *o, const char *key, const char *v, te_error *err)
{
	return v ? set_new(o, key, json_string(v), err) : 0;
}

static int healthcheck_json(json_t *o, const te_imagespec *s, te_error *err)
{
	json_t *h;

	if (!s->has_healthcheck)
		return 0;
	h = json_pack("{s:o,s:I,s:I,s:I,s:I}", "test",
	              str_array(&s->hc_test, false), "interval",
	              (json_int_t)s->hc_interval, "timeout",
	              (json_int_t)s->hc_timeout, "startPeriod",
	              (json_int_t)s->hc_start_period, "retries",
	              (json_int_t)s->hc_retries);
	return set_new(o, "healthcheck", h, err);
}

int te_imagespec_serialize(te_buf *out, const te_imagespec *s, te_error *err)
{
	json_t *o = NULL;
	char *text = NULL;
	int rc = 0;

	if (te_imagespec_is_empty(s))
		return 0;
	if (!(o = json_object())) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = put_str(o, "author", s->author, err)) < 0 ||
	    (rc = put_flag(o, "clearHistory", s->clear_history, err)) < 0 ||
	    (rc = (s->labels.count
	               ? set_new(o, "labels", pair_object(&s->labels), err)
	               : 0)) < 0 ||
	    (rc = put_list(o, "removeLabels", &s->remove_labels, true, false,
	                   err)) < 0 ||
	    (rc = put_flag(o, "keepEssentialWerfLabels",
	                   s->keep_essential_werf_labels, err)) < 0 ||
	    (rc = (s->env.count ? set_new(o, "env", pair_object(&s->env), err)
	                        : 0)) < 0 ||
	    (rc = put_list(o, "removeEnv", &s->remove_env, true, false, err)) <
	        0 ||
	    (rc = put_list(o, "volumes", &s->volumes, true, false, err)) < 0 ||
	    (rc = put_list(o, "removeVolumes", &s->remove_volumes, true, false,
	                   err)) < 0 ||
	    (rc = put_list(o, "expose", &s->expose, true, s->has_expose, err)) <
	        0 ||
	    (rc = put_str(o, "user", s->user, err)) < 0 ||
	    (rc = put_str(o, "workingDir", s->working_dir, err)) < 0 ||
	    (rc = put_str(o, "stopSignal", s->stop_signal, err)) < 0 ||
	    (rc = put_list(o, "cmd", &s->cmd, false, s->has_cmd, err)) < 0 ||
	    (rc = put_list(o, "entrypoint", &s->entrypoint, false,
	                   s->has_entrypoint, err)) < 0 ||
	    (rc = healthcheck_json(o, s, err)) < 0 ||
	    (rc = put_flag(o, "clearCmd", s->clear_cmd, err)) < 0 ||
	    (rc = put_flag(o, "clearEntrypoint", s->clear_entrypoint, err)) <
	        0 ||
	    (rc = put_flag(o, "clearUser", s->clear_user, err)) < 0 ||
	    (rc = put_flag(o, "clearWorkingDir", s->clear_working_dir, err)) <
	        0)
		goto done;
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	rc = te_buf_puts(out, text, err);
done:
	free(text);
	json_decref(o);
	return rc;
}

/* ---- apply ------------------------------------------------------------ */

/* s with every "%image%" and "%project%" replaced. */
static int expand_label(te_buf *out, const char *s, const char *image,
                        const char *project, te_error *err)
{
	int rc = 0;

	te_buf_clear(out);
	while (*s && rc == 0) {
		if (strncmp(s, "%image%", 7) == 0) {
			rc = te_buf_puts(out, image, err);
			s += 7;
		} else if (strncmp(s, "%project%", 9) == 0) {
			rc = te_buf_puts(out, project, err);
			s += 9;
		} else {
			rc = te_buf_put(out, s++, 1, err);
		}
	}
	return rc;
}

int te_imagespec_expand_labels(te_imagespec *s, const char *image,
                               const char *project, te_error *err)
{
	te_buf b = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	size_t i;
	int rc = 0;

	for (i = 0; i < s->labels.count && rc == 0; i++) {
		char *expanded;

		if (!strchr(s->labels.items[i], '%'))
			continue;
		if ((rc = expand_label(&b, s->labels.items[i], image, project,
		                       err)) < 0)
			break;
		if (!(expanded = te_strdup(b.ptr, err))) {
			rc = TE_ENOMEM;
			break;
		}
		free(s->labels.items[i]);
		s->labels.items[i] = expanded;
	}
	te_buf_dispose(&b);
	return rc;
}

static int apply_labels(json_t *cfg, const te_imagespec *s, const char *image,
                        const char *project, te_error *err)
{
	struct matcher m = {0};
	te_buf key = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	te_buf val = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	json_t *labels = json_object_get(cfg, "Labels");
	const char *k;
	json_t *v;
	void *tmp;
	size_t i;
	int rc;

	if (!s->labels.count && !s->remove_labels.count)
		return 0;
	if (!json_is_object(labels)) {
		if (!(labels = json_object()) ||
		    json_object_set_new(cfg, "Labels", labels) < 0)
			return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	if ((rc = matcher_init(&m, &s->remove_labels, err)) < 0)
		goto done;
	json_object_foreach_safe(labels, tmp, k, v)
	{
		size_t e;
		bool essential = false, match = false;

		for (e = 0; essential_labels[e]; e++)
			essential |= strcmp(k, essential_labels[e]) == 0;
		if (!essential && (rc = matcher_match(&match, &m, k, err)) < 0)
			goto done;
		if (match)
			json_object_del(labels, k);
	}
	for (i = 0; i + 1 < s->labels.count; i += 2) {
		if ((rc = expand_label(&key, s->labels.items[i], image, project,
		                       err)) < 0 ||
		    (rc = expand_label(&val, s->labels.items[i + 1], image,
		                       project, err)) < 0)
			goto done;
		if (json_object_set_new(labels, key.ptr, json_string(val.ptr)) <
		    0) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
	}
done:
	matcher_dispose(&m);
	te_buf_dispose(&key);
	te_buf_dispose(&val);
	return rc;
}

/* The value of NAME (len n) in a Docker Env array, or NULL. */
static const char *env_lookup(const json_t *env, const char *name, size_t n)
{
	size_t i;
	json_t *e;

	json_array_foreach(env, i, e)
	{
		const char *s = json_string_value(e);

		if (s && strncmp(s, name, n) == 0 && s[n] == '=')
			return s + n + 1;
	}
	return NULL;
}

static bool name_char(char c, bool first)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (!first && c >= '0' && c <= '9');
}

/* $NAME and ${NAME} against the original env; "\$" is "$". */
static int expand_env(te_buf *out, const char *s, const json_t *env,
                      te_error *err)
{
	const char *val, *name;
	size_t n;
	int rc = 0;

	te_buf_clear(out);
	while (*s && rc == 0) {
		if (s[0] == '\\' && s[1]) {
			rc = te_buf_put(out, s + 1, 1, err);
			s += 2;
			continue;
		}
		if (s[0] != '$' || !(s[1] == '{' || name_char(s[1], true))) {
			rc = te_buf_put(out, s++, 1, err);
			continue;
		}
		if (s[1] == '{') {
			name = s + 2;
			n = strcspn(name, "}");
			if (!name[n])
				return te_error_set(err, TE_EINVALID,
				                    "env value \"%.100s\": "
				                    "missing '}'",
				                    s);
			s = name + n + 1;
		} else {
			name = s + 1;
			for (n = 0; name_char(name[n], n == 0); n++)
				;
			s = name + n;
		}
		val = env_lookup(env, name, n);
		if (val)
			rc = te_buf_puts(out, val, err);
	}
	return rc;
}

static int apply_env(json_t *cfg, const te_imagespec *s, te_error *err)
{
	struct matcher m = {0};
	te_buf line = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	te_buf val = TE_BUF_INIT(TE_IMAGESPEC_CONFIG_MAX);
	json_t *orig = json_object_get(cfg, "Env"), *env = NULL, *e;
	bool match = false;
	size_t i, j;
	int rc;

	if (!s->env.count && !s->remove_env.count)
		return 0;
	if (!json_is_array(orig))
		orig = NULL;
	orig = orig ? json_incref(orig) : json_array();
	env = json_array();
	if (!orig || !env) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	if ((rc = matcher_init(&m, &s->remove_env, err)) < 0)
		goto done;
	/* Kept variables in their order; one set by env is replaced in
	 * place, new ones follow in the order werf.yaml gives them. */
	json_array_foreach(orig, i, e)
	{
		const char *str = json_string_value(e);
		size_t n = str ? strcspn(str, "=") : 0;

		te_buf_clear(&line);
		if (!str || !str[n])
			continue;
		if ((rc = te_buf_put(&line, str, n, err)) < 0)
			goto done;
		if ((rc = matcher_match(&match, &m, line.ptr, err)) < 0)
			goto done;
		if (match || pairs_have(&s->env, line.ptr))
			continue;
		if (json_array_append(env, e) < 0) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
	}
	for (j = 0; j + 1 < s->env.count; j += 2) {
		if ((rc = expand_env(&val, s->env.items[j + 1], orig, err)) < 0)
			goto done;
		te_buf_clear(&line);
		if ((rc = te_buf_printf(&line, err, "%s=%s", s->env.items[j],
		                        val.ptr)) < 0)
			goto done;
		if (json_array_append_new(env, json_string(line.ptr)) < 0) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
			goto done;
		}
	}
	if (json_object_set(cfg, "Env", env) < 0)
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
done:
	matcher_dispose(&m);
	json_decref(orig);
	json_decref(env);
	te_buf_dispose(&line);
	te_buf_dispose(&val);
	return rc;
}

/* An object used as a set ({"path": {}}): remove, then add; ports (expose)
 * replace the whole set. */
static int apply_set(json_t *cfg, const char *key, const te_strvec *remove,
                     const te_strvec *add, bool ports, te_error *err)
{
	json_t *set = json_object_get(cfg, key);
	size_t i;

	if (ports || !json_is_object(set)) {
		if (!(set = json_object()) ||
		    json_object_set_new(cfg, key, set) < 0)
			return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	for (i = 0; remove && i < remove->count; i++)
		json_object_del(set, remove->items[i]);
	for (i = 0; i < add->count; i++) {
		const char *k = add->items[i];
		char port[128];

		/* EXPOSE 8080 is stored as "8080/tcp" (Dockerfile reference,
		 * EXPOSE: "TCP is the default") */
		if (ports && !strchr(k, '/') && strlen(k) < 100) {
			snprintf(port, sizeof(port), "%s/tcp", k);
			k = port;
		}
		if (json_object_set_new(set, k, json_object()) < 0)
			return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	return 0;
}

static int set_or_clear(json_t *cfg, const char *key, const char *value,
                        bool clear, te_error *err)
{
	if (clear && json_object_set_new(cfg, key, json_string("")) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (value && json_object_set_new(cfg, key, json_string(value)) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}

static int set_list(json_t *cfg, const char *key, const te_strvec *v,
                    te_error *err)
{
	json_t *a = str_array(v, false);

	if (!a || json_object_set_new(cfg, key, a) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}

static int apply_healthcheck(json_t *cfg, const te_imagespec *s, te_error *err)
{
	json_t *h;

	if (!s->has_healthcheck)
		return 0;
	if (!(h = json_object()) ||
	    json_object_set_new(h, "Test", str_array(&s->hc_test, false)) < 0 ||
	    (s->hc_interval &&
	     json_object_set_new(
	         h, "Interval", json_integer(s->hc_interval * NS_PER_S)) < 0) ||
	    (s->hc_timeout &&
	     json_object_set_new(h, "Timeout",
	                         json_integer(s->hc_timeout * NS_PER_S)) < 0) ||
	    (s->hc_start_period &&
	     json_object_set_new(h, "StartPeriod",
	                         json_integer(s->hc_start_period * NS_PER_S)) <
	         0) ||
	    (s->hc_retries &&
	     json_object_set_new(h, "Retries", json_integer(s->hc_retries)) <
	         0) ||
	    json_object_set_new(cfg, "Healthcheck", h) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}

static int apply_process(json_t *cfg, const te_imagespec *s, te_error *err)
{
	bool clear_cmd = s->clear_cmd || (s->has_entrypoint && !s->has_cmd);
	int rc;

	if (clear_cmd && json_object_set_new(cfg, "Cmd", json_null()) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (s->clear_entrypoint &&
	    json_object_set_new(cfg, "Entrypoint", json_null()) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if ((s->has_cmd && (rc = set_list(cfg, "Cmd", &s->cmd, err)) < 0) ||
	    (s->has_entrypoint &&
	     (rc = set_list(cfg, "Entrypoint", &s->entrypoint, err)) < 0))
		return rc;
	if ((rc = set_or_clear(cfg, "User", s->user, s->clear_user, err)) < 0 ||
	    (rc = set_or_clear(cfg, "WorkingDir", s->working_dir,
	                       s->clear_working_dir, err)) < 0 ||
	    (rc = set_or_clear(cfg, "StopSignal", s->stop_signal, false, err)) <
	        0)
		return rc;
	return 0;
}

static int apply_top(json_t *root, const te_imagespec *s, te_error *err)
{
	if (s->author &&
	    json_object_set_new(root, "author", json_string(s->author)) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (s->clear_history &&
	    json_object_set_new(root, "history", json_array()) < 0)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	return 0;
}

static int load_config(json_t **root, json_t **cfg, const void *data,
                       size_t len, te_error *err)
{
	json_error_t jerr;

	*root = NULL;
	if (len > TE_IMAGESPEC_CONFIG_MAX)
		return te_error_set(err, TE_EINVALID,
		                    "image config is larger than %u bytes",
		                    TE_IMAGESPEC_CONFIG_MAX);
	*root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(*root))
		return te_error_set(err, TE_EINVALID,
		                    "image config is not a JSON object: %s",
		                    *root ? "wrong type" : jerr.text);
	*cfg = json_object_get(*root, "config");
	if (!*cfg) {
		if (!(*cfg = json_object()) ||
		    json_object_set_new(*root, "config", *cfg) < 0)
			return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	if (!json_is_object(*cfg))
		return te_error_set(
		    err, TE_EINVALID,
		    "image config: \"config\" is not an object");
	return 0;
}

int te_imagespec_apply(te_buf *out, const void *config, size_t len,
                       const te_imagespec *s, const char *image,
                       const char *project, te_error *err)
{
	json_t *root = NULL, *cfg = NULL;
	char *text = NULL;
	int rc;

	if ((rc = load_config(&root, &cfg, config, len, err)) < 0 ||
	    (rc = apply_labels(cfg, s, image ? image : "",
	                       project ? project : "", err)) < 0 ||
	    (rc = apply_env(cfg, s, err)) < 0 ||
	    ((s->volumes.count || s->remove_volumes.count) &&
	     (rc = apply_set(cfg, "Volumes", &s->remove_volumes, &s->volumes,
	                     false, err)) < 0) ||
	    (s->has_expose && (rc = apply_set(cfg, "ExposedPorts", NULL,
	                                      &s->expose, true, err)) < 0) ||
	    (rc = apply_healthcheck(cfg, s, err)) < 0 ||
	    (rc = apply_process(cfg, s, err)) < 0 ||
	    (rc = apply_top(root, s, err)) < 0)
		goto done;
	text = json_dumps(root, JSON_COMPACT);
	if (!text) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	te_buf_clear(out);
	rc = te_buf_puts(out, text, err);
done:
	free(text);
	json_decref(root);
	return rc;
}
