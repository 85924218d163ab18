/*
 * cmd_config.c - `tagexport config render [IMAGE...]` and `tagexport
 * config list [--final-images-only]` and `tagexport config graph
 * [IMAGE...]`: werf.yaml of a commit rendered as `werf config render`,
 * `werf config list` and `werf config graph` show it
 * (https://werf.io/docs/v2/reference/cli/werf_config_render.html).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tagexport/buf.h"
#include "tagexport/config.h"
#include "tagexport/gitsrc.h"
#include "tagexport/werfcfg.h"

enum { OPT_DIR = 256, OPT_COMMIT, OPT_CONFIG, OPT_FINAL_ONLY, OPT_HELP };

static const struct option long_options[] = {
    {"dir", required_argument, NULL, OPT_DIR},
    {"commit", required_argument, NULL, OPT_COMMIT},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"final-images-only", optional_argument, NULL, OPT_FINAL_ONLY},
    CLI_RENDER_OPTIONS,
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0}};

struct config_args {
	const char *verb; /* "render", "list" or "graph" */
	const char *dir;
	const char *commit;
	te_werfcfg_opts render;
	bool final_only;
	char **images; /* render's and graph's IMAGE names, in argv */
	int nimages;
};

static void config_usage(FILE *out)
{
	fprintf(out,
	        "usage: tagexport config render [IMAGE_NAME...] [options]\n"
	        "       tagexport config list [--final-images-only] "
	        "[options]\n"
	        "       tagexport config graph [IMAGE_NAME...] "
	        "[--final-images-only] [options]\n"
	        "\n"
	        "render: werf.yaml of the commit after its Go templates (with "
	        "IMAGE_NAME:\n"
	        "        only those images' documents); list: one image name "
	        "a line;\n"
	        "graph: the images each image depends on (YAML).\n"
	        "\n"
	        "  --dir DIR                     project directory in a git "
	        "repository\n"
	        "                                ($WERF_DIR, default .)\n"
	        "  --commit REV                  revision (default HEAD)\n"
	        "  --config PATH                 werf.yaml path in the commit "
	        "($WERF_CONFIG)\n"
	        "  --final-images-only           list, graph: final images "
	        "only\n" CLI_RENDER_USAGE "\n"
	        "exit: 0 success, 2 usage or configuration error\n");
}

static int parse_args(struct config_args *a, int argc, char **argv)
{
	int opt;

	if (argc < 2 || (strcmp(argv[1], "render") && strcmp(argv[1], "list") &&
	                 strcmp(argv[1], "graph"))) {
		if (argc >= 2 &&
		    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			config_usage(stdout);
			return -1;
		}
		return cli_usage_error("expected `config render`, "
		                       "`config list` or `config graph`");
	}
	a->verb = argv[1];
	a->dir = getenv("WERF_DIR");
	cli_render_opts_init(&a->render);
	a->render.config_path = getenv("WERF_CONFIG");
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "h", long_options,
	                          NULL)) != -1) {
		int r = cli_render_opt(&a->render, opt, optarg);

		if (r == 1)
			continue;
		if (r != 0)
			return r;
		switch (opt) {
		case OPT_DIR:
			a->dir = optarg;
			break;
		case OPT_COMMIT:
			a->commit = optarg;
			break;
		case OPT_CONFIG:
			a->render.config_path = optarg;
			break;
		case OPT_FINAL_ONLY:
			if (!cli_flag_bool(optarg, &a->final_only))
				return cli_usage_error(
				    "invalid --final-images-only value");
			break;
		case 'h':
		case OPT_HELP:
			config_usage(stdout);
			return -1;
		default:
			return cli_usage_error("unknown or incomplete option");
		}
	}
	a->images = argv + 1 + optind;
	a->nimages = argc - 1 - optind;
	if (a->nimages > 0 && !strcmp(a->verb, "list"))
		return cli_usage_error("config list takes no arguments");
	return 0;
}

