"""A picture of one reading: the photo with every digit box (the chosen number's in green, others in
orange), the digit above each box, and the number with its confidence in a strip below."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from digitdet import io
from digitdet.reading.reader import Reading

_CHOSEN = (40, 220, 60)
_OTHER = (255, 150, 30)


def draw_reading(image: Image.Image, reading: Reading, max_side: int = 1024) -> Image.Image:
    """The image scaled to at most `max_side` px, boxes and digits drawn, a caption strip below."""
    scale = min(1.0, max_side / max(image.size))
    img = image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    strip = 28
    canvas = Image.new("RGB", (max(img.width, 240), img.height + strip), (20, 20, 20))
    canvas.paste(img, (0, 0))
    d = ImageDraw.Draw(canvas)
    chosen = {id(x) for x in reading.candidates[0].digits} if reading.candidates else set()
    width = max(1, round(max(img.size) / 300))
    for digit in reading.digits:
        box = [v * scale for v in digit.box]
        col = _CHOSEN if id(digit) in chosen else _OTHER
        d.rectangle(box, outline=col, width=width)
        d.text((box[0] + 1, max(0, box[1] - 12)), str(digit.digit), fill=col)
    text = f"{reading.number} ({reading.confidence:.2f})" if reading.number is not None else "no number found"
    if reading.error:
        text = reading.error
    d.text((6, img.height + 7), text[:120], fill=(255, 255, 255))
    return canvas


def save_reading(image: Image.Image, reading: Reading, path: str | Path) -> None:
    with io.atomic_path(path, suffix=".png") as tmp:
        draw_reading(image, reading).save(tmp, format="PNG")
