# Run one libFuzzer target for SECONDS seconds: new inputs go to WORK_CORPUS
# (in the build tree), the checked-in SEED_CORPUS is only read.
#   cmake -DFUZZER=... -DWORK_CORPUS=... -DSEED_CORPUS=... -DSECONDS=20 -P run_fuzzer.cmake
foreach(var FUZZER WORK_CORPUS SEED_CORPUS SECONDS)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "run_fuzzer.cmake: ${var} is not set")
    endif()
endforeach()
file(MAKE_DIRECTORY ${WORK_CORPUS})
set(artifacts ${WORK_CORPUS}-artifacts)
file(MAKE_DIRECTORY ${artifacts})
execute_process(
    COMMAND ${FUZZER} -max_total_time=${SECONDS} -rss_limit_mb=2048 -timeout=10
            -print_final_stats=1 -artifact_prefix=${artifacts}/
            ${WORK_CORPUS} ${SEED_CORPUS}
    RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); crash inputs are in ${artifacts}")
endif()
