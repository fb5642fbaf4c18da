"""Untrusted text made safe to print on a terminal.

A file name, page title or snippet can carry escape sequences: ``ESC ] 52 ; …`` writes the
clipboard, ``ESC ] 8 ; …`` hides a link behind innocent text, ``ESC [ 2 J`` clears the screen, a
bare ``\\r`` overwrites what was printed, and Unicode bidi overrides reorder what the eye reads.
:func:`terminal_safe` removes all of them (issue 10, row 14).
"""

from __future__ import annotations

import re

__all__ = ["terminal_safe"]

# Whole escape sequences first, so their parameters do not survive as visible junk: CSI (ESC [ or
# 8-bit 0x9b) with its parameters; OSC, DCS, SOS, PM and APC strings up to their terminator (BEL or
# ST; an unterminated one runs to the end of the text, as a terminal would swallow it); then any
# other two-character ESC sequence. Every class is negated or bounded: matching is linear.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# What is left: C0 controls but tab and newline, DEL, C1 controls, and the bidi embeddings,
# overrides and isolates (U+202A-U+202E, U+2066-U+2069).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"[\t\n\r\x0b\x0c\x85\u2028\u2029]+")


def terminal_safe(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` without escape sequences, control characters or bidi overrides.

    By default the result is one line (tabs and line breaks become a space): for names and titles.
    With ``keep_newlines``, ``\\n`` and tab are kept (for snippets and answers); ``\\r`` never is.
    """
    if not keep_newlines:
        text = _LINE_BREAKS.sub(" ", text)
    return _CONTROL.sub("", _SEQUENCE.sub("", text.replace("\r\n", "\n")))
