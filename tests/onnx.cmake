# onnx.cmake: the tests of `hd-gpu export` (ONNX): the encoder's unit test is a test_*.c program like
# the others; here the end-to-end test, which runs the exported model in ONNX Runtime (onnxruntime-node,
# from scripts/install-deps into .deps/node) on the whole MNIST test set, and its helper program.
add_executable(onnx_test_helper ${CMAKE_CURRENT_SOURCE_DIR}/onnx_test_helper.c)
target_compile_options(onnx_test_helper PRIVATE ${HD_C_WARNINGS})
target_link_libraries(onnx_test_helper PRIVATE hdcore)
add_test(NAME onnx_export COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/onnx_export_test.sh $<TARGET_FILE:hd-gpu>
         $<TARGET_FILE:onnx_test_helper>)
set_tests_properties(onnx_export PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT ${HD_TEST_TIMEOUT} LABELS slow
  ENVIRONMENT "${HD_TEST_ENV}")
# scripts/torch-eval: a trained checkpoint in PyTorch gives hd-gpu's accuracy and logits (skipped without
# python3-torch). It shares onnx_test_helper's `logits`.
add_test(NAME torch_eval COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/torch_eval_test.sh $<TARGET_FILE:hd-gpu>
         $<TARGET_FILE:onnx_test_helper>)
set_tests_properties(torch_eval PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT ${HD_TEST_TIMEOUT} LABELS slow
  ENVIRONMENT "${HD_TEST_ENV}")
