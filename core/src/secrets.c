/*
 * secrets.c - werf.yaml build secrets (https://werf.io/docs/v2/usage/
 * build/images.html, "Using build secrets"; giterminism rules:
 * https://werf.io/docs/v2/usage/project_configuration/giterminism.html).
 */
#include "secrets_int.h"

#include <stdlib.h>
#include <string.h>

#define GITERMINISM_FILE "werf-giterminism.yaml"
#define GITERMINISM_MAX ((size_t)64 << 10)

static void wipe(te_buf *b)
{
	if (b->cap)
		explicit_bzero(b->ptr, b->cap);
	te_buf_dispose(b);
}

/* One value: from werf.yaml itself, or from the front end's source. */
static int value_of(te_buf *out, const te_secret_config *s,
                    te_export_secret_fn fn, void *payload, te_error *err)
{
	static const char *const kinds[] = {"env", "src", "value"};
	int rc;

	if (s->kind == TE_SECRET_VALUE)
		return te_buf_puts(out, s->ref, err);
	if (!fn)
		return te_error_set(err, TE_EINVALID,
		                    "secret \"%s\": this export has no source "
		                    "for %s secrets",
		                    s->id, kinds[s->kind]);
	rc = fn(out, s->id, s->kind, s->ref, payload, err);
	if (rc == TE_ENOTFOUND)
		rc = err->code = TE_EINVALID;
	if (rc < 0)
		te_error_wrap(err, "secret \"%s\"", s->id);
	return rc;
}

static int load_allowed(te_secrets_allowed *allowed, te_gitsrc *src,
                        const char *commit, te_error *err)
{
	te_buf data = TE_BUF_INIT(GITERMINISM_MAX);
	int rc;

	rc = te_gitsrc_read_file(&data, src, commit, GITERMINISM_FILE, err);
	if (rc == TE_ENOTFOUND) {
		te_error_clear(err);
		rc = te_config_secrets_allowed(allowed, NULL, 0, err);
	} else if (rc == 0) {
		rc =
		    te_config_secrets_allowed(allowed, data.ptr, data.len, err);
	}
	te_buf_dispose(&data);
	return rc;
}

int te_secrets__check(te_gitsrc *src, const char *commit,
                      const te_image_config *img, const char *file, bool loose,
                      te_export_secret_fn fn, void *payload, te_error *err)
{
	te_secrets_allowed allowed;
	size_t i;
	int rc = 0;

	if (!img->nsecrets)
		return 0;
	memset(&allowed, 0, sizeof(allowed));
	if (!loose && (rc = load_allowed(&allowed, src, commit, err)) < 0)
		goto done;
	for (i = 0; i < img->nsecrets && rc == 0; i++) {
		te_buf probe = TE_BUF_INIT(TE_SECRET_VALUE_MAX);

		if (!loose)
			rc = te_config_secret_check(&allowed, &img->secrets[i],
			                            file, err);
		if (rc == 0 && (rc = value_of(&probe, &img->secrets[i], fn,
		                              payload, err)) < 0)
			te_error_wrap(err, "%s:%d", file, img->secrets[i].line);
		wipe(&probe);
	}
done:
	te_strvec_dispose(&allowed.env_variables);
	te_strvec_dispose(&allowed.files);
	te_strvec_dispose(&allowed.value_ids);
	return rc;
}

/* buildah's --ssh takes "id=a,b": a path with a comma cannot be named. */
static int check_ssh_paths(const te_export_opts *o, te_error *err)
{
	size_t i;

	for (i = 0; i < o->nssh_keys; i++)
		if (strchr(o->ssh_keys[i], ','))
			return te_error_set(err, TE_EINVALID,
			                    "ssh key path '%s' holds a ','",
			                    o->ssh_keys[i]);
	if (o->ssh_agent && strchr(o->ssh_agent, ','))
		return te_error_set(err, TE_EINVALID,
		                    "ssh agent socket path holds a ','");
	return 0;
}

int te_secrets__check_image(const te_export_opts *o, te_gitsrc *src,
                            const char *commit, const te_image_config *img,
                            te_error *err)
{
	const char *file = o->config_path ? o->config_path : "werf.yaml";
	int rc;

	/* buildah has no network namespace to take away under chroot */
	if (img->network && !strcmp(img->network, "none") &&
	    o->isolation == TE_BUILD_ISOLATION_CHROOT)
		return te_error_set(err, TE_EINVALID,
		                    "%s:%d: image \"%s\": network \"none\" "
		                    "cannot be enforced with chroot isolation",
		                    file, img->line, img->name);
	if (img->ssh && !o->nssh_keys && !(o->ssh_agent && *o->ssh_agent))
		return te_error_set(err, TE_EINVALID,
		                    "%s:%d: image \"%s\": ssh: no ssh agent or "
		                    "key is given to this export",
		                    file, img->ssh_line, img->name);
	if (img->ssh && (rc = check_ssh_paths(o, err)) < 0)
		return rc;
	return te_secrets__check(src, commit, img, file,
	                         o->render && o->render->loose_giterminism,
	                         o->secret, o->secret_payload, err);
}

int te_secrets__ssh_source(te_buf *out, const te_export_opts *o, te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < o->nssh_keys && rc == 0; i++)
		rc = te_buf_printf(out, err, "%s%s", i ? "," : "",
		                   o->ssh_keys[i]);
	if (!o->nssh_keys && o->ssh_agent)
		rc = te_buf_puts(out, o->ssh_agent, err);
	return rc;
}

int te_secrets__resolve(te_secret_values *out, const te_image_config *img,
                        te_export_secret_fn fn, void *payload, te_error *err)
{
	size_t i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!img->nsecrets)
		return 0;
	out->items = calloc(img->nsecrets, sizeof(*out->items));
	out->values = calloc(img->nsecrets, sizeof(*out->values));
	if (!out->items || !out->values) {
		te_secrets__dispose(out);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	for (i = 0; i < img->nsecrets && rc == 0; i++) {
		te_buf_init(&out->values[i], TE_SECRET_VALUE_MAX);
		out->count++;
		rc = value_of(&out->values[i], &img->secrets[i], fn, payload,
		              err);
		out->items[i].id = img->secrets[i].id;
		out->items[i].value = out->values[i].ptr;
		out->items[i].len = out->values[i].len;
	}
	if (rc < 0)
		te_secrets__dispose(out);
	return rc;
}

void te_secrets__dispose(te_secret_values *v)
{
	size_t i;

	for (i = 0; i < v->count; i++)
		wipe(&v->values[i]);
	free(v->values);
	free(v->items);
	memset(v, 0, sizeof(*v));
}
