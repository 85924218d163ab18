/*
 * plan.c - images as chains of stages, the DAG of images, stage digests.
 *
 * The digest rule is in plan.h.  Sealing walks the DAG depth first from
 * every image in the order they were added: the post-order is the build
 * order (dependencies first), and a grey image met again closes a cycle,
 * reported with the path that closes it.
 */
#include "tagexport/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_int.h"
#include "tagexport/buf.h"
#include "tagexport/digest.h"

#define STAGE_NAME_MAX 200
#define STAGE_DIGEST_VERSION "tagexport-stage-v1"

enum { WHITE = 0, GREY = 1, BLACK = 2 };

int te_plan_new(te_plan **out, const char *repo_domain, const char *repo_path,
                te_error *err)
{
	te_plan *p;
	te_buf repo = TE_BUF_INIT(4096);
	int rc;

	*out = NULL;
	if (!repo_domain || !*repo_domain || !repo_path || !*repo_path)
		return te_error_set(err, TE_EINVALID,
		                    "a plan needs a stages repository");
	p = calloc(1, sizeof(*p));
	if (!p)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	rc = te_buf_printf(&repo, err, "%s/%s", repo_domain, repo_path);
	if (rc == 0 && !(p->repo = te_buf_detach(&repo)))
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
	te_buf_dispose(&repo);
	if (rc < 0) {
		te_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

static void stage_free(te_plan_stage *st)
{
	if (!st)
		return;
	if (st->free_payload)
		st->free_payload(st->payload);
	free(st->name);
	free(st->input);
	free(st->ref);
	free(st->deps);
	free(st->stage_deps);
	free(st);
}

static void image_free(te_plan_image *img)
{
	size_t i;

	for (i = 0; i < img->nstages; i++)
		stage_free(img->stages[i]);
	free(img->stages);
	free(img->deps);
	free(img->first_deps);
	free(img->name);
	free(img->where);
	free(img);
}

void te_plan_free(te_plan *plan)
{
	size_t i;

	if (!plan)
		return;
	for (i = 0; i < plan->nimages; i++)
		image_free(plan->images[i]);
	free(plan->images);
	free(plan->order);
	free(plan->repo);
	free(plan);
}

static const char *where_prefix(const te_plan_image *img)
{
	return img->where ? img->where : "";
}

static const char *where_sep(const te_plan_image *img)
{
	return img->where && *img->where ? ": " : "";
}

/* An array of n pointers grown by one slot; NULL when out of memory
 * (items is left as it was). */
static void *grow(void *items, size_t n)
{
	return realloc(items, (n + 1) * sizeof(void *));
}

int te_plan_add_image(te_plan_image **out, te_plan *plan, const char *name,
                      const char *where, te_error *err)
{
	te_plan_image *img, **grown;

	*out = NULL;
	if (plan->sealed)
		return te_error_set(err, TE_EINVALID, "the plan is sealed");
	if (!name || !*name)
		return te_error_set(err, TE_EINVALID, "an image needs a name");
	if (te_plan_image_find(plan, name))
		return te_error_set(
		    err, TE_EINVALID, "%s%simage \"%s\" is planned twice",
		    where ? where : "", where ? ": " : "", name);
	if (plan->nimages >= TE_PLAN_MAX_IMAGES)
		return te_error_set(err, TE_EINVALID,
		                    "too many images in one plan (max %d)",
		                    TE_PLAN_MAX_IMAGES);
	grown = grow(plan->images, plan->nimages);
	if (!grown)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	plan->images = grown;
	img = calloc(1, sizeof(*img));
	if (!img)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	img->plan = plan;
	img->index = plan->nimages;
	img->name = te_strdup(name, err);
	img->where = where ? te_strdup(where, err) : NULL;
	if (!img->name || (where && !img->where)) {
		image_free(img);
		return TE_ENOMEM;
	}
	plan->images[plan->nimages++] = img;
	*out = img;
	return 0;
}

static bool valid_stage_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > STAGE_NAME_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int check_stage_spec(const te_plan_image *img,
                            const te_plan_stage_spec *spec, te_error *err)
{
	if (img->plan->sealed)
		return te_error_set(err, TE_EINVALID, "the plan is sealed");
	if (!valid_stage_name(spec->name))
		return te_error_set(err, TE_EINVALID,
		                    "image \"%s\": invalid stage name",
		                    img->name);
	if (!spec->input || strlen(spec->input) > TE_PLAN_MAX_INPUT)
		return te_error_set(err, TE_EINVALID,
		                    "image \"%s\": stage %s: input missing or "
		                    "longer than %d bytes",
		                    img->name, spec->name, TE_PLAN_MAX_INPUT);
	if (!spec->build)
		return te_error_set(err, TE_EINVALID,
		                    "image \"%s\": stage %s has no builder",
		                    img->name, spec->name);
	if (spec->resolve && img->nstages == 0)
		return te_error_set(err, TE_EINVALID,
		                    "image \"%s\": stage %s: the first stage "
		                    "cannot have a resolver",
		                    img->name, spec->name);
	if (img->nstages >= TE_PLAN_MAX_STAGES)
		return te_error_set(err, TE_EINVALID,
		                    "image \"%s\": too many stages (max %d)",
		                    img->name, TE_PLAN_MAX_STAGES);
	return 0;
}

int te_plan_add_stage(te_plan_stage **out, te_plan_image *img,
                      const te_plan_stage_spec *spec, te_error *err)
{
	te_plan_stage *st = NULL, **grown;
	int rc;

	if (out)
		*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st) {
		if (spec->free_payload)
			spec->free_payload(spec->payload);
		return te_error_set(err, TE_ENOMEM, "out of memory");
	}
	/* From here on the stage owns the payload. */
	st->payload = spec->payload;
	st->free_payload = spec->free_payload;
	if ((rc = check_stage_spec(img, spec, err)) < 0)
		goto done;
	grown = grow(img->stages, img->nstages);
	if (!grown) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	img->stages = grown;
	st->image = img;
	st->index = img->nstages;
	st->build = spec->build;
	st->resolve = spec->resolve;
	st->name = te_strdup(spec->name, err);
	st->input = te_strdup(spec->input, err);
	if (!st->name || !st->input) {
		rc = TE_ENOMEM;
		goto done;
	}
	img->stages[img->nstages++] = st;
	if (out)
		*out = st;
	st = NULL;
done:
	stage_free(st);
	return rc;
}

/* Add dep to the list items[0..*n) unless it is there. */
static int add_edge(te_plan_image ***items, size_t *n, te_plan_image *img,
                    te_plan_image *dep, te_error *err)
{
	te_plan_image **grown;
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*items)[i] == dep)
			return 0;
	if (*n >= TE_PLAN_MAX_DEPS)
		return te_error_set(err, TE_EINVALID,
		                    "%s%simage \"%s\": too many dependencies "
		                    "(max %d)",
		                    where_prefix(img), where_sep(img),
		                    img->name, TE_PLAN_MAX_DEPS);
	grown = grow(*items, *n);
	if (!grown)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	*items = grown;
	(*items)[(*n)++] = dep;
	return 0;
}

