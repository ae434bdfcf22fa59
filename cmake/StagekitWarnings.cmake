# One INTERFACE target carrying the warning and sanitizer flags every stagekit target links.
add_library(stagekit_build_flags INTERFACE)
add_library(stagekit::build_flags ALIAS stagekit_build_flags)
target_compile_options(stagekit_build_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wimplicit-fallthrough)
if(STAGEKIT_WERROR)
  target_compile_options(stagekit_build_flags INTERFACE -Werror)
endif()
if(STAGEKIT_SANITIZE)
  target_compile_options(stagekit_build_flags INTERFACE -fsanitize=${STAGEKIT_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(stagekit_build_flags INTERFACE -fsanitize=${STAGEKIT_SANITIZE})
  if(STAGEKIT_SANITIZE_SKIP)
    target_compile_options(stagekit_build_flags INTERFACE -fno-sanitize=${STAGEKIT_SANITIZE_SKIP})
  endif()
endif()
