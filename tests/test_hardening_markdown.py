"""SECURITY.md item 13 (and issue 15 group 6): user text never renders as Markdown or HTML.

A zip of class folders named like links, images and HTML goes through the Transfer tab as a user's upload would;
after training and a prediction, no text element of the page holds those names unescaped and no chart holds
their HTML. Also: no `unsafe_allow_html` anywhere in the app.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from pages import ui
from tests.test_predict_app import colour_images, make_zip

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = {
    "[click me](mailto:a@evil.example)": (220, 30, 30),
    "![x](data:image;base64,AAAA)": (30, 200, 40),
    "<img src=x onerror=alert(1)>": (30, 40, 220),
}
RAW_MARKERS = ("[click me](", "![x](", "<img src=x")


def _texts(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "subheader", "header", "title"):
        out.extend(str(e.value) for e in getattr(at, kind))
    return out


def _charts(at: AppTest) -> list[str]:
    return [json.dumps(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]


def test_no_unsafe_html_anywhere_in_the_app() -> None:
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        assert "unsafe_allow_html=True" not in path.read_text(), path


def test_md_and_plot_text_make_markup_inert() -> None:
    for raw in HOSTILE:
        shown = ui.md(raw)
        assert not re.search(r"(?<!\\)[\[\]<>!:@]", shown), shown  # every markup character is escaped
        assert "<" not in ui.plot_text(raw) and ">" not in ui.plot_text(raw)
    assert ui.md("line one\nline two") == "line one line two"
    assert ui.md("see www.evil.example or a@b.example") == "see www\\.evil.example or a\\@b.example"
    assert ui.md("lr must be at least 1e-06 (got 0.0)") == "lr must be at least 1e-06 (got 0.0)"


def test_hostile_class_names_stay_text_through_training_and_prediction() -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "image.py"), default_timeout=600).run()
    data = make_zip({name: colour_images(rgb, 8) for name, rgb in HOSTILE.items()})
    at.file_uploader(key="transfer.zip").set_value(("<b>evil</b>.zip", data, "application/zip")).run()
    assert not at.exception, at.exception
    at.multiselect(key="transfer.models").set_value(["rf", "majority"])
    at.select_slider(key="transfer.image_size").set_value(32)
    at.button(key="transfer.train").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    at.file_uploader(key="predict.files").set_value(
        ("[x](mailto:b@evil.example).png", colour_images((200, 20, 20), 1)[0], "image/png")
    ).run()
    assert not at.exception, at.exception
    texts, charts = _texts(at), _charts(at)
    assert any("click me" in t for t in texts), "the class names should be shown (escaped), not dropped"
    for text in texts:
        for marker in (*RAW_MARKERS, "[x](mailto"):
            # the marker's first character unescaped (no backslash before it) would start Markdown / HTML
            assert not re.search(r"(?<!\\)" + re.escape(marker), text), f"unescaped user text: {text[:200]!r}"
    assert charts, "the run's charts were not drawn"
    for spec in charts:
        assert "<img" not in spec, "HTML from a class name reached a chart"
