# ferry_target(<target>): warnings (errors with FERRY_WERROR) and sanitizers on our own
# targets only.
# Third-party headers come in as SYSTEM includes so their warnings never fail our build.
# With FERRY_BUILD_FUZZERS (the clang "asan-ubsan" preset) our code is also instrumented for
# libFuzzer's coverage feedback (-fsanitize=fuzzer-no-link); tests/fuzz links the fuzzer main.
function(ferry_target target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow)
  if(FERRY_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(FERRY_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${FERRY_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${FERRY_SANITIZE})
    if(FERRY_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # GCC 12 warns that TSan does not model Asio's std::atomic_thread_fence; not our bug.
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # rapidjson 1.1's member iterators declare == and != in a way C++20 calls ambiguous.
    # -Wunused-private-field: a clang-only check gcc builds do not make; reported, not fatal.
    # -Wthread-safety: the lock rules written with daemon/base/thread_annotations.h are
    # checked here (CI builds the asan-ubsan preset with clang, so a violation fails CI).
    target_compile_options(${target} PRIVATE -Wno-ambiguous-reversed-operator
                                             -Wno-error=unused-private-field
                                             -Wthread-safety -Wthread-safety-beta)
  endif()
  if(FERRY_BUILD_FUZZERS)
    # The asan-ubsan preset's compiler launcher hands this file to ccache (CCACHE_EXTRAFILES): ccache
    # does not hash an ignorelist's content, and would reuse objects built with an older list.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link
      -fsanitize-ignorelist=${PROJECT_SOURCE_DIR}/tests/fuzz/sanitizer_ignorelist.txt)
  endif()
endfunction()
