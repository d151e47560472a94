# Helpers shared by every CMakeLists.txt of uttm.

# Warnings are errors everywhere (UTTM_WERROR); clang also checks the thread-safety annotations.
function(uttm_apply_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(UTTM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety -Wthread-safety-beta)
  endif()
endfunction()

# uttm_layer(NAME name HEADERS public headers SOURCES sources): one subsystem of the core library.
# It builds as an object library that sees only its own public headers (HEADERS, in
# include/uttm/) and internal folders plus those of the layers declared before it (the order of
# UTTM_SUBSYSTEMS in src/CMakeLists.txt): each layer gets an include tree of symbolic links to
# exactly those. An include in the wrong direction does not find its header and fails to build.
# The objects go into the `uttm` library.
function(uttm_layer)
  cmake_parse_arguments(L "" "NAME" "HEADERS;SOURCES" ${ARGN})
  get_property(headers GLOBAL PROPERTY UTTM_LAYER_HEADERS)
  get_property(layers GLOBAL PROPERTY UTTM_LAYERS)
  list(APPEND headers ${L_HEADERS})
  list(APPEND layers ${L_NAME})
  set_property(GLOBAL PROPERTY UTTM_LAYER_HEADERS "${headers}")
  set_property(GLOBAL PROPERTY UTTM_LAYERS "${layers}")
  set(root ${PROJECT_BINARY_DIR}/layers/${L_NAME})
  file(REMOVE_RECURSE ${root})
  file(MAKE_DIRECTORY ${root}/include/uttm ${root}/src)
  foreach(h IN LISTS headers)
    if(NOT EXISTS ${PROJECT_SOURCE_DIR}/include/uttm/${h})
      message(FATAL_ERROR "uttm_layer(${L_NAME}): include/uttm/${h} does not exist")
    endif()
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/uttm/${h} ${root}/include/uttm/${h} SYMBOLIC)
  endforeach()
  foreach(l IN LISTS layers)
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${l} ${root}/src/${l} SYMBOLIC)
  endforeach()
  add_library(uttm_${L_NAME} OBJECT ${L_SOURCES})
  target_include_directories(uttm_${L_NAME} PRIVATE ${root}/include ${root}/src)
  target_compile_definitions(uttm_${L_NAME} PRIVATE UTTM_COMPILE_LIBRARY)
  if(BUILD_SHARED_LIBS)
    target_compile_definitions(uttm_${L_NAME} PRIVATE UTTM_SHARED_LIBRARY)
  endif()
  target_link_libraries(uttm_${L_NAME} PRIVATE Threads::Threads)
  uttm_apply_warnings(uttm_${L_NAME})
  target_sources(uttm PRIVATE $<TARGET_OBJECTS:uttm_${L_NAME}>)
endfunction()

# uttm_optional_library(NAME name HEADERS public headers SOURCES sources): a library beside the
# core (uttm::name, target uttm_name) with dependencies of its own: an optional store. It sees
# the public headers and the internal folders of every layer, and claims its public headers (so
# they are installed with it).
function(uttm_optional_library)
  cmake_parse_arguments(L "" "NAME" "HEADERS;SOURCES" ${ARGN})
  get_property(headers GLOBAL PROPERTY UTTM_LAYER_HEADERS)
  list(APPEND headers ${L_HEADERS})
  set_property(GLOBAL PROPERTY UTTM_LAYER_HEADERS "${headers}")
  add_library(uttm_${L_NAME} STATIC ${L_SOURCES})
  add_library(uttm::${L_NAME} ALIAS uttm_${L_NAME})
  set_target_properties(uttm_${L_NAME} PROPERTIES EXPORT_NAME ${L_NAME})
  target_include_directories(uttm_${L_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_definitions(uttm_${L_NAME} PRIVATE UTTM_COMPILE_LIBRARY)
  target_link_libraries(uttm_${L_NAME} PUBLIC uttm)
  uttm_apply_warnings(uttm_${L_NAME})
  set_property(GLOBAL APPEND PROPERTY UTTM_OPTIONAL_LIBRARIES uttm_${L_NAME})
endfunction()

# Sanitizers apply to every target of the build, so they are set globally.
if(UTTM_SANITIZE)
  add_compile_options(-fsanitize=${UTTM_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${UTTM_SANITIZE})
endif()

# uttm_cc_test(NAME name SRCS a.cc b.cc LABELS pages [DEPS more] [TIMEOUT seconds])
# One GoogleTest executable; each TEST becomes its own CTest test carrying LABELS.
function(uttm_cc_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SRCS;LABELS;DEPS" ${ARGN})
  if(NOT UTTM_BUILD_TESTS)
    return()
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SRCS})
  target_link_libraries(${T_NAME} PRIVATE uttm::uttm GTest::gtest GTest::gmock GTest::gtest_main ${T_DEPS})
  if(TARGET uttm_testing)
    target_link_libraries(${T_NAME} PRIVATE uttm_testing)
  endif()
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  uttm_apply_warnings(${T_NAME})
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 120
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()

# uttm_cc_bench(NAME name SRCS a.cc [DEPS more]): a Google Benchmark executable in bench/.
function(uttm_cc_bench)
  cmake_parse_arguments(B "" "NAME" "SRCS;DEPS" ${ARGN})
  find_package(benchmark REQUIRED)
  add_executable(${B_NAME} ${B_SRCS})
  target_link_libraries(${B_NAME} PRIVATE uttm::uttm benchmark::benchmark ${B_DEPS})
  if(TARGET uttm_testing)
    target_link_libraries(${B_NAME} PRIVATE uttm_testing)
  endif()
  target_include_directories(${B_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  uttm_apply_warnings(${B_NAME})
endfunction()
