"""A case's pictures, drawn with Pillow and embedded as data URIs: OCR boxes on the input, both masks and
their difference, both enlargements with a zoomed centre crop."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageDraw

from ..compare import Line, mask_of, ocr_lines
from ..records import Record, RecordStore
from .labels import ALIYUN_RGB, AWS_RGB, _e, providers

MAX_PICTURE_SIDE = 720
DETAIL_CROP = 200  # side of the 1:1 crop shown for super-resolution detail


def _data_uri(img: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buf, "JPEG", quality=85)
        mime = "image/jpeg"
    else:
        img.save(buf, "PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _fit(img: Image.Image, side: int = MAX_PICTURE_SIDE) -> Image.Image:
    img = img.copy()
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return img


def _open(data: bytes | None) -> Image.Image | None:
    if not data:
        return None
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except OSError:
        return None


def ocr_overlay(image: Image.Image | None, primary: Sequence[Line], secondary: Sequence[Line],
                colours: tuple[tuple[int, int, int], tuple[int, int, int]]) -> Image.Image:
    """The input with both sets of line polygons drawn: primary first with a wide outline, secondary over it
    with a narrow one, so where the two boxes coincide both colours still show (a band inside a band)."""
    if image is None:
        xs = [p[0] for ln in [*primary, *secondary] for p in ln.poly] or [100.0]
        ys = [p[1] for ln in [*primary, *secondary] for p in ln.poly] or [100.0]
        image = Image.new("RGB", (int(max(xs)) + 20, int(max(ys)) + 20), (250, 250, 250))
    base = image.convert("RGB")
    scale = min(1.0, MAX_PICTURE_SIDE / max(base.size))
    if scale < 1:
        base = base.resize((max(1, round(base.width * scale)), max(1, round(base.height * scale))),
                           Image.Resampling.LANCZOS)
    base = Image.blend(base, Image.new("RGB", base.size, "white"), 0.25)  # fade the photo, keep the boxes
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    width = max(2, round(max(base.size) / 300))
    for lines, colour, line_width in ((primary, colours[0], 3 * width), (secondary, colours[1], width)):
        for ln in lines:
            pts = [(x * scale, y * scale) for x, y in ln.poly]
            draw.polygon(pts, fill=(*colour, 40))
            draw.line([*pts, pts[0]], fill=(*colour, 255), width=line_width)
    return Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")


def mask_difference(a: Image.Image, b: Image.Image, colours: tuple[tuple[int, int, int], tuple[int, int, int]],
                    ) -> Image.Image:
    """Both foreground: dark grey; only primary: primary's colour; only secondary: secondary's colour."""
    if b.size != a.size:
        b = b.resize(a.size, Image.Resampling.BILINEAR)
    fa = a.point(lambda v: 255 if v >= 128 else 0)
    fb = b.point(lambda v: 255 if v >= 128 else 0)
    out = Image.new("RGB", a.size, (255, 255, 255))
    out.paste((70, 70, 78), mask=ImageChops.logical_and(fa.convert("1"), fb.convert("1")).convert("L"))
    out.paste(colours[0], mask=ImageChops.subtract(fa, fb))
    out.paste(colours[1], mask=ImageChops.subtract(fb, fa))
    return out


def _checker(img: Image.Image) -> Image.Image:
    """An RGBA cut-out over a light checkerboard, so transparency reads as transparency."""
    size = 12
    board = Image.new("RGB", img.size, (236, 236, 240))
    draw = ImageDraw.Draw(board)
    for y in range(0, img.height, size):
        for x in range((y // size) % 2 * size, img.width, 2 * size):
            draw.rectangle([x, y, x + size - 1, y + size - 1], fill=(252, 252, 252))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        board.paste(rgba, mask=rgba.getchannel("A"))
        return board
    return img.convert("RGB")


def _centre_crop(img: Image.Image, side: int) -> Image.Image:
    left, top = max(0, (img.width - side) // 2), max(0, (img.height - side) // 2)
    return img.crop((left, top, min(img.width, left + side), min(img.height, top + side)))


def _figure(title: str, img: Image.Image | None, cls: str = "", fmt: str = "PNG", pixelated: bool = False) -> str:
    if img is None:
        return f'<figure class="{cls}"><div class="empty">{_e(title)}: not stored</div></figure>'
    css = ' class="px"' if pixelated else ""
    return (f'<figure class="{cls}"><img{css} alt="{_e(title)}" src="{_data_uri(img, fmt)}">'
            f'<figcaption>{_e(title)}</figcaption></figure>')


def _case_pictures(store: RecordStore, record: Record, family: str) -> str:
    names = providers(record.mode)
    colours = (ALIYUN_RGB, AWS_RGB) if names[0] == "Aliyun" else (AWS_RGB, ALIYUN_RGB)
    pic_input = _open(store.read_image(record, "input"))
    if family == "ocr":
        try:
            p_lines = ocr_lines(record.lines, record.primary.get("body") or {})
            s_lines = ocr_lines(record.lines, record.secondary.get("body") or {})
        except (ValueError, TypeError, KeyError, AttributeError):
            return '<p class="empty">answers could not be parsed</p>'
        overlay = ocr_overlay(pic_input, p_lines, s_lines, colours)
        caption = f"{names[0]} boxes ({'red' if names[0] == 'Aliyun' else 'blue'}) and {names[1]} boxes " \
                  f"({'blue' if names[1] == 'AWS' else 'red'}) on the input"
        return f'<div class="pics">{_figure(caption, overlay, "overlay", "JPEG")}</div>'
    # Pictures are laid out Aliyun first, AWS second, whichever side was primary.
    order = (0, 1) if names[0] == "Aliyun" else (1, 0)
    raw = [store.read_image(record, "primary"), store.read_image(record, "secondary")]
    imgs = [_open(raw[0]), _open(raw[1])]
    figs = []
    if family == "matting":
        if pic_input:
            figs.append(_figure("Input", _fit(pic_input), "input", "JPEG"))
        masks = [mask_of(raw[i] or b"")[0] if imgs[i] else None for i in (0, 1)]
        for i in order:
            m = masks[i]
            figs.append(_figure(f"{names[i]} mask", _fit(m) if m else None, names[i].lower()))
        if masks[0] and masks[1]:
            figs.append(_figure("Difference: grey both, red only Aliyun, blue only AWS, white neither",
                                _fit(mask_difference(masks[0], masks[1], colours)), "diff"))
        return f'<div class="pics">{"".join(figs)}</div>'
    if pic_input:  # shown at the enlargement's size, pixelated: what "no super-resolution" would look like
        target = imgs[0].size if imgs[0] else pic_input.size
        figs.append(_figure("Input, pixels enlarged", _fit(pic_input.convert("RGB").resize(
            target, Image.Resampling.NEAREST)), "input", "PNG"))
    for i in order:
        img = imgs[i]
        figs.append(_figure(f"{names[i]} result", _fit(_checker(img)) if img else None, names[i].lower(), "JPEG"))
    detail = ""
    p_img, s_img = imgs
    if p_img and s_img:
        crops = [_centre_crop(p_img.convert("RGB"), DETAIL_CROP),
                 _centre_crop(s_img.convert("RGB").resize(p_img.size, Image.Resampling.BICUBIC)
                              if s_img.size != p_img.size else s_img.convert("RGB"), DETAIL_CROP)]
        detail = ('<div class="pics detail">'
                  + "".join(_figure(f"{names[i]}: centre {DETAIL_CROP} px, zoomed", crops[i], names[i].lower(),
                                    pixelated=True) for i in order) + "</div>")
    return f'<div class="pics">{"".join(figs)}</div>{detail}'
