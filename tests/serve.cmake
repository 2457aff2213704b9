# `hd-gpu serve`: a short training makes the model (fixture serve_model), which the API test (libcurl on
# 127.0.0.1, tests/serve_api_test.c) and the browser test (headless Chromium through selenium,
# tests/serve_browser_test.py; its screenshot is docs/serve.png) then serve.
if(NOT MHD_FOUND)
  return()
endif()
set(HD_SERVE_MODEL ${CMAKE_BINARY_DIR}/serve-test-model)
set(HD_SERVE_ENV "HD_TEST_DATA_DIR=${CMAKE_SOURCE_DIR}/data/mnist" "OMP_NUM_THREADS=2" ${HD_TSAN_TEST_ENV})
add_test(NAME serve_model COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/serve_model.sh $<TARGET_FILE:hd-gpu>
         ${HD_SERVE_MODEL} ${CMAKE_SOURCE_DIR}/data/mnist)
set_tests_properties(serve_model PROPERTIES FIXTURES_SETUP serve_model SKIP_RETURN_CODE 77
                     TIMEOUT ${HD_TEST_TIMEOUT} ENVIRONMENT "${HD_SERVE_ENV}")
if(CURL_FOUND)
  add_executable(serve_api_test serve_api_test.c)
  target_compile_options(serve_api_test PRIVATE ${HD_C_WARNINGS})
  target_link_libraries(serve_api_test PRIVATE hdtestutil CURL::libcurl)
  add_test(NAME serve_api COMMAND serve_api_test $<TARGET_FILE:hd-gpu> ${HD_SERVE_MODEL}
           ${CMAKE_SOURCE_DIR}/data/mnist ${CMAKE_CURRENT_SOURCE_DIR}/data/handdrawn)
  set_tests_properties(serve_api PROPERTIES FIXTURES_REQUIRED serve_model SKIP_RETURN_CODE 77
                       TIMEOUT ${HD_TEST_TIMEOUT} ENVIRONMENT "${HD_SERVE_ENV}")
endif()
# Debian's python3-selenium is in the system Python (a pyenv or venv python3 on PATH would not see it).
find_program(HD_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT HD_SYSTEM_PYTHON)
  find_program(HD_SYSTEM_PYTHON NAMES python3)
endif()
if(HD_SYSTEM_PYTHON)
  add_test(NAME serve_browser COMMAND ${HD_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/serve_browser_test.py
           $<TARGET_FILE:hd-gpu> ${HD_SERVE_MODEL} ${CMAKE_BINARY_DIR}/serve-screenshot.png)
  set_tests_properties(serve_browser PROPERTIES FIXTURES_REQUIRED serve_model SKIP_RETURN_CODE 77
                       TIMEOUT ${HD_TEST_TIMEOUT} ENVIRONMENT "${HD_SERVE_ENV}")
endif()
