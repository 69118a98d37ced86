# http_fuzzer: libFuzzer (clang++-14 -fsanitize=fuzzer,address,undefined) over sm_http's
# sources and llhttp's, compiled outside the g++ toolchain of the main build. A 15 s run
# is a unit test; `cmake --build build --target fuzz-http-long` runs for SM_FUZZ_HTTP_SECONDS.
find_program(SM_CLANG clang-14)
find_program(SM_CLANGXX clang++-14)
if(NOT SM_CLANG OR NOT SM_CLANGXX OR NOT TARGET sm_llhttp)
  message(STATUS "clang-14 or llhttp missing: http_fuzzer is not built")
  return()
endif()

set(SM_FUZZ_HTTP_SECONDS 1800 CACHE STRING "Duration of the fuzz-http-long run, in seconds")

get_target_property(http_sources sm_http SOURCES)
get_target_property(llhttp_sources sm_llhttp SOURCES)
get_target_property(llhttp_include sm_llhttp INTERFACE_INCLUDE_DIRECTORIES)
get_target_property(http_include sm_http INTERFACE_INCLUDE_DIRECTORIES)
file(GLOB http_headers ${http_include}/http/*.h)

set(fuzz_dir ${CMAKE_BINARY_DIR}/fuzz)
set(fuzzer ${fuzz_dir}/http_fuzzer)
set(sanitize -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
             -fno-sanitize-recover=all)
set(llhttp_objects)
foreach(src ${llhttp_sources})
  get_filename_component(stem ${src} NAME_WE)
  list(APPEND llhttp_objects ${fuzz_dir}/llhttp_${stem}.o)
  add_custom_command(
    OUTPUT ${fuzz_dir}/llhttp_${stem}.o
    COMMAND ${CMAKE_COMMAND} -E make_directory ${fuzz_dir}
    COMMAND ${SM_CLANG} ${sanitize} -fsanitize=fuzzer-no-link -w -I${llhttp_include}
            -c ${src} -o ${fuzz_dir}/llhttp_${stem}.o
    DEPENDS ${src}
    COMMENT "clang-14 (fuzz): ${stem}.c"
    VERBATIM)
endforeach()
add_custom_command(
  OUTPUT ${fuzzer}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${fuzz_dir}/http_corpus
  COMMAND ${SM_CLANGXX} -std=c++20 ${sanitize} -fsanitize=fuzzer ${SM_WARNINGS}
          -I${http_include} -isystem ${llhttp_include}
          ${CMAKE_CURRENT_SOURCE_DIR}/http_fuzzer.cpp ${http_sources}
          ${http_include}/http/llhttp_request_parser.cpp ${llhttp_objects} -o ${fuzzer}
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/http_fuzzer.cpp ${http_sources} ${http_headers}
          ${http_include}/http/llhttp_request_parser.cpp ${llhttp_objects}
  COMMENT "clang++-14 libFuzzer build: http_fuzzer"
  VERBATIM)
add_custom_target(http_fuzzer ALL DEPENDS ${fuzzer})

set(fuzz_args -dict=${CMAKE_CURRENT_SOURCE_DIR}/http.dict -max_len=4096 -timeout=10
              -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${fuzz_dir}/
              ${fuzz_dir}/http_corpus ${CMAKE_CURRENT_SOURCE_DIR}/corpus)
add_test(NAME unit.http_fuzz_short COMMAND ${fuzzer} -max_total_time=15 ${fuzz_args})
set_tests_properties(unit.http_fuzz_short PROPERTIES LABELS unit TIMEOUT 120)

add_custom_target(fuzz-http-long
  COMMAND ${fuzzer} -max_total_time=${SM_FUZZ_HTTP_SECONDS} ${fuzz_args}
  DEPENDS http_fuzzer
  COMMENT "http_fuzzer for ${SM_FUZZ_HTTP_SECONDS} s (crashes land in ${fuzz_dir}/)"
  USES_TERMINAL
  VERBATIM)
