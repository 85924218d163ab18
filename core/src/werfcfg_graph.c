/*
 * werfcfg_graph.c - `werf config graph`: which images each image of
 * werf.yaml depends on, printed as werf prints it (werfcfg.h).
 */
#include <stdlib.h>
#include <string.h>

#include "tagexport/werfcfg.h"
#include "werfcfg_int.h"

static const te_image_config *find_image(const te_werf_config *cfg,
                                         const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nimages; i++)
		if (!strcmp(cfg->images[i].name, name))
			return &cfg->images[i];
	return NULL;
}

static bool listed(const char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* The node's lists point into one array of cfg's strings, which the
 * caller frees (names borrowed from cfg). */
struct node_names {
	const char **v;
	size_t n;
};

static int push_name(struct node_names *nn, size_t cap, const char *name,
                     te_error *err)
{
	if (nn->n == cap)
		return te_error_set(err, TE_EINVALID,
		                    "config graph: too many "
		                    "dependencies");
	nn->v[nn->n++] = name;
	return 0;
}

/* dependencies: each image once, first mention first. */
static int add_dependency(struct node_names *nn, size_t start, size_t cap,
                          const char *name, te_error *err)
{
	if (listed(nn->v + start, nn->n - start, name))
		return 0;
	return push_name(nn, cap, name, err);
}

static int add_dependencies(te_werfcfg_graph_node *g, struct node_names *nn,
                            size_t cap, const te_image_config *img,
                            te_error *err)
{
	const te_stapel_image *st = img->stapel;
	size_t j, start = nn->n;
	int rc = 0;

	for (j = 0; j < img->ndeps && rc == 0; j++)
		rc = add_dependency(nn, start, cap, img->deps[j].image, err);
	for (j = 0; st && j < st->ndeps && rc == 0; j++)
		rc = add_dependency(nn, start, cap, st->deps[j].image, err);
	g->dependencies = nn->v + start;
	g->ndependencies = nn->n - start;
	return rc;
}

/* Stapel imports of werf images (not of external references), in
 * order, as werf lists them (a name may repeat). */
static int add_imports(te_werfcfg_graph_node *g, struct node_names *nn,
                       size_t cap, const te_stapel_image *st, te_error *err)
{
	size_t j, start = nn->n;
	int rc = 0;

	for (j = 0; j < st->nimports && rc == 0; j++)
		if (st->imports[j].image)
			rc = push_name(nn, cap, st->imports[j].image, err);
	g->imports = nn->v + start;
	g->nimports = nn->n - start;
	return rc;
}

/* fromImage / fromArtifact, or a `from:` that names an image of the
 * config (werf then builds on that image, not on a registry one). */
static const char *stapel_from(const te_werf_config *cfg,
                               const te_stapel_image *st)
{
	if (st->from_image)
		return st->from_image;
	if (st->from && find_image(cfg, st->from))
		return st->from;
	return NULL;
}

static size_t names_needed(const te_image_config *img)
{
	size_t n = img->ndeps + 1;

	if (img->stapel)
		n += img->stapel->ndeps + img->stapel->nimports;
	return n;
}

static int fill_node(te_werfcfg_graph_node *g, struct node_names *nn,
                     const te_werf_config *cfg, const te_image_config *img,
                     te_error *err)
{
	size_t cap = names_needed(img);
	int rc;

	memset(g, 0, sizeof(*g));
	g->image = img->name;
	nn->v = calloc(cap, sizeof(*nn->v));
	if (!nn->v)
		return te_error_set(err, TE_ENOMEM, "out of memory");
	if (img->stapel) {
		g->from = stapel_from(cfg, img->stapel);
		if ((rc = add_imports(g, nn, cap, img->stapel, err)) < 0)
			return rc;
	}
	return add_dependencies(g, nn, cap, img, err);
}

static bool selected(const te_image_config *img, const char *const *names,
                     size_t nnames, bool final_only)
{
	if (final_only && !img->final)
		return false;
	return nnames == 0 || listed(names, nnames, img->name);
}

int te_werfcfg_graph(char **out, size_t *out_len, const te_werf_config *cfg,
                     const char *const *names, size_t nnames, bool final_only,
                     te_error *err)
{
	te_werfcfg_graph_node *nodes = NULL;
	struct node_names *lists = NULL;
	size_t i, n = 0;
	int rc = 0;

	for (i = 0; i < nnames; i++)
		if (!find_image(cfg, names[i]))
			return te_error_set(err, TE_EINVALID,
			                    "image \"%s\" not defined in "
			                    "werf.yaml",
			                    names[i]);
	nodes = calloc(cfg->nimages + 1, sizeof(*nodes));
	lists = calloc(cfg->nimages + 1, sizeof(*lists));
	if (!nodes || !lists) {
		rc = te_error_set(err, TE_ENOMEM, "out of memory");
		goto done;
	}
	for (i = 0; i < cfg->nimages && rc == 0; i++) {
		if (!selected(&cfg->images[i], names, nnames, final_only))
			continue;
		rc = fill_node(&nodes[n], &lists[n], cfg, &cfg->images[i], err);
		n++; /* lists[n - 1].v is freed below, even on failure */
	}
	if (rc == 0)
		rc = te_werfcfg__graph_yaml(out, out_len, nodes, n, err);
done:
	for (i = 0; lists && i < n; i++)
		free(lists[i].v);
	free(lists);
	free(nodes);
	return rc;
}