static int check_edge(te_plan_image *img, te_plan_image *dep, te_error *err)
{
	if (img->plan->sealed || dep->plan != img->plan)
		return te_error_set(err, TE_EINVALID,
		                    "the plan is sealed or the images belong "
		                    "to different plans");
	if (img == dep)
		return te_error_set(
		    err, TE_EINVALID, "%s%simage \"%s\" depends on itself",
		    where_prefix(img), where_sep(img), img->name);
	return 0;
}

int te_plan_add_dependency(te_plan_image *img, te_plan_image *dep,
                           te_error *err)
{
	int rc = check_edge(img, dep, err);

	if (rc == 0)
		rc = add_edge(&img->deps, &img->ndeps, img, dep, err);
	if (rc == 0)
		rc = add_edge(&img->first_deps, &img->nfirst_deps, img, dep,
		              err);
	return rc;
}

int te_plan_add_dependency_at(te_plan_stage *st, te_plan_image *dep,
                              te_error *err)
{
	te_plan_image *img = st->image;
	int rc = check_edge(img, dep, err);

	if (rc == 0)
		rc = add_edge(&img->deps, &img->ndeps, img, dep, err);
	if (rc == 0 && st->index == 0)
		rc = add_edge(&img->first_deps, &img->nfirst_deps, img, dep,
		              err);
	else if (rc == 0)
		rc = add_edge(&st->deps, &st->ndeps, img, dep, err);
	return rc;
}

