# Installs the build tree into a scratch prefix, then builds and runs the consumer program twice
# (once through find_package(uttm), once through pkg-config) and the examples (their own CMake
# project against the package, and one by hand with pkg-config). Any failure fails the test.
cmake_minimum_required(VERSION 3.25)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(LAST_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

run(${CMAKE_COMMAND} --install ${UTTM_BUILD_DIR} --prefix ${prefix})
foreach(f include/uttm/status.h include/uttm/units.h lib/pkgconfig/uttm.pc lib/cmake/uttm/uttmConfig.cmake)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install is missing ${f}")
  endif()
endforeach()

# Only the public API is installed: the internal headers (allocators, typed list views) are not,
# and every installed header compiles on its own, so none reaches for an uninstalled one.
foreach(f buddy_allocator.h range_allocator.h intrusive_list.h bo_internal.h check.h)
  if(EXISTS ${prefix}/include/uttm/${f})
    message(FATAL_ERROR "install has the internal header ${f}")
  endif()
endforeach()
file(GLOB installed_headers RELATIVE ${prefix}/include/uttm ${prefix}/include/uttm/*.h)
list(LENGTH installed_headers n_headers)
if(n_headers LESS 40)
  message(FATAL_ERROR "install has only ${n_headers} headers")
endif()
foreach(h IN LISTS installed_headers)
  file(WRITE ${WORK_DIR}/alone.cc "#include \"uttm/${h}\"\nint main() { return 0; }\n")
  run(${CXX} -std=c++20 -fsyntax-only -I${prefix}/include ${WORK_DIR}/alone.cc)
endforeach()

# 1. CMake package.
set(consumer_src ${UTTM_SOURCE_DIR}/tests/packaging/consumer)
run(${CMAKE_COMMAND} -S ${consumer_src} -B ${WORK_DIR}/cmake-build -G Ninja
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/cmake-build)
run(${WORK_DIR}/cmake-build/uttm_consumer)
if(NOT LAST_OUTPUT MATCHES "uttm consumer ok")
  message(FATAL_ERROR "find_package consumer printed: ${LAST_OUTPUT}")
endif()

# 2. pkg-config.
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
execute_process(COMMAND pkg-config --cflags --libs uttm RESULT_VARIABLE rc OUTPUT_VARIABLE flags
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not know uttm")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${CXX} ${consumer_src}/consumer.cc -o ${WORK_DIR}/pkgconfig_consumer ${flags})
run(${WORK_DIR}/pkgconfig_consumer)
if(NOT LAST_OUTPUT MATCHES "uttm consumer ok")
  message(FATAL_ERROR "pkg-config consumer printed: ${LAST_OUTPUT}")
endif()

# 3. The examples, as a user builds them: their own CMake project against the package, and one of
# them by hand with pkg-config. Each must run and say ok.
run(${CMAKE_COMMAND} -S ${UTTM_SOURCE_DIR}/examples -B ${WORK_DIR}/examples-build -G Ninja
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/examples-build)
foreach(example tiered_cache sim_gpu_textures)
  run(${WORK_DIR}/examples-build/uttm_example_${example})
  if(NOT LAST_OUTPUT MATCHES "${example} ok")
    message(FATAL_ERROR "example ${example} printed: ${LAST_OUTPUT}")
  endif()
endforeach()
run(${CXX} -std=c++20 ${UTTM_SOURCE_DIR}/examples/tiered_cache.cc -o ${WORK_DIR}/tiered_cache_pc
    ${flags})
run(${WORK_DIR}/tiered_cache_pc)
if(NOT LAST_OUTPUT MATCHES "tiered_cache ok")
  message(FATAL_ERROR "pkg-config example printed: ${LAST_OUTPUT}")
endif()
message(STATUS "packaging ok: find_package and pkg-config consumers and the examples built and ran")
