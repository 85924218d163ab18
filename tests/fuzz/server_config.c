/*
 * server_config.c - tagexport-server's YAML config: ts_config_parse,
 * then the project lookup and export options of every project.
 * Input: the file's bytes.
 */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	te_export_opts opts;
	size_t i;

	if (ts_config_parse(&cfg, (const char *)data, size,
	                    "/nonexistent/tagexport-server.yaml", &err) == 0) {
		for (i = 0; i < cfg->nprojects; i++) {
			if (ts_config_project(cfg, cfg->projects[i].name) !=
			    &cfg->projects[i])
				abort(); /* names are unique */
			memset(&opts, 0, sizeof(opts));
			te_project_export_opts(&opts, &cfg->projects[i]);
		}
		ts_config_unref(cfg);
	}
	return 0;
}
