# The dashboard API (components/webui) and its JSON helpers; PBKDF2 through
# OpenSSL, as the daemon uses it.
if(TARGET json_text)
    usbip_add_unit_test(test_json_text SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_json_text.c
                        LIBS json_text)
endif()
if(TARGET webui AND TARGET usbip_vdev AND TARGET usbip_web_host)
    usbip_add_unit_test(test_webui SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_webui.c
                        LIBS webui usbip_vdev usbip_web_host json_text)
endif()
