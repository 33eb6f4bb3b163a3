/*
 * apikey.c: the API key format (apikey.h).  Constant-time behaviour is not
 * needed here: nothing secret is compared, only a public checksum.
 */
#include "apikey.h"

#include <stdint.h>
#include <string.h>
#include <zlib.h>

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#define PREFIX "alk_"
#define PREFIX_LEN 4
#define BODY_LEN 60 /* everything before the checksum */

static int
is_base62(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return 0;
    }
    return 1;
}

void
apikey_checksum(const char *key60, char out[6])
{
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)key60, BODY_LEN);

    for (int i = 5; i >= 0; i--) {
        out[i] = base62[crc % 62];
        crc /= 62;
    }
}

int
apikey_check(const char *key, size_t len, char *id)
{
    char sum[6];

    if (len != APIKEY_LEN || memcmp(key, PREFIX, PREFIX_LEN) != 0 || key[PREFIX_LEN + APIKEY_ID_LEN] != '_')
        return 0;
    if (!is_base62(key + PREFIX_LEN, APIKEY_ID_LEN) || !is_base62(key + PREFIX_LEN + APIKEY_ID_LEN + 1, 43 + 6))
        return 0;
    apikey_checksum(key, sum);
    if (memcmp(sum, key + BODY_LEN, sizeof(sum)) != 0)
        return 0;
    if (id != NULL) {
        memcpy(id, key + PREFIX_LEN, APIKEY_ID_LEN);
        id[APIKEY_ID_LEN] = '\0';
    }
    return 1;
}
