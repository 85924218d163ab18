#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagexport/digest.h"
#include "tagexport/plan.h"

#define TAG_A "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
#define TAG_B "89abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static int frees;

static int no_build(char digest_out[TE_DIGEST_STR_MAX], const te_stage_ctx *ctx,
                    void *payload, te_error *err)
{
	(void)digest_out;
	(void)ctx;
	(void)payload;
	return te_error_set(err, TE_ERROR, "not called in unit tests");
}

static void count_free(void *payload)
{
	(void)payload;
	frees++;
}

static te_plan *new_plan(void)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = NULL;

	assert_int_equal(te_plan_new(&p, "reg:5000", "group/app", &err), 0);
	return p;
}

static te_plan_image *image(te_plan *p, const char *name)
{
	te_error err = TE_ERROR_INIT;
	te_plan_image *img = NULL;

	assert_int_equal(te_plan_add_image(&img, p, name, "werf.yaml:3", &err),
	                 0);
	return img;
}

static void stage(te_plan_image *img, const char *name, const char *input)
{
	te_plan_stage_spec spec = {name, input,      no_build,
	                           NULL, count_free, NULL};
	te_error err = TE_ERROR_INIT;

	assert_int_equal(te_plan_add_stage(NULL, img, &spec, &err), 0);
}

static void dep(te_plan_image *img, te_plan_image *on)
{
	te_error err = TE_ERROR_INIT;

	assert_int_equal(te_plan_add_dependency(img, on, &err), 0);
}

static void seal(te_plan *p)
{
	te_error err = TE_ERROR_INIT;

	assert_int_equal(te_plan_seal(p, &err), 0);
}

/* The digest rule of plan.h, computed here from its description. */
static void expected(char out[TE_CONTENT_TAG_LEN + 1], const char *prev,
                     const char *name, const char *input,
                     const char *const *deps, size_t ndeps, bool first)
{
	te_error err = TE_ERROR_INIT;
	te_digest *d = NULL;
	char count[32];
	size_t i;

	assert_int_equal(te_digest_new(&d, &err), 0);
	te_digest_field(d, "tagexport-stage-v1", 18, &err);
	te_digest_field(d, prev, strlen(prev), &err);
	te_digest_field(d, name, strlen(name), &err);
	te_digest_field(d, input, strlen(input), &err);
	if (first || ndeps) {
		snprintf(count, sizeof(count), "deps:%zu", ndeps);
		te_digest_field(d, count, strlen(count), &err);
		for (i = 0; i < ndeps; i++)
			te_digest_field(d, deps[i], strlen(deps[i]), &err);
	}
	assert_int_equal(te_digest_final(out, d, &err), 0);
	te_digest_free(d);
}

static void test_single_stage_keeps_content_tag(void **state)
{
	te_plan *p = new_plan();
	te_plan_image *a = image(p, "a");

	(void)state;
	stage(a, "dockerfile", TAG_A);
	seal(p);
	assert_string_equal(te_plan_image_tag(a), TAG_A);
	assert_string_equal(te_plan_image_ref(a), "reg:5000/group/app:" TAG_A);
	assert_string_equal(te_plan_stage_ref(te_plan_stage_at(a, 0)),
	                    "reg:5000/group/app:" TAG_A);
	frees = 0;
	te_plan_free(p);
	assert_int_equal(frees, 1);
}

static void test_chain_digests(void **state)
{
	te_plan *p = new_plan();
	te_plan_image *a = image(p, "a");
	char d1[TE_CONTENT_TAG_LEN + 1], d2[TE_CONTENT_TAG_LEN + 1];

	(void)state;
	stage(a, "FROM busybox", "from-input");
	stage(a, "RUN make", "run-input");
	seal(p);
	expected(d1, "", "FROM busybox", "from-input", NULL, 0, true);
	expected(d2, d1, "RUN make", "run-input", NULL, 0, false);
	assert_string_equal(te_plan_stage_digest(te_plan_stage_at(a, 0)), d1);
	assert_string_equal(te_plan_stage_digest(te_plan_stage_at(a, 1)), d2);
	assert_string_equal(te_plan_image_tag(a), d2);
	te_plan_free(p);
}

