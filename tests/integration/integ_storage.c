/* 6: USB mass storage, Bulk-Only Transport with SCSI: INQUIRY, READ
 * CAPACITY, WRITE(10)/READ(10) with the data stage split over several URBs in
 * flight, sense data after errors, recovery from an invalid CBW, and a disk
 * image file. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "integ_util.h"

#define EP_IN  1 /* 0x81 */
#define EP_OUT 2 /* 0x02 */
#define BLOCK  512u

typedef struct {
    int32_t urb_status;  /* first non-zero status of a data URB */
    uint32_t moved;      /* data bytes transferred */
    uint8_t csw_status;
    uint32_t residue;
    bool ok;             /* the transport worked: CBW taken, a valid CSW came */
} bot_result_t;

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One SCSI command: CBW, data stage as URBs of at most chunk bytes, CSW, all
 * submitted at once and completed in order per endpoint. */
static bot_result_t scsi(usbip_client_t *c, const uint8_t *cdb, uint8_t cdb_len, bool in,
                         uint8_t *data, uint32_t len, uint32_t chunk)
{
    static uint32_t tag = 0x1000;
    bot_result_t r = {0};
    uint8_t cbw[31] = {0};
    put_le32(cbw, 0x43425355u);
    put_le32(cbw + 4, ++tag);
    put_le32(cbw + 8, len);
    cbw[12] = in ? 0x80 : 0x00;
    cbw[13] = 0;
    cbw[14] = cdb_len;
    memcpy(cbw + 15, cdb, cdb_len);
    uint8_t csw[13] = {0};

    enum { MAXU = 64 };
    usbip_client_urb_t urbs[MAXU + 2];
    size_t n = 0;
    urbs[n++] = (usbip_client_urb_t){.ep = EP_OUT, .dir_in = false, .buffer = cbw, .length = 31};
    for (uint32_t off = 0; off < len && n < MAXU; off += chunk) {
        uint32_t piece = len - off < chunk ? len - off : chunk;
        urbs[n++] = (usbip_client_urb_t){.ep = in ? EP_IN : EP_OUT, .dir_in = in,
                                         .buffer = data + off, .length = piece};
    }
    urbs[n++] = (usbip_client_urb_t){.ep = EP_IN, .dir_in = true, .buffer = csw, .length = 13};
    for (size_t i = 0; i < n; i++) {
        if (!it_submit(c, &urbs[i])) {
            return r;
        }
    }
    bool stop_moving = false;
    for (size_t i = 0; i < n; i++) {
        usbip_client_urb_t *done = NULL;
        if (!it_wait(c, &done, NULL, NULL) || !done) {
            return r;
        }
        size_t k = (size_t)(done - urbs);
        if (k == 0) {
            if (done->status != 0 || done->actual_length != 31) {
                it_fail(__FILE__, __LINE__, "CBW: status %d actual %u", done->status,
                        done->actual_length);
            }
        } else if (k == n - 1) {
            if (done->status != 0 || done->actual_length != 13 || le32(csw) != 0x53425355u ||
                le32(csw + 4) != tag) {
                it_fail(__FILE__, __LINE__, "CSW: status %d actual %u signature %08x tag %08x/%08x",
                        done->status, done->actual_length, le32(csw), le32(csw + 4), tag);
                return r;
            }
            r.residue = le32(csw + 8);
            r.csw_status = csw[12];
            r.ok = true;
        } else {
            if (done->status != 0 && r.urb_status == 0) {
                r.urb_status = done->status;
            }
            /* After a short data URB the rest carry nothing. */
            if (stop_moving && done->actual_length != 0) {
                it_fail(__FILE__, __LINE__, "data after a short URB");
            }
            r.moved += done->actual_length;
            if (done->actual_length < done->length) {
                stop_moving = true;
            }
        }
    }
    return r;
}

static void rw10_cdb(uint8_t cdb[10], uint8_t op, uint32_t lba, uint16_t blocks)
{
    memset(cdb, 0, 10);
    cdb[0] = op;
    it_put_be32(cdb + 2, lba);
    it_put_be16(cdb + 7, blocks);
}

static void request_sense(usbip_client_t *c, uint8_t *key, uint8_t *asc)
{
    const uint8_t cdb[6] = {0x03, 0, 0, 0, 18, 0};
    uint8_t sense[18] = {0};
    bot_result_t r = scsi(c, cdb, 6, true, sense, 18, 18);
    CHECK(r.ok);
    CHECK_EQ(r.csw_status, 0);
    CHECK_EQ(r.moved, 18);
    CHECK_EQ(sense[0], 0x70);
    *key = sense[2] & 0x0f;
    *asc = sense[12];
}

