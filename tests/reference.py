"""float64 numpy evaluations of the spec's formulas (docs/method.md §4), for the tests."""
import numpy as np


def softmax_with_floor(f, min_prob=1e-4):
    e = np.exp(f - f.max(axis=1, keepdims=True))
    s = e / e.sum(axis=1, keepdims=True)
    return (s + min_prob) / (1 + f.shape[1] * min_prob)


def seed_loss(p, cues):
    per = [np.sum(cues[n] * np.log(p[n])) / max(cues[n].sum(), 1) for n in range(len(p))]
    return -np.mean(per)


def gwrp(x, q):
    x = np.sort(x.ravel())[::-1]
    w = q ** np.arange(x.size)
    return np.sum(w * x) / np.sum(w)


def expand_loss(p, labels, q_fg=0.996, q_bg=0.999):
    total = []
    for n in range(len(p)):
        y = labels[n, 1:] > 0.5
        fg = p[n, 1:]
        present = [np.log(gwrp(fg[c], q_fg)) for c in np.flatnonzero(y)]
        absent = [np.log(1 - fg[c].max()) for c in np.flatnonzero(~y)]
        term = (np.sum(present) / max(len(present), 1) + np.sum(absent) / max(len(absent), 1)
                + np.log(gwrp(p[n, 0], q_bg)))
        total.append(term)
    return -np.mean(total)


def constrain_loss(p, log_q):
    q = np.exp(log_q)
    return np.mean(np.sum(q * np.log(q / p), axis=1))


def balanced_seed_loss(p, cues, floor=1e-4):
    """DSRG's: background and foreground seeds each normalised by their own count."""
    bg = [np.sum(cues[n, 0] * np.log(p[n, 0])) / max(cues[n, 0].sum(), floor)
          for n in range(len(p))]
    fg = [np.sum(cues[n, 1:] * np.log(p[n, 1:])) / max(cues[n, 1:].sum(), floor)
          for n in range(len(p))]
    return -np.mean(bg) - np.mean(fg)


def clipped_constrain_loss(p, log_q, low=0.05, high=20.0):
    q = np.exp(log_q)
    return np.mean(np.sum(q * np.log(np.clip(q / p, low, high)), axis=1))
