# Install rules: headers, library, CMake package (find_package(uttm) -> uttm::uttm), pkg-config.
include(CMakePackageConfigHelpers)

# Exactly the public headers the layers declare (uttm_layer HEADERS); internal headers live in
# src/ and are never installed.
get_property(uttm_public_headers GLOBAL PROPERTY UTTM_LAYER_HEADERS)
list(TRANSFORM uttm_public_headers PREPEND ${PROJECT_SOURCE_DIR}/include/uttm/)
install(FILES ${uttm_public_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/uttm)
install(TARGETS uttm EXPORT uttmTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
get_property(uttm_optional_libraries GLOBAL PROPERTY UTTM_OPTIONAL_LIBRARIES)
if(uttm_optional_libraries)
  install(TARGETS ${uttm_optional_libraries} EXPORT uttmTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
install(EXPORT uttmTargets NAMESPACE uttm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uttm)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/uttmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/uttmConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uttm)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/uttmConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/uttmConfig.cmake ${PROJECT_BINARY_DIR}/uttmConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/uttm)

# The .pc file finds its prefix relative to itself, so an installed tree can be moved.
file(RELATIVE_PATH UTTM_PC_TO_PREFIX /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
configure_file(${PROJECT_SOURCE_DIR}/cmake/uttm.pc.in ${PROJECT_BINARY_DIR}/uttm.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/uttm.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