/* A change of the first stage changes every later digest; a change of
 * the last leaves the prefix alone. */
static void test_prefix_stability(void **state)
{
	const char *inputs[3][3] = {
	    {"x", "y", "z"}, {"x2", "y", "z"}, {"x", "y", "z2"}};
	char tags[3][3][TE_CONTENT_TAG_LEN + 1];
	size_t v, i;

	(void)state;
	for (v = 0; v < 3; v++) {
		te_plan *p = new_plan();
		te_plan_image *a = image(p, "a");

		stage(a, "one", inputs[v][0]);
		stage(a, "two", inputs[v][1]);
		stage(a, "three", inputs[v][2]);
		seal(p);
		for (i = 0; i < 3; i++)
			strcpy(tags[v][i],
			       te_plan_stage_digest(te_plan_stage_at(a, i)));
		te_plan_free(p);
	}
	for (i = 0; i < 3; i++)
		assert_string_not_equal(tags[0][i], tags[1][i]);
	assert_string_equal(tags[0][0], tags[2][0]);
	assert_string_equal(tags[0][1], tags[2][1]);
	assert_string_not_equal(tags[0][2], tags[2][2]);
}

static void test_dependencies_in_digest(void **state)
{
	te_plan *p = new_plan();
	te_plan_image *app = image(p, "app"), *zb = image(p, "zb"),
	              *base = image(p, "base");
	const char *deps[2] = {TAG_B, TAG_A}; /* base, then zb: by name */
	char want[TE_CONTENT_TAG_LEN + 1];

	(void)state;
	stage(app, "dockerfile", TAG_A);
	stage(zb, "dockerfile", TAG_A);
	stage(base, "dockerfile", TAG_B);
	dep(app, zb);
	dep(app, base);
	dep(app, base); /* the same edge twice is one edge */
	seal(p);
	assert_int_equal(te_plan_image_dep_count(app), 2);
	expected(want, "", "dockerfile", TAG_A, deps, 2, true);
	assert_string_equal(te_plan_image_tag(app), want);
	/* Dependencies first, otherwise in the order added. */
	assert_ptr_equal(te_plan_image_ordered(p, 0), zb);
	assert_ptr_equal(te_plan_image_ordered(p, 1), base);
	assert_ptr_equal(te_plan_image_ordered(p, 2), app);
	te_plan_free(p);
}

static void test_dependency_change_propagates(void **state)
{
	char tags[2][TE_CONTENT_TAG_LEN + 1];
	const char *base_input[2] = {TAG_A, TAG_B};
	size_t v;

	(void)state;
	for (v = 0; v < 2; v++) {
		te_plan *p = new_plan();
		te_plan_image *app = image(p, "app"), *mid = image(p, "mid"),
		              *base = image(p, "base");

		stage(app, "dockerfile", TAG_A);
		stage(mid, "dockerfile", TAG_A);
		stage(base, "dockerfile", base_input[v]);
		dep(app, mid);
		dep(mid, base);
		seal(p);
		strcpy(tags[v], te_plan_image_tag(app));
		te_plan_free(p);
	}
	assert_string_not_equal(tags[0], tags[1]);
}

static void test_cycle(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	te_plan_image *a = image(p, "a"), *b = image(p, "b"),
	              *c = image(p, "c");

	(void)state;
	stage(a, "s", "1");
	stage(b, "s", "2");
	stage(c, "s", "3");
	dep(a, b);
	dep(b, c);
	dep(c, a);
	assert_int_equal(te_plan_seal(p, &err), TE_EINVALID);
	assert_string_equal(err.msg, "werf.yaml:3: image \"a\": dependency "
	                             "cycle a -> b -> c -> a");
	te_plan_free(p);
}

