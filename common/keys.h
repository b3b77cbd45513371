/* keys.h -- CURVE key files and allow lists (PROTOCOL.md §1.1).
 *
 * A key file is text in the ZPL layout CZMQ's certificates use, so that
 * files made by either tool are read by the other:
 *
 *     #   qjob CURVE secret key for "alice" (qclient keygen)
 *     metadata
 *         name = "alice"
 *     curve
 *         public-key = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
 *         secret-key = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
 *
 * A secret key file (NAME.key) holds both lines and must be readable by
 * its owner only (mode 0600): programs refuse it otherwise.  A public key
 * file (NAME.pub) holds the public-key line only.
 *
 * An allow list is a file of public keys -- public key files' lines, or
 * one bare Z85 key a line optionally followed by a label -- or a
 * directory whose *.pub files are read.  Neither may be writable by group
 * or others, and a secret key in one is refused: an allow list admits
 * whoever holds the secret of each key it lists.
 *
 * Keys travel as Z85 text (40 characters for 32 bytes), as ZeroMQ's
 * ZMQ_CURVE_* socket options take them.
 */
#ifndef QJ_KEYS_H
#define QJ_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYS_Z85 40        /* characters of a key in Z85 */
#define KEYS_BIN 32        /* bytes of a key */
#define KEYS_LABEL 64      /* bytes of an allow-list entry's label */

/* Environment variables of the programs and the client library. */
#define KEYS_ENV_SECRET "QJOB_CURVE_SECRET"   /* our secret key file */
#define KEYS_ENV_BROKER "QJOB_BROKER_KEY"     /* the broker's public key file */

/* A CURVE key pair, as NUL-terminated Z85. */
typedef struct keys_pair {
    char public_z85[KEYS_Z85 + 1];
    char secret_z85[KEYS_Z85 + 1];
} keys_pair_t;

/* What a client or a worker needs to talk CURVE to the broker. */
typedef struct keys_client {
    keys_pair_t mine;
    char broker_z85[KEYS_Z85 + 1];   /* the broker's public key */
} keys_client_t;

/* Make a fresh key pair (libzmq's, libsodium-backed).  Returns 0, or -1
 * with a message (this libzmq has no CURVE). */
int keys_generate(keys_pair_t *out, char *err, size_t errlen);

/* Write pair as BASE.key (secret, mode 0600) and BASE.pub (public); name
 * goes into the files' metadata.  Existing files are not replaced.
 * Returns 0, or -1 with a message (and neither file left behind). */
int keys_write(const char *base, const char *name, const keys_pair_t *pair, char *err,
               size_t errlen);

/* Read a secret key file: refused unless it is a regular file only its
 * owner can read or write, and holds one secret key (and, if it has a
 * public-key line, the matching public key).  Fills both halves of out.
 * Returns 0, or -1 with a message that says what to fix. */
int keys_load_secret(const char *path, keys_pair_t *out, char *err, size_t errlen);

/* Read the one public key of a public (or secret) key file, or of a file
 * holding one bare Z85 key.  Returns 0, or -1 with a message. */
int keys_load_public(const char *path, char out[KEYS_Z85 + 1], char *err, size_t errlen);

/* Load a client's or worker's keys: secret_path and broker_path, each
 * else from its environment variable (KEYS_ENV_*).  Returns 1 with out
 * filled (CURVE on), 0 if neither is given (no CURVE), or -1 with a
 * message (only one given, or a file is wrong). */
int keys_client_load(const char *secret_path, const char *broker_path, keys_client_t *out,
                     char *err, size_t errlen);

/* Make sock (not yet connected) a CURVE client with these keys.  Returns
 * 0, or -1 with a message. */
int keys_client_apply(void *sock, const keys_client_t *keys, char *err, size_t errlen);

/* Z85 text of a 32-byte key into out (41 bytes), and back.  Decoding
 * returns 0, or -1 if text is not 40 characters of Z85. */
void keys_encode(const uint8_t bin[KEYS_BIN], char out[KEYS_Z85 + 1]);
int keys_decode(const char *text, uint8_t out[KEYS_BIN]);

/* ---- allow lists */

typedef struct keys_list keys_list_t;

/* An empty list; NULL if out of memory. */
keys_list_t *keys_list_new(void);

/* Free the list; safe on NULL, nulls the caller's pointer. */
void keys_list_destroy(keys_list_t **self_p);

/* Add the public keys of an allow list (a file, or a directory of *.pub
 * files) to the list.  Returns the number of keys added (0 or more), or
 * -1 with a message naming the file and line at fault; on error the list
 * may hold part of the file. */
int keys_list_load(keys_list_t *self, const char *path, char *err, size_t errlen);

/* The entry for a key: its Z85 text (stable while the list lives, so
 * callers may keep and compare the pointer) and *label, its label ("" if
 * none).  NULL if the key is not in the list. */
const char *keys_list_find(const keys_list_t *self, const uint8_t key[KEYS_BIN],
                           const char **label);

/* Keys in the list, and the i-th (0 <= i < count) as Z85. */
size_t keys_list_count(const keys_list_t *self);
const char *keys_list_at(const keys_list_t *self, size_t i);

#endif
