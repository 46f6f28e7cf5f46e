"""A first answer in a fresh process: reading a photo never imports torch._dynamo (about 1.1 s and 150 MB),
and torchvision still gets torch's own functions (digitdet/__init__.py, data/transforms.py)."""

import subprocess
import sys

import pytest

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


LEAVE = r"""
import atexit, os, sys, threading, time
class Witness:
    def __del__(self):
        os.write(1, b"torn down\n")  # sys.stdout may be gone this late
witness = Witness()  # a global of __main__: finalised only when the interpreter is torn down
atexit.register(print, "atexit ran")  # not flushed by the handler: run() must flush it
# A non-daemon thread alive until the main thread is done, however slow the host
# (a fixed sleep ended before run() looked, on a loaded host).
def linger():
    while threading.main_thread().is_alive():
        time.sleep(0.02)
if sys.argv[1] == "thread":
    threading.Thread(target=linger).start()
sys.argv = ["digitdet", "check", "/nonexistent/data"]
from digitdet.cli import run
run()
"""


@pytest.mark.parametrize("case", ["alone", "thread"])
def test_the_command_line_leaves_quickly_but_keeps_its_exit_code_atexit_and_output(case):
    out = subprocess.run([sys.executable, "-c", LEAVE, case], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]  # main()'s code for a DigitdetError
    assert "atexit ran" in out.stdout
    assert out.stderr.strip() == "digitdet: error: /nonexistent/data: data folder not found"
    # Alone, the interpreter is not torn down (os._exit); with another thread running, the ordinary exit
    # waits for it and tears down.
    assert ("torn down" in out.stdout) == (case == "thread")


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    from PIL import Image

    photo = tmp_path / "white.png"
    Image.new("RGB", (120, 90), "white").save(photo)
    proc = subprocess.Popen([sys.executable, "-m", "digitdet.cli", "-q", "read", str(photo), str(photo)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # `digitdet read ... | head -0`
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
