#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tagexport/dockerfile.h"

struct result {
	te_strvec bases;
	te_strvec sources;
};

static te_dockerfile *parse_ok(const char *text)
{
	te_dockerfile *df = NULL;
	te_error err = TE_ERROR_INIT;
	int rc = te_dockerfile_parse(&df, text, strlen(text), &err);

	if (rc != 0)
		fail_msg("unexpected error %d: %s", rc, err.msg);
	return df;
}

static void inputs(struct result *r, const char *text, const char *target,
                   const char *const *args, size_t nargs)
{
	te_dockerfile *df = parse_ok(text);
	te_error err = TE_ERROR_INIT;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = te_dockerfile_inputs(&r->bases, &r->sources, df, target, args,
	                          nargs, &err);
	te_dockerfile_free(df);
	if (rc != 0)
		fail_msg("unexpected error %d: %s", rc, err.msg);
}

static void result_dispose(struct result *r)
{
	te_strvec_dispose(&r->bases);
	te_strvec_dispose(&r->sources);
}

/* vec must equal the NULL-terminated list want */
static void expect_vec(const te_strvec *vec, const char *const *want)
{
	size_t i;

	for (i = 0; want[i]; i++) {
		if (i >= vec->count)
			fail_msg("missing \"%s\" at %zu", want[i], i);
		assert_string_equal(vec->items[i], want[i]);
	}
	if (vec->count != i)
		fail_msg("extra \"%s\" at %zu", vec->items[i], i);
}

static void expect_parse_err(const char *text, const char *msg)
{
	te_dockerfile *df = NULL;
	te_error err = TE_ERROR_INIT;
	int rc = te_dockerfile_parse(&df, text, strlen(text), &err);

	if (rc != TE_EINVALID || !strstr(err.msg, msg))
		fail_msg("want \"%s\", got %d \"%s\"", msg, rc, err.msg);
	assert_null(df);
}

static const char multistage[] = "FROM golang:1.22 AS build\n"
                                 "WORKDIR /src\n"
                                 "COPY go.mod go.sum ./\n"
                                 "COPY cmd/ ./cmd/\n"
                                 "RUN go build -o /out/app ./cmd\n"
                                 "\n"
                                 "FROM node:20 AS web\n"
                                 "COPY web/ /web\n"
                                 "\n"
                                 "FROM build AS test\n"
                                 "COPY testdata /testdata\n"
                                 "\n"
                                 "FROM alpine:3.19\n"
                                 "COPY --from=build /out/app /app\n"
                                 "COPY --from=busybox:1.36 /bin/busybox /bin/\n"
                                 "COPY etc/app.conf /etc/\n";

static void multistage_last(void **state)
{
	static const char *const bases[] = {"golang:1.22", "alpine:3.19",
	                                    "busybox:1.36", NULL};
	static const char *const sources[] = {"go.mod", "go.sum", "cmd",
	                                      "etc/app.conf", NULL};
	struct result r;

	(void)state;
	inputs(&r, multistage, NULL, NULL, 0);
	expect_vec(&r.bases, bases);
	/* COPY --from sources are not context files */
	expect_vec(&r.sources, sources);
	result_dispose(&r);
}

static void multistage_target(void **state)
{
	static const char *const bases[] = {"golang:1.22", NULL};
	static const char *const sources[] = {"go.mod", "go.sum", "cmd",
	                                      "testdata", NULL};
	static const char *const wbases[] = {"node:20", NULL};
	static const char *const wsources[] = {"web", NULL};
	struct result r;
	te_dockerfile *df;
	te_strvec b = TE_STRVEC_INIT, s = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;

	(void)state;
	/* FROM build: the alias is a dependency, not a base */
	inputs(&r, multistage, "TEST", NULL, 0);
	expect_vec(&r.bases, bases);
	expect_vec(&r.sources, sources);
	result_dispose(&r);
	inputs(&r, multistage, "web", NULL, 0);
	expect_vec(&r.bases, wbases);
	expect_vec(&r.sources, wsources);
	result_dispose(&r);

	df = parse_ok(multistage);
	assert_int_equal(
	    te_dockerfile_inputs(&b, &s, df, "nope", NULL, 0, &err),
	    TE_EINVALID);
	assert_non_null(strstr(err.msg, "target stage \"nope\" not found"));
	te_dockerfile_free(df);
}

