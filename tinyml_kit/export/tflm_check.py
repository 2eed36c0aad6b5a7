"""Check that TensorFlow Lite Micro (the ``tflite-micro`` package) can load and run a .tflite model.

TFLM aborts the whole process on some malformed or unsupported models, so the check runs in a child
Python process: a crash there becomes an :class:`ExportError` here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tinyml_kit.export.errors import ExportError

_CHILD = r"""
import json, sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
interpreter = runtime.Interpreter.from_bytes(data)
detail = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), 0)
interpreter.invoke()
out = interpreter.get_output(0)
print(json.dumps({"output_shape": list(out.shape), "output_dtype": str(out.dtype)}))
"""


def check_tflm(model: bytes | str | Path, timeout_s: float = 120.0) -> dict:
    """Load ``model`` in TFLM, invoke it once on zeros; returns the output's shape and dtype."""
    with tempfile.TemporaryDirectory(prefix="tk-tflm-") as tmp:
        if isinstance(model, (bytes, bytearray)):
            path = Path(tmp) / "model.tflite"
            path.write_bytes(model)
        else:
            path = Path(model)
        try:
            done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ExportError(f"TFLite Micro did not finish one inference within {timeout_s:.0f} s.") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        if any("No module named 'tflite_micro'" in line for line in tail):
            raise ExportError("TFLite Micro is not installed (`pip install tflite-micro`); "
                              "see `tinyml-kit doctor`.")
        raise ExportError("TFLite Micro cannot run the model (exit code "
                          f"{done.returncode}): " + " | ".join(tail))
    return json.loads(done.stdout.strip().splitlines()[-1])
