# Tests that train or run thousands of forward passes (`ctest -LE slow` leaves them out
# for a quick check while developing; scripts/test runs them, under the sanitizers too).
foreach(name test_trainer test_gradcheck_network test_bench_smoke test_batchnorm_train)
  if(TEST ${name})
    set_tests_properties(${name} PROPERTIES LABELS slow)
  endif()
endforeach()
# The CLI's exit codes and messages, through the real program.
add_test(NAME cli_exit_codes COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.sh $<TARGET_FILE:hd-gpu>)
set(HD_CLI_TEST_ENV "HD_TEST_DATA_DIR=${CMAKE_SOURCE_DIR}/data/mnist" ${HD_TSAN_TEST_ENV})
set_tests_properties(cli_exit_codes PROPERTIES ENVIRONMENT "${HD_CLI_TEST_ENV}"
  SKIP_RETURN_CODE 77)
# A user's runs and data kept safe through the real program: wrong image sizes, run directories refused,
# locked or replaced, resumed settings, and Ctrl-C / SIGTERM (once and twice) during a training.
add_test(NAME cli_run_safety COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_run_safety.sh $<TARGET_FILE:hd-gpu>)
set_tests_properties(cli_run_safety PROPERTIES ENVIRONMENT "${HD_CLI_TEST_ENV}" SKIP_RETURN_CODE 77
  TIMEOUT ${HD_TEST_TIMEOUT} LABELS slow)
# bench/gpu-deps: MNIST found where hd-gpu finds it and verified, or a clear failure.
add_test(NAME gpu_deps_mnist COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/gpu_deps_test.sh ${CMAKE_SOURCE_DIR}/bench/gpu-deps)
set_tests_properties(gpu_deps_mnist PROPERTIES ENVIRONMENT "HD_TEST_DATA_DIR=${CMAKE_SOURCE_DIR}/data/mnist"
  SKIP_RETURN_CODE 77)
# cmake --install into a temporary DESTDIR: the program, the man page and the completion land under the
# prefix, and the installed program runs.
add_test(NAME install_tree COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install_test.sh ${CMAKE_BINARY_DIR})
set_tests_properties(install_tree PROPERTIES ENVIRONMENT "${HD_TSAN_TEST_ENV}")
