/*
 * vdev_disk: the storage behind the virtual mass storage device, either a
 * zero-filled RAM buffer or a disk image file accessed with pread/pwrite.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usbip_err.h"

typedef struct {
    uint8_t *ram; /* RAM disk, or NULL */
    int fd;       /* image file, or -1 */
    char *path;   /* image file path, for messages */
    uint64_t size;
} vdev_disk_t;

/* A RAM disk of size bytes (a multiple of 512, > 0). Logs and fails on a bad
 * size (INVALID_ARG) or when memory runs out (NO_MEM). */
usbip_err_t vdev_disk_open_ram(vdev_disk_t *disk, uint64_t size);
/* The image file at path, opened read-write; its size must be a non-zero
 * multiple of 512. Logs a line naming the path on failure. */
usbip_err_t vdev_disk_open_file(vdev_disk_t *disk, const char *path);
void vdev_disk_close(vdev_disk_t *disk);

/* Byte-addressed I/O inside the disk; false on an I/O error (logged). */
bool vdev_disk_read(vdev_disk_t *disk, uint64_t offset, uint8_t *dst, size_t len);
bool vdev_disk_write(vdev_disk_t *disk, uint64_t offset, const uint8_t *src, size_t len);
/* Make written data durable (fsync for a file). */
bool vdev_disk_flush(vdev_disk_t *disk);
