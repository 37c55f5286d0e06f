"""Atomic file output: write to a temporary name in the same folder, then rename."""
import contextlib
import os
import tempfile

from cores.errors import OutputError


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    folder = os.path.dirname(os.path.abspath(path))
    base, ext = os.path.splitext(os.path.basename(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + base + ".", suffix=".tmp" + ext, dir=folder)
    except OSError as e:
        raise OutputError("cannot write %s: %s" % (path, e.strerror or e)) from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())    # mkstemp makes 0600: honour the umask instead
        os.replace(tmp, path)
    except OSError as e:                    # a full disk, a folder made read-only meanwhile
        raise OutputError("cannot write %s: %s" % (path, e.strerror or e)) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def atomic_save_npz(path, **arrays):
    """np.savez_compressed under a temporary name (numpy appends nothing: the name ends in .npz)."""
    import numpy as np
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def _missing_parents(folder):
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing, path = [], os.path.abspath(folder)
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def check_writable(*folders):
    """Write a probe file in each output folder now, so that a read-only or missing location
    stops a run before its work, not at its first save. Folders made for the probe are removed
    again: a run that stops early leaves no empty folders (every writer makes its own)."""
    for folder in folders:
        made = _missing_parents(folder)
        try:
            os.makedirs(folder, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
            os.close(fd)
            os.remove(probe)
            for path in made:
                try:
                    os.rmdir(path)
                except OSError:             # another process wrote into it meanwhile
                    break
        except OSError as e:
            raise OutputError("cannot write to %s: %s; choose another folder (e.g. --set "
                              "SNAPSHOT_PATH=... / CACHE_PATH=... / OUTPUT_PATH=...)"
                              % (folder, e.strerror or e)) from None


def save_config(cfg, path):
    """Write an effective config (cores/config.py) as JSON, atomically."""
    import json
    atomic_write_text(path, json.dumps(dict(cfg), indent=2, sort_keys=True) + "\n")
