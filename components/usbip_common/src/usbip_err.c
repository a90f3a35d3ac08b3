#include "usbip_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *usbip_err_name(usbip_err_t err)
{
    switch (err) {
    case USBIP_OK: return "USBIP_OK";
    case USBIP_ERR_INVALID_ARG: return "USBIP_ERR_INVALID_ARG";
    case USBIP_ERR_INVALID_SIZE: return "USBIP_ERR_INVALID_SIZE";
    case USBIP_ERR_NEED_MORE: return "USBIP_ERR_NEED_MORE";
    case USBIP_ERR_NO_MEM: return "USBIP_ERR_NO_MEM";
    case USBIP_ERR_WOULD_BLOCK: return "USBIP_ERR_WOULD_BLOCK";
    case USBIP_ERR_NOT_FOUND: return "USBIP_ERR_NOT_FOUND";
    case USBIP_ERR_BUSY: return "USBIP_ERR_BUSY";
    case USBIP_ERR_INVALID_STATE: return "USBIP_ERR_INVALID_STATE";
    case USBIP_ERR_NOT_SUPPORTED: return "USBIP_ERR_NOT_SUPPORTED";
    case USBIP_ERR_DENIED: return "USBIP_ERR_DENIED";
    case USBIP_ERR_IO: return "USBIP_ERR_IO";
    case USBIP_ERR_PROTOCOL: return "USBIP_ERR_PROTOCOL";
    }
    return "USBIP_ERR_?";
}

void usbip_errbuf_printf(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}