static void from_args(void **state)
{
	static const char text[] =
	    "ARG REGISTRY=docker.io\n"
	    "ARG TAG\n"
	    "FROM ${REGISTRY}/library/alpine:${TAG:-3.19} "
	    "AS a\n"
	    "FROM $REGISTRY/debian:${TAG}\n"
	    "COPY --from=a /x /x\n";
	static const char *const def[] = {"docker.io/library/alpine:3.19",
	                                  "docker.io/debian:", NULL};
	static const char *const args[] = {"REGISTRY=r.example", "TAG=12",
	                                   "OTHER=1"};
	static const char *const over[] = {"r.example/library/alpine:12",
	                                   "r.example/debian:12", NULL};
	static const char *const unknown[] = {"${BASE}:1", NULL};
	struct result r;

	(void)state;
	inputs(&r, text, NULL, NULL, 0);
	expect_vec(&r.bases, def);
	result_dispose(&r);
	inputs(&r, text, NULL, args, 3);
	expect_vec(&r.bases, over);
	result_dispose(&r);
	/* an undeclared variable stays visible to the caller */
	inputs(&r, "FROM ${BASE}:1\n", NULL, args, 3);
	expect_vec(&r.bases, unknown);
	result_dispose(&r);
}

static void copy_args(void **state)
{
	static const char text[] =
	    "FROM alpine\n"
	    "ARG DIR=src\n"
	    "ARG EMPTY\n"
	    "COPY ${DIR}/ \"quoted name\" ${EMPTY:-def}/f "
	    "$DIR/a${EMPTY}b /dst/\n";
	static const char *const def[] = {"src", "quoted name", "def/f",
	                                  "src/ab", NULL};
	static const char *const args[] = {"DIR=lib", "EMPTY=e"};
	static const char *const over[] = {"lib", "quoted name", "e/f",
	                                   "lib/aeb", NULL};
	static const char *const dot[] = {".", NULL};
	struct result r;

	(void)state;
	inputs(&r, text, NULL, NULL, 0);
	expect_vec(&r.sources, def);
	result_dispose(&r);
	inputs(&r, text, NULL, args, 2);
	expect_vec(&r.sources, over);
	result_dispose(&r);
	/* single quotes keep "${DIR}" literal, so a '$' remains */
	inputs(&r, "FROM alpine\nARG DIR=src\nCOPY '${DIR}x' a /d\n", NULL,
	       NULL, 0);
	expect_vec(&r.sources, dot);
	result_dispose(&r);
	/* stage ARG without default takes the global one */
	inputs(&r, "ARG V=g\nFROM alpine\nARG V\nCOPY $V /d\n", NULL, NULL, 0);
	assert_string_equal(r.sources.items[0], "g");
	result_dispose(&r);
}

static void unexpanded_var(void **state)
{
	static const char *const dot[] = {".", NULL};
	struct result r;

	(void)state;
	/* undeclared: could come from the base image's environment */
	inputs(&r, "FROM alpine\nCOPY a $HOME/x b /dst\n", NULL, NULL, 0);
	expect_vec(&r.sources, dot);
	result_dispose(&r);
	/* ENV hides what we know */
	inputs(&r, "FROM alpine\nARG X=1\nENV X=2\nCOPY ${X}/f /y\n", NULL,
	       NULL, 0);
	expect_vec(&r.sources, dot);
	result_dispose(&r);
	/* unsupported modifier */
	inputs(&r, "FROM alpine\nARG X=abc\nCOPY ${X#a} /y\n", NULL, NULL, 0);
	expect_vec(&r.sources, dot);
	result_dispose(&r);
	/* a build arg not declared by ARG is not visible */
	{
		static const char *const args[] = {"X=1"};
		inputs(&r, "FROM alpine\nCOPY ${X} /y\n", NULL, args, 1);
		expect_vec(&r.sources, dot);
		result_dispose(&r);
	}
}

static void cleaning(void **state)
{
	static const char *const want[] = {"a/c", "b", "x/y", "z", NULL};
	static const char *const dot[] = {".", NULL};
	struct result r;

	(void)state;
	inputs(&r, "FROM alpine\nCOPY /a/./b/../c ./b/ x//y/ z /dst\n", NULL,
	       NULL, 0);
	expect_vec(&r.sources, want);
	result_dispose(&r);
	inputs(&r, "FROM alpine\nCOPY ../../etc/passwd a /dst\n", NULL, NULL,
	       0);
	expect_vec(&r.sources, dot);
	result_dispose(&r);
	inputs(&r, "FROM alpine\nCOPY . /app\nCOPY a /b\n", NULL, NULL, 0);
	expect_vec(&r.sources, dot);
	result_dispose(&r);
}

