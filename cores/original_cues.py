"""The SEC authors' released localization cues (``localization_cues.pickle.gz`` with
``input_list.txt``, docs/method.md §3) converted once into the project's cue format.

The file is a Python 2 pickle: it is read with a restricted unpickler that admits only the
numpy classes needed to rebuild arrays, so a tampered file cannot run code.
"""
import gzip
import io
import os
import pickle

import numpy as np

from cores.cues import CueFileError, save_cues

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
            ("numpy", "dtype")}


class RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds dicts, strings, ints and numpy arrays; refuses every other global."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError("refused to load %s.%s from the cue file (only numpy "
                                     "arrays, ints and dicts are allowed)" % (module, name))


def restricted_load(path):
    """The object in a (gzipped) Python 2 pickle, through RestrictedUnpickler."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()


def read_input_list(path):
    """{index: image id} from lines '<image file> <index>'."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                name, index = line.split()
                out[int(index)] = os.path.splitext(os.path.basename(name))[0]
    return out


def convert_original_cues(pickle_path, list_path, out_path, size=41):
    """Write the authors' cues as a project cue file; returns ({id: (3, M)}, {id: labels})."""
    for p in (pickle_path, list_path):
        if not os.path.isfile(p):
            raise CueFileError("not found: %s (localization_cues.pickle.gz and input_list.txt "
                               "ship with the SEC authors' release, training/localization_cues/"
                               ")" % p)
    try:
        table = restricted_load(pickle_path)
    except Exception as e:  # an UnpicklingError from a refused class, a truncated file
        raise CueFileError("cannot read %s: %s" % (pickle_path, e)) from None
    if not isinstance(table, dict):
        raise CueFileError("%s does not hold a dict" % pickle_path)
    names = read_input_list(list_path)
    cue_set, labels = {}, {}
    for index, image_id in names.items():
        key = "%d_cues" % index
        if key not in table:
            raise CueFileError("%s has no %s for %s" % (pickle_path, key, image_id))
        cue_set[image_id] = np.asarray(table[key], dtype=np.int64).reshape(3, -1)
        labels[image_id] = np.asarray(table["%d_labels" % index], dtype=np.int64).ravel()
    save_cues(out_path, cue_set, size, labels)
    return cue_set, labels
