/*
 * imagespec.h - werf's `imageSpec` (https://werf.io/docs/v2/usage/build/
 * images.html, "Changing image configuration spec"): a typed image-config
 * edit, merged from the meta `build.imageSpec` and the image's own, hashed
 * into the content tag and applied to the image config JSON before the
 * stages image is pushed.  Pure: no I/O, no globals.
 *
 * config.c fills a te_imagespec from werf.yaml (libyaml stays there) and
 * checks every pattern with te_imagespec_check_pattern, so that a bad
 * `/regex/` is a werf.yaml:LINE error before anything is built.
 *
 * Patterns (removeLabels, removeEnv): "/RE/" is Go's regexp (regex.h)
 * "^RE$", built as werf builds it (pkg/build/stage/image_spec.go,
 * compileRemovePatterns): not grouped, so /a|b/ matches names starting
 * with a or ending with b, exactly as in werf.  Anything else is an exact
 * name.
 */
#ifndef TAGEXPORT_IMAGESPEC_H
#define TAGEXPORT_IMAGESPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "tagexport/buf.h"
#include "tagexport/error.h"

/* Longest "/RE/" pattern (compiling is work a werf.yaml asks for). */
#define TE_IMAGESPEC_PATTERN_MAX 1024

/* Regex work (VM steps) for matching every name of one config. */
#define TE_IMAGESPEC_MATCH_STEPS (1ull << 28)

/* Bounds for one image config document (the registry's TE_CONFIG_MAX). */
#define TE_IMAGESPEC_CONFIG_MAX (4u * 1024 * 1024)

/*
 * One imageSpec.  Maps are pair vectors: items[2i] is a key, items[2i+1]
 * its value, keys unique.  Unset strings are NULL, unset lists empty with
 * has_* false where "set to empty" differs from "not set".  Owns all its
 * strings: release with te_imagespec_dispose.
 */
typedef struct te_imagespec {
	char *author;
	bool clear_history;
	te_strvec labels; /* pairs; values may hold %image%, %project% */
	te_strvec remove_labels;
	bool keep_essential_werf_labels;
	te_strvec env; /* pairs; values may reference ${NAME} of the image */
	te_strvec remove_env;
	te_strvec volumes;
	te_strvec remove_volumes;
	bool has_expose;
	te_strvec expose;
	char *user;
	char *working_dir;
	char *stop_signal;
	bool has_cmd;
	te_strvec cmd;
	bool has_entrypoint;
	te_strvec entrypoint;
	bool has_healthcheck;
	te_strvec hc_test;
	long long hc_interval; /* seconds; 0 = not set */
	long long hc_timeout;
	long long hc_start_period;
	long long hc_retries;
	bool clear_cmd;
	bool clear_entrypoint;
	bool clear_user;
	bool clear_working_dir;
} te_imagespec;

#define TE_IMAGESPEC_INIT                                                      \
	{                                                                      \
		0                                                              \
	}

void te_imagespec_dispose(te_imagespec *spec);

/* True when the spec changes nothing (no key was given). */
bool te_imagespec_is_empty(const te_imagespec *spec);

/*
 * A removeLabels/removeEnv entry: TE_EINVALID "invalid regular expression
 * /RE/: error parsing regexp: ..." (Go's message) when "^RE$" does not
 * compile.
 */
int te_imagespec_check_pattern(const char *pattern, te_error *err);

/* *match: does name match pattern (an exact name, or "/RE/" as above)?
 * TE_EINVALID for a bad "/RE/". */
int te_imagespec_pattern_match(bool *match, const char *pattern,
                               const char *name, te_error *err);

/*
 * Does removeLabels name one of werf's essential labels, which stay
 * anyway?  werf warns then unless keepEssentialWerfLabels is set; this is
 * what that setting changes.  A bad pattern counts as no match.
 */
bool te_imagespec_warns_essential(const te_imagespec *spec);

/*
 * A healthcheck duration as werf.yaml writes it: integer seconds ("30"),
 * or a Go-style duration of h, m and s parts ("30s", "1m30s").  *out
 * gets seconds (at most one year).  TE_EINVALID names the text.
 */
int te_imagespec_seconds_parse(long long *out, const char *text, te_error *err);

/*
 * werf's merge of the meta build.imageSpec under an image's own
 * (https://werf.io/docs/v2/usage/build/images.html#global-configuration):
 * author: the image's, else the global one; clearHistory and
 * keepEssentialWerfLabels: either; labels: the union, the image's value
 * winning for a key both set; removeLabels: the image's, then the global
 * ones it does not list.  Every other field is the image's.  out must be
 * TE_IMAGESPEC_INIT; global may be NULL.
 */
int te_imagespec_merge(te_imagespec *out, const te_imagespec *global,
                       const te_imagespec *image, te_error *err);

/*
 * Replace %image% and %project% in every label key and value (werf's label
 * template variables).  Done when werf.yaml is read, so that the content
 * tag covers the labels as they will be: two images sharing a document
 * then get different tags when their labels differ.
 */
int te_imagespec_expand_labels(te_imagespec *spec, const char *image,
                               const char *project, te_error *err);

/*
 * The canonical text of a spec for the content tag: a compact JSON object
 * with sorted keys and only the fields that are set; lists whose order
 * does not matter (removeLabels, removeEnv, volumes, removeVolumes,
 * expose) sorted.  The same spec always gives the same bytes; "" for an
 * empty spec.
 */
int te_imagespec_serialize(te_buf *out, const te_imagespec *spec,
                           te_error *err);

/*
 * Apply spec to an image config (Docker schema 2 or OCI image config
 * JSON), as werf's imageSpec stage does:
 *   - labels: remove those matching removeLabels, except werf's essential
 *     labels ("werf", "werf-stage-content-digest", "werf.io/parent-stage-id",
 *     "werf-project-repo-commit"), then set labels with %image% and
 *     %project% replaced by image and project;
 *   - env: remove names matching removeEnv, then set env, each value
 *     expanded against the image's original env ($NAME, ${NAME}; unknown
 *     names are "", "\$" is a literal "$");
 *   - volumes: remove removeVolumes, then add volumes;
 *   - expose: when given, the exposed ports are exactly those ("8080"
 *     is stored as "8080/tcp", as EXPOSE 8080 is);
 *   - healthcheck: when given, replaces the image's (durations in ns);
 *   - clearUser/clearWorkingDir/clearCmd/clearEntrypoint empty the field,
 *     then user, workingDir, stopSignal, cmd and entrypoint are set; an
 *     entrypoint without a cmd clears the image's cmd (Docker's rule);
 *   - author set; clearHistory empties the history.
 * Other fields are kept.  out gets the new JSON.  TE_EINVALID when config
 * is not a JSON object (or its "config" not an object), has duplicate
 * keys, or is larger than TE_IMAGESPEC_CONFIG_MAX.
 */
int te_imagespec_apply(te_buf *out, const void *config, size_t len,
                       const te_imagespec *spec, const char *image,
                       const char *project, te_error *err);

#endif
