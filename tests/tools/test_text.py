"""Issue 10, row 14: tools.terminal_safe strips what a terminal would act on from untrusted text."""

from __future__ import annotations

import pytest

from tools import terminal_safe

ESC = "\x1b"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (f"{ESC}[31mred{ESC}[0m.txt", "red.txt"),  # SGR colour
        (f"a{ESC}[2Jb", "ab"),  # clear screen
        (f"{ESC}]0;pwned title\x07notes.md", "notes.md"),  # window title, BEL-terminated OSC
        (f"{ESC}]52;c;ZWNobyBoaQ=={ESC}\\x.txt", "x.txt"),  # clipboard write, ST-terminated
        (f"{ESC}]8;;https://evil.example{ESC}\\click{ESC}]8;;{ESC}\\", "click"),  # hidden hyperlink
        (f"{ESC}]0;unterminated", ""),  # swallowed to the end, as a terminal would
        (f"{ESC}P1$r{ESC}\\ok", "ok"),  # DCS
        ("\x9b31mc1\x9d0;t\x07.txt", "c1.txt"),  # 8-bit CSI and OSC
        (f"{ESC}cafter reset", "after reset"),  # RIS
        ("over\rwrite", "over write"),  # carriage return would overwrite the line
        ("bell\x07 back\x08space del\x7f", "bell backspace del"),
        ("txt.\u202eexe.doc", "txt.exe.doc"),  # right-to-left override
        ("two\nlines\tand tab", "two lines and tab"),
        ("Café ☕ 東京.md", "Café ☕ 東京.md"),  # ordinary text untouched
    ],
)
def test_control_sequences_are_removed(raw: str, shown: str) -> None:
    assert terminal_safe(raw) == shown


def test_newlines_can_be_kept_but_not_carriage_returns() -> None:
    assert terminal_safe("line one\r\nline\ttwo\rX", keep_newlines=True) == "line one\nline\ttwoX"


def test_nothing_a_terminal_acts_on_survives() -> None:
    hostile = "".join(chr(c) for c in range(0xA0)) * 3 + ESC + "[" + "1;" * 10_000
    cleaned = terminal_safe(hostile, keep_newlines=True)
    assert set(cleaned) <= {chr(c) for c in range(0x20, 0x7F)} | {"\n", "\t"}
    assert ESC not in cleaned and "\x9b" not in cleaned
