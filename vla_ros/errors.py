"""The base of every error that means "the input is wrong", as opposed to a bug.

The command line prints such an error as one line naming the file or field and what to do, and exits
with status 2; anything else is a bug and keeps its traceback. Kept free of imports so the command
line can know the class before any heavy module loads.
"""

from __future__ import annotations


class UserInputError(Exception):
    """A file, field, image, instruction or option the user gave cannot be used; the message says why."""
