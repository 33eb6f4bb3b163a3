/*
 * apikey.h: the shape of an API key, checked without the database.
 *
 *   alk_ <key id: 12 base62> _ <secret: 43 base62> <checksum: 6 base62>
 *
 * 66 characters from 0-9A-Za-z plus the two underscores.  The checksum is the
 * CRC32 (zlib polynomial) of the 60 characters before it, written big-endian
 * in base62 and left-padded with '0'.  A key of the right shape may still be
 * unknown, revoked or expired: only the database decides that.
 */
#ifndef ACTLOOM_APIKEY_H
#define ACTLOOM_APIKEY_H

#include <stddef.h>

#define APIKEY_LEN 66
#define APIKEY_ID_LEN 12

/*
 * Whether key[0..len) is a well-formed key with a valid checksum; if so and
 * id is not NULL, copies the key id (APIKEY_ID_LEN + 1 bytes) into id.
 */
int apikey_check(const char *key, size_t len, char *id);

/* Writes the 6-character checksum of the first 60 characters of key. */
void apikey_checksum(const char *key60, char out[6]);

#endif
