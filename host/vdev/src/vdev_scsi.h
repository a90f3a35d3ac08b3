/*
 * vdev_scsi: the SCSI block commands a USB flash drive answers (SPC/SBC
 * subset), over a vdev_disk_t with 512-byte blocks.
 *
 * Transport independent: scsi_execute() decodes a CDB and says what data
 * phase the command wants; the transport (Bulk-Only, vdev_storage.c) then
 * moves that data in pieces of any size with scsi_data_in()/scsi_data_out().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "vdev_disk.h"

#define SCSI_REPLY_MAX 64u

/* Sense keys and additional sense codes used here (SPC-4 tables). */
#define SCSI_SENSE_NO_SENSE        0x00u
#define SCSI_SENSE_MEDIUM_ERROR    0x03u
#define SCSI_SENSE_ILLEGAL_REQUEST 0x05u

#define SCSI_ASC_INVALID_OPCODE       0x20u
#define SCSI_ASC_LBA_OUT_OF_RANGE     0x21u
#define SCSI_ASC_INVALID_FIELD_IN_CDB 0x24u
#define SCSI_ASC_LUN_NOT_SUPPORTED    0x25u
#define SCSI_ASC_WRITE_ERROR          0x0cu
#define SCSI_ASC_UNRECOVERED_READ     0x11u
#define SCSI_ASC_SAVING_NOT_SUPPORTED 0x39u

typedef enum {
    SCSI_DATA_NONE,
    SCSI_DATA_IN,  /* device to host */
    SCSI_DATA_OUT, /* host to device */
} scsi_data_dir_t;

typedef struct {
    vdev_disk_t disk;
    const char *serial; /* unit serial number (VPD page 0x80) */
    uint8_t sense_key, asc, ascq;
} scsi_lun_t;

/* One command in progress. */
typedef struct {
    uint8_t opcode;
    scsi_data_dir_t dir;
    uint32_t length;     /* bytes of data the command moves */
    bool failed;         /* CHECK CONDITION: sense data is set */
    bool disk_transfer;  /* data maps to the disk from disk_offset; else reply[] */
    uint64_t disk_offset;
    uint8_t reply[SCSI_REPLY_MAX];
} scsi_command_t;

/* Decode and start a command. Commands without data complete here. */
void scsi_execute(scsi_lun_t *lun, const uint8_t cdb[16], scsi_command_t *cmd);
/* Fail cmd with the given sense before or during its data phase. */
void scsi_fail(scsi_lun_t *lun, scsi_command_t *cmd, uint8_t key, uint8_t asc, uint8_t ascq);
/* Produce data-in bytes [offset, offset + len) of the command. */
void scsi_data_in(scsi_lun_t *lun, scsi_command_t *cmd, uint32_t offset, uint8_t *dst,
                  uint32_t len);
/* Consume data-out bytes [offset, offset + len) of the command. */
void scsi_data_out(scsi_lun_t *lun, scsi_command_t *cmd, uint32_t offset, const uint8_t *src,
                   uint32_t len);
