#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tagexport/plan.h"
#include "tagexport/schedule.h"

#define DIGEST                                                                 \
	"sha256:"                                                              \
	"0000000000000000000000000000000000000000000000000000000000000001"

/* What the fake builders and lookups share. */
struct world {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char order[64][32]; /* "image/stage" in build order */
	size_t norder;
	const char *exists[16]; /* stage digests the "repo" has */
	size_t nexists;
	int running, max_running;
	int barrier; /* builders wait until this many run at once */
	bool saw_cancel;
};

static struct world W;

static void world_reset(void)
{
	memset(&W, 0, sizeof(W));
	pthread_mutex_init(&W.mu, NULL);
	pthread_cond_init(&W.cv, NULL);
}

static int lookup(bool *exists, char digest[TE_DIGEST_STR_MAX],
                  const te_plan_stage *st, void *payload, te_error *err)
{
	size_t i;

	(void)payload;
	(void)err;
	*exists = false;
	for (i = 0; i < W.nexists; i++)
		if (strcmp(W.exists[i], te_plan_stage_digest(st)) == 0)
			*exists = true;
	if (*exists)
		snprintf(digest, TE_DIGEST_STR_MAX, "%s", DIGEST);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* payload: "ok", "slow" (until cancelled), "barrier" and "fail" (once
 * W.barrier builders run at once; "fail" then fails) */
static int build(char digest_out[TE_DIGEST_STR_MAX], const te_stage_ctx *ctx,
                 void *payload, te_error *err)
{
	const char *what = payload;
	int i, rc = 0;

	pthread_mutex_lock(&W.mu);
	snprintf(W.order[W.norder++], 32, "%s/%s%s",
	         te_plan_image_name(ctx->image), te_plan_stage_name(ctx->stage),
	         ctx->base_ref ? "+base" : "");
	if (++W.running > W.max_running)
		W.max_running = W.running;
	pthread_cond_broadcast(&W.cv);
	if (strcmp(what, "barrier") == 0 || strcmp(what, "fail") == 0) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10; /* a deadlock guard, not a timing */
		while (W.max_running < W.barrier &&
		       pthread_cond_timedwait(&W.cv, &W.mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&W.mu);
	if (strcmp(what, "fail") == 0)
		rc = te_error_set(err, TE_EBUILD, "RUN failed (exit 3)");
	for (i = 0; strcmp(what, "slow") == 0 && i < 10000; i++) {
		if (atomic_load(ctx->cancel)) {
			pthread_mutex_lock(&W.mu);
			W.saw_cancel = true;
			pthread_mutex_unlock(&W.mu);
			rc = te_error_set(err, TE_ERROR, "cancelled");
			break;
		}
		sleep_ms(1);
	}
	pthread_mutex_lock(&W.mu);
	W.running--;
	pthread_mutex_unlock(&W.mu);
	if (rc == 0)
		snprintf(digest_out, TE_DIGEST_STR_MAX, "%s", DIGEST);
	return rc;
}

static te_plan_image *image(te_plan *p, const char *name, const char *kind,
                            size_t nstages)
{
	te_error err = TE_ERROR_INIT;
	te_plan_image *img = NULL;
	size_t i;

	assert_int_equal(te_plan_add_image(&img, p, name, NULL, &err), 0);
	for (i = 0; i < nstages; i++) {
		char sname[32], input[64];
		te_plan_stage_spec spec = {sname,        input, build,
		                           (void *)kind, NULL,  NULL};

		snprintf(sname, sizeof(sname), "s%zu", i);
		snprintf(input, sizeof(input), "%s-%zu", name, i);
		assert_int_equal(te_plan_add_stage(NULL, img, &spec, &err), 0);
	}
	return img;
}

static te_plan *new_plan(void)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = NULL;

	world_reset();
	assert_int_equal(te_plan_new(&p, "reg", "app", &err), 0);
	return p;
}

static int run(te_plan *p, int parallel, te_error *err)
{
	te_schedule_opts o = {0};

	o.parallel = parallel;
	o.lookup = lookup;
	assert_int_equal(te_plan_seal(p, err), 0);
	return te_schedule_run(p, &o, err);
}

static size_t pos(const char *entry)
{
	size_t i;

	for (i = 0; i < W.norder; i++)
		if (strcmp(W.order[i], entry) == 0)
			return i;
	fail_msg("%s was not built", entry);
	return 0;
}

/* A diamond: the shared dependency is built once, dependencies first. */
static void test_diamond(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	te_plan_image *app = image(p, "app", "ok", 1);
	te_plan_image *a = image(p, "a", "ok", 1);
	te_plan_image *b = image(p, "b", "ok", 1);
	te_plan_image *base = image(p, "base", "ok", 1);

	(void)state;
	te_plan_add_dependency(app, a, &err);
	te_plan_add_dependency(app, b, &err);
	te_plan_add_dependency(a, base, &err);
	te_plan_add_dependency(b, base, &err);
	assert_int_equal(run(p, 4, &err), 0);
	assert_int_equal(W.norder, 4);
	assert_true(pos("base/s0") < pos("a/s0"));
	assert_true(pos("base/s0") < pos("b/s0"));
	assert_true(pos("a/s0") < pos("app/s0"));
	assert_true(pos("b/s0") < pos("app/s0"));
	assert_string_equal(te_plan_image_digest(app), DIGEST);
	assert_true(te_plan_image_built(base));
	te_plan_free(p);
}

/* A dependency entering a later stage (te_plan_add_dependency_at) is
 * still built before any stage of the image that uses it; with the
 * stages before it found in the repo, only the rest is built. */
static void test_dependency_at_stage(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	te_plan_image *app = image(p, "app", "ok", 3);
	te_plan_image *src = image(p, "src", "ok", 1);

	(void)state;
	assert_int_equal(
	    te_plan_add_dependency_at(te_plan_stage_at(app, 1), src, &err), 0);
	assert_int_equal(te_plan_seal(p, &err), 0);
	W.exists[W.nexists++] = te_plan_stage_digest(te_plan_stage_at(app, 0));
	assert_int_equal(run(p, 4, &err), 0);
	assert_int_equal(W.norder, 3);
	assert_true(pos("src/s0") < pos("app/s1+base"));
	assert_true(pos("app/s1+base") < pos("app/s2+base"));
	te_plan_free(p);
}

/* Found in the repo: nothing built; a found prefix: the rest is built
 * on top of it. */
static void test_lookup(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	te_plan_image *done = image(p, "done", "ok", 2);
	te_plan_image *half = image(p, "half", "ok", 3);

	(void)state;
	assert_int_equal(te_plan_seal(p, &err), 0);
	W.exists[W.nexists++] = te_plan_stage_digest(te_plan_stage_at(done, 1));
	W.exists[W.nexists++] = te_plan_stage_digest(te_plan_stage_at(half, 0));
	assert_int_equal(run(p, 2, &err), 0);
	assert_int_equal(W.norder, 2);
	assert_true(pos("half/s1+base") < pos("half/s2+base"));
	assert_false(te_plan_image_built(done));
	assert_string_equal(te_plan_image_digest(done), DIGEST);
	assert_true(te_plan_image_built(half));
	te_plan_free(p);
}

/* One failure: the error names the image, the running builder is
 * cancelled, the dependent never starts. */
static void test_failure_cancels(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	te_plan_image *bad = image(p, "bad", "fail", 1);
	te_plan_image *after = image(p, "after", "ok", 1);

	(void)state;
	image(p, "slow", "slow", 1);
	te_plan_add_dependency(after, bad, &err);
	W.barrier = 2; /* bad fails once slow runs */
	assert_int_equal(run(p, 3, &err), TE_EBUILD);
	assert_string_equal(err.msg, "image \"bad\": RUN failed (exit 3)");
	assert_true(W.saw_cancel);
	for (size_t i = 0; i < W.norder; i++)
		assert_string_not_equal(W.order[i], "after/s0");
	te_plan_free(p);
}

/* Four images with a limit of 4 run at once (each waits until four
 * run); with a limit of 2 never more than two. */
static void test_parallel_limit(void **state)
{
	te_error err = TE_ERROR_INIT;
	te_plan *p = new_plan();
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		char name[8];

		snprintf(name, sizeof(name), "i%d", i);
		image(p, name, "barrier", 1);
	}
	W.barrier = 4;
	assert_int_equal(run(p, 4, &err), 0);
	assert_int_equal(W.max_running, 4);
	te_plan_free(p);

	p = new_plan();
	for (i = 0; i < 6; i++) {
		char name[8];

		snprintf(name, sizeof(name), "j%d", i);
		image(p, name, "barrier", 1);
	}
	W.barrier = 2;
	assert_int_equal(run(p, 2, &err), 0);
	assert_int_equal(W.max_running, 2);
	assert_int_equal(W.norder, 6);
	te_plan_free(p);
}

static void test_parallel_parse(void **state)
{
	te_error err = TE_ERROR_INIT;
	int v = 0;

	(void)state;
	assert_int_equal(te_schedule_parallel_parse(&v, "-1", &err), 0);
	assert_int_equal(v, -1);
	assert_int_equal(te_schedule_parallel_parse(&v, "5", &err), 0);
	assert_int_equal(v, 5);
	assert_int_equal(te_schedule_parallel_parse(&v, "0", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_schedule_parallel_parse(&v, "257", &err),
	                 TE_EINVALID);
	te_error_clear(&err);
	assert_int_equal(te_schedule_parallel_parse(&v, "5x", &err),
	                 TE_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_diamond),
	    cmocka_unit_test(test_dependency_at_stage),
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_failure_cancels),
	    cmocka_unit_test(test_parallel_limit),
	    cmocka_unit_test(test_parallel_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
