/*
 * stapel/dockerfile.c - the Dockerfile text of one Stapel stage.
 *
 * Every stage is built by `buildah build` (build.c: OCI isolation, time
 * limit, push) from a Dockerfile generated here: FROM the previous stage,
 * then what the stage adds.  Values from werf.yaml reach the Dockerfile
 * only quoted (double quotes, with '\', '"' and '$' escaped, so nothing
 * is expanded) or, where Dockerfile syntax has no quoting, checked to be
 * one line without a continuation; a value that cannot be written safely
 * is refused by name.  Shell commands never appear in the Dockerfile:
 * they go into a script file run by the static bash (see build.c).
 */
#include "stapel/stapel_build.h"

#include <stdio.h>
#include <string.h>

/* A double-quoted Dockerfile word (ENV, LABEL, WORKDIR, USER). */
static int quoted(te_buf *b, const char *what, const char *s, te_error *err)
{
	int rc;

	if (strpbrk(s, "\r\n"))
		return te_error_set(err, TE_EINVALID,
		                    "%s \"%.60s\" holds a line break", what, s);
	rc = te_buf_puts(b, "\"", err);
	for (; rc == 0 && *s; s++) {
		if (*s == '\\' || *s == '"' || *s == '$')
			rc = te_buf_put(b, "\\", 1, err);
		if (rc == 0)
			rc = te_buf_put(b, s, 1, err);
	}
	return rc == 0 ? te_buf_puts(b, "\"", err) : rc;
}

/* Text Dockerfile takes as is (CMD/ENTRYPOINT shell form, HEALTHCHECK):
 * one line, no continuation. */
static int raw(te_buf *b, const char *what, const char *s, te_error *err)
{
	size_t n = strlen(s);

	if (strpbrk(s, "\r\n") || (n && s[n - 1] == '\\'))
		return te_error_set(err, TE_EINVALID,
		                    "%s \"%.60s\" must be one line", what, s);
	return te_buf_puts(b, s, err);
}

/* A path or name inside a JSON array of COPY/VOLUME: no '$' (Dockerfile
 * expands it even there), no quote, backslash or control character. */
static int plain(const char *what, const char *s, te_error *err)
{
	for (const char *p = s; *p; p++)
		if (*p == '$' || *p == '"' || *p == '\\' ||
		    (unsigned char)*p < 0x20)
			return te_error_set(
			    err, TE_EINVALID,
			    "%s \"%.60s\": '$', quotes, "
			    "backslashes and control characters "
			    "are not supported",
			    what, s);
	return 0;
}

int te_stapel__df_from(te_buf *df, const char *base, te_error *err)
{
	int rc = plain("base image", base, err);

	return rc == 0 ? te_buf_printf(df, err, "FROM %s\n", base) : rc;
}

/* COPY [--from=<from>] [--chown=o:g] ["<src>", "<to>"]. */
static int copy(te_buf *df, const char *from, const char *src, const char *to,
                const char *owner, const char *group, te_error *err)
{
	int rc = plain("path", to, err);

	if (rc == 0)
		rc = plain("path", src, err);
	if (rc == 0 && owner)
		rc = plain("owner", owner, err);
	if (rc == 0 && group)
		rc = plain("group", group, err);
	if (rc == 0 && from)
		rc = plain("image", from, err);
	if (rc < 0)
		return rc;
	rc = te_buf_puts(df, "COPY ", err);
	if (rc == 0 && from)
		rc = te_buf_printf(df, err, "--from=%s ", from);
	if (rc == 0 && (owner || group))
		rc = te_buf_printf(df, err, "--chown=%s:%s ",
		                   owner ? owner : "0", group ? group : "0");
	if (rc == 0)
		rc = te_buf_printf(df, err, "[\"%s\", \"%s\"]\n", src, to);
	return rc;
}

int te_stapel__df_copy(te_buf *df, const char *src, const char *to,
                       const char *owner, const char *group, te_error *err)
{
	te_buf dir = TE_BUF_INIT(65536);
	int rc;

	/* a directory's contents into the directory to */
	rc = te_buf_printf(&dir, err, "%s%s", to, strcmp(to, "/") ? "/" : "");
	if (rc == 0)
		rc = copy(df, NULL, src, dir.ptr, owner, group, err);
	te_buf_dispose(&dir);
	return rc;
}

/* werf's import (https://werf.io/docs/v2/usage/build/stapel/imports.html):
 * add in the source image to `to`, as COPY --from copies it. */
int te_stapel__df_import(te_buf *df, const char *from,
                         const te_stapel_import *im, te_error *err)
{
	return copy(df, from, im->add, im->to, im->owner, im->group, err);
}

int te_stapel__df_import_stage(te_buf *df, const char *from, size_t i,
                               te_error *err)
{
	int rc = plain("image", from, err);

	/* as root: the source's USER may not read all of add */
	if (rc == 0)
		rc = te_buf_printf(
		    df, err,
		    "FROM %s AS te-import-%zu\nUSER 0:0\n"
		    "RUN --mount=type=bind,source=%s,target=/%s "
		    "[\"/%s/bash\", \"-e\", \"/%s/imports\", \"%zu\"]\n",
		    from, i, TE_STAPEL_TOOLS, TE_STAPEL_TOOLS, TE_STAPEL_TOOLS,
		    TE_STAPEL_TOOLS, i);
	return rc;
}

