# Unit tests of the support components: event log, access control, settings
# (through the host file store).
usbip_add_unit_test(test_event_log
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_event_log.c LIBS event_log)
usbip_add_unit_test(test_access_control
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_access_control.c LIBS access_control)
usbip_add_unit_test(test_settings
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_settings.c LIBS settings_store usbip_file_store)
