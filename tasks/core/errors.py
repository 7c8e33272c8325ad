"""The one error type of crossdock.

Every failure a user can fix (a bad setting, a missing emulator, a registry that refuses credentials, a
guard a release does not pass) is a ``CrossdockError`` whose message says what is wrong and what to do.
``tasks.common.crossdock_task`` turns it into ``crossdock: error: <message>`` and exit code 1, in one place;
anything else is a bug in crossdock and keeps its traceback.
"""

from __future__ import annotations


class CrossdockError(Exception):
    """A problem the user can fix; the message names it and the fix."""
