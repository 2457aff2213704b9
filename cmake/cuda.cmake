# cuda.cmake: decides HD_WITH_CUDA and adds the GPU backend (kernels/*.cu) to hdcore.
#
# HD_CUDA=AUTO builds the GPU backend when nvcc, the CUDA toolkit (cudart, cuBLAS) and cuDNN
# are all found, and otherwise turns it off with a message; HD_CUDA=ON makes a missing piece
# a configure error; HD_CUDA=OFF never looks. Without CUDA, src/gpu/gpu_stub.c provides the
# hd_gpu_* functions of backend.h, reporting "built without CUDA".
#
# cuDNN is looked for, in this order, under CUDNN_ROOT (cache variable, then environment),
# the CUDA toolkit's own directories, the `nvidia-cudnn` Python wheel layout
# (site-packages/nvidia/cudnn/{include,lib}, where PyTorch's wheels put it; there the
# library may exist only as libcudnn.so.9), then the system paths.
#
# Targets: sm_80 machine code and sm_90 machine code plus PTX (CMAKE_CUDA_ARCHITECTURES
# "80-real;90") unless CMAKE_CUDA_ARCHITECTURES is set by the caller.
set(HD_WITH_CUDA OFF)
set(CUDNN_ROOT "" CACHE PATH "cuDNN install prefix (directory holding include/cudnn.h and lib/libcudnn.so)")

function(hd_cuda_unavailable reason)
  if(HD_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HD_CUDA=ON but ${reason}")
  endif()
  message(STATUS "hd-gpu: CUDA backend off: ${reason} (HD_CUDA=AUTO; the GPU entry points report 'built without CUDA')")
endfunction()

# Python site-packages directories (where the nvidia-cudnn wheel lives), if python3 exists.
function(hd_python_site_dirs out_var)
  set(dirs "")
  find_program(HD_PYTHON3 NAMES python3 python)
  if(HD_PYTHON3)
    execute_process(
      COMMAND ${HD_PYTHON3} -c
        "import site, sys; d = list(site.getsitepackages()) if hasattr(site, 'getsitepackages') else []; d.append(site.getusersitepackages()); d += [p for p in sys.path if p.endswith('-packages')]; print(';'.join(d))"
      OUTPUT_VARIABLE py_dirs OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE py_rc)
    if(py_rc EQUAL 0 AND py_dirs)
      foreach(d ${py_dirs})
        if(IS_DIRECTORY "${d}/nvidia/cudnn")
          list(APPEND dirs "${d}/nvidia/cudnn")
        endif()
      endforeach()
    endif()
  endif()
  set(${out_var} ${dirs} PARENT_SCOPE)
endfunction()

if(NOT HD_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    hd_cuda_unavailable("no CUDA compiler (nvcc) was found; set CMAKE_CUDA_COMPILER or put nvcc on PATH")
  else()
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES "80-real;90" CACHE STRING "CUDA targets: sm_80 code, sm_90 code and PTX" FORCE)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit)
    if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cudart OR NOT TARGET CUDA::cublas)
      hd_cuda_unavailable("the CUDA toolkit (cudart and cuBLAS) was not found")
    else()
      set(hd_cudnn_hints "")
      foreach(root "${CUDNN_ROOT}" "$ENV{CUDNN_ROOT}" "$ENV{CUDNN_HOME}" "$ENV{CUDNN_PATH}")
        if(root)
          list(APPEND hd_cudnn_hints "${root}")
        endif()
      endforeach()
      get_filename_component(hd_cuda_root "${CUDAToolkit_BIN_DIR}" DIRECTORY)
      list(APPEND hd_cudnn_hints "${hd_cuda_root}" "${CUDAToolkit_LIBRARY_ROOT}")
      hd_python_site_dirs(hd_wheel_dirs)
      list(APPEND hd_cudnn_hints ${hd_wheel_dirs})
      list(REMOVE_DUPLICATES hd_cudnn_hints)

      find_path(CUDNN_INCLUDE_DIR cudnn.h
        HINTS ${hd_cudnn_hints} ${CUDAToolkit_INCLUDE_DIRS}
        PATH_SUFFIXES include include/x86_64-linux-gnu)
      find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 NAMES_PER_DIR
        HINTS ${hd_cudnn_hints} ${CUDAToolkit_LIBRARY_DIR}
        PATH_SUFFIXES lib lib64 lib/x64 lib/x86_64-linux-gnu)

      if(NOT CUDNN_INCLUDE_DIR OR NOT EXISTS "${CUDNN_INCLUDE_DIR}/cudnn_version.h" OR NOT CUDNN_LIBRARY
         OR NOT EXISTS "${CUDNN_LIBRARY}")
        hd_cuda_unavailable("cuDNN was not found (cudnn.h: ${CUDNN_INCLUDE_DIR}, libcudnn: ${CUDNN_LIBRARY}); set CUDNN_ROOT")
      else()
        file(STRINGS "${CUDNN_INCLUDE_DIR}/cudnn_version.h" hd_cudnn_major REGEX "^#define CUDNN_MAJOR [0-9]+")
        string(REGEX REPLACE "^#define CUDNN_MAJOR ([0-9]+)" "\\1" hd_cudnn_major "${hd_cudnn_major}")
        if(NOT hd_cudnn_major OR hd_cudnn_major LESS 9)
          hd_cuda_unavailable("cuDNN 9 or newer is needed (found major version '${hd_cudnn_major}' in ${CUDNN_INCLUDE_DIR})")
        else()
          set(HD_WITH_CUDA ON)
        endif()
      endif()
    endif()
  endif()
