# VM tests (label vm): the Linux kernel's own USB/IP client (vhci-hcd) and class
# drivers in a Debian guest under qemu, against usbip-server inside the guest.
# Linux only; needs Debian's packages (tests/vm/guest-build.sh installs them as root).
if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux" OR NOT USBIP_VM_TESTS)
    return()
endif()

# vmtool runs in the guest: static, without sanitizers (their runtime is not there).
add_executable(vmtool ${CMAKE_CURRENT_SOURCE_DIR}/vm/vmtool.c)
set_property(TARGET vmtool PROPERTY COMPILE_OPTIONS -O2 -Wall -Wextra)
set_property(TARGET vmtool PROPERTY LINK_OPTIONS -static)

set(vm_work ${CMAKE_CURRENT_BINARY_DIR}/vm)
add_test(NAME vm_guest_build
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/vm/guest-build.sh ${vm_work})
set_tests_properties(vm_guest_build PROPERTIES LABELS vm TIMEOUT 600
                     FIXTURES_SETUP vm_guest RESOURCE_LOCK qemu)

foreach(vm_test storage serial keyboard zero lifecycle)
    add_test(NAME vm_${vm_test}
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/vm/run.sh ${vm_work} ${vm_test}
                     $<TARGET_FILE:usbip-server> $<TARGET_FILE:vmtool>)
    # One VM at a time: each uses both cores under TCG.
    set_tests_properties(vm_${vm_test} PROPERTIES LABELS vm TIMEOUT 480
                         FIXTURES_REQUIRED vm_guest RESOURCE_LOCK qemu)
endforeach()
