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


def check_writable(*folders):
    """Create each output folder and write a probe file in it now, so that a read-only or
    missing location stops a run before its work, not at its first save."""
    for folder in folders:
        try:
            os.makedirs(folder, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
            os.close(fd)
            os.remove(probe)
        except OSError as e:
            raise OutputError("cannot write to %s: %s; choose another folder (e.g. --set "
                              "SNAPSHOT_PATH=... / CACHE_PATH=... / OUTPUT_PATH=...)"
                              % (folder, e.strerror or e)) from None
