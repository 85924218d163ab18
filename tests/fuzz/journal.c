/*
 * journal.c - one line of the queue's journal or one job file, as read
 * back after a restart: ts_job__from_json; a job that parses must
 * serialise (ts_job__to_json) to a line that parses again.
 * Input: the line (without its "\n").
 */
#include "fuzz.h"
#include "queue/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ts_job job, again;
	te_error err = TE_ERROR_INIT;
	char *line = NULL;
	size_t len;

	memset(&again, 0, sizeof(again));
	if (ts_job__from_json(&job, (const char *)data, size, NULL, &err) ==
	    0) {
		if (ts_job__to_json(&line, &len, &job, &err) < 0 ||
		    ts_job__from_json(&again, line, len, job.id, &err) < 0 ||
		    strcmp(again.tag, job.tag) != 0)
			abort();
	}
	ts_job__dispose(&job);
	ts_job__dispose(&again);
	free(line);
	return 0;
}
