# The firmware's USB host backend (components/usb_host_mgr, its real source
# files) built for the host against a simulated ESP-IDF v5.5 USB Host
# Library and FreeRTOS on POSIX threads (tests/esp_sim), with virtual USB
# devices behind it and the network loop and client library in front.
if(TARGET usbip_netloop AND TARGET usbip_vdev AND TARGET usbip_client AND TARGET transfer_engine)
    find_package(Threads REQUIRED)
    set(ESP_SIM ${CMAKE_CURRENT_SOURCE_DIR}/esp_sim)
    set(USB_HOST_MGR ${PROJECT_SOURCE_DIR}/components/usb_host_mgr)
    add_library(esp_sim STATIC
        ${ESP_SIM}/src/freertos_posix.c ${ESP_SIM}/src/esp_shim.c ${ESP_SIM}/src/usb_host_sim.c)
    target_include_directories(esp_sim PUBLIC ${ESP_SIM}/include)
    target_link_libraries(esp_sim PUBLIC usbip_vdev usb_desc usbip_backend Threads::Threads)
    add_library(usb_host_mgr_sim STATIC
        ${USB_HOST_MGR}/src/usb_host_mgr.c ${USB_HOST_MGR}/src/usb_client_task.c
        ${USB_HOST_MGR}/src/usb_backend.c)
    target_include_directories(usb_host_mgr_sim PUBLIC ${USB_HOST_MGR}/include ${USB_HOST_MGR}/src)
    target_link_libraries(usb_host_mgr_sim PUBLIC esp_sim transfer_engine usb_desc usbip_server)
    usbip_add_unit_test(test_usb_host_mgr
        SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_usb_host_mgr.c
        LIBS usb_host_mgr_sim usbip_netloop usbip_client)
endif()
