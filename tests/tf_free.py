"""Run Python code with TensorFlow, Keras and tf2onnx unimportable, as in a serving-only install."""

import subprocess
import sys

BLOCK_TENSORFLOW = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx'):\n"
    "            raise ImportError('blocked: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
)


def run_without_tensorflow(code: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW + code], capture_output=True, text=True, cwd=cwd)
