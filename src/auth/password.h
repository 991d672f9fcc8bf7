/* Password schemes of Dovecot's passwd-file format: a stored password is
 * "{SCHEME}data" or bare data in the passdb's default scheme. Verifying
 * may cost tens of milliseconds (bcrypt, Argon2), so callers run it in
 * the auth worker threads, never on the event loop. Thread-safe. */
#ifndef LOFT_AUTH_PASSWORD_H
#define LOFT_AUTH_PASSWORD_H

#include <stdbool.h>

/* Call once before any thread verifies (initialises libsodium). */
int password_init(void);

/* Returns 1 on a match, 0 on a mismatch, -1 when the stored value cannot
 * be checked (unknown scheme, malformed data) with a reason. */
int password_verify(const char *plain, const char *stored,
		    const char *default_scheme, const char **error_r);

/* True for a known scheme name ("SHA512-CRYPT", "sha256.hex", ...). */
bool password_scheme_is_known(const char *name);

#endif
