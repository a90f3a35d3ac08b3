/*
 * usbip_stats: traffic counters kept per device and per session, read by the
 * dashboard and /metrics. "in" is device-to-client, "out" client-to-device.
 */
#pragma once

#include <stdint.h>

typedef struct {
    uint64_t urbs_submitted;
    uint64_t urbs_completed; /* RET_SUBMIT sent */
    uint64_t urbs_unlinked;  /* answered by RET_UNLINK(-ECONNRESET) */
    uint64_t urbs_failed;    /* completed with a nonzero status */
    uint64_t bytes_in;       /* device -> client payload */
    uint64_t bytes_out;      /* client -> device payload */
    uint64_t errors;         /* protocol errors and refused requests */
} usbip_stats_t;
