/*
 * usbip_err: status codes shared by every component of the USB/IP core.
 *
 * Functions that can fail return a usbip_err_t (0 = success), in the style of
 * ESP-IDF's esp_err_t, so the same core reads naturally on both ports.
 */
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    USBIP_OK = 0,
    USBIP_ERR_INVALID_ARG,   /* a value is out of range or malformed */
    USBIP_ERR_INVALID_SIZE,  /* a length is out of range */
    USBIP_ERR_NEED_MORE,     /* not enough input bytes yet */
    USBIP_ERR_NO_MEM,        /* a pool or buffer is exhausted */
    USBIP_ERR_WOULD_BLOCK,   /* temporarily out of resources: retry later */
    USBIP_ERR_NOT_FOUND,     /* unknown device, busid, endpoint or key */
    USBIP_ERR_BUSY,          /* resource held by someone else */
    USBIP_ERR_INVALID_STATE, /* call not allowed in the current state */
    USBIP_ERR_NOT_SUPPORTED, /* feature absent on this device or port */
    USBIP_ERR_DENIED,        /* refused by access control */
    USBIP_ERR_IO,            /* I/O with a device, file or store failed */
    USBIP_ERR_PROTOCOL,      /* peer violated the USB/IP protocol */
} usbip_err_t;

/* Short constant name of a status, e.g. "USBIP_ERR_NO_MEM". */
const char *usbip_err_name(usbip_err_t err);

/* printf into a caller's error-message buffer; does nothing if errbuf is
 * NULL or errlen is 0. The way components explain a refusal. */
void usbip_errbuf_printf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
