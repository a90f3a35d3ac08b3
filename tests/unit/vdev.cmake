# Virtual USB devices (host/vdev): driven directly through their backend ops.
if(TARGET usbip_vdev)
    usbip_add_unit_test(test_vdev SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_vdev.c
                        LIBS usbip_vdev)
endif()
