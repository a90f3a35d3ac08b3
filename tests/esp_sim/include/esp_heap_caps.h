/* esp_sim: capability allocation on the host heap (caps are ignored; the
 * memory goes back through free(), as on ESP-IDF). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define MALLOC_CAP_8BIT   (1u << 2)
#define MALLOC_CAP_DMA    (1u << 3)
#define MALLOC_CAP_SPIRAM (1u << 10)

void *heap_caps_malloc(size_t size, uint32_t caps);
void *heap_caps_calloc(size_t n, size_t size, uint32_t caps);
