# Precompiled headers: nearly every file includes nlohmann/json and fmt, whose parsing is most of
# a small file's compile time. One target compiles them once; every C++ target reuses its PCH.
# Opt-in (-DORCH_PRECOMPILED_HEADERS=ON): see the option in the top-level CMakeLists.txt.

function(orch_reuse_precompiled_headers dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(NOT type MATCHES "^(STATIC_LIBRARY|EXECUTABLE|OBJECT_LIBRARY)$")
      continue()
    endif()
    # The C pause program and the generated protobuf code include neither header.
    if(target STREQUAL orch_precompiled OR target STREQUAL orch_pause OR target MATCHES "_proto$")
      continue()
    endif()
    target_precompile_headers(${target} REUSE_FROM orch_precompiled)
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(subdir IN LISTS subdirs)
    orch_reuse_precompiled_headers(${subdir})
  endforeach()
endfunction()

add_library(orch_precompiled STATIC ${CMAKE_CURRENT_LIST_DIR}/precompiled.cpp)
target_link_libraries(orch_precompiled PRIVATE orch_contracts)
target_precompile_headers(orch_precompiled PRIVATE
  <nlohmann/json.hpp> <fmt/format.h>
  <algorithm> <chrono> <functional> <map> <memory> <mutex> <optional> <set> <string>
  <string_view> <unordered_map> <vector>)
orch_reuse_precompiled_headers(${CMAKE_SOURCE_DIR})
