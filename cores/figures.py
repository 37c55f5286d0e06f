"""Figures made with matplotlib (headless, written atomically): a stage's loss curves, the
quality benchmark's grouped bars, the speed benchmark's images/s per stage."""
import numpy as np

from cores.io import atomic_path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    _pyplot().close(fig)


def loss_curves(path, history, keys, epoch_size=None, log_scale=False, window=20):
    """Each loss per iteration (light) and its ``window``-iteration moving average, with the
    learning-rate steps (dashed) and the snapshot epochs (dotted) marked; 800x450 px."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if history:
        iters = np.array([h["iter"] for h in history], float)
        for n, key in enumerate(keys):
            values = np.array([h[key] for h in history], float)
            colour = "C%d" % n
            ax.plot(iters, values, color=colour, alpha=0.25, linewidth=0.8)
            w = min(window, len(values))
            smooth = np.convolve(values, np.ones(w) / w, mode="valid")
            ax.plot(iters[w - 1:], smooth, color=colour, linewidth=1.8, label=key)
        lrs = [h["lr"] for h in history]
        for i in range(1, len(lrs)):
            if lrs[i] < lrs[i - 1] * 0.5:          # a step (not the warm-up ramp)
                ax.axvline(iters[i], color="k", linestyle="--", linewidth=0.8)
                ax.annotate("lr %.0e" % lrs[i], (iters[i], 1.0),
                            xycoords=("data", "axes fraction"), fontsize=8,
                            ha="left", va="top")
        if epoch_size:
            for e in range(int(iters[0] // epoch_size) + 1, int(iters[-1] // epoch_size) + 1):
                ax.axvline(e * epoch_size, color="grey", linestyle=":", linewidth=0.8)
        ax.legend(loc="upper right")
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("iteration (dotted: snapshots; dashed: learning-rate steps)")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def grouped_bars(path, groups, series, values, ylabel, title=""):
    """One group of bars per entry of ``groups`` (e.g. variants), one bar per ``series`` (e.g.
    all-bg, cues, SEC, ...); ``values[g][s]`` (None: no bar)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 2), 4.5))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for s, name in enumerate(series):
        heights = [values[g][s] if values[g][s] is not None else np.nan
                   for g in range(len(groups))]
        ax.bar(x + (s - (len(series) - 1) / 2) * width, heights, width, label=name)
    top = np.nanmax([[v if v is not None else np.nan for v in row] for row in values])
    ax.set_ylim(0, (top if np.isfinite(top) and top > 0 else 1.0) * 1.3)   # room for the legend
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, ncol=min(3, len(series)))
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
