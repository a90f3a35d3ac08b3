/* Virtual USB mass storage: Bulk-Only Transport (BOT 1.0) carrying the SCSI
 * commands of vdev_scsi.c.
 *
 * One command at a time goes through CBW -> data -> CSW. The data phase is
 * counted in bytes, not URBs, so the host may split it into URBs of any
 * size; it ends when the host got all it asked for or when a URB completes
 * short. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdev_internal.h"
#include "vdev_scsi.h"

#define STORAGE_PID    0x5503u
#define STORAGE_EP_IN  0x81u
#define STORAGE_EP_OUT 0x02u

#define CBW_SIZE      31u
#define CSW_SIZE      13u
#define CBW_SIGNATURE 0x43425355u /* "USBC" little-endian */
#define CSW_SIGNATURE 0x53425355u /* "USBS" */
#define CBW_FLAG_IN   0x80u

#define CSW_STATUS_GOOD        0u
#define CSW_STATUS_FAILED      1u
#define CSW_STATUS_PHASE_ERROR 2u

/* Class requests (BOT section 3). */
#define BOT_GET_MAX_LUN 0xfeu
#define BOT_RESET       0xffu

typedef enum {
    BOT_EXPECT_CBW,
    BOT_DATA_IN,
    BOT_DATA_OUT,
    BOT_SEND_CSW,
} bot_phase_t;

typedef struct {
    scsi_lun_t lun;
    bot_phase_t phase;
    uint32_t tag;
    uint32_t host_length;   /* dCBWDataTransferLength */
    uint32_t device_length; /* bytes of it the command really moves */
    uint32_t moved;         /* bytes of the data phase transferred so far */
    uint32_t processed;     /* of those, bytes the command used (for the residue) */
    bool phase_error;
    scsi_command_t cmd;
} storage_t;

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- command phase ---- */

static bool cbw_valid(const uint8_t *cbw, uint32_t len)
{
    return len == CBW_SIZE && get_le32(cbw) == CBW_SIGNATURE && cbw[14] >= 1 && cbw[14] <= 16;
}

/* Match the host's data phase (direction and length from the CBW) with the
 * command's; the BOT "thirteen cases" boil down to this. */
static void plan_data_phase(storage_t *st, bool host_in)
{
    const scsi_command_t *cmd = &st->cmd;
    scsi_data_dir_t host_dir = host_in ? SCSI_DATA_IN : SCSI_DATA_OUT;
    st->device_length = 0;
    if (st->host_length == 0) {
        st->phase_error = cmd->dir != SCSI_DATA_NONE; /* the command wanted data */
        st->phase = BOT_SEND_CSW;
        return;
    }
    if (cmd->dir == host_dir) {
        st->device_length = vdev_min_u32(cmd->length, st->host_length);
        /* Fewer bytes than the blocks addressed: tell the host, do not drop
         * data silently. A short reply (INQUIRY...) is just truncated. */
        st->phase_error = cmd->disk_transfer && cmd->length > st->host_length;
    } else if (cmd->dir != SCSI_DATA_NONE) {
        st->phase_error = true; /* opposite directions: move nothing */
    }
    /* Whatever the command, the host's data phase runs: a short or empty
     * data-in completion, or data-out consumed and dropped. */
    st->phase = host_in ? BOT_DATA_IN : BOT_DATA_OUT;
}

static void start_command(vdev_t *dev, storage_t *st, const uint8_t *cbw)
{
    st->tag = get_le32(&cbw[4]);
    st->host_length = get_le32(&cbw[8]);
    st->moved = 0;
    st->processed = 0;
    st->phase_error = false;
    uint8_t lun = cbw[13] & 0x0f;
    uint8_t cdb[16] = {0};
    memcpy(cdb, &cbw[15], cbw[14]);
    if (lun != 0) {
        memset(&st->cmd, 0, sizeof st->cmd);
        scsi_fail(&st->lun, &st->cmd, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED, 0);
    } else {
        scsi_execute(&st->lun, cdb, &st->cmd);
    }
    vdev_log(dev, USBIP_LOG_DEBUG, "CBW tag %08" PRIx32 " op 0x%02x len %" PRIu32 "%s", st->tag,
             cdb[0], st->host_length, (cbw[12] & CBW_FLAG_IN) ? " in" : "");
    plan_data_phase(st, (cbw[12] & CBW_FLAG_IN) != 0);
}

