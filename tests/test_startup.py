"""A first answer in a fresh process: reading a photo never imports torch._dynamo (about 1.1 s and 150 MB),
and torchvision still gets torch's own functions (digitdet/__init__.py, data/transforms.py)."""

import subprocess
import sys

SCRIPT = """
import sys
from PIL import Image
from digitdet.reading.reader import Reader
reading = Reader().read_image(Image.new("RGB", (120, 90), "white"))
print("after a reading:", "torch._dynamo" in sys.modules)
roi_align = sys.modules["torchvision.ops.roi_align"]
print("answer:", roi_align.is_compile_supported("cpu"))
print("after asking:", "torch._dynamo" in sys.modules, getattr(sys.modules["torch._dynamo.utils"], "_stand_in", False))
from torch._dynamo.utils import is_compile_supported
print("same answer:", is_compile_supported("cpu") == roi_align.is_compile_supported("cpu"))
"""


def test_reading_a_photo_does_not_import_the_compiler_and_torchvision_still_gets_torchs_function():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert "after a reading: False" in lines
    assert "after asking: True False" in lines  # the real module, imported on the first call
    assert "same answer: True" in lines


def test_the_stand_in_is_not_used_when_the_compiler_is_already_imported():
    script = ("import torch._dynamo, sys, digitdet, torchvision.ops\n"
              "print(sys.modules['torchvision.ops.roi_align'].is_compile_supported.__module__)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "torch._dynamo.utils"
