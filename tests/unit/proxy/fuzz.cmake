# connection_fuzzer: libFuzzer (clang++-14, -fsanitize=fuzzer,address,undefined) over whole
# connections: the session's sources (and what they use from sm_route, sm_http, sm_common)
# on the scripted Io, each compiled to its own object so an edit rebuilds one file. A 30 s
# run is a unit test; `cmake --build <dir> --target fuzz-connection-long` (part of
# `make fuzz`) runs for SM_FUZZ_CONNECTION_SECONDS.
find_program(SM_CLANGXX clang++-14)
if(NOT SM_CLANGXX)
  message(STATUS "clang++-14 missing: connection_fuzzer is not built")
  return()
endif()

set(SM_FUZZ_CONNECTION_SECONDS 3600 CACHE STRING
    "Duration of the fuzz-connection-long run, in seconds")

set(fuzz_dir ${CMAKE_BINARY_DIR}/fuzz)
set(proxy_dir ${CMAKE_SOURCE_DIR}/userspace/proxy)
set(srcs ${CMAKE_CURRENT_SOURCE_DIR}/connection_fuzzer.cpp
         ${CMAKE_CURRENT_SOURCE_DIR}/scripted_io.cpp)
foreach(f session request response local_reply original_dst sniff proxy_stats access_log
          shared control_status)
  list(APPEND srcs ${proxy_dir}/${f}.cpp)
endforeach()
foreach(lib sm_http sm_route sm_tracing sm_common)
  get_target_property(lib_srcs ${lib} SOURCES)
  get_target_property(lib_dir ${lib} SOURCE_DIR)
  foreach(src ${lib_srcs})
    if(NOT IS_ABSOLUTE ${src})
      set(src ${lib_dir}/${src})
    endif()
    list(APPEND srcs ${src})
  endforeach()
endforeach()

set(sanitize -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
             -fno-sanitize-recover=all)
set(includes -I${CMAKE_SOURCE_DIR}/userspace -I${CMAKE_SOURCE_DIR}/common
             -I${CMAKE_SOURCE_DIR}/bpf -I${CMAKE_CURRENT_SOURCE_DIR})
set(objs)
foreach(src ${srcs})
  get_filename_component(stem ${src} NAME_WE)
  get_filename_component(parent ${src} DIRECTORY)
  get_filename_component(parent ${parent} NAME)
  set(obj ${fuzz_dir}/connection/${parent}_${stem}.o)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${fuzz_dir}/connection
    COMMAND ${SM_CLANGXX} -std=c++20 ${sanitize} -fsanitize=fuzzer-no-link ${SM_WARNINGS}
            ${includes} -DSM_PROXY_FIXTURES="${CMAKE_CURRENT_SOURCE_DIR}/fixtures"
            -MD -MF ${obj}.d -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${obj}.d
    COMMENT "clang++-14 (fuzz): ${parent}/${stem}.cpp"
    VERBATIM)
  list(APPEND objs ${obj})
endforeach()
set(fuzzer ${fuzz_dir}/connection_fuzzer)
add_custom_command(
  OUTPUT ${fuzzer}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${fuzz_dir}/connection_corpus
  COMMAND ${SM_CLANGXX} ${sanitize} -fsanitize=fuzzer ${objs} -lpthread -o ${fuzzer}
  DEPENDS ${objs}
  COMMENT "clang++-14 libFuzzer link: connection_fuzzer"
  VERBATIM)
add_custom_target(connection_fuzzer ALL DEPENDS ${fuzzer})

set(fuzz_args -dict=${CMAKE_SOURCE_DIR}/tests/unit/http/http.dict -max_len=16384 -timeout=10
              -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${fuzz_dir}/connection-
              ${fuzz_dir}/connection_corpus ${CMAKE_CURRENT_SOURCE_DIR}/connection_corpus)
add_test(NAME unit.connection_fuzz_short COMMAND ${fuzzer} -max_total_time=30 ${fuzz_args})
set_tests_properties(unit.connection_fuzz_short PROPERTIES LABELS unit TIMEOUT 120)

add_custom_target(fuzz-connection-long
  COMMAND ${fuzzer} -max_total_time=${SM_FUZZ_CONNECTION_SECONDS} ${fuzz_args}
  DEPENDS connection_fuzzer
  COMMENT "connection_fuzzer for ${SM_FUZZ_CONNECTION_SECONDS} s (crashes land in ${fuzz_dir}/)"
  USES_TERMINAL
  VERBATIM)
