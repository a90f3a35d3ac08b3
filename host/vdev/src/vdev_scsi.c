#define _POSIX_C_SOURCE 200809L /* strnlen */

#include "vdev_scsi.h"

#include <string.h>

#include "usbip_log.h"
#include "vdev_internal.h"

#define TAG        "storage"
#define BLOCK_SIZE VDEV_STORAGE_BLOCK_SIZE

/* Operation codes (SPC-4, SBC-3). */
#define SCSI_TEST_UNIT_READY       0x00u
#define SCSI_REQUEST_SENSE         0x03u
#define SCSI_READ_6                0x08u
#define SCSI_WRITE_6               0x0au
#define SCSI_INQUIRY               0x12u
#define SCSI_MODE_SENSE_6          0x1au
#define SCSI_START_STOP_UNIT       0x1bu
#define SCSI_PREVENT_ALLOW_REMOVAL 0x1eu
#define SCSI_READ_FORMAT_CAPACITIES 0x23u
#define SCSI_READ_CAPACITY_10      0x25u
#define SCSI_READ_10               0x28u
#define SCSI_WRITE_10              0x2au
#define SCSI_VERIFY_10             0x2fu
#define SCSI_SYNCHRONIZE_CACHE_10  0x35u
#define SCSI_MODE_SENSE_10         0x5au
#define SCSI_READ_16               0x88u
#define SCSI_WRITE_16              0x8au
#define SCSI_SERVICE_ACTION_IN_16  0x9eu
#define SCSI_REPORT_LUNS           0xa0u

#define SAI_READ_CAPACITY_16 0x10u

#define MODE_PAGE_CACHING   0x08u
#define MODE_PAGE_ALL       0x3fu
#define CACHING_PAGE_SIZE   20u

static uint64_t get_be64(const uint8_t *p)
{
    return ((uint64_t)vdev_get_be32(p) << 32) | vdev_get_be32(p + 4);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    vdev_put_be32(p, (uint32_t)(v >> 32));
    vdev_put_be32(p + 4, (uint32_t)v);
}

static uint64_t block_count(const scsi_lun_t *lun) { return lun->disk.size / BLOCK_SIZE; }

/* The last LBA as READ CAPACITY(10) reports it: all ones if it does not fit. */
static uint32_t last_lba_32(const scsi_lun_t *lun)
{
    uint64_t last = block_count(lun) - 1;
    return last > 0xfffffffeu ? 0xffffffffu : (uint32_t)last;
}

void scsi_fail(scsi_lun_t *lun, scsi_command_t *cmd, uint8_t key, uint8_t asc, uint8_t ascq)
{
    lun->sense_key = key;
    lun->asc = asc;
    lun->ascq = ascq;
    cmd->failed = true;
}

/* A failure before the data phase: the command moves no data at all. */
static void reject(scsi_lun_t *lun, scsi_command_t *cmd, uint8_t asc)
{
    scsi_fail(lun, cmd, SCSI_SENSE_ILLEGAL_REQUEST, asc, 0);
    cmd->dir = SCSI_DATA_NONE;
    cmd->length = 0;
}

/* Return len bytes of cmd->reply, cut to the CDB's allocation length. */
static void reply_in(scsi_command_t *cmd, size_t len, uint32_t allocation_length)
{
    cmd->dir = SCSI_DATA_IN;
    cmd->length = vdev_min_u32((uint32_t)len, allocation_length);
}

/* ---- inquiry and sense ---- */

static void put_padded(uint8_t *dst, const char *text, size_t width)
{
    memset(dst, ' ', width);
    memcpy(dst, text, strnlen(text, width));
}

static size_t standard_inquiry(uint8_t *r)
{
    r[0] = 0x00; /* connected direct-access block device */
    r[1] = 0x00; /* not removable: the host need not poll for media changes */
    r[2] = 0x04; /* SPC-2, like most USB flash drives */
    r[3] = 0x02; /* response data format 2 */
    r[4] = 36 - 5;
    put_padded(&r[8], "usbip", 8);
    put_padded(&r[16], "Virtual Disk", 16);
    put_padded(&r[32], "1.00", 4);
    return 36;
}