/* An invalid CBW: stall both bulk endpoints until the host recovers. */
static void reject_cbw(vdev_t *dev, storage_t *st, uint32_t len)
{
    vdev_log(dev, USBIP_LOG_WARN, "invalid CBW (%" PRIu32 " bytes): stalling bulk endpoints", len);
    st->phase = BOT_EXPECT_CBW;
    vdev_halt_endpoint(dev, STORAGE_EP_IN);
    vdev_halt_endpoint(dev, STORAGE_EP_OUT);
}

static vdev_step_t receive_cbw(vdev_t *dev, storage_t *st, usbip_urb_t *urb)
{
    if (cbw_valid(urb->buffer, urb->length)) {
        start_command(dev, st, urb->buffer);
    } else {
        reject_cbw(dev, st, urb->length);
    }
    urb->actual_length = urb->length; /* the bytes arrived either way */
    return VDEV_STEP_DONE;
}

/* ---- data and status phases ---- */

static vdev_step_t send_data(storage_t *st, usbip_urb_t *urb)
{
    uint32_t n = vdev_min_u32(urb->length, st->device_length - st->moved);
    if (n) {
        scsi_data_in(&st->lun, &st->cmd, st->moved, urb->buffer, n);
    }
    st->moved += n;
    st->processed += n;
    urb->actual_length = n;
    /* A short completion (possibly empty) tells the host the data ended. */
    if (st->moved == st->host_length || n < urb->length) {
        st->phase = BOT_SEND_CSW;
    }
    return VDEV_STEP_DONE;
}

static vdev_step_t receive_data(storage_t *st, usbip_urb_t *urb)
{
    uint32_t n = vdev_min_u32(urb->length, st->host_length - st->moved);
    uint32_t used = 0;
    if (st->moved < st->device_length) {
        used = vdev_min_u32(n, st->device_length - st->moved);
        scsi_data_out(&st->lun, &st->cmd, st->moved, urb->buffer, used);
    }
    st->moved += n;
    st->processed += used;
    urb->actual_length = n;
    bool short_packet = urb->length % VDEV_BULK_MAX_PACKET != 0;
    if (st->moved == st->host_length || short_packet) {
        st->phase = BOT_SEND_CSW;
    }
    return VDEV_STEP_DONE;
}

static vdev_step_t send_csw(storage_t *st, usbip_urb_t *urb)
{
    uint8_t csw[CSW_SIZE];
    uint8_t status = st->phase_error    ? CSW_STATUS_PHASE_ERROR
                     : st->cmd.failed   ? CSW_STATUS_FAILED
                                        : CSW_STATUS_GOOD;
    put_le32(&csw[0], CSW_SIGNATURE);
    put_le32(&csw[4], st->tag);
    put_le32(&csw[8], st->host_length - st->processed); /* dCSWDataResidue */
    csw[12] = status;
    urb->actual_length = vdev_reply(urb->buffer, urb->length, csw, sizeof csw);
    st->phase = BOT_EXPECT_CBW;
    return VDEV_STEP_DONE;
}

static vdev_step_t storage_step(vdev_t *dev, vdev_xfer_t *x, const usbip_endpoint_info_t *ep)
{
    storage_t *st = dev->state;
    usbip_urb_t *urb = x->urb;
    bool in = urb->ep_address == STORAGE_EP_IN;
    switch (st->phase) {
    case BOT_EXPECT_CBW:
        return in ? VDEV_STEP_WAIT : receive_cbw(dev, st, urb);
    case BOT_DATA_IN:
        return in ? send_data(st, urb) : VDEV_STEP_WAIT;
    case BOT_DATA_OUT:
        return in ? VDEV_STEP_WAIT : receive_data(st, urb);
    case BOT_SEND_CSW:
        return in ? send_csw(st, urb) : VDEV_STEP_WAIT;
    }
    return VDEV_STEP_WAIT;
}

/* ---- control ---- */

