/*
 * mirror_int.h - mirror.c's pieces the unit tests reach directly.
 */
#ifndef TAGEXPORT_MIRROR_INT_H
#define TAGEXPORT_MIRROR_INT_H

/* Replace each occurrence of url's userinfo ("user:password" before the
 * authority's last '@', when 3 bytes or longer) in msg with "***", in
 * place; one left-to-right pass, msg never grows. */
void te_mirror__redact(char *msg, const char *url);

#endif
