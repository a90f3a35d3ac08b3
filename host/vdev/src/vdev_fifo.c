#include "vdev_fifo.h"

#include <stdlib.h>
#include <string.h>

bool vdev_fifo_init(vdev_fifo_t *f, size_t capacity)
{
    memset(f, 0, sizeof *f);
    f->data = malloc(capacity);
    if (!f->data) {
        return false;
    }
    f->capacity = capacity;
    return true;
}

void vdev_fifo_free(vdev_fifo_t *f)
{
    free(f->data);
    memset(f, 0, sizeof *f);
}

void vdev_fifo_clear(vdev_fifo_t *f)
{
    f->head = 0;
    f->count = 0;
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

size_t vdev_fifo_push(vdev_fifo_t *f, const uint8_t *src, size_t len)
{
    size_t n = min_size(len, vdev_fifo_space(f));
    if (n == 0) {
        return 0;
    }
    size_t tail = (f->head + f->count) % f->capacity;
    /* At most two pieces: up to the end of the storage, then from its start. */
    size_t first = min_size(n, f->capacity - tail);
    memcpy(&f->data[tail], src, first);
    memcpy(f->data, src + first, n - first);
    f->count += n;
    return n;
}

size_t vdev_fifo_pop(vdev_fifo_t *f, uint8_t *dst, size_t len)
{
    size_t n = min_size(len, f->count);
    if (n == 0) {
        return 0;
    }
    size_t first = min_size(n, f->capacity - f->head);
    memcpy(dst, &f->data[f->head], first);
    memcpy(dst + first, f->data, n - first);
    f->head = (f->head + n) % f->capacity;
    f->count -= n;
    return n;
}