int te_plan_add_stage_dependency(te_plan_stage *st, te_plan_stage *from,
                                 te_error *err)
{
	te_plan_image *img = st->image;
	te_plan_stage **grown;
	size_t i;
	int rc = check_edge(img, from->image, err);

	if (rc == 0 && from->resolve)
		rc = te_error_set(
		    err, TE_EINVALID,
		    "%s%simage \"%s\": stage %s of image \"%s\" "
		    "may leave its chain: nothing can depend on it",
		    where_prefix(img), where_sep(img), img->name, from->name,
		    from->image->name);
	if (rc == 0)
		rc = add_edge(&img->deps, &img->ndeps, img, from->image, err);
	for (i = 0; rc == 0 && i < st->nstage_deps; i++)
		if (st->stage_deps[i] == from)
			return 0;
	if (rc == 0 && st->nstage_deps >= TE_PLAN_MAX_DEPS)
		rc = te_error_set(err, TE_EINVALID,
		                  "%s%simage \"%s\": too many dependencies "
		                  "(max %d)",
		                  where_prefix(img), where_sep(img), img->name,
		                  TE_PLAN_MAX_DEPS);
	if (rc < 0)
		return rc;
	grown = grow(st->stage_deps, st->nstage_deps);
	if (!grown)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	st->stage_deps = grown;
	st->stage_deps[st->nstage_deps++] = from;
	return 0;
}

/* ---- sealing ------------------------------------------------------------ */

struct walk {
	te_plan *plan;
	te_plan_image **path; /* the grey images, outermost first */
	size_t depth;
	size_t norder;
};

static int cycle_error(struct walk *w, const te_plan_image *back, te_error *err)
{
	te_buf msg = TE_BUF_INIT(TE_ERROR_MSG_MAX);
	te_error ignored = TE_ERROR_INIT;
	size_t i = 0;

	while (w->path[i] != back)
		i++;
	/* A long cycle is cut by the buffer's cap; the start stays. */
	for (; i < w->depth; i++)
		te_buf_printf(&msg, &ignored, "%s -> ", w->path[i]->name);
	te_buf_printf(&msg, &ignored, "%s", back->name);
	te_error_set(err, TE_EINVALID, "%s%simage \"%s\": dependency cycle %s",
	             where_prefix(back), where_sep(back), back->name, msg.ptr);
	te_buf_dispose(&msg);
	return TE_EINVALID;
}

static int visit(struct walk *w, te_plan_image *img, te_error *err)
{
	size_t i;
	int rc;

	if (img->mark == BLACK)
		return 0;
	if (img->mark == GREY)
		return cycle_error(w, img, err);
	img->mark = GREY;
	w->path[w->depth++] = img;
	for (i = 0; i < img->ndeps; i++)
		if ((rc = visit(w, img->deps[i], err)) < 0)
			return rc;
	w->depth--;
	img->mark = BLACK;
	w->plan->order[w->norder++] = img;
	return 0;
}

static bool is_content_tag(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == TE_PLAN_DIGEST_LEN;
}

static int cmp_dep(const void *a, const void *b)
{
	const te_plan_image *x = *(te_plan_image *const *)a;
	const te_plan_image *y = *(te_plan_image *const *)b;

	return strcmp(x->name, y->name);
}

static int field(te_digest *d, const char *s, te_error *err)
{
	return te_digest_field(d, s, strlen(s), err);
}

static int cmp_stage_dep(const void *a, const void *b)
{
	const te_plan_stage *x = *(te_plan_stage *const *)a;
	const te_plan_stage *y = *(te_plan_stage *const *)b;
	int c = strcmp(x->image->name, y->image->name);

	return c ? c : (x->index > y->index) - (x->index < y->index);
}