static bool wanted(const struct config_args *a, const char *name)
{
	int i;

	for (i = 0; i < a->nimages; i++)
		if (!strcmp(a->images[i], name))
			return true;
	return false;
}

/* The documents of the named images in werf.yaml order, joined by "---\n"
 * as werf does; an unknown name is an error. */
static int print_docs(const struct config_args *a, const char *text, size_t len,
                      const te_werf_config *cfg, te_error *err)
{
	te_werfcfg_doc *docs = NULL;
	size_t ndocs = 0, i, d, last = (size_t)-1;
	int k, rc;
	bool first = true;

	for (k = 0; k < a->nimages; k++) {
		for (i = 0; i < cfg->nimages; i++)
			if (!strcmp(cfg->images[i].name, a->images[k]))
				break;
		if (i == cfg->nimages)
			return te_error_set(err, TE_EINVALID,
			                    "image \"%s\" not defined in %s",
			                    a->images[k], "werf.yaml");
	}
	rc = te_werfcfg_split(&docs, &ndocs, text, len, err);
	if (rc < 0)
		return rc;
	for (i = 0; i < cfg->nimages; i++) {
		if (!wanted(a, cfg->images[i].name))
			continue;
		for (d = 0;
		     d + 1 < ndocs && docs[d + 1].line <= cfg->images[i].line;
		     d++)
			;
		if (d == last) /* image: [a, b] shares one document */
			continue;
		last = d;
		if (!first)
			fputs("---\n", stdout);
		first = false;
		fwrite(text + docs[d].off, 1, docs[d].len, stdout);
	}
	free(docs);
	return 0;
}

static void print_list(const struct config_args *a, const te_werf_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nimages; i++)
		if (!a->final_only || cfg->images[i].final)
			printf("%s\n", cfg->images[i].name[0]
			                   ? cfg->images[i].name
			                   : "~");
}

static int print_graph(const struct config_args *a, const te_werf_config *cfg,
                       te_error *err)
{
	char *yaml = NULL;
	size_t len = 0;
	int rc;

	rc = te_werfcfg_graph(&yaml, &len, cfg, (const char *const *)a->images,
	                      (size_t)a->nimages, a->final_only, err);
	if (rc == 0) {
		fwrite(yaml, 1, len, stdout);
		fputc('\n', stdout); /* werf: fmt.Println of the trimmed YAML */
	}
	free(yaml);
	return rc;
}

int cmd_config(int argc, char **argv)
{
	struct config_args a;
	te_gitsrc *src = NULL;
	te_werf_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	char commit[41];
	char *text = NULL, *path = NULL;
	size_t len = 0;
	int rc;

	memset(&a, 0, sizeof(a));
	rc = parse_args(&a, argc, argv);
	if (rc != 0)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (te_gitsrc_open(&src, a.dir ? a.dir : ".", &err) < 0 ||
	    te_gitsrc_resolve(commit, NULL, src, a.commit, &err) < 0 ||
	    te_werfcfg_render(&text, &len, &path, src, commit, &a.render,
	                      &err) < 0) {
		rc = cli_fail(&err);
		goto done;
	}
	if (!strcmp(a.verb, "render") && a.nimages == 0) {
		fwrite(text, 1, len, stdout);
		rc = CLI_EXIT_OK;
		goto done;
	}
	if (te_config_parse(&cfg, text, len, path, &err) < 0) {
		rc = cli_fail(&err);
		goto done;
	}
	if (!strcmp(a.verb, "graph"))
		rc = print_graph(&a, cfg, &err);
	else if (a.nimages > 0)
		rc = print_docs(&a, text, len, cfg, &err);
	else
		print_list(&a, cfg);
	if (rc < 0) {
		rc = cli_fail(&err);
		goto done;
	}
	rc = CLI_EXIT_OK;
done:
	fflush(stdout);
	te_config_free(cfg);
	free(text);
	free(path);
	te_gitsrc_free(src);
	return rc;
}