static void continuations_and_comments(void **state)
{
	static const char *const want[] = {"a", "b", "c", NULL};
	struct result r;

	(void)state;
	inputs(&r,
	       "# a comment\n"
	       "\n"
	       "from alpine \\\n"
	       "  AS base\n"
	       "copy a \\\n"
	       "# comment inside a continuation\n"
	       "\n"
	       "   b \\   \n"
	       "   c /dst/\n"
	       "   # indented comment\n"
	       "RUN echo \\\n"
	       "  hi\r\n",
	       NULL, NULL, 0);
	expect_vec(&r.sources, want);
	assert_string_equal(r.bases.items[0], "alpine");
	result_dispose(&r);
}

static void heredocs(void **state)
{
	static const char *const want[] = {"real", NULL};
	static const char *const bases[] = {"alpine", NULL};
	struct result r;

	(void)state;
	inputs(&r,
	       "FROM alpine\n"
	       "RUN <<EOF\n"
	       "FROM evil\n"
	       "COPY secret /\n"
	       "EOF\n"
	       "COPY <<-\"END\" /etc/conf\n"
	       "\tCOPY nope /\n"
	       "\tEND\n"
	       "RUN python3 <<PY 3<<'SH'\n"
	       "print(1)\n"
	       "PY\n"
	       "echo\n"
	       "SH\n"
	       "COPY real /real\n",
	       NULL, NULL, 0);
	expect_vec(&r.bases, bases);
	expect_vec(&r.sources, want);
	result_dispose(&r);
	expect_parse_err("FROM a\nRUN <<EOF\necho\n", "unterminated heredoc");
}

static void escape_directive(void **state)
{
	static const char *const want[] = {"C:\\src", "b", NULL};
	struct result r;

	(void)state;
	inputs(&r,
	       "# escape=`\n"
	       "FROM mcr.microsoft.com/windows\n"
	       "COPY C:\\src `\n"
	       "  b C:\\dst\n",
	       NULL, NULL, 0);
	expect_vec(&r.sources, want);
	result_dispose(&r);
	expect_parse_err("# escape=x\nFROM a\n", "invalid escape token");
	/* after a blank line it is a plain comment */
	inputs(&r, "\n# escape=`\nFROM a\nCOPY x \\\n y /d\n", NULL, NULL, 0);
	{
		static const char *const xy[] = {"x", "y", NULL};
		expect_vec(&r.sources, xy);
	}
	result_dispose(&r);
}

static void json_form(void **state)
{
	static const char *const want[] = {"a b.txt", "cAd", "dir", NULL};
	struct result r;

	(void)state;
	inputs(&r,
	       "FROM alpine\n"
	       "COPY --chown=1:1 [\"a b.txt\", \"c\\u0041d\", \"./dir/\", "
	       "\"/dst/\"]\n",
	       NULL, NULL, 0);
	expect_vec(&r.sources, want);
	result_dispose(&r);
	/* not valid JSON: shell form */
	inputs(&r, "FROM alpine\nCOPY [a, b] /x\n", NULL, NULL, 0);
	{
		static const char *const sh[] = {"[a,", "b]", NULL};
		expect_vec(&r.sources, sh);
	}
	result_dispose(&r);
}

static void add_and_mounts(void **state)
{
	static const char *const want[] = {"scripts", "local.tgz",
	                                   "https://example.com/x.tgz",
	                                   "git@github.com:o/r.git", NULL};
	static const char *const bases[] = {"alpine", "golang:1", NULL};
	struct result r;

	(void)state;
	inputs(&r,
	       "FROM alpine AS deps\n"
	       "FROM alpine\n"
	       "RUN --mount=type=bind,source=scripts,target=/s sh /s/x\n"
	       "RUN --mount=type=cache,target=/c true\n"
	       "RUN --mount=type=bind,from=deps,target=/d true\n"
	       "RUN --mount=from=golang:1,target=/g true\n"
	       "ADD --chmod=644 https://example.com/x.tgz local.tgz /x/\n"
	       "ADD git@github.com:o/r.git /src\n",
	       NULL, NULL, 0);
	expect_vec(&r.bases, bases);
	expect_vec(&r.sources, want);
	result_dispose(&r);
	/* a bind mount without source reads the whole context */
	inputs(&r, "FROM alpine\nRUN --mount=target=/ctx ls\n", NULL, NULL, 0);
	assert_string_equal(r.sources.items[0], ".");
	result_dispose(&r);
}

