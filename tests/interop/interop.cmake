# Interop tests: real Debian peers against usbip-server.
#  - interop_usbip_list: `usbip list -r` (package usbip) parses the device list;
#  - interop_tshark: a whole session captured on lo and decoded by tshark's
#    USB/IP dissector (package tshark): no malformed packet, no expert error,
#    and exactly the PDUs session_traffic says it exchanged;
#  - interop_prometheus: /metrics parsed by the Prometheus Python client's
#    text parser (package python3-prometheus-client).
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

    # The dashboard's /metrics read by the official Prometheus client parser,
    # with Debian's python3 (where python3-prometheus-client installs), not
    # whatever python3 comes first on PATH.
    find_program(DEBIAN_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
    if(NOT DEBIAN_PYTHON3)
        find_program(DEBIAN_PYTHON3 python3 REQUIRED)
    endif()
    add_test(NAME interop_prometheus
             COMMAND ${DEBIAN_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/interop/prometheus_metrics.py
                     $<TARGET_FILE:usbip-server> $<TARGET_FILE:usbip-client>)
    set_tests_properties(interop_prometheus PROPERTIES LABELS interop TIMEOUT 120)
endif()
