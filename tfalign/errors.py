"""The error a user can fix: a bad option, file or request.

Where input is checked, ``UserError`` is raised with one line that names the
option, file or field and what was expected; the commands print that line
and exit 2 (tfalign.cli.run). Anything else that escapes is a bug and keeps
its traceback. ``UserError`` is a ``ValueError``, so library callers that
catch ValueError keep working.
"""


class UserError(ValueError):
    """Bad input: the message is one line naming what is wrong.

    ``field``: the argument or config field the message starts with (as a
    Python caller spells it: ``decoding``, ``base_dir``); the command line
    shows it as its flag (``--decoding``, ``--base-dir``) where it has one.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def first_line(error: BaseException, default: str = "") -> str:
    """The first non-empty line of an exception's message (TensorFlow's ``message``
    or ``str``), for quoting a library's error inside one line of ours."""
    text = str(getattr(error, "message", None) or error)
    return next((line.strip() for line in text.splitlines() if line.strip()), default or type(error).__name__)