endif()

if(HD_WITH_CUDA)
  file(GLOB HD_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/*.cu ${CMAKE_SOURCE_DIR}/kernels/*.c)
  target_sources(hdcore PRIVATE ${HD_CUDA_SOURCES})
  set_target_properties(hdcore PROPERTIES
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON
    CUDA_SEPARABLE_COMPILATION OFF
    CUDA_RUNTIME_LIBRARY Shared
    CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  target_include_directories(hdcore PRIVATE ${CMAKE_SOURCE_DIR}/kernels ${CUDNN_INCLUDE_DIR})
  # cuBLAS is not linked: kernels/gpu_cublas_load.c opens it when the GPU backend starts (linked, its
  # start-up would cost every process, CPU runs included, about 210 MiB of resident memory).
  target_link_libraries(hdcore PUBLIC CUDA::cudart ${CUDNN_LIBRARY} ${CMAKE_DL_LIBS})
  target_compile_definitions(hdcore PUBLIC HD_WITH_CUDA=1)
  set_source_files_properties(${CMAKE_SOURCE_DIR}/kernels/gpu_cublas_load.c PROPERTIES
    COMPILE_DEFINITIONS "HD_CUBLAS_DIR=\"${CUDAToolkit_LIBRARY_DIR}\"")
  # hdcore's CUDA code makes every program that links it link as CUDA; without this, each of
  # them would add the static CUDA runtime (-lcudart_static) beside the shared one above.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)

  # nvcc: every warning is an error under HD_WERROR, the host compiler's included.
  set(hd_cuda_flags -lineinfo)
  if(HD_WERROR)
    list(APPEND hd_cuda_flags -Werror=all-warnings -Xcompiler=-Wall,-Wextra,-Werror)
  else()
    list(APPEND hd_cuda_flags -Xcompiler=-Wall,-Wextra)
  endif()
  target_compile_options(hdcore PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${hd_cuda_flags}>)

  # Options meant for the C compiler only (the sanitizer flags added by add_compile_options
  # before this file ran) would reach nvcc, which rejects them: keep them to C sources.
  get_target_property(hd_core_options hdcore COMPILE_OPTIONS)
  if(hd_core_options)
    set(hd_wrapped "")
    foreach(opt ${hd_core_options})
      if(opt MATCHES "^-f(no-)?sanitize|^-fno-omit-frame-pointer")
        list(APPEND hd_wrapped "$<$<COMPILE_LANGUAGE:C>:${opt}>")
      else()
        list(APPEND hd_wrapped "${opt}")
      endif()
    endforeach()
    set_property(TARGET hdcore PROPERTY COMPILE_OPTIONS "${hd_wrapped}")
  endif()

  # The library directories of cuDNN and the toolkit go into the run path, so that the tests and
  # hd-gpu find libcudnn (and the sub-libraries it loads) where cmake found them: the build tree's,
  # and the installed program's too (`cmake --install` would otherwise clear it, and a cuDNN from
  # PyTorch's wheel, or a toolkit the loader's cache does not list, would not be found).
  get_filename_component(HD_CUDNN_LIBRARY_DIR "${CUDNN_LIBRARY}" DIRECTORY)
  list(APPEND CMAKE_BUILD_RPATH "${HD_CUDNN_LIBRARY_DIR}" "${CUDAToolkit_LIBRARY_DIR}")
  list(APPEND CMAKE_INSTALL_RPATH "${HD_CUDNN_LIBRARY_DIR}" "${CUDAToolkit_LIBRARY_DIR}")
  message(STATUS "hd-gpu: CUDA ${CUDAToolkit_VERSION} (${CMAKE_CUDA_COMPILER}), architectures ${CMAKE_CUDA_ARCHITECTURES}, cuDNN ${hd_cudnn_major}.x at ${CUDNN_LIBRARY}")
else()
  target_sources(hdcore PRIVATE ${CMAKE_SOURCE_DIR}/src/gpu/gpu_stub.c)
endif()
