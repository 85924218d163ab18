/*
 * stapel/inflight.c - stages being built right now, shared by the stage
 * builders of one run.  Two Stapel images often begin with the same
 * stages (the same `from`, the same git mapping): their digests are equal,
 * and the scheduler may hand both to workers at once.  The first builder
 * claims the digest; the second waits for it, then finds the stage in
 * the stages repo instead of building it again (two buildah builds of the
 * same image into one storage also race each other).
 */
#include "stapel/stapel_build.h"

#include <stdlib.h>
#include <string.h>

struct te_stapel_inflight {
	pthread_mutex_t mu;
	pthread_cond_t done;
	te_strvec digests; /* claimed, not released */
};

int te_stapel_inflight_new(te_stapel_inflight **out, te_error *err)
{
	te_stapel_inflight *f = calloc(1, sizeof(*f));

	*out = NULL;
	if (!f)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->done, NULL);
	*out = f;
	return 0;
}

void te_stapel_inflight_free(te_stapel_inflight *f)
{
	if (!f)
		return;
	te_strvec_dispose(&f->digests);
	pthread_cond_destroy(&f->done);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static bool claimed(const te_stapel_inflight *f, const char *digest)
{
	return te_strvec_contains(&f->digests, digest) != 0;
}

int te_stapel__claim(bool *waited, te_stapel_inflight *f, const char *digest,
                     te_error *err)
{
	int rc;

	*waited = false;
	if (!f)
		return 0;
	pthread_mutex_lock(&f->mu);
	while (claimed(f, digest)) {
		*waited = true;
		pthread_cond_wait(&f->done, &f->mu);
	}
	rc = te_strvec_push(&f->digests, digest, err);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void te_stapel__release(te_stapel_inflight *f, const char *digest)
{
	size_t i;

	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	for (i = 0; i < f->digests.count; i++)
		if (!strcmp(f->digests.items[i], digest)) {
			free(f->digests.items[i]);
			f->digests.items[i] =
			    f->digests.items[--f->digests.count];
			f->digests.items[f->digests.count] = NULL;
			break;
		}
	pthread_cond_broadcast(&f->done);
	pthread_mutex_unlock(&f->mu);
}