static void storage_commands(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_STORAGE, NULL);
    REQUIRE(c);
    uint32_t actual = 0;
    uint8_t max_lun = 0xff;
    CHECK_EQ(it_control(c, 0xa1, 0xfe, 0, 0, &max_lun, 1, &actual), 0);
    CHECK_EQ(max_lun, 0);

    /* INQUIRY */
    const uint8_t inquiry[6] = {0x12, 0, 0, 0, 36, 0};
    uint8_t inq[36] = {0};
    bot_result_t r = scsi(c, inquiry, 6, true, inq, 36, 36);
    REQUIRE(r.ok);
    CHECK_EQ(r.csw_status, 0);
    CHECK_EQ(r.residue, 0);
    CHECK_EQ(r.moved, 36);
    CHECK_EQ(inq[0], 0x00);
    CHECK(memcmp(inq + 8, "usbip   ", 8) == 0);
    CHECK(memcmp(inq + 16, "Virtual Disk    ", 16) == 0);
    CHECK(memcmp(inq + 32, "1.00", 4) == 0);

    /* TEST UNIT READY, READ CAPACITY(10): 4 MiB = 8192 blocks of 512. */
    const uint8_t tur[6] = {0};
    r = scsi(c, tur, 6, false, NULL, 0, 1);
    CHECK(r.ok && r.csw_status == 0);
    const uint8_t cap_cdb[10] = {0x25};
    uint8_t cap[8] = {0};
    r = scsi(c, cap_cdb, 10, true, cap, 8, 8);
    REQUIRE(r.ok);
    CHECK_EQ(r.csw_status, 0);
    CHECK_EQ(it_be32(cap), 8191);
    CHECK_EQ(it_be32(cap + 4), BLOCK);

    /* WRITE(10) 256 blocks of random data at LBA 100: 4 OUT URBs in flight. */
    const uint32_t nblocks = 256, bytes = nblocks * BLOCK;
    uint8_t *data = it_malloc(bytes), *back = it_malloc(bytes);
    REQUIRE(data && back);
    it_fill_random(data, bytes, 4242);
    uint8_t cdb[10];
    rw10_cdb(cdb, 0x2a, 100, (uint16_t)nblocks);
    r = scsi(c, cdb, 10, false, data, bytes, bytes / 4);
    REQUIRE(r.ok);
    CHECK_EQ(r.csw_status, 0);
    CHECK_EQ(r.residue, 0);
    CHECK_EQ(r.moved, bytes);
    /* READ(10) back: 4 IN URBs in flight, then 8 with odd chunking. */
    rw10_cdb(cdb, 0x28, 100, (uint16_t)nblocks);
    r = scsi(c, cdb, 10, true, back, bytes, bytes / 4);
    REQUIRE(r.ok);
    CHECK_EQ(r.csw_status, 0);
    CHECK_EQ(r.residue, 0);
    CHECK_EQ(r.moved, bytes);
    CHECK(memcmp(back, data, bytes) == 0);
    memset(back, 0, bytes);
    r = scsi(c, cdb, 10, true, back, bytes, 20 * 1024);
    CHECK(r.ok && r.csw_status == 0 && r.moved == bytes);
    CHECK(memcmp(back, data, bytes) == 0);
    /* Untouched blocks of the RAM disk read as zeros. */
    rw10_cdb(cdb, 0x28, 99, 1);
    r = scsi(c, cdb, 10, true, back, BLOCK, BLOCK);
    CHECK(r.ok && r.csw_status == 0);
    static const uint8_t zeros[BLOCK];
    CHECK(memcmp(back, zeros, BLOCK) == 0);

    /* An unknown opcode fails; REQUEST SENSE says ILLEGAL REQUEST /
     * INVALID COMMAND OPERATION CODE, then the sense is cleared. */
    const uint8_t bogus[6] = {0xc8, 0, 0, 0, 0, 0};
    r = scsi(c, bogus, 6, false, NULL, 0, 1);
    REQUIRE(r.ok);
    CHECK_EQ(r.csw_status, 1);
    uint8_t key = 0xff, asc = 0xff;
    request_sense(c, &key, &asc);
    CHECK_EQ(key, 0x05);
    CHECK_EQ(asc, 0x20);
    request_sense(c, &key, &asc);
    CHECK_EQ(key, 0x00);
    CHECK_EQ(asc, 0x00);

    /* READ(10) past the end: fails, no data, full residue, LBA OUT OF RANGE. */
    rw10_cdb(cdb, 0x28, 8190, 4);
    r = scsi(c, cdb, 10, true, back, 4 * BLOCK, 4 * BLOCK);
    REQUIRE(r.ok);
    CHECK_EQ(r.csw_status, 1);
    CHECK_EQ(r.moved, 0);
    CHECK_EQ(r.residue, 4 * BLOCK);
    request_sense(c, &key, &asc);
    CHECK_EQ(key, 0x05);
    CHECK_EQ(asc, 0x21);
}

/* An invalid CBW stalls both bulk endpoints until Bulk-Only Mass Storage
 * Reset and CLEAR_FEATURE(HALT) on each. */
