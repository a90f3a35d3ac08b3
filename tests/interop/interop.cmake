# Interop tests: real Debian peers against usbip-server.
#  - interop_usbip_list: `usbip list -r` (package usbip) parses the device list;
#  - interop_tshark: a whole session captured on lo and decoded by tshark's
#    USB/IP dissector (package tshark): no malformed packet, no expert error,
#    and exactly the PDUs session_traffic says it exchanged.
# Shell drivers (bash); the capture needs root, otherwise the test is skipped
# (exit 77).
if(TARGET usbip-server AND TARGET usbip_client)
    add_executable(session_traffic ${CMAKE_CURRENT_SOURCE_DIR}/interop/session_traffic.c)
    target_link_libraries(session_traffic PRIVATE usbip_client)

    add_test(NAME interop_usbip_list
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/interop/usbip_list.sh
                     $<TARGET_FILE:usbip-server>)
    set_tests_properties(interop_usbip_list PROPERTIES LABELS interop TIMEOUT 120)

    add_test(NAME interop_tshark
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/interop/tshark_session.sh
                     $<TARGET_FILE:usbip-server> $<TARGET_FILE:session_traffic>)
    set_tests_properties(interop_tshark PROPERTIES LABELS interop TIMEOUT 180
                         SKIP_RETURN_CODE 77)
    add_dependencies(session_traffic usbip-server)
endif()
