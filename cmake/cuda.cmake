# cuda.cmake: decides HD_WITH_CUDA and adds the GPU backend (kernels/*.cu) to hdcore.
# Without CUDA, src/gpu_stub.c provides hd_gpu_* functions that report "built without CUDA".
set(HD_WITH_CUDA OFF)
if(NOT HD_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  # (filled in by the GPU backend work)
endif()
if(HD_WITH_CUDA)
  target_compile_definitions(hdcore PUBLIC HD_WITH_CUDA=1)
else()
  target_sources(hdcore PRIVATE ${CMAKE_SOURCE_DIR}/src/gpu/gpu_stub.c)
endif()
