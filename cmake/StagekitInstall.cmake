# Installs the public headers, the libraries, stagekit-conform and the reference plugin under
# CMAKE_INSTALL_PREFIX with a CMake package, so that a vendor's project does
#   find_package(stagekit 0.2 REQUIRED)
#   target_link_libraries(my_plugin PRIVATE stagekit::conformance)
# Installed targets: stagekit::core, stagekit::dist, stagekit::reference, stagekit::replica_format,
# stagekit::replication, stagekit::conformance, the tool stagekit::stagekit-replica,
# stagekit::conformance_gtest (where GoogleTest was found) and the executable stagekit::stagekit-conform.
include(CMakePackageConfigHelpers)

set(STAGEKIT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/stagekit)
set(STAGEKIT_INSTALL_PLUGINDIR ${CMAKE_INSTALL_LIBDIR}/stagekit)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/reference/include/stagekit ${PROJECT_SOURCE_DIR}/conformance/include/stagekit
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/generated/stagekit/config.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/stagekit COMPONENT development)

install(TARGETS stagekit_core stagekit_dist stagekit_reference stagekit_replica_format stagekit_replication
  stagekit_checkpoint
  stagekit_conformance stagekit-conform stagekit-replica EXPORT stagekitTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS stagekit_reference_plugin LIBRARY DESTINATION ${STAGEKIT_INSTALL_PLUGINDIR})
install(EXPORT stagekitTargets NAMESPACE stagekit:: DESTINATION ${STAGEKIT_INSTALL_CMAKEDIR})
# The GoogleTest route in its own export set: loaded only where the consumer has GoogleTest.
if(TARGET stagekit_conformance_gtest)
  install(TARGETS stagekit_conformance_gtest EXPORT stagekitGTestTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT stagekitGTestTargets NAMESPACE stagekit:: DESTINATION ${STAGEKIT_INSTALL_CMAKEDIR})
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/stagekitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/stagekitConfig.cmake
  INSTALL_DESTINATION ${STAGEKIT_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_BINDIR STAGEKIT_INSTALL_PLUGINDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/stagekitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/stagekitConfig.cmake ${PROJECT_BINARY_DIR}/stagekitConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/stagekitPlugin.cmake
  DESTINATION ${STAGEKIT_INSTALL_CMAKEDIR})
