/*
 * slug.h - werf's slug rules, byte-identical to werf (pkg/slug).
 *
 * See ../shared/reference/werf-export.md section 1.  All functions are pure.
 * Returned strings are heap-allocated and owned by the caller (free()).
 */
#ifndef TAGEXPORT_SLUG_H
#define TAGEXPORT_SLUG_H

#include <stddef.h>
#include <stdint.h>

#include "tagexport/error.h"

/* Longest input (bytes) te_slug_slugify and te_slug_docker_tag accept;
 * longer input is TE_EINVALID.  Far above any image name or git tag. */
#define TE_SLUG_INPUT_MAX 65536

/* MurmurHash3 x86_32 over len bytes with the given seed. */
uint32_t te_slug_murmur3(const void *data, size_t len, uint32_t seed);

/* werf's slug.Slug: transliterate, lowercase, collapse dashes (%image_slug%).
 */
int te_slug_slugify(char **out, const char *in, te_error *err);

/* werf's slug.DockerTag: unchanged when already a valid tag of <=128
 * bytes, else slug + "-" + murmur hex, cropped to 128 (%image_safe_slug%). */
int te_slug_docker_tag(char **out, const char *in, te_error *err);

#endif