int te_stapel__df_import_filtered(te_buf *df, size_t i,
                                  const te_stapel_import *im, te_error *err)
{
	char from[64];
	te_buf dir = TE_BUF_INIT(65536);
	int rc;

	snprintf(from, sizeof(from), "te-import-%zu", i);
	rc = te_buf_printf(&dir, err, "%s%s", im->to,
	                   strcmp(im->to, "/") ? "/" : "");
	if (rc == 0)
		rc = copy(df, from, "/" TE_STAPEL_IMPORT_DIR "/", dir.ptr,
		          im->owner, im->group, err);
	te_buf_dispose(&dir);
	return rc;
}

int te_stapel__df_script(te_buf *df, const char *script,
                         const te_stapel_mount *const *mounts, size_t nmounts,
                         const te_secret_config *secrets, size_t nsecrets,
                         te_error *err)
{
	size_t i;
	int rc;

	rc =
	    te_buf_printf(df, err, "RUN --mount=type=bind,source=%s,target=/%s",
	                  TE_STAPEL_TOOLS, TE_STAPEL_TOOLS);
	/* mount from: tmp_dir: an empty directory for each command run,
	 * never part of the image */
	for (i = 0; rc == 0 && i < nmounts; i++) {
		if (mounts[i]->from != TE_STAPEL_MOUNT_TMP_DIR)
			continue;
		rc = plain("mount to", mounts[i]->to, err);
		if (rc == 0)
			rc = te_buf_printf(df, err,
			                   " --mount=type=tmpfs,target=%s",
			                   mounts[i]->to);
	}
	/* secrets: /run/secrets/<id> while the commands run (ids are
	 * [A-Za-z0-9_.-]+, config_keys.c); the value is buildah's */
	for (i = 0; rc == 0 && i < nsecrets; i++)
		rc = te_buf_printf(df, err, " --mount=type=secret,id=%s",
		                   secrets[i].id);
	if (rc == 0)
		rc = te_buf_printf(df, err,
		                   " [\"/%s/bash\", \"-e\", \"/%s/%s\"]\n",
		                   TE_STAPEL_TOOLS, TE_STAPEL_TOOLS, script);
	return rc;
}

static int pairs(te_buf *df, const char *instr, const te_strvec *kv,
                 te_error *err)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < kv->count; i++) {
		const char *eq = strchr(kv->items[i], '=');
		char key[256];

		snprintf(key, sizeof(key), "%.*s", (int)(eq - kv->items[i]),
		         kv->items[i]);
		rc = te_buf_printf(df, err, "%s ", instr);
		if (rc == 0)
			rc = quoted(df, instr, key, err);
		if (rc == 0)
			rc = te_buf_puts(df, "=", err);
		if (rc == 0)
			rc = quoted(df, instr, eq + 1, err);
		if (rc == 0)
			rc = te_buf_puts(df, "\n", err);
	}
	return rc;
}

int te_stapel__df_env(te_buf *df, const char *name, const char *value,
                      te_error *err)
{
	int rc = te_buf_puts(df, "ENV ", err);

	if (rc == 0)
		rc = quoted(df, "ENV", name, err);
	if (rc == 0)
		rc = te_buf_puts(df, "=", err);
	if (rc == 0)
		rc = quoted(df, "ENV", value, err);
	return rc == 0 ? te_buf_puts(df, "\n", err) : rc;
}

static int word(te_buf *df, const char *instr, const char *v, te_error *err)
{
	int rc;

	if (!v)
		return 0;
	rc = te_buf_printf(df, err, "%s ", instr);
	if (rc == 0)
		rc = quoted(df, instr, v, err);
	return rc == 0 ? te_buf_puts(df, "\n", err) : rc;
}

static int line(te_buf *df, const char *instr, const char *v, te_error *err)
{
	int rc;

	if (!v)
		return 0;
	rc = te_buf_printf(df, err, "%s ", instr);
	if (rc == 0)
		rc = raw(df, instr, v, err);
	return rc == 0 ? te_buf_puts(df, "\n", err) : rc;
}

/* werf's `docker:` directives
 * (https://werf.io/docs/v2/usage/build/stapel/dockerfile.html). */
int te_stapel__df_docker(te_buf *df, const te_stapel_docker *dk, te_error *err)
{
	size_t i;
	int rc;

	rc = pairs(df, "ENV", &dk->env, err);
	if (rc == 0)
		rc = pairs(df, "LABEL", &dk->label, err);
	for (i = 0; rc == 0 && i < dk->expose.count; i++) {
		rc = plain("EXPOSE", dk->expose.items[i], err);
		if (rc == 0)
			rc = line(df, "EXPOSE", dk->expose.items[i], err);
	}
	for (i = 0; rc == 0 && i < dk->volume.count; i++) {
		rc = plain("VOLUME", dk->volume.items[i], err);
		if (rc == 0)
			rc = te_buf_printf(df, err, "VOLUME [\"%s\"]\n",
			                   dk->volume.items[i]);
	}
	if (rc == 0)
		rc = word(df, "WORKDIR", dk->workdir, err);
	if (rc == 0)
		rc = word(df, "USER", dk->user, err);
	if (rc == 0)
		rc = line(df, "ENTRYPOINT", dk->entrypoint, err);
	if (rc == 0)
		rc = line(df, "CMD", dk->cmd, err);
	if (rc == 0)
		rc = line(df, "HEALTHCHECK", dk->healthcheck, err);
	return rc;
}
