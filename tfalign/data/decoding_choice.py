"""How an aligner decodes: the one home of the decoding names, the default,
"auto" and the rule that exact decoding needs a decoder without history.

Greedy decoding takes the most probable action at each step (the paper's);
exact decoding finds the best complete path over the lattice of cursor
positions (dp/lattice.py), which only a decoder that reads nothing but its
cursors has: a decoder with history (the paper's action and matched stacks)
makes every path's scores depend on the path so far. "auto", in a training
config only, selects checkpoints decoded exactly and decodes the test split and
the export with whichever of the two is better on validation.
"""

from __future__ import annotations

import enum

from tfalign.errors import UserError


class Decoding(str, enum.Enum):
    """A decoding: ``Decoding.GREEDY``, ``Decoding.EXACT`` or (configs only) ``Decoding.AUTO``.

    The checks return plain strings ("greedy", "exact"), which is what configs,
    JSON files and SavedModel signatures hold.

    Example:
    >>> Decoding.check("exact", history=False)
    'exact'
    >>> Decoding.available(history=True)
    ('greedy',)
    """

    GREEDY = "greedy"
    EXACT = "exact"
    AUTO = "auto"

    @classmethod
    def names(cls, auto: bool = False) -> tuple[str, ...]:
        """The decodings' names: ("greedy", "exact"), with "auto" if ``auto``."""
        return tuple(d.value for d in cls if auto or d is not cls.AUTO)

    @classmethod
    def available(cls, history: bool) -> tuple[str, ...]:
        """The decodings a decoder can run: greedy, and exact without history."""
        return (cls.GREEDY.value,) if history else cls.names()

    @classmethod
    def default(cls, history: bool) -> str:
        """Exact where the decoder allows it (the best complete path), else greedy."""
        return cls.available(history)[-1]

    @classmethod
    def check(cls, decoding, history: bool, field: str = "decoding", auto: bool = False, model: str = "") -> str:
        """``decoding`` as a plain name if it is one and the decoder can run it; else a
        UserError naming ``field`` (``model`` names the model in the message).

        Args:
            decoding: a name ("greedy", "exact", "auto") or a ``Decoding``.
            history: whether the decoder keeps the paper's history stacks.
            field: the field or flag named in an error.
            auto: whether "auto" is allowed (a training config's choice).
            model: what to call the model in an error, e.g. an experiment's name.
        """
        value = decoding.value if isinstance(decoding, cls) else decoding
        if value not in cls.names(auto):
            raise UserError(f"{field}: expected one of {list(cls.names(auto))}, got {decoding!r}", field=field)
        if history and value != cls.GREEDY.value:
            owner = f"{model} has" if model else "this model has"
            raise UserError(f"{field}: {value!r} needs a decoder without history (model.history=False), "
                            f"and {owner} one; only greedy decoding applies", field=field)
        return value