static void inquiry(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd)
{
    bool evpd = cdb[1] & 0x01;
    uint8_t page = cdb[2];
    uint8_t *r = cmd->reply;
    size_t len;
    if (!evpd) {
        if (page != 0) {
            reject(lun, cmd, SCSI_ASC_INVALID_FIELD_IN_CDB);
            return;
        }
        len = standard_inquiry(r);
    } else if (page == 0x00) { /* supported VPD pages */
        r[3] = 2;
        r[4] = 0x00;
        r[5] = 0x80;
        len = 6;
    } else if (page == 0x80) { /* unit serial number */
        size_t n = strnlen(lun->serial, SCSI_REPLY_MAX - 4);
        r[1] = 0x80;
        r[3] = (uint8_t)n;
        memcpy(&r[4], lun->serial, n);
        len = 4 + n;
    } else {
        reject(lun, cmd, SCSI_ASC_INVALID_FIELD_IN_CDB);
        return;
    }
    reply_in(cmd, len, vdev_get_be16(&cdb[3]));
}

/* Fixed-format sense data; reading it clears it. */
static void request_sense(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd)
{
    uint8_t *r = cmd->reply;
    r[0] = 0x70; /* current error, fixed format */
    r[2] = lun->sense_key;
    r[7] = 18 - 8; /* additional sense length */
    r[12] = lun->asc;
    r[13] = lun->ascq;
    lun->sense_key = SCSI_SENSE_NO_SENSE;
    lun->asc = 0;
    lun->ascq = 0;
    reply_in(cmd, 18, cdb[4]);
}

/* ---- capacity ---- */

static void read_capacity_10(scsi_lun_t *lun, scsi_command_t *cmd)
{
    vdev_put_be32(&cmd->reply[0], last_lba_32(lun));
    vdev_put_be32(&cmd->reply[4], BLOCK_SIZE);
    reply_in(cmd, 8, 8);
}

static void read_capacity_16(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd)
{
    if ((cdb[1] & 0x1f) != SAI_READ_CAPACITY_16) {
        reject(lun, cmd, SCSI_ASC_INVALID_FIELD_IN_CDB);
        return;
    }
    put_be64(&cmd->reply[0], block_count(lun) - 1);
    vdev_put_be32(&cmd->reply[8], BLOCK_SIZE);
    reply_in(cmd, 32, vdev_get_be32(&cdb[10]));
}

static void read_format_capacities(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd)
{
    uint8_t *r = cmd->reply;
    uint64_t blocks = block_count(lun);
    r[3] = 8; /* capacity list length: one descriptor */
    vdev_put_be32(&r[4], blocks > 0xffffffffu ? 0xffffffffu : (uint32_t)blocks);
    r[8] = 0x02; /* formatted media */
    r[9] = (uint8_t)(BLOCK_SIZE >> 16);
    r[10] = (uint8_t)(BLOCK_SIZE >> 8);
    r[11] = (uint8_t)BLOCK_SIZE;
    reply_in(cmd, 12, vdev_get_be16(&cdb[7]));
}

static void report_luns(const uint8_t *cdb, scsi_command_t *cmd)
{
    vdev_put_be32(&cmd->reply[0], 8); /* one LUN, number 0: the rest stays zero */
    reply_in(cmd, 16, vdev_get_be32(&cdb[6]));
}

/* ---- mode sense ---- */

/* The pages MODE SENSE returns for a page code; false if it has none. The
 * caching page says write cache disabled: writes reach the disk at once. */
