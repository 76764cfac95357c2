"""A mistake the user can fix, told in one sentence."""


class UserError(Exception):
    """The command cannot do what was asked; the message says why in the project's own words
    and never holds a key."""
