"""Atomic file output: write to a temporary name in the same folder, then rename."""
import contextlib
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix="." + base + ".", suffix=".tmp" + ext, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())    # mkstemp makes 0600: honour the umask instead
        os.replace(tmp, path)
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