static void sort_deps(te_plan_image **deps, size_t n)
{
	if (n > 1)
		qsort(deps, n, sizeof(*deps), cmp_dep);
}

/* The images entering st: the image's first_deps for its first stage. */
static te_plan_image **stage_deps(const te_plan_stage *st, size_t *n)
{
	*n = st->index == 0 ? st->image->nfirst_deps : st->ndeps;
	return st->index == 0 ? st->image->first_deps : st->deps;
}

static int hash_stage(te_plan_stage *st, const char *prev, te_error *err)
{
	te_digest *d = NULL;
	te_plan_image **deps;
	char count[32];
	size_t i, ndeps;
	int rc;

	if ((rc = te_digest_new(&d, err)) < 0)
		return rc;
	if ((rc = field(d, STAGE_DIGEST_VERSION, err)) < 0 ||
	    (rc = field(d, prev, err)) < 0 ||
	    (rc = field(d, st->name, err)) < 0 ||
	    (rc = field(d, st->input, err)) < 0)
		goto done;
	deps = stage_deps(st, &ndeps);
	if (st->index == 0 || ndeps) {
		snprintf(count, sizeof(count), "deps:%zu", ndeps);
		if ((rc = field(d, count, err)) < 0)
			goto done;
		for (i = 0; i < ndeps; i++)
			if ((rc = field(d, te_plan_image_tag(deps[i]), err)) <
			    0)
				goto done;
	}
	if (st->nstage_deps) {
		snprintf(count, sizeof(count), "stages:%zu", st->nstage_deps);
		if ((rc = field(d, count, err)) < 0)
			goto done;
		for (i = 0; i < st->nstage_deps; i++)
			if ((rc = field(d, st->stage_deps[i]->digest, err)) < 0)
				goto done;
	}
	rc = te_digest_final(st->digest, d, err);
done:
	te_digest_free(d);
	return rc;
}

/* Stage i leaves img's chain. */
static void drop_stage(te_plan_image *img, size_t i)
{
	te_plan_stage *st = img->stages[i];
	size_t k;

	memmove(&img->stages[i], &img->stages[i + 1],
	        (img->nstages - i - 1) * sizeof(*img->stages));
	img->nstages--;
	for (k = i; k < img->nstages; k++)
		img->stages[k]->index = k;
	stage_free(st);
}

/* Run stage i's resolver: its input, or *absent. */
static int resolve_stage(te_plan_image *img, size_t i, bool *absent,
                         te_error *err)
{
	te_plan_stage *st = img->stages[i];
	te_buf input = TE_BUF_INIT(TE_PLAN_MAX_INPUT);
	char *text;
	int rc;

	*absent = false;
	rc = st->resolve(&input, absent, img, i, st->payload, err);
	if (rc == 0 && !*absent) {
		text = te_buf_detach(&input);
		if (!text) {
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
		} else {
			free(st->input);
			st->input = text;
		}
	}
	te_buf_dispose(&input);
	if (rc < 0)
		te_error_wrap(err, "%s%simage \"%s\": stage %s",
		              where_prefix(img), where_sep(img), img->name,
		              st->name);
	return rc;
}

static int digest_image(te_plan_image *img, te_error *err)
{
	te_buf ref = TE_BUF_INIT(8192);
	const char *prev = "";
	bool absent;
	size_t i;
	int rc = 0;

	if (img->nstages == 0)
		return te_error_set(
		    err, TE_EINVALID, "%s%simage \"%s\" has no stages",
		    where_prefix(img), where_sep(img), img->name);
	/* Order-independent: the digest covers the set of dependencies. */
	sort_deps(img->first_deps, img->nfirst_deps);
	for (i = 0; rc == 0 && i < img->nstages; i++) {
		te_plan_stage *st = img->stages[i];

		if (st->resolve) {
			if ((rc = resolve_stage(img, i, &absent, err)) < 0)
				break;
			if (absent) {
				drop_stage(img, i--);
				continue;
			}
		}
		sort_deps(st->deps, st->ndeps);
		if (st->nstage_deps > 1)
			qsort(st->stage_deps, st->nstage_deps,
			      sizeof(*st->stage_deps), cmp_stage_dep);
		if (i == 0 && img->nfirst_deps == 0 && st->nstage_deps == 0 &&
		    is_content_tag(st->input))
			memcpy(st->digest, st->input, TE_PLAN_DIGEST_LEN + 1);
		else
			rc = hash_stage(st, prev, err);
		te_buf_clear(&ref);
		if (rc == 0)
			rc = te_buf_printf(&ref, err, "%s:%s", img->plan->repo,
			                   st->digest);
		if (rc == 0 && !(st->ref = te_buf_detach(&ref)))
			rc = te_error_set(err, TE_ENOMEM, "out of memory");
		prev = st->digest;
	}
	te_buf_dispose(&ref);
	return rc;
}

