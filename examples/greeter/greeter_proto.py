"""hello.proto compiled at start with grpc_tools (no generated code in the
repository): the modules are written to a temporary folder, imported, and
the folder is removed again."""

import importlib
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def load():
    """Returns (hello_pb2, hello_pb2_grpc)."""
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="greeter-proto-")
    try:
        args = [
            "grpc_tools.protoc",
            f"-I{HERE}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.join(HERE, "hello.proto"),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {HERE}/hello.proto")
        sys.path.insert(0, out)
        try:
            pb2 = importlib.import_module("hello_pb2")
            pb2_grpc = importlib.import_module("hello_pb2_grpc")
        finally:
            sys.path.remove(out)
        return pb2, pb2_grpc
    finally:
        shutil.rmtree(out, ignore_errors=True)
