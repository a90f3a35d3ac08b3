#define _POSIX_C_SOURCE 200809L /* pread, pwrite, strdup, O_CLOEXEC */

#include "vdev_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usbip_log.h"

#define TAG        "storage"
#define BLOCK_SIZE 512u

static void disk_init(vdev_disk_t *disk)
{
    memset(disk, 0, sizeof *disk);
    disk->fd = -1;
}

usbip_err_t vdev_disk_open_ram(vdev_disk_t *disk, uint64_t size)
{
    disk_init(disk);
    if (size == 0 || size % BLOCK_SIZE != 0 || size > SIZE_MAX) {
        USBIP_LOGE(TAG, "RAM disk size %" PRIu64 " is not a non-zero multiple of %u bytes", size,
                   BLOCK_SIZE);
        return USBIP_ERR_INVALID_ARG;
    }
    /* calloc: pages nobody writes to are never really allocated. */
    disk->ram = calloc(1, (size_t)size);
    if (!disk->ram) {
        USBIP_LOGE(TAG, "cannot allocate a RAM disk of %" PRIu64 " bytes", size);
        return USBIP_ERR_NO_MEM;
    }
    disk->size = size;
    return USBIP_OK;
}

usbip_err_t vdev_disk_open_file(vdev_disk_t *disk, const char *path)
{
    disk_init(disk);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        USBIP_LOGE(TAG, "cannot open disk image %s: %s", path, strerror(errno));
        return USBIP_ERR_IO;
    }
    /* lseek rather than fstat: it also sizes a block device. */
    off_t end = lseek(fd, 0, SEEK_END);
    if (end <= 0 || end % BLOCK_SIZE != 0) {
        USBIP_LOGE(TAG, "disk image %s: size %lld is not a non-zero multiple of %u bytes", path,
                   (long long)end, BLOCK_SIZE);
        close(fd);
        return USBIP_ERR_INVALID_ARG;
    }
    disk->path = strdup(path);
    if (!disk->path) {
        close(fd);
        return USBIP_ERR_NO_MEM;
    }
    disk->fd = fd;
    disk->size = (uint64_t)end;
    return USBIP_OK;
}

void vdev_disk_close(vdev_disk_t *disk)
{
    free(disk->ram);
    if (disk->fd >= 0) {
        close(disk->fd);
    }
    free(disk->path);
    disk_init(disk);
}

static bool in_range(const vdev_disk_t *disk, uint64_t offset, size_t len)
{
    return offset <= disk->size && len <= disk->size - offset;
}

bool vdev_disk_read(vdev_disk_t *disk, uint64_t offset, uint8_t *dst, size_t len)
{
    if (!in_range(disk, offset, len)) {
        return false;
    }
    if (disk->ram) {
        memcpy(dst, disk->ram + offset, len);
        return true;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(disk->fd, dst + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            /* n == 0: the image shrank under us */
            USBIP_LOGE(TAG, "read of %s at %" PRIu64 " failed: %s", disk->path, offset + done,
                       n < 0 ? strerror(errno) : "end of file");
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

bool vdev_disk_write(vdev_disk_t *disk, uint64_t offset, const uint8_t *src, size_t len)
{
    if (!in_range(disk, offset, len)) {
        return false;
    }
    if (disk->ram) {
        memcpy(disk->ram + offset, src, len);
        return true;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(disk->fd, src + done, len - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            USBIP_LOGE(TAG, "write to %s at %" PRIu64 " failed: %s", disk->path, offset + done,
                       n < 0 ? strerror(errno) : "no progress");
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

bool vdev_disk_flush(vdev_disk_t *disk)
{
    if (disk->fd < 0) {
        return true;
    }
    if (fsync(disk->fd) != 0) {
        USBIP_LOGE(TAG, "fsync of %s failed: %s", disk->path, strerror(errno));
        return false;
    }
    return true;
}
