/* web_crypto: see web_crypto.h. */
#include "web_crypto.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void web_crypto_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    if (RAND_bytes(buf, (int)len) != 1) {
        /* Tokens and salts must never be predictable: stop rather than guess. */
        fprintf(stderr, "web_crypto: the system random generator failed\n");
        abort();
    }
}

bool web_crypto_pbkdf2_sha256(void *ctx, const char *password, const uint8_t *salt,
                              size_t salt_len, uint32_t iterations, uint8_t out[32])
{
    (void)ctx;
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
                             (int)iterations, EVP_sha256(), 32, out) == 1;
}
