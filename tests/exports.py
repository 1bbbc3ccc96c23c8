"""Build Telegram Desktop exports for tests, in the exact layout tdesktop writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHANNEL_ID = 1777000001
USERNAME = "test_channel"
BASE_UNIX = 1_700_000_000  # 2023-11-14T22:13:20Z


def message(message_id: int, *, text: Any = "hello", seconds: int | None = None, **extra: Any) -> dict[str, Any]:
    """A new-style message (date_unixtime, text_entities); `extra` keys are added as given."""
    unix = BASE_UNIX + (seconds if seconds is not None else message_id * 60)
    msg: dict[str, Any] = {"id": message_id, "type": "message", "date": "2023-11-14T22:13:20",
                           "date_unixtime": str(unix), "from": "Test Channel", "from_id": f"channel{CHANNEL_ID}"}
    msg.update(extra)
    msg["text"] = text
    if isinstance(text, str):
        msg["text_entities"] = [{"type": "plain", "text": text}] if text else []
    elif isinstance(text, list):
        msg["text_entities"] = [p if isinstance(p, dict) else {"type": "plain", "text": p} for p in text]
    return msg


def export_doc(messages: list[dict[str, Any]], *, chat_type: str = "public_channel", chat_id: int = CHANNEL_ID,
               name: str = "Test Channel") -> dict[str, Any]:
    return {"name": name, "type": chat_type, "id": chat_id, "messages": messages}


def write_export(folder: Path, doc: dict[str, Any], *, pretty: bool = True) -> Path:
    """Write result.json as tdesktop does (indent 1) or minified, and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    text = json.dumps(doc, ensure_ascii=False, indent=1) if pretty else json.dumps(doc, separators=(",", ":"))
    path.write_text(text, encoding="utf-8")
    return path


def write_config(path: Path, storage: Path, *, channels: list[dict[str, Any]] | None = None) -> Path:
    if channels is None:
        channels = [{"username": USERNAME, "channel_id": CHANNEL_ID}]
    lines = ["[storage]", f'root = "{storage}"', ""]
    for channel in channels:
        lines += ["[[channels]]", f'username = "{channel["username"]}"']
        if "channel_id" in channel:
            lines.append(f"channel_id = {channel['channel_id']}")
        lines += ['basis = "test fixture"', 'approved_by = "tests"', "approved_at = 2026-11-23", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def benign_jpeg(seed: int = 0, size: tuple[int, int] = (160, 120)) -> bytes:
    """A small real JPEG of a smooth gradient with noise: a benign stand-in for media."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=2)
    pixels = np.clip(base + rng.normal(0, 12, base.shape) + rng.uniform(0, 80), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=85)
    return out.getvalue()
