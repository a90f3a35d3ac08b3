# Integration tests: the real usbip-server daemon over TCP on loopback, driven
# with the client library. Each test program gets the daemon's path as argv[1]
# (and the usbip-client tool's as argv[2]) and starts its own daemon instances
# (port 0, private temporary directory), so the tests can run in parallel.
if(TARGET usbip-server AND TARGET usbip_client)
    add_library(integ_support STATIC
        ${CMAKE_CURRENT_SOURCE_DIR}/integration/daemon_harness.c
        ${CMAKE_CURRENT_SOURCE_DIR}/integration/integ_util.c)
    target_include_directories(integ_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/integration)
    target_link_libraries(integ_support PUBLIC usbip_client)

    function(usbip_add_integration_test name)
        add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/integration/${name}.c)
        target_link_libraries(${name} PRIVATE integ_support)
        add_dependencies(${name} usbip-server usbip-client)
        add_test(NAME ${name}
                 COMMAND ${name} $<TARGET_FILE:usbip-server> $<TARGET_FILE:usbip-client>)
        set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT 180)
    endfunction()

    foreach(test
            integ_devlist_import   # 1: DEVLIST records, IMPORT, busy, release
            integ_control          # 2: descriptors of every device, vendor requests
            integ_bulk             # 3: source/sink, loopback, 1 MiB URBs, serial echo
            integ_interrupt        # 4: zero interrupt, keyboard text
            integ_iso              # 5: iso IN/OUT on alt 1, packing on the wire
            integ_storage          # 6: BOT/SCSI on RAM disk and image file
            integ_unlink           # 7: unlink pending / completed / racing URBs
            integ_serial_line      # 8: line coding and control lines
            integ_bad_input        # 9: malformed clients vs a working session
            integ_stuck_client     # 10: a client that stops reading
            integ_hotplug          # 11: unplug/plug through the control socket
            integ_access           # 12: access control, live re-check, persistence
            integ_killed_client    # 13: clients killed mid-transfer
            integ_shutdown         # 14: SIGTERM with sessions active
            integ_cli)             # command line, start-up failures, ctl errors
        if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/${test}.c)
            usbip_add_integration_test(${test})
        endif()
    endforeach()
endif()
