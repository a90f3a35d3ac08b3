# Unit tests of the portable syslog component (RFC 5424 / RFC 6587 frames,
# ESP console line parsing, per-connection send queue).
if(TARGET syslog)
    usbip_add_unit_test(test_syslog
        SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_syslog.c LIBS syslog)
endif()
