/*
 * te_status: library transfer status -> Linux errno (table in te_status.h).
 */
#include "te_status.h"

int32_t te_status_to_errno(te_usb_status_t status)
{
    switch (status) {
    case TE_USB_COMPLETED: return 0;
    case TE_USB_ERROR: return USBIP_EPROTO;
    case TE_USB_TIMED_OUT: return USBIP_ETIMEDOUT;
    case TE_USB_CANCELED: return USBIP_ECONNRESET;
    case TE_USB_STALL: return USBIP_EPIPE;
    case TE_USB_OVERFLOW: return USBIP_EOVERFLOW;
    case TE_USB_SKIPPED: return USBIP_EXDEV;
    case TE_USB_NO_DEVICE: return USBIP_ENODEV;
    }
    return USBIP_EPROTO;
}

int32_t te_iso_packet_errno(te_usb_status_t status)
{
    return te_status_to_errno(status);
}

int te_status_halts_pipe(te_usb_status_t status)
{
    return status == TE_USB_STALL || status == TE_USB_ERROR || status == TE_USB_OVERFLOW ||
           status == TE_USB_TIMED_OUT;
}

const char *te_usb_status_name(te_usb_status_t status)
{
    switch (status) {
    case TE_USB_COMPLETED: return "COMPLETED";
    case TE_USB_ERROR: return "ERROR";
    case TE_USB_TIMED_OUT: return "TIMED_OUT";
    case TE_USB_CANCELED: return "CANCELED";
    case TE_USB_STALL: return "STALL";
    case TE_USB_OVERFLOW: return "OVERFLOW";
    case TE_USB_SKIPPED: return "SKIPPED";
    case TE_USB_NO_DEVICE: return "NO_DEVICE";
    }
    return "UNKNOWN";
}
