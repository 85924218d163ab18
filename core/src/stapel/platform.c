/*
 * stapel/platform.c - which platform of a used image a Stapel image
 * builds on, and which platforms this machine can run commands for.
 *
 * werf builds a multi-platform Stapel image's conveyor once per platform
 * (https://werf.io/docs/v2/usage/build/process.html#multi-platform-and-cross-platform-building);
 * a foreign platform's shell commands run under emulation (qemu-user
 * registered in binfmt_misc).  The tables map the names the OCI platform
 * uses (Go's GOARCH) to those of uname(2) and of Debian's
 * qemu-user-static binfmt entries.
 */
#include <stdio.h>
#include <string.h>

#include "tagexport/image.h"
#include "tagexport/stapel.h"

struct arch {
	const char *goarch;
	const char *machine; /* uname -m */
	const char *binfmt;  /* /proc/sys/fs/binfmt_misc/<binfmt> */
};

static const struct arch arches[] = {
    {"amd64", "x86_64", "qemu-x86_64"},
    {"386", "i686", "qemu-i386"},
    {"arm64", "aarch64", "qemu-aarch64"},
    {"arm", "armv7l", "qemu-arm"},
    {"ppc64le", "ppc64le", "qemu-ppc64le"},
    {"ppc64", "ppc64", "qemu-ppc64"},
    {"s390x", "s390x", "qemu-s390x"},
    {"riscv64", "riscv64", "qemu-riscv64"},
    {"mips64le", "mips64", "qemu-mips64el"},
    {"loong64", "loongarch64", "qemu-loongarch64"},
};

#define NARCHES (sizeof(arches) / sizeof(arches[0]))

const char *te_stapel_goarch(const char *machine)
{
	size_t i;

	if (!machine)
		return NULL;
	/* 32-bit x86 and arm report several machine names */
	if (!strcmp(machine, "i386") || !strcmp(machine, "i586"))
		return "386";
	if (!strcmp(machine, "armv6l") || !strcmp(machine, "armv8l"))
		return "arm";
	if (!strcmp(machine, "arm64"))
		return "arm64";
	for (i = 0; i < NARCHES; i++)
		if (!strcmp(arches[i].machine, machine))
			return arches[i].goarch;
	return NULL;
}

const char *te_stapel_binfmt_name(const char *goarch)
{
	size_t i;

	for (i = 0; goarch && i < NARCHES; i++)
		if (!strcmp(arches[i].goarch, goarch))
			return arches[i].binfmt;
	return NULL;
}

int te_stapel_runnable(te_strvec *out, const char *machine,
                       bool (*binfmt_enabled)(const char *name), te_error *err)
{
	const char *own = te_stapel_goarch(machine);
	size_t i;
	int rc = own ? te_strvec_push(out, own, err) : 0;

	for (i = 0; rc == 0 && i < NARCHES; i++)
		if ((!own || strcmp(own, arches[i].goarch)) &&
		    binfmt_enabled(arches[i].binfmt))
			rc = te_strvec_push(out, arches[i].goarch, err);
	return rc;
}

bool te_stapel_runs_commands(const te_stapel_image *img)
{
	size_t u;

	for (u = 0; u < TE_STAPEL_NUSER; u++)
		if (img->shell.cmds[u].count)
			return true;
	return false;
}

/* Do two "os/arch[/variant]" texts name the same platform?  A missing
 * variant matches any (as te_image_platform_matches). */
static bool same_platform(const char *a, const char *b)
{
	te_image_platform pa, pb;
	te_error ignored = TE_ERROR_INIT;

	if (!a || !b)
		return false;
	if (te_image_platform_parse(&pa, a, &ignored) < 0 ||
	    te_image_platform_parse(&pb, b, &ignored) < 0)
		return !strcmp(a, b);
	return te_image_platform_matches(&pa, &pb) ||
	       te_image_platform_matches(&pb, &pa);
}

int te_stapel_pick_platform(const char **out, const te_strvec *have,
                            const char *want, const char *native,
                            bool any_platform, te_error *err)
{
	const char *eff = want ? want : native;
	char list[512] = "";
	size_t i;

	*out = NULL;
	if (!have->count) {
		if (!want || same_platform(want, native))
			return 0;
		if (any_platform) {
			*out = want;
			return 0;
		}
		return te_error_set(err, TE_EUNSUPPORTED,
		                    "is built for the native platform (%s) "
		                    "only, not %s; list %s in its platform",
		                    native ? native : "unknown", want, want);
	}
	for (i = 0; eff && i < have->count; i++)
		if (same_platform(have->items[i], eff)) {
			*out = have->count > 1 ? have->items[i] : NULL;
			return 0;
		}
	for (i = 0; i < have->count; i++) {
		size_t len = strlen(list);
		snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
		         have->items[i]);
	}
	return te_error_set(err, TE_EUNSUPPORTED, "is built for %s, not %s%s",
	                    list, eff ? eff : "this machine's platform",
	                    want ? "" : " (the native platform)");
}