static void copy_from_index_and_platform(void **state)
{
	struct result r;

	(void)state;
	inputs(&r,
	       "FROM --platform=$BUILDPLATFORM golang AS b\n"
	       "COPY a /a\n"
	       "FROM scratch\n"
	       "COPY --from=0 /a /a\n",
	       NULL, NULL, 0);
	{
		static const char *const want[] = {"golang", "scratch", NULL};
		static const char *const src[] = {"a", NULL};
		expect_vec(&r.bases, want);
		expect_vec(&r.sources, src);
	}
	result_dispose(&r);
}

static void parse_errors(void **state)
{
	te_dockerfile *df = NULL;
	te_error err = TE_ERROR_INIT;
	char *big;

	(void)state;
	expect_parse_err("", "no FROM instruction");
	expect_parse_err("# only a comment\n", "no FROM instruction");
	expect_parse_err("RUN x\nFROM a\n",
	                 "dockerfile:1: no build stage in current context");
	expect_parse_err("FROM a\n\nCOPY x\n",
	                 "dockerfile:3: COPY requires at least two arguments");
	expect_parse_err("FROM a\nFROBNICATE x\n",
	                 "dockerfile:2: unknown instruction: frobnicate");
	expect_parse_err("FROM a b\n", "dockerfile:1: FROM requires");
	expect_parse_err("FROM a\nARG\n", "ARG requires");
	expect_parse_err("# escape=`\n# escape=\\\nFROM a\n",
	                 "only one escape");

	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, '#', 1024 * 1024 + 1);
	assert_int_equal(te_dockerfile_parse(&df, big, 1024 * 1024 + 1, &err),
	                 TE_EINVALID);
	assert_non_null(strstr(err.msg, "1 MiB"));
	free(big);
}

static void exponential_args_bounded(void **state)
{
	te_buf text = TE_BUF_INIT(1 << 20);
	te_dockerfile *df;
	te_strvec b = TE_STRVEC_INIT, s = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;
	int i, rc;

	(void)state;
	assert_int_equal(te_buf_puts(&text, "ARG A0=xxxxxxxx\n", &err), 0);
	for (i = 1; i < 40; i++)
		assert_int_equal(te_buf_printf(&text, &err,
		                               "ARG A%d=${A%d}${A%d}\n", i,
		                               i - 1, i - 1),
		                 0);
	assert_int_equal(te_buf_puts(&text, "FROM ${A39}\n", &err), 0);
	df = parse_ok(text.ptr);
	rc = te_dockerfile_inputs(&b, &s, df, NULL, NULL, 0, &err);
	assert_int_equal(rc, TE_EINVALID);
	te_strvec_dispose(&b);
	te_strvec_dispose(&s);
	te_dockerfile_free(df);
	te_buf_dispose(&text);
}

/* Fuzzer finds (regenerated here, too large to keep): a COPY of 120,000
 * sources scanned its list once per source; a 60 KB ARG referenced
 * 345,000 times was expanded and compared each time. */
