"""The session's wire: JSON request and reply lines on the server's stdin and stdout, and a deadline on every wait.

The harness writes one request line; the server answers one reply line, and a stdin run's stdout follows its reply
as raw bytes (the reply says how many). Both sides write through `_write_all`, which gives up at its deadline
instead of blocking on a full pipe, so neither a stalled program nor a stalled harness holds the other. `_PIPES`
is executed here and shipped, as text, inside the server (`server.py`), so it must import only the stdlib.
"""

from __future__ import annotations

from typing import Any


# Writing to a pipe against a deadline, on both sides of the session's pipes.
_PIPES = r'''
import os
import select
import time


def _write_all(fd, data, deadline=None):
    """Write everything to `fd` (non-blocking when a deadline is given); False if it could not in time."""
    view = memoryview(data)
    while view:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [fd], [], min(left, 0.5))[1]:
                if left <= 0:
                    return False
                continue
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue
        except OSError:
            return False
    return True
'''
_pipes: dict[str, Any] = {}
exec(compile(_PIPES, __name__ + "._PIPES", "exec"), _pipes)
_write_all = _pipes["_write_all"]