static bool mode_pages(uint8_t page, uint8_t *out, size_t *len)
{
    switch (page) {
    case 0x00: /* no page, header only */
        *len = 0;
        return true;
    case MODE_PAGE_CACHING:
    case MODE_PAGE_ALL:
        memset(out, 0, CACHING_PAGE_SIZE);
        out[0] = MODE_PAGE_CACHING;
        out[1] = CACHING_PAGE_SIZE - 2;
        *len = CACHING_PAGE_SIZE;
        return true;
    default:
        return false;
    }
}

static void mode_sense(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd, bool ten)
{
    uint8_t page_control = cdb[2] >> 6;
    uint8_t page = cdb[2] & 0x3f;
    uint8_t subpage = cdb[3];
    if (page_control == 3) {
        scsi_fail(lun, cmd, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_NOT_SUPPORTED, 0);
        return;
    }
    size_t header = ten ? 8 : 4;
    size_t pages_len;
    bool subpage_ok = subpage == 0 || (subpage == 0xff && page == MODE_PAGE_ALL);
    if (!subpage_ok || !mode_pages(page, &cmd->reply[header], &pages_len)) {
        reject(lun, cmd, SCSI_ASC_INVALID_FIELD_IN_CDB);
        return;
    }
    /* Medium type 0, device-specific 0 (bit 7 write-protect clear), no
     * block descriptors: all zero in the header. */
    size_t total = header + pages_len;
    if (ten) {
        vdev_put_be16(&cmd->reply[0], (uint16_t)(total - 2));
        reply_in(cmd, total, vdev_get_be16(&cdb[7]));
    } else {
        cmd->reply[0] = (uint8_t)(total - 1);
        reply_in(cmd, total, cdb[4]);
    }
}

/* ---- block I/O ---- */

static bool blocks_in_range(const scsi_lun_t *lun, uint64_t lba, uint64_t blocks)
{
    uint64_t total = block_count(lun);
    return lba <= total && blocks <= total - lba;
}

static void read_write(scsi_lun_t *lun, scsi_command_t *cmd, uint64_t lba, uint64_t blocks,
                       bool write)
{
    if (!blocks_in_range(lun, lba, blocks)) {
        reject(lun, cmd, SCSI_ASC_LBA_OUT_OF_RANGE);
        return;
    }
    if (blocks * BLOCK_SIZE > UINT32_MAX) {
        reject(lun, cmd, SCSI_ASC_INVALID_FIELD_IN_CDB); /* more than one CBW can carry */
        return;
    }
    cmd->length = (uint32_t)(blocks * BLOCK_SIZE);
    cmd->dir = blocks == 0 ? SCSI_DATA_NONE : (write ? SCSI_DATA_OUT : SCSI_DATA_IN);
    cmd->disk_transfer = true;
    cmd->disk_offset = lba * BLOCK_SIZE;
}

static void read_write_6(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd, bool write)
{
    uint32_t lba = ((uint32_t)(cdb[1] & 0x1f) << 16) | ((uint32_t)cdb[2] << 8) | cdb[3];
    uint32_t blocks = cdb[4] ? cdb[4] : 256; /* 0 means 256 here */
    read_write(lun, cmd, lba, blocks, write);
}

static void read_write_10(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd, bool write)
{
    read_write(lun, cmd, vdev_get_be32(&cdb[2]), vdev_get_be16(&cdb[7]), write);
}

static void read_write_16(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd, bool write)
{
    read_write(lun, cmd, get_be64(&cdb[2]), vdev_get_be32(&cdb[10]), write);
}

static void verify_10(scsi_lun_t *lun, const uint8_t *cdb, scsi_command_t *cmd)
{
    if (cdb[1] & 0x02) { /* BYTCHK: compare against sent data, not offered */
        reject(lun, cmd, SCSI_ASC_INVALID_FIELD_IN_CDB);
    } else if (!blocks_in_range(lun, vdev_get_be32(&cdb[2]), vdev_get_be16(&cdb[7]))) {
        reject(lun, cmd, SCSI_ASC_LBA_OUT_OF_RANGE);
    }
}

