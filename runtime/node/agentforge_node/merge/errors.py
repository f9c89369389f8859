"""One error type for everything the caller got wrong (bad inputs, bad parameters); its message names where."""
from __future__ import annotations


class MergeInputError(ValueError):
    """An input model or a merge parameter is unusable; nothing has been written when this is raised."""