static int storage_control(vdev_t *dev, const vdev_setup_t *s, uint8_t *data, uint32_t len,
                           uint32_t *actual)
{
    storage_t *st = dev->state;
    bool class_to_interface = (s->bmRequestType & USB_TYPE_MASK) == USB_TYPE_CLASS &&
                              (s->bmRequestType & USB_RECIP_MASK) == USB_RECIP_INTERFACE &&
                              s->wIndex == 0;
    if (!class_to_interface) {
        return VDEV_CONTROL_UNHANDLED;
    }
    switch (s->bRequest) {
    case BOT_GET_MAX_LUN: {
        const uint8_t max_lun = 0;
        *actual = vdev_reply(data, len, &max_lun, 1);
        return 0;
    }
    case BOT_RESET:
        /* Ready for a CBW; the host clears the bulk halts itself next. */
        vdev_log(dev, USBIP_LOG_INFO, "bulk-only mass storage reset");
        st->phase = BOT_EXPECT_CBW;
        return 0;
    default:
        return VDEV_CONTROL_UNHANDLED;
    }
}

/* ---- lifecycle ---- */

static void storage_reset(vdev_t *dev, vdev_reset_t why)
{
    storage_t *st = dev->state;
    st->phase = BOT_EXPECT_CBW;
    st->lun.sense_key = SCSI_SENSE_NO_SENSE;
    st->lun.asc = 0;
    st->lun.ascq = 0;
}

static usbip_err_t open_disk(storage_t *st, const vdev_config_t *cfg)
{
    if (cfg->storage_image) {
        return vdev_disk_open_file(&st->lun.disk, cfg->storage_image);
    }
    uint64_t size = cfg->storage_size ? cfg->storage_size : VDEV_STORAGE_DEFAULT_SIZE;
    return vdev_disk_open_ram(&st->lun.disk, size);
}

static usbip_err_t storage_create(vdev_t *dev, const vdev_config_t *cfg)
{
    storage_t *st = calloc(1, sizeof *st);
    if (!st) {
        return USBIP_ERR_NO_MEM;
    }
    st->lun.disk.fd = -1;
    dev->state = st;
    usbip_err_t err = open_disk(st, cfg);
    if (err != USBIP_OK) {
        return err; /* destroy() frees what was opened */
    }

    const vdev_identity_t id = {
        .vid = 0x1209, .pid = STORAGE_PID, .bcd_device = 0x0100,
        .manufacturer = VDEV_MANUFACTURER, .product = "Virtual Disk",
    };
    vdev_set_identity(dev, &id);
    st->lun.serial = dev->serial;

    vdev_config_desc_t c;
    vdev_desc_config_begin(&c, 1, 0, 100);
    vdev_desc_interface(&c, 0, 0, 0x08, 0x06, 0x50); /* mass storage, SCSI, bulk-only */
    vdev_desc_endpoint(&c, STORAGE_EP_IN, USBIP_XFER_BULK, VDEV_BULK_MAX_PACKET, 0);
    vdev_desc_endpoint(&c, STORAGE_EP_OUT, USBIP_XFER_BULK, VDEV_BULK_MAX_PACKET, 0);
    vdev_desc_config_end(&c);
    return vdev_add_configuration(dev, &c);
}

static void storage_destroy(vdev_t *dev)
{
    storage_t *st = dev->state;
    if (st) {
        vdev_disk_close(&st->lun.disk);
        free(st);
        dev->state = NULL;
    }
}

/* "64 MiB", "1 GiB", "720 KiB", "1536 bytes" */
static void format_size(uint64_t size, char *buf, size_t len)
{
    static const struct {
        uint64_t unit;
        const char *name;
    } units[] = {{1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (size >= units[i].unit && size % units[i].unit == 0) {
            snprintf(buf, len, "%" PRIu64 " %s", size / units[i].unit, units[i].name);
            return;
        }
    }
    snprintf(buf, len, "%" PRIu64 " bytes", size);
}

static void storage_describe(const vdev_t *dev, char *buf, size_t len)
{
    const storage_t *st = dev->state;
    char size[32];
    format_size(st->lun.disk.size, size, sizeof size);
    if (st->lun.disk.path) {
        snprintf(buf, len, "%s image %s", size, st->lun.disk.path);
    } else {
        snprintf(buf, len, "%s RAM", size);
    }
}

const vdev_kind_ops_t vdev_storage_kind = {
    .name = "storage",
    .create = storage_create,
    .destroy = storage_destroy,
    .reset = storage_reset,
    .control = storage_control,
    .step = storage_step,
    .describe = storage_describe,
};
