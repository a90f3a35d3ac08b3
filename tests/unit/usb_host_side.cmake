# Unit tests of the portable half of the ESP32-P4 USB host backend:
# descriptor parsing (usb_desc) and the transfer engine against a simulated
# USB Host Library (transfer_engine).
if(TARGET usb_desc)
    usbip_add_unit_test(test_usb_desc
        SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_usb_desc.c LIBS usb_desc)
endif()
if(TARGET transfer_engine)
    usbip_add_unit_test(test_transfer_engine
        SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_transfer_engine.c LIBS transfer_engine)
endif()
