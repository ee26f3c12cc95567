"""Matplotlib set-up shared by every chart: headless backend, and category names readable without a CJK
font."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from libra_train.data.taxonomy import english_names  # noqa: E402

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei", "SimHei", "Source Han Sans SC")


def _register_packaged_cjk_font() -> None:
    """The Noto Sans CJK SC that the mplfonts package ships (a dependency), found without importing it:
    most machines, CI and containers have no CJK font installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mplfonts")
    if spec and spec.origin:
        font = Path(spec.origin).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
        if font.exists():
            font_manager.fontManager.addfont(str(font))


def _cjk_font() -> str | None:
    available = {f.name for f in font_manager.fontManager.ttflist}
    if not any(name in available for name in CJK_FONTS):
        _register_packaged_cjk_font()
        available = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in available), None)


_FONT = _cjk_font()
if _FONT:
    plt.rcParams["font.sans-serif"] = [_FONT, "DejaVu Sans"]


def display_name(name: str) -> str:
    """Chinese where a CJK font is installed, else an English alias (never tofu boxes)."""
    if _FONT or name.isascii():
        return name
    return english_names().get(name, name.encode("unicode_escape").decode()[:12])


def unit_axes(ax, xlabel: str, ylabel: str, title: str, legend: str, top: float = 1.0) -> None:
    """Axes over [0, top]² for probabilities and rates: labels, a small title and legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_title(title, fontsize=9)
    ax.legend(loc=legend, fontsize=7)


def save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