int te_plan_seal(te_plan *plan, te_error *err)
{
	struct walk w = {plan, NULL, 0, 0};
	size_t i;
	int rc = 0;

	if (plan->sealed)
		return 0;
	w.path = calloc(plan->nimages + 1, sizeof(*w.path));
	plan->order = calloc(plan->nimages + 1, sizeof(*plan->order));
	if (!w.path || !plan->order) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < plan->nimages; i++)
		plan->images[i]->mark = WHITE;
	for (i = 0; rc == 0 && i < plan->nimages; i++)
		rc = visit(&w, plan->images[i], err);
	for (i = 0; rc == 0 && i < plan->nimages; i++)
		rc = digest_image(plan->order[i], err);
	if (rc == 0)
		plan->sealed = true;
done:
	free(w.path);
	return rc;
}

/* ---- accessors ---------------------------------------------------------- */

size_t te_plan_image_count(const te_plan *plan)
{
	return plan->nimages;
}

te_plan_image *te_plan_image_at(const te_plan *plan, size_t i)
{
	return i < plan->nimages ? plan->images[i] : NULL;
}

te_plan_image *te_plan_image_find(const te_plan *plan, const char *name)
{
	size_t i;

	for (i = 0; i < plan->nimages; i++)
		if (strcmp(plan->images[i]->name, name) == 0)
			return plan->images[i];
	return NULL;
}

te_plan_image *te_plan_image_ordered(const te_plan *plan, size_t i)
{
	return plan->sealed && i < plan->nimages ? plan->order[i] : NULL;
}

const char *te_plan_image_name(const te_plan_image *img)
{
	return img->name;
}

const char *te_plan_image_where(const te_plan_image *img)
{
	return where_prefix(img);
}

size_t te_plan_image_dep_count(const te_plan_image *img)
{
	return img->ndeps;
}

te_plan_image *te_plan_image_dep(const te_plan_image *img, size_t i)
{
	return i < img->ndeps ? img->deps[i] : NULL;
}

size_t te_plan_stage_count(const te_plan_image *img)
{
	return img->nstages;
}

te_plan_stage *te_plan_stage_at(const te_plan_image *img, size_t i)
{
	return i < img->nstages ? img->stages[i] : NULL;
}

const char *te_plan_image_tag(const te_plan_image *img)
{
	return img->nstages ? img->stages[img->nstages - 1]->digest : "";
}

const char *te_plan_image_ref(const te_plan_image *img)
{
	const char *ref =
	    img->nstages ? img->stages[img->nstages - 1]->ref : NULL;

	return ref ? ref : "";
}

const char *te_plan_repo(const te_plan *plan)
{
	return plan->repo;
}

const char *te_plan_image_digest(const te_plan_image *img)
{
	return img->digest;
}

bool te_plan_image_built(const te_plan_image *img)
{
	return img->built;
}

const char *te_plan_stage_name(const te_plan_stage *st)
{
	return st->name;
}

const char *te_plan_stage_input(const te_plan_stage *st)
{
	return st->input;
}

const char *te_plan_stage_digest(const te_plan_stage *st)
{
	return st->digest;
}

const char *te_plan_stage_ref(const te_plan_stage *st)
{
	return st->ref ? st->ref : "";
}

void *te_plan_stage_payload(const te_plan_stage *st)
{
	return st->payload;
}