static void storage_invalid_cbw_recovery(daemon_t *d)
{
    usbip_client_t *c = it_import(d, BUSID_STORAGE, NULL);
    REQUIRE(c);
    size_t mark = daemon_log_mark(d);
    uint8_t junk[31];
    memset(junk, 0x5a, sizeof junk);
    uint32_t actual = 0;
    CHECK_EQ(it_transfer(c, EP_OUT, false, junk, sizeof junk, &actual), 0);
    CHECK(daemon_log_wait(d, mark, "invalid CBW (31 bytes)", 2000));
    uint8_t csw[13];
    CHECK_EQ(it_transfer(c, EP_IN, true, csw, 13, &actual), -32);
    CHECK_EQ(it_transfer(c, EP_OUT, false, junk, sizeof junk, &actual), -32);
    uint8_t status[2] = {0};
    CHECK_EQ(it_control(c, 0x82, 0, 0, 0x81, status, 2, &actual), 0); /* GET_STATUS ep 0x81 */
    CHECK_EQ(status[0], 1);                                           /* halted */
    CHECK_EQ(it_control(c, 0x21, 0xff, 0, 0, NULL, 0, &actual), 0);   /* BOT reset */
    CHECK_EQ(it_control(c, 0x02, 1, 0, 0x81, NULL, 0, &actual), 0);   /* CLEAR_HALT IN */
    CHECK_EQ(it_control(c, 0x02, 1, 0, 0x02, NULL, 0, &actual), 0);   /* CLEAR_HALT OUT */
    CHECK_EQ(it_control(c, 0x82, 0, 0, 0x81, status, 2, &actual), 0);
    CHECK_EQ(status[0], 0);
    const uint8_t inquiry[6] = {0x12, 0, 0, 0, 36, 0};
    uint8_t inq[36] = {0};
    bot_result_t r = scsi(c, inquiry, 6, true, inq, 36, 36);
    CHECK(r.ok && r.csw_status == 0 && r.moved == 36);
}

static void storage_image_file(daemon_t *d)
{
    /* Restart the daemon on a 1 MiB image with known content. */
    char path[256];
    snprintf(path, sizeof path, "%s/disk.img", d->dir);
    const size_t size = 1024 * 1024;
    uint8_t *image = it_malloc(size);
    REQUIRE(image);
    it_fill_random(image, size, 99);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, image, size) == (ssize_t)size);
    close(fd);
    char spec[300];
    snprintf(spec, sizeof spec, "storage:image=%s", path);
    const char *flags[] = {"--device", spec, NULL};
    REQUIRE(daemon_restart_with(d, flags));
    char out[512];
    CHECK(daemon_ctl_ok(d, "status 1-1", out, sizeof out));
    CHECK_CONTAINS(out, "1 MiB image");

    usbip_client_t *c = it_import(d, "1-1", NULL);
    REQUIRE(c);
    const uint8_t cap_cdb[10] = {0x25};
    uint8_t cap[8] = {0};
    bot_result_t r = scsi(c, cap_cdb, 10, true, cap, 8, 8);
    REQUIRE(r.ok);
    CHECK_EQ(it_be32(cap), size / BLOCK - 1);
    uint8_t cdb[10];
    uint8_t back[4 * BLOCK];
    rw10_cdb(cdb, 0x28, 10, 4);
    r = scsi(c, cdb, 10, true, back, sizeof back, BLOCK);
    CHECK(r.ok && r.csw_status == 0 && r.moved == sizeof back);
    CHECK(memcmp(back, image + 10 * BLOCK, sizeof back) == 0);
    uint8_t fresh[8 * BLOCK];
    it_fill_random(fresh, sizeof fresh, 100);
    rw10_cdb(cdb, 0x2a, 20, 8);
    r = scsi(c, cdb, 10, false, fresh, sizeof fresh, 2 * BLOCK);
    CHECK(r.ok && r.csw_status == 0 && r.residue == 0);
    const uint8_t sync_cdb[10] = {0x35};
    r = scsi(c, sync_cdb, 10, false, NULL, 0, 1);
    CHECK(r.ok && r.csw_status == 0);
    it_close(c);
    REQUIRE(daemon_stop(d));

    /* The bytes are in the file, and nothing else changed. */
    uint8_t *now = it_malloc(size);
    REQUIRE(now);
    fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK_EQ(read(fd, now, size), (ssize_t)size);
    close(fd);
    CHECK(memcmp(now + 20 * BLOCK, fresh, sizeof fresh) == 0);
    CHECK(memcmp(now, image, 20 * BLOCK) == 0);
    CHECK(memcmp(now + 28 * BLOCK, image + 28 * BLOCK, size - 28 * BLOCK) == 0);
}

int main(int argc, char **argv)
{
    it_init(argc, argv, 150);
    static const char *const flags[] = {"--device", "keyboard", "--device", "serial",
                                        "--device", "storage:size=4M", NULL};
    it_run("storage_commands", storage_commands, flags);
    it_run("storage_invalid_cbw_recovery", storage_invalid_cbw_recovery, flags);
    it_run("storage_image_file", storage_image_file, flags);
    return it_finish();
}