static void test_bad_input(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	te_plan_image *a = image(p, "a"), *b = image(p, "b"), *dup = NULL;
	te_plan_stage_spec spec = {"bad\nname", "x",        no_build,
	                           NULL,        count_free, NULL};

	(void)state;
	assert_int_equal(te_plan_add_dependency(a, a, &err), TE_EINVALID);
	assert_string_equal(err.msg,
	                    "werf.yaml:3: image \"a\" depends on itself");
	te_error_clear(&err);
	assert_int_equal(te_plan_add_image(&dup, p, "a", NULL, &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	frees = 0;
	assert_int_equal(te_plan_add_stage(NULL, a, &spec, &err), TE_EINVALID);
	assert_int_equal(frees, 1); /* the plan owned the payload */
	te_error_clear(&err);
	spec.name = "ok";
	spec.build = NULL;
	assert_int_equal(te_plan_add_stage(NULL, a, &spec, &err), TE_EINVALID);
	assert_int_equal(frees, 2);
	te_error_clear(&err);
	stage(a, "s", "1");
	assert_int_equal(te_plan_seal(p, &err), TE_EINVALID);
	assert_string_equal(err.msg, "werf.yaml:3: image \"b\" has no stages");
	(void)b;
	te_plan_free(p);
}

/* A dependency entering a later stage: its digest is in that stage's
 * digest, not in the earlier ones; the scheduler still sees the edge. */
static void test_dependency_at_stage(void **state)
{
	char want[3][TE_CONTENT_TAG_LEN + 1],
	    tags[2][3][TE_CONTENT_TAG_LEN + 1];
	const char *src_input[2] = {TAG_A, TAG_B};
	te_error err = TE_ERROR_INIT;
	size_t v, i;

	(void)state;
	for (v = 0; v < 2; v++) {
		te_plan *p = new_plan();
		te_plan_image *app = image(p, "app"), *src = image(p, "src");
		te_plan_stage *mid = NULL;
		te_plan_stage_spec spec = {"deps", "deps-input", no_build,
		                           NULL,   NULL,         NULL};
		const char *deps[1];

		stage(app, "from", "from-input");
		assert_int_equal(te_plan_add_stage(&mid, app, &spec, &err), 0);
		stage(app, "setup", "setup-input");
		stage(src, "dockerfile", src_input[v]);
		assert_int_equal(te_plan_add_dependency_at(mid, src, &err), 0);
		assert_int_equal(te_plan_add_dependency_at(mid, src, &err), 0);
		seal(p);
		assert_int_equal(te_plan_image_dep_count(app), 1);
		assert_ptr_equal(te_plan_image_ordered(p, 0), src);
		/* the one-stage source keeps its content tag */
		assert_string_equal(te_plan_image_tag(src), src_input[v]);
		deps[0] = src_input[v];
		expected(want[0], "", "from", "from-input", NULL, 0, true);
		expected(want[1], want[0], "deps", "deps-input", deps, 1,
		         false);
		expected(want[2], want[1], "setup", "setup-input", NULL, 0,
		         false);
		for (i = 0; i < 3; i++) {
			strcpy(tags[v][i],
			       te_plan_stage_digest(te_plan_stage_at(app, i)));
			assert_string_equal(tags[v][i], want[i]);
		}
		te_plan_free(p);
	}
	/* the source changed: `from` stays, the rest moves */
	assert_string_equal(tags[0][0], tags[1][0]);
	assert_string_not_equal(tags[0][1], tags[1][1]);
	assert_string_not_equal(tags[0][2], tags[1][2]);
}

/* A dependency "at" the first stage is one of the first stage's: a
 * one-stage image depending on it loses its content tag, as with
 * te_plan_add_dependency. */
static void test_dependency_at_first_stage(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	te_plan_image *app = image(p, "app"), *src = image(p, "src");
	const char *deps[1] = {TAG_B};
	char want[TE_CONTENT_TAG_LEN + 1];

	(void)state;
	stage(app, "dockerfile", TAG_A);
	stage(src, "dockerfile", TAG_B);
	assert_int_equal(
	    te_plan_add_dependency_at(te_plan_stage_at(app, 0), src, &err), 0);
	seal(p);
	expected(want, "", "dockerfile", TAG_A, deps, 1, true);
	assert_string_equal(te_plan_image_tag(app), want);
	te_plan_free(p);
}

/* A stage of another image entering a stage: only that stage's digest
 * counts, after "stages:<m>". */
static void test_stage_dependency(void **state)
{
	const char *inputs[3][2] = {{"i", "s"}, {"i", "s2"}, {"i2", "s"}};
	char tags[3][2][TE_CONTENT_TAG_LEN + 1], want[TE_CONTENT_TAG_LEN + 1];
	te_error err = TE_ERROR_INIT;
	te_digest *d = NULL;
	size_t v;

	(void)state;
	for (v = 0; v < 3; v++) {
		te_plan *p = new_plan();
		te_plan_image *app = image(p, "app"), *src = image(p, "src");
		te_plan_stage *deps = NULL, *install = NULL;
		te_plan_stage_spec spec = {"deps", "d",  no_build,
		                           NULL,   NULL, NULL};
		te_plan_stage_spec inst = {"install", inputs[v][0], no_build,
		                           NULL,      NULL,         NULL};

		stage(app, "from", "f");
		assert_int_equal(te_plan_add_stage(&deps, app, &spec, &err), 0);
		assert_int_equal(te_plan_add_stage(&install, src, &inst, &err),
		                 0);
		stage(src, "setup", inputs[v][1]);
		assert_int_equal(
		    te_plan_add_stage_dependency(deps, install, &err), 0);
		assert_int_equal(
		    te_plan_add_stage_dependency(deps, install, &err), 0);
		seal(p);
		assert_ptr_equal(te_plan_image_ordered(p, 0), src);
		assert_int_equal(te_digest_new(&d, &err), 0);
		te_digest_field(d, "tagexport-stage-v1", 18, &err);
		te_digest_field(d,
		                te_plan_stage_digest(te_plan_stage_at(app, 0)),
		                TE_CONTENT_TAG_LEN, &err);
		te_digest_field(d, "deps", 4, &err);
		te_digest_field(d, "d", 1, &err);
		te_digest_field(d, "stages:1", 8, &err);
		te_digest_field(d, te_plan_stage_digest(install),
		                TE_CONTENT_TAG_LEN, &err);
		assert_int_equal(te_digest_final(want, d, &err), 0);
		te_digest_free(d);
		assert_string_equal(te_plan_stage_digest(deps), want);
		strcpy(tags[v][0],
		       te_plan_stage_digest(te_plan_stage_at(app, 0)));
		strcpy(tags[v][1], te_plan_stage_digest(deps));
		te_plan_free(p);
	}
	/* a later stage of the source: nothing moves */
	assert_string_equal(tags[0][1], tags[1][1]);
	/* the stage imported: the stage using it moves, `from` stays */
	assert_string_equal(tags[0][0], tags[2][0]);
	assert_string_not_equal(tags[0][1], tags[2][1]);
}

/* What the resolver saw and answers. */
struct resolver {
	char prev[TE_CONTENT_TAG_LEN + 1];
	char prev_ref[200];
	size_t index;
	const char *answer; /* NULL: absent */
	int calls;
};

static int resolve(te_buf *input, bool *absent, const te_plan_image *img,
                   size_t index, void *payload, te_error *err)
{
	struct resolver *r = payload;
	const te_plan_stage *prev = te_plan_stage_at(img, index - 1);

	r->calls++;
	r->index = index;
	strcpy(r->prev, te_plan_stage_digest(prev));
	snprintf(r->prev_ref, sizeof(r->prev_ref), "%s",
	         te_plan_stage_ref(prev));
	if (!r->answer) {
		*absent = true;
		return 0;
	}
	return te_buf_puts(input, r->answer, err);
}

static te_plan_image *resolved_image(te_plan *p, struct resolver *r)
{
	te_error err = TE_ERROR_INIT;
	te_plan_image *a = image(p, "a");
	te_plan_stage_spec spec = {"cache", "static",   no_build,
	                           r,       count_free, resolve};

	stage(a, "one", "1");
	assert_int_equal(te_plan_add_stage(NULL, a, &spec, &err), 0);
	stage(a, "two", "2");
	return a;
}

static void test_resolver(void **state)
{
	struct resolver r;
	char want[3][TE_CONTENT_TAG_LEN + 1];
	te_plan *p = new_plan();
	te_plan_image *a;

	(void)state;
	/* present: the resolver's input replaces the spec's */
	memset(&r, 0, sizeof(r));
	r.answer = "patch-mib:3";
	a = resolved_image(p, &r);
	seal(p);
	expected(want[0], "", "one", "1", NULL, 0, true);
	expected(want[1], want[0], "cache", "patch-mib:3", NULL, 0, false);
	expected(want[2], want[1], "two", "2", NULL, 0, false);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.index, 1);
	assert_string_equal(r.prev, want[0]);
	assert_string_equal(r.prev_ref,
	                    te_plan_stage_ref(te_plan_stage_at(a, 0)));
	assert_int_equal(te_plan_stage_count(a), 3);
	assert_string_equal(te_plan_stage_input(te_plan_stage_at(a, 1)),
	                    "patch-mib:3");
	assert_string_equal(te_plan_image_tag(a), want[2]);
	frees = 0;
	te_plan_free(p);
	assert_int_equal(frees, 3);

	/* absent: the stage leaves the chain, its payload freed once */
	p = new_plan();
	memset(&r, 0, sizeof(r));
	a = resolved_image(p, &r);
	frees = 0;
	seal(p);
	assert_int_equal(frees, 1);
	expected(want[2], want[0], "two", "2", NULL, 0, false);
	assert_int_equal(r.calls, 1);
	assert_int_equal(te_plan_stage_count(a), 2);
	assert_string_equal(te_plan_stage_name(te_plan_stage_at(a, 1)), "two");
	assert_string_equal(te_plan_image_tag(a), want[2]);
	te_plan_free(p);
	assert_int_equal(frees, 3);
}

static void test_resolver_bad(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	te_plan_image *a = image(p, "a");
	struct resolver r;
	te_plan_stage_spec spec = {"cache", "static",   no_build,
	                           &r,      count_free, resolve};

	(void)state;
	memset(&r, 0, sizeof(r));
	frees = 0;
	assert_int_equal(te_plan_add_stage(NULL, a, &spec, &err), TE_EINVALID);
	assert_string_equal(err.msg, "image \"a\": stage cache: the first "
	                             "stage cannot have a resolver");
	assert_int_equal(frees, 1);
	te_error_clear(&err);
	/* a stage that may leave its chain cannot be depended on */
	{
		te_plan_image *b = image(p, "b");
		te_plan_stage *cache = NULL, *use = NULL;
		te_plan_stage_spec u = {"use", "u", no_build, NULL, NULL, NULL};

		stage(a, "one", "1");
		assert_int_equal(te_plan_add_stage(&cache, a, &spec, &err), 0);
		assert_int_equal(te_plan_add_stage(&use, b, &u, &err), 0);
		assert_int_equal(te_plan_add_stage_dependency(use, cache, &err),
		                 TE_EINVALID);
		assert_string_equal(err.msg,
		                    "werf.yaml:3: image \"b\": stage cache of "
		                    "image \"a\" may leave its chain: nothing "
		                    "can depend on it");
	}
	te_plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_stage_keeps_content_tag),
	    cmocka_unit_test(test_chain_digests),
	    cmocka_unit_test(test_prefix_stability),
	    cmocka_unit_test(test_dependencies_in_digest),
	    cmocka_unit_test(test_dependency_change_propagates),
	    cmocka_unit_test(test_cycle),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_dependency_at_stage),
	    cmocka_unit_test(test_dependency_at_first_stage),
	    cmocka_unit_test(test_stage_dependency),
	    cmocka_unit_test(test_resolver),
	    cmocka_unit_test(test_resolver_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