static void synchronize_cache(scsi_lun_t *lun, scsi_command_t *cmd)
{
    if (!vdev_disk_flush(&lun->disk)) {
        scsi_fail(lun, cmd, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR, 0);
    }
}

/* ---- dispatch ---- */

void scsi_execute(scsi_lun_t *lun, const uint8_t cdb[16], scsi_command_t *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->opcode = cdb[0];
    if (cdb[0] != SCSI_REQUEST_SENSE) {
        /* Sense describes the last command; a new one starts clean. */
        lun->sense_key = SCSI_SENSE_NO_SENSE;
        lun->asc = 0;
        lun->ascq = 0;
    }
    switch (cdb[0]) {
    case SCSI_TEST_UNIT_READY:
    case SCSI_PREVENT_ALLOW_REMOVAL:
    case SCSI_START_STOP_UNIT:
        break;
    case SCSI_REQUEST_SENSE: request_sense(lun, cdb, cmd); break;
    case SCSI_INQUIRY: inquiry(lun, cdb, cmd); break;
    case SCSI_MODE_SENSE_6: mode_sense(lun, cdb, cmd, false); break;
    case SCSI_MODE_SENSE_10: mode_sense(lun, cdb, cmd, true); break;
    case SCSI_READ_CAPACITY_10: read_capacity_10(lun, cmd); break;
    case SCSI_SERVICE_ACTION_IN_16: read_capacity_16(lun, cdb, cmd); break;
    case SCSI_READ_FORMAT_CAPACITIES: read_format_capacities(lun, cdb, cmd); break;
    case SCSI_REPORT_LUNS: report_luns(cdb, cmd); break;
    case SCSI_READ_6: read_write_6(lun, cdb, cmd, false); break;
    case SCSI_WRITE_6: read_write_6(lun, cdb, cmd, true); break;
    case SCSI_READ_10: read_write_10(lun, cdb, cmd, false); break;
    case SCSI_WRITE_10: read_write_10(lun, cdb, cmd, true); break;
    case SCSI_READ_16: read_write_16(lun, cdb, cmd, false); break;
    case SCSI_WRITE_16: read_write_16(lun, cdb, cmd, true); break;
    case SCSI_VERIFY_10: verify_10(lun, cdb, cmd); break;
    case SCSI_SYNCHRONIZE_CACHE_10: synchronize_cache(lun, cmd); break;
    default:
        USBIP_LOGD(TAG, "unsupported SCSI command 0x%02x", cdb[0]);
        reject(lun, cmd, SCSI_ASC_INVALID_OPCODE);
        break;
    }
}

void scsi_data_in(scsi_lun_t *lun, scsi_command_t *cmd, uint32_t offset, uint8_t *dst,
                  uint32_t len)
{
    if (!cmd->disk_transfer) {
        uint32_t avail = offset < SCSI_REPLY_MAX ? SCSI_REPLY_MAX - offset : 0;
        uint32_t n = vdev_min_u32(len, avail);
        memcpy(dst, &cmd->reply[offset < SCSI_REPLY_MAX ? offset : 0], n);
        memset(dst + n, 0, len - n);
        return;
    }
    if (cmd->failed || !vdev_disk_read(&lun->disk, cmd->disk_offset + offset, dst, len)) {
        /* The data phase still has to run its course: send zeros. */
        memset(dst, 0, len);
        if (!cmd->failed) {
            scsi_fail(lun, cmd, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_UNRECOVERED_READ, 0);
        }
    }
}

void scsi_data_out(scsi_lun_t *lun, scsi_command_t *cmd, uint32_t offset, const uint8_t *src,
                   uint32_t len)
{
    if (!cmd->disk_transfer || cmd->failed) {
        return; /* nothing to keep: the data is consumed and dropped */
    }
    if (!vdev_disk_write(&lun->disk, cmd->disk_offset + offset, src, len)) {
        scsi_fail(lun, cmd, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR, 0);
    }
}
