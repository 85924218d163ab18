/*
 * config_test.h - parse werf.yaml text and check the result or the
 * error; shared by test_config.c and test_stapel.c.
 */
#ifndef TE_TEST_CONFIG_TEST_H
#define TE_TEST_CONFIG_TEST_H

#define META "project: demo\nconfigVersion: 1\n---\n"

static inline te_werf_config *parse_ok(const char *yaml)
{
	te_werf_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	int rc = te_config_parse(&cfg, yaml, strlen(yaml), "werf.yaml", &err);

	if (rc != 0)
		fail_msg("unexpected error %d: %s", rc, err.msg);
	assert_non_null(cfg);
	return cfg;
}

static inline void expect_err(const char *yaml, int code, const char *msg)
{
	te_werf_config *cfg = NULL;
	te_error err = TE_ERROR_INIT;
	int rc = te_config_parse(&cfg, yaml, strlen(yaml), "werf.yaml", &err);

	if (rc != code || !strstr(err.msg, msg))
		fail_msg("want %d \"%s\", got %d \"%s\"", code, msg, rc,
		         err.msg);
	assert_null(cfg);
}

#endif