static void fuzz_regressions(void **state)
{
	const size_t m = 1024 * 1024 - 100;
	te_buf text = TE_BUF_INIT(2 * 1024 * 1024);
	te_error err = TE_ERROR_INIT;
	struct result r;
	te_dockerfile *df;
	int i, rc;

	(void)state;
	/* slow-120k-copy-sources */
	assert_int_equal(te_buf_puts(&text, "FROM alpine\nCOPY", &err), 0);
	for (i = 0; i < 120000; i++)
		assert_int_equal(te_buf_printf(&text, &err, " f%d", i), 0);
	assert_int_equal(te_buf_puts(&text, " f7 f0 /d\n", &err), 0);
	inputs(&r, text.ptr, NULL, NULL, 0);
	assert_int_equal(r.sources.count, 120000);
	assert_string_equal(r.sources.items[0], "f0");
	assert_string_equal(r.sources.items[119999], "f119999");
	result_dispose(&r);

	/* slow-arg-expansion-amplification */
	te_buf_clear(&text);
	assert_int_equal(te_buf_puts(&text, "FROM alpine\nARG A=", &err), 0);
	for (i = 0; i < 60000; i++)
		assert_int_equal(te_buf_put(&text, "x", 1, &err), 0);
	assert_int_equal(te_buf_puts(&text, "\nCOPY", &err), 0);
	for (i = 0; i < (int)((m - 70000) / 3); i++)
		assert_int_equal(te_buf_puts(&text, " $A", &err), 0);
	assert_int_equal(te_buf_puts(&text, " /d\n", &err), 0);
	text.ptr[m] = '\0'; /* the generator cut it at m bytes */
	df = parse_ok(text.ptr);
	memset(&r, 0, sizeof(r));
	rc =
	    te_dockerfile_inputs(&r.bases, &r.sources, df, NULL, NULL, 0, &err);
	assert_int_equal(rc, TE_EINVALID);
	assert_non_null(strstr(err.msg, "more than 16777216 bytes"));
	result_dispose(&r);
	te_dockerfile_free(df);

	/* 20,000 variables, each referenced: lookups are hashed */
	te_buf_clear(&text);
	assert_int_equal(te_buf_puts(&text, "FROM alpine\nARG", &err), 0);
	for (i = 0; i < 20000; i++)
		assert_int_equal(te_buf_printf(&text, &err, " v%d=s%d", i, i),
		                 0);
	assert_int_equal(te_buf_puts(&text, "\nCOPY", &err), 0);
	for (i = 0; i < 20000; i++)
		assert_int_equal(te_buf_printf(&text, &err, " $v%d", i), 0);
	assert_int_equal(te_buf_puts(&text, " /d\n", &err), 0);
	inputs(&r, text.ptr, NULL, NULL, 0);
	assert_int_equal(r.sources.count, 20000);
	assert_string_equal(r.sources.items[19999], "s19999");
	result_dispose(&r);

	/* the instruction count */
	te_buf_clear(&text);
	assert_int_equal(te_buf_puts(&text, "FROM alpine\n", &err), 0);
	for (i = 0; i < TE_DOCKERFILE_MAX_INSTRUCTIONS; i++)
		assert_int_equal(te_buf_puts(&text, "RUN x\n", &err), 0);
	expect_parse_err(text.ptr, "more than 10000 instructions");
	te_buf_dispose(&text);
}

static void sources_match(void **state)
{
	te_strvec s = TE_STRVEC_INIT;
	te_error err = TE_ERROR_INIT;

	(void)state;
	assert_int_equal(te_strvec_push(&s, "src", &err), 0);
	assert_int_equal(te_strvec_push(&s, "*.go", &err), 0);
	assert_int_equal(te_strvec_push(&s, "cfg/app-?.yaml", &err), 0);
	assert_int_equal(te_strvec_push(&s, "https://x/y", &err), 0);
	assert_true(te_dockerfile_sources_match(&s, "src"));
	assert_true(te_dockerfile_sources_match(&s, "src/a/b.c"));
	assert_true(te_dockerfile_sources_match(&s, "main.go"));
	assert_false(te_dockerfile_sources_match(&s, "pkg/main.go"));
	assert_true(te_dockerfile_sources_match(&s, "cfg/app-1.yaml"));
	assert_false(te_dockerfile_sources_match(&s, "cfg/app-10.yaml"));
	assert_false(te_dockerfile_sources_match(&s, "srcx"));
	assert_false(te_dockerfile_sources_match(&s, "https:"));
	assert_false(te_dockerfile_sources_match(NULL, "a"));
	assert_int_equal(te_strvec_push(&s, ".", &err), 0);
	assert_true(te_dockerfile_sources_match(&s, "anything/at/all"));
	te_strvec_dispose(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(multistage_last),
	    cmocka_unit_test(multistage_target),
	    cmocka_unit_test(from_args),
	    cmocka_unit_test(copy_args),
	    cmocka_unit_test(unexpanded_var),
	    cmocka_unit_test(cleaning),
	    cmocka_unit_test(continuations_and_comments),
	    cmocka_unit_test(heredocs),
	    cmocka_unit_test(escape_directive),
	    cmocka_unit_test(json_form),
	    cmocka_unit_test(add_and_mounts),
	    cmocka_unit_test(copy_from_index_and_platform),
	    cmocka_unit_test(parse_errors),
	    cmocka_unit_test(exponential_args_bounded),
	    cmocka_unit_test(sources_match),
	    cmocka_unit_test(fuzz_regressions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
