"""Builds the native step engine (serving/csrc) during the normal install; everything else is in pyproject.toml.

The library is an onnxruntime custom-operator library, not a Python extension: nothing
imports it, `serving.native` hands its path to onnxruntime. If it cannot be compiled (no C
compiler, an unusual platform), the install still succeeds and generation falls back to
the standard step graph, saying why.
"""

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Compile the engine if possible; never fail the install because of it."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # distutils raises several unrelated types here
            print(f"wavenet-tf: the native step engine was not built ({error}); "
                  "generation will use the standard step graph.", file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:
            print(f"wavenet-tf: compiling {ext.name} failed ({error}); "
                  "generation will use the standard step graph.", file=sys.stderr)


# -march=native: the library is compiled on the machine that runs it (the install), so it
# uses that CPU's vector width (AVX2 and FMA here). No -ffast-math: the op checks for NaN.
engine = Extension(
    "serving._wavenet_steps",
    sources=["serving/csrc/wavenet_kernel.c", "serving/csrc/wavenet_op.c"],
    depends=["serving/csrc/wavenet_kernel.h", "serving/csrc/ort_abi.h"],
    extra_compile_args=["-O3", "-march=native", "-std=gnu11", "-pthread", "-fvisibility=hidden",
                        "-Wall", "-Wextra"],
    extra_link_args=["-pthread", "-lm"],
)

setup(ext_modules=[engine], cmdclass={"build_ext": OptionalBuildExt})
