# The one rule for BPF objects: clang -target bpf -g -O2 against a vmlinux.h generated
# from the running kernel's BTF, then `bpftool gen skeleton`. Header dependencies are
# tracked through clang's depfile, so editing the ABI header rebuilds every object.

find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(SM_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
set(SM_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "kernel BTF used to generate vmlinux.h")
set(SM_VMLINUX_H ${SM_BPF_OUT}/vmlinux.h)
file(MAKE_DIRECTORY ${SM_BPF_OUT})

if(NOT EXISTS ${SM_VMLINUX_BTF})
  message(FATAL_ERROR "${SM_VMLINUX_BTF} is missing: sockmesh needs a kernel built with "
                      "CONFIG_DEBUG_INFO_BTF (set SM_VMLINUX_BTF to a BTF file to build elsewhere)")
endif()

add_custom_command(
  OUTPUT ${SM_VMLINUX_H}
  COMMAND ${BPFTOOL} btf dump file ${SM_VMLINUX_BTF} format c > ${SM_VMLINUX_H}.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${SM_VMLINUX_H}.tmp ${SM_VMLINUX_H}
  COMMENT "Generating vmlinux.h from ${SM_VMLINUX_BTF}"
  VERBATIM)
add_custom_target(sm_vmlinux_h DEPENDS ${SM_VMLINUX_H})

execute_process(COMMAND uname -m OUTPUT_VARIABLE SM_UNAME_M OUTPUT_STRIP_TRAILING_WHITESPACE)
string(REPLACE "x86_64" "x86" SM_BPF_ARCH "${SM_UNAME_M}")
string(REPLACE "aarch64" "arm64" SM_BPF_ARCH "${SM_BPF_ARCH}")

# bpf_object(<name> <source>): builds <name>.bpf.o and <name>.skel.h and an INTERFACE
# library sm_bpf_<name> that C++ targets link to get the skeleton header on their path.
function(bpf_object name src)
  set(obj ${SM_BPF_OUT}/${name}.bpf.o)
  set(skel ${SM_BPF_OUT}/${name}.skel.h)
  set(dep ${SM_BPF_OUT}/${name}.bpf.d)
  get_filename_component(abs_src ${src} ABSOLUTE)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -target bpf -g -O2 -Wall -Werror -D__TARGET_ARCH_${SM_BPF_ARCH}
            -I${SM_BPF_OUT} -I${CMAKE_SOURCE_DIR}/bpf -MD -MF ${dep} -c ${abs_src} -o ${obj}
    DEPENDS ${abs_src} ${SM_VMLINUX_H}
    DEPFILE ${dep}
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(sm_bpf_${name}_gen DEPENDS ${skel})
  add_library(sm_bpf_${name} INTERFACE)
  add_dependencies(sm_bpf_${name} sm_bpf_${name}_gen)
  target_include_directories(sm_bpf_${name} INTERFACE ${SM_BPF_OUT} ${CMAKE_SOURCE_DIR}/bpf)
  target_link_libraries(sm_bpf_${name} INTERFACE PkgConfig::LIBBPF)
endfunction()
