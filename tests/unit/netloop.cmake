# The shared network loop (components/usbip_netloop) over loopback TCP, with a
# virtual Gadget Zero behind it and the client library in front.
if(TARGET usbip_netloop AND TARGET usbip_vdev AND TARGET usbip_client)
    find_package(Threads REQUIRED)
    usbip_add_unit_test(test_netloop SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_netloop.c
                        LIBS usbip_netloop usbip_vdev usbip_client Threads::Threads)
endif()
