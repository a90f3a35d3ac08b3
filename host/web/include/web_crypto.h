/*
 * web_crypto: the webui port's crypto hooks on the host, from OpenSSL:
 * random bytes (RAND_bytes) and PBKDF2-HMAC-SHA256 (PKCS5_PBKDF2_HMAC).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void web_crypto_random(void *ctx, uint8_t *buf, size_t len);
bool web_crypto_pbkdf2_sha256(void *ctx, const char *password, const uint8_t *salt,
                              size_t salt_len, uint32_t iterations, uint8_t out[32]);
