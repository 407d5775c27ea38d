# -*- Python -*-
import os
import shutil

import lit.formats
from lit.llvm import llvm_config

config.name = "QWEN"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["data", "lit.cfg.py", "lit.site.cfg.py.in", "CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.qwen_obj_root, "test")

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.qwen_tools_dir, append_path=True)
llvm_config.with_environment("FILECHECK_OPTS", "-enable-var-scope --allow-unused-prefixes=false")
config.substitutions.append(("%qwen_src", config.qwen_src_root))
config.substitutions.append(("%test_data", os.path.join(config.qwen_src_root, "test", "data")))
config.substitutions.append(("%demo", os.path.join(config.qwen_src_root, "models", "checkpoints", "qwen3-demo")))
# libqwen-fake-cuda.so: the CUDA driver and cuBLASLt emulated on the host
# (test/tools/fake-cuda), for QWEN_CUDA_DRIVER / QWEN_CUBLASLT.
config.substitutions.append(("%fake_cuda", config.qwen_fake_cuda))

tools = ["qwen-opt", "qwen-compile", "qwen-run", "qwen-vision-embed", "qwen-check-logits", "qwen-check-state", "qwen-check-prefix-cache"]
llvm_config.add_tool_substitutions(tools, [config.qwen_tools_dir, config.llvm_tools_dir])

# Keep the CI's 2 cores from being oversubscribed by the runtime's threads.
config.environment["QWEN_NUM_THREADS"] = "2"
if shutil.which("ptxas"):
    config.available_features.add("ptxas")

# test/Serve talks to `qwen-run serve` with the official OpenAI client from
# the test venv that scripts/setup.sh creates; without it those tests are
# reported as UNSUPPORTED (run scripts/setup.sh), never passed silently.
venv_python = os.path.join(config.qwen_src_root, ".venv-test", "bin", "python")
if os.access(venv_python, os.X_OK):
    config.available_features.add("openai-venv")
    config.substitutions.append(("%venv_python", venv_python))
else:
    lit_config.note("no test venv at " + venv_python + ": the OpenAI-client tests of test/Serve are skipped "
                    "(scripts/setup.sh creates it)")
if shutil.which("curl"):
    config.available_features.add("curl")
