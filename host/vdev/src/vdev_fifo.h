/*
 * vdev_fifo: a fixed-capacity byte ring buffer, shared by the serial echo
 * and the Gadget Zero loopback (what is written to bulk OUT waits here until
 * bulk IN reads it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t capacity;
    size_t head;  /* index of the oldest byte */
    size_t count; /* bytes stored */
} vdev_fifo_t;

/* Allocate the storage; false if out of memory. */
bool vdev_fifo_init(vdev_fifo_t *f, size_t capacity);
void vdev_fifo_free(vdev_fifo_t *f);
void vdev_fifo_clear(vdev_fifo_t *f);

static inline size_t vdev_fifo_count(const vdev_fifo_t *f) { return f->count; }
static inline size_t vdev_fifo_space(const vdev_fifo_t *f) { return f->capacity - f->count; }

/* Append up to len bytes; returns how many fitted. */
size_t vdev_fifo_push(vdev_fifo_t *f, const uint8_t *src, size_t len);
/* Remove up to len bytes, oldest first; returns how many were copied. */
size_t vdev_fifo_pop(vdev_fifo_t *f, uint8_t *dst, size_t len);
