# sm_test(<name> LABEL unit|kernel|e2e SOURCES ... [LIBS ...] [TIMEOUT s])
# One GoogleTest binary per tested concern. Every TEST becomes a CTest test carrying the
# tier label; a test that calls GTEST_SKIP() is reported by CTest as skipped, not passed.
include(GoogleTest)

function(sm_test name)
  cmake_parse_arguments(T "" "LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_LABEL MATCHES "^(unit|kernel|e2e)$")
    message(FATAL_ERROR "sm_test(${name}): LABEL must be unit, kernel or e2e")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_compile_options(${name} PRIVATE ${SM_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
  gtest_discover_tests(${name}
    TEST_PREFIX "${T_LABEL}."
    DISCOVERY_TIMEOUT 30
    PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT}
               SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
               ENVIRONMENT "SM_BUILD_DIR=${CMAKE_BINARY_DIR}")
endfunction()

# Adds every subfolder of the current folder that has a CMakeLists.txt (test tiers and
# benchmarks: one subfolder per component; new ones are picked up at configure time).
function(sm_add_component_subdirs)
  file(GLOB dirs CONFIGURE_DEPENDS LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/*)
  foreach(dir ${dirs})
    if(IS_DIRECTORY ${dir} AND EXISTS ${dir}/CMakeLists.txt)
      add_subdirectory(${dir})
    endif()
  endforeach()
endfunction()
