# The dashboard in headless Chromium against the real daemon (label "web").
# Needs Node.js, the page bundle and playwright-core (tools/build-web.sh) and
# Debian's chromium; tools/test.sh installs them.
find_program(NODE_EXECUTABLE node)
if(NODE_EXECUTABLE AND EXISTS ${PROJECT_SOURCE_DIR}/web/dist/index.html.gz
   AND EXISTS ${PROJECT_SOURCE_DIR}/web/node_modules/playwright-core AND TARGET usbip-client)
    add_test(NAME web_dashboard
             COMMAND ${CMAKE_COMMAND} -E env USBIP_SERVER=$<TARGET_FILE:usbip-server>
                     USBIP_CLIENT=$<TARGET_FILE:usbip-client> OUT_DIR=${CMAKE_CURRENT_BINARY_DIR}
                     ${NODE_EXECUTABLE} --test-reporter=spec --test
                     ${CMAKE_CURRENT_SOURCE_DIR}/web/dashboard_e2e.mjs)
    set_tests_properties(web_dashboard PROPERTIES LABELS web TIMEOUT 300)
    # The page's own behaviour (field errors, 429 countdown, polling fallback,
    # phone layout) against web/dev-server.mjs, the mock of docs/api.md.
    add_test(NAME web_page_smoke
             COMMAND ${NODE_EXECUTABLE} --test-reporter=spec --test tests/smoke.mjs
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/web)
    set_tests_properties(web_page_smoke PROPERTIES LABELS web TIMEOUT 300)
else()
    message(STATUS "web_dashboard test skipped: needs node, web/dist (tools/build-web.sh) "
                   "and playwright-core")
endif()
