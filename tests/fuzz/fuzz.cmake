# libFuzzer targets (USBIP_FUZZ=ON, clang only). The core sources are compiled
# into each fuzzer so they carry -fsanitize=fuzzer coverage instrumentation;
# the component libraries are linked only for their include directories (the
# linker takes nothing from them that the fuzzer already defines).
#
# Each target is also a ctest test (label "fuzz") that runs 20 s on a
# build-dir corpus plus the checked-in seeds; see fuzz/README.md.
if(USBIP_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "USBIP_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
    endif()
    set(_usbip_core ${PROJECT_SOURCE_DIR}/components)
    set(_fuzz_dir ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)

    function(usbip_add_fuzzer name)
        cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
        add_executable(${name} ${ARG_SOURCES})
        target_link_libraries(${name} PRIVATE ${ARG_LIBS})
        # Sanitizers always: a fuzzer without them finds only crashes.
        target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined
                               -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
        target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
        set(work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/${name})
        add_test(NAME ${name}
                 COMMAND ${CMAKE_COMMAND}
                         -DFUZZER=$<TARGET_FILE:${name}>
                         -DWORK_CORPUS=${work}
                         -DSEED_CORPUS=${_fuzz_dir}/corpus/${name}
                         -DSECONDS=20
                         -P ${_fuzz_dir}/tools/run_fuzzer.cmake)
        set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 300)
    endfunction()

    usbip_add_fuzzer(fuzz_proto
        SOURCES ${_fuzz_dir}/fuzz_proto.c
                ${_usbip_core}/usbip_proto/src/usbip_proto.c
                ${_usbip_core}/usbip_backend/src/usbip_backend.c
                ${_usbip_core}/device_registry/src/device_registry.c
        LIBS device_registry usbip_backend usbip_proto usbip_common)

    usbip_add_fuzzer(fuzz_session
        SOURCES ${_fuzz_dir}/fuzz_session.c
                ${CMAKE_CURRENT_SOURCE_DIR}/unit/fake_backend.c
                ${_usbip_core}/usbip_session/src/usbip_session.c
                ${_usbip_core}/usbip_proto/src/usbip_proto.c
                ${_usbip_core}/usbip_backend/src/usbip_backend.c
                ${_usbip_core}/device_registry/src/device_registry.c
        LIBS usbip_session)
    target_include_directories(fuzz_session PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)

    usbip_add_fuzzer(fuzz_webui
        SOURCES ${_fuzz_dir}/fuzz_webui.c
                ${_usbip_core}/webui/src/webui.c ${_usbip_core}/webui/src/webui_auth.c
                ${_usbip_core}/webui/src/webui_views.c ${_usbip_core}/webui/src/webui_settings.c
                ${_usbip_core}/json_text/src/json_read.c
                ${_usbip_core}/json_text/src/json_write.c
        LIBS webui json_text usbip_server)
    target_include_directories(fuzz_webui PRIVATE ${_usbip_core}/webui/src)
endif()
