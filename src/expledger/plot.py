"""`exp plot`: step metrics of several runs overlaid, one panel per metric, into a PNG.

matplotlib is an optional dependency (`pip install 'expledger[plot]'`) loaded only here,
with the headless Agg backend. Names in Chinese (or Japanese, Korean) are drawn with a CJK
font when one is installed (Debian: fonts-noto-cjk); without one, a single warning says so
instead of a stream of missing-glyph warnings.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from unicodedata import east_asian_width

from .errors import BadInput, MissingExtra
from .models import Experiment


def draw(runs: list[tuple[Experiment, dict]], *, metrics: list[str], path: str) -> list[str]:
    """Plot `metrics` (default: every logged one) for each (experiment, steps); returns the metrics drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra("plotting needs matplotlib: pip install 'expledger[plot]'") from None
    texts = [f"{exp.id} {exp.name}" for exp, _ in runs] + list(metrics) + [n for _, s in runs for n in s]
    wide = any(east_asian_width(ch) in "WF" for text in texts for ch in text)
    font = cjk_font() if wide else None
    boxes = wide and font is None  # CJK text and no font for it: warn once, not once per glyph
    if wide:
        if font:
            plt.rcParams["font.family"] = ["DejaVu Sans", font]  # per-glyph fallback to the CJK font
        else:
            logging.getLogger("expledger").warning(
                "no font with Chinese/Japanese/Korean glyphs is installed, so those characters show as boxes "
                "(Debian/Ubuntu: apt install fonts-noto-cjk)")
    names = metrics or list(dict.fromkeys(name for _, series in runs for name in series))
    if not names:
        raise BadInput("nothing to plot: none of these runs logged step metrics (run.log(...) in the Python API)")
    missing = [name for name in names if not any(name in series for _, series in runs)]
    if missing:
        raise BadInput(f"no run logged {', '.join(missing)}; logged: "
                       f"{', '.join(sorted({n for _, s in runs for n in s})) or 'nothing'}")
    columns = min(2, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 4 * rows), squeeze=False)
    for panel, name in zip(axes.flat, names):
        for exp, series in runs:
            if name in series:
                steps, values = series[name]
                panel.plot(steps, [float(v) for v in values], label=f"{exp.id} {exp.name}"[:40], linewidth=1.2)
        panel.set_title(name)
        panel.set_xlabel("step")
        panel.grid(alpha=0.3)
        panel.legend(fontsize="small")
    for panel in list(axes.flat)[len(names):]:
        panel.set_visible(False)
    with _glyph_warnings_hidden(boxes):
        figure.tight_layout()
    try:
        with _glyph_warnings_hidden(boxes):
            figure.savefig(path, dpi=100)
    except OSError as err:
        raise BadInput(f"cannot write {path}: {err.strerror}") from None
    finally:
        plt.close(figure)
    return names


@contextlib.contextmanager
def _glyph_warnings_hidden(hidden: bool):
    with warnings.catch_warnings():
        if hidden:
            warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        yield


# Families that carry CJK glyphs, most complete first.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP", "Noto Sans CJK KR", "Source Han Sans SC",
                "Source Han Sans", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback",
                "AR PL UMing CN", "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Noto Serif CJK SC")


def cjk_font() -> str | None:
    """An installed family with CJK glyphs, or None. Looks past matplotlib's font cache
    once, since a font installed after the cache was built is not in it."""
    from matplotlib import font_manager

    def known() -> str | None:
        names = {font.name for font in font_manager.fontManager.ttflist}
        return next((family for family in CJK_FAMILIES if family in names), None)

    found = known()
    if found is None:
        for path in font_manager.findSystemFonts():
            if any(word in path for word in ("CJK", "wqy", "DroidSansFallback", "SourceHanSans", "uming")):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = known()
    return found
