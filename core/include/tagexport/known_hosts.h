/*
 * known_hosts.h - is this SSH host key the one an OpenSSH known_hosts file
 * lists for this host?
 *
 * The mirror uses it when a project names its own known_hosts file: the
 * libgit2 of Debian 12 only reads ~/.ssh/known_hosts of the server's user,
 * which a sandboxed service may not have.
 *
 * The format is OpenSSH's (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"):
 *   [marker] hostpatterns keytype base64-key [comment]
 *  - hostpatterns: comma-separated, with * and ? wildcards and !negation,
 *    matched without regard to case; a host on a port other than 22 is
 *    written [host]:port; or one hashed name, |1|base64(salt)|base64(
 *    HMAC-SHA1(salt, name)), as `ssh-keygen -H` writes;
 *  - marker @revoked: that key is refused for the matching hosts;
 *    @cert-authority lines are skipped (no certificates here), as are
 *    comments, blank and malformed lines.
 *
 * Pure functions of their arguments: no I/O, no allocation that outlives
 * a call, safe from any thread.
 */
#ifndef TAGEXPORT_KNOWN_HOSTS_H
#define TAGEXPORT_KNOWN_HOSTS_H

#include <stddef.h>

/* Largest known_hosts file read, in bytes. */
#define TE_KNOWN_HOSTS_MAX (1024 * 1024)

typedef enum {
	TE_HOSTKEY_MATCH = 0, /* an entry for the host has this key */
	TE_HOSTKEY_UNKNOWN,   /* no entry for the host */
	TE_HOSTKEY_MISMATCH,  /* entries for the host, none with this key */
	TE_HOSTKEY_REVOKED    /* a @revoked entry for the host has this key */
} te_hostkey_result;

/*
 * Check key (the public key blob in SSH wire format, as the server sent
 * it: what the base64 field of a known_hosts line decodes to) for host on
 * port (22 or 0: the default port) against text, the contents of a
 * known_hosts file (len bytes; need not be NUL-terminated).
 */
te_hostkey_result te_known_hosts_check(const char *text, size_t len,
                                       const char *host, unsigned int port,
                                       const unsigned char *key,
                                       size_t key_len);

/* "SHA256:<unpadded base64>" of key, as ssh-keygen -l prints it. */
#define TE_HOSTKEY_FINGERPRINT_MAX 52
void te_known_hosts_fingerprint(char out[TE_HOSTKEY_FINGERPRINT_MAX],
                                const unsigned char *key, size_t key_len);

/* The key type named inside key ("ssh-ed25519", ...) into out (cap
 * bytes, NUL-terminated); "unknown" when the blob is malformed. */
void te_known_hosts_key_type(char *out, size_t cap, const unsigned char *key,
                             size_t key_len);

#endif
