"""DSRG's seeded region growing (Huang et al., CVPR 2018, as its released code does it), and the
CRF worker task that refines a batch and grows its seeds in one pass. No MXNet here: this runs
in the CRF worker processes."""
import numpy as np
import scipy.ndimage as ndi

from cores import crf

EIGHT_CONNECTED = np.ones((3, 3), bool)


def grow_seeds(cues, probs, labels, fg_threshold=0.85, bg_threshold=0.99):
    """The seeds of one image grown on its refined probabilities: (C, H, W) 0/1.

    cues (C, H, W) 0/1, the original seeds (every call starts from them: growing is not
    cumulative); probs (C, H, W), the CRF's marginals; labels (C,) 0/1 with the background
    (class 0) set. A pixel is labelled c when c has the largest probability among the image's
    labels and that probability exceeds ``fg_threshold`` (and, for the background, also
    ``bg_threshold``); seeds keep their class unless such a label replaces it. A labelled
    pixel of c joins the seeds of c when its 8-connected component of c-labelled pixels holds
    a seed of c, unless it is the seed of exactly one other class."""
    cues = np.asarray(cues) > 0
    present = np.flatnonzero(np.asarray(labels) > 0.5)
    selected = np.asarray(probs)[present]
    best = present[selected.argmax(axis=0)]
    value = selected.max(axis=0)
    label_map = np.full(cues.shape[1:], -1, np.int64)
    for c in range(len(cues)):                     # where several seeds meet, the last wins
        label_map[cues[c]] = c
    confident = (value > fg_threshold) & ((best != 0) | (value > bg_threshold))
    label_map[confident] = best[confident]
    grown = cues.copy()
    seeded_once = cues.sum(axis=0) == 1
    for c in present:
        region = label_map == c
        components, _ = ndi.label(region, structure=EIGHT_CONNECTED)
        touching = np.unique(components[region & cues[c]])
        keep = np.isin(components, touching[touching > 0]) & ~(seeded_once & ~cues[c])
        grown[c] |= keep
    return grown.astype(np.float32)


def refine_and_grow(args):
    """Worker task: (floored log Q, grown seeds) of a chunk of a batch: images (N, H, W, 3)
    uint8, unaries, labels (N, C), cues (N, C, H, W), the CRF's parameters, its floor and the
    two thresholds. The seeds grow on Q floored and renormalised, as the constrain loss sees
    it."""
    images, unaries, labels, cues, params, min_prob, fg, bg = args
    log_q = crf.floored_log_q(crf.batch_crf(images, unaries, params), min_prob)
    q = np.exp(log_q)
    grown = np.stack([grow_seeds(c, p, lab, fg, bg) for c, p, lab in zip(cues, q, labels)])
    return log_q.astype(np.float32), grown


def batch_refine_and_grow(images, unaries, labels, cues, params, min_prob, fg, bg, pool=None):
    """``refine_and_grow`` over a batch, cut into contiguous chunks for a process pool of P
    workers (P + 1 chunks, the caller computing the first) as ``crf.batch_crf``."""
    if pool is None or len(unaries) < 2:
        return refine_and_grow((images, unaries, labels, cues, params, min_prob, fg, bg))
    parts = min(pool._max_workers + 1, len(unaries))
    bounds = np.linspace(0, len(unaries), parts + 1).astype(int)
    chunks = [(images[a:b], unaries[a:b], labels[a:b], cues[a:b], params, min_prob, fg, bg)
              for a, b in zip(bounds[:-1], bounds[1:])]
    futures = [pool.submit(refine_and_grow, chunk) for chunk in chunks[1:]]
    results = [refine_and_grow(chunks[0])] + [f.result() for f in futures]
    return (np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]))
