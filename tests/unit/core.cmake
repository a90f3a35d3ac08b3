# Unit tests of the USB/IP core: protocol codec, session engine (against the
# recording fake backend), device registry and server composition.
set(USBIP_FAKE_BACKEND_SRC ${CMAKE_CURRENT_SOURCE_DIR}/unit/fake_backend.c)

usbip_add_unit_test(test_proto
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_proto.c
    LIBS usbip_proto usbip_backend)
usbip_add_unit_test(test_session
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_session.c ${USBIP_FAKE_BACKEND_SRC}
    LIBS usbip_session)
usbip_add_unit_test(test_registry
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_registry.c
    LIBS device_registry)
usbip_add_unit_test(test_server
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_server.c ${USBIP_FAKE_BACKEND_SRC}
    LIBS usbip_server)
