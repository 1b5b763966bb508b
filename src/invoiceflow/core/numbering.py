"""Document number patterns such as `INV-{YYYY}-{SEQ:05}` (pure functions, no database).

Tokens: {YYYY} and {YY} (year of the issue date), {MM}, {SEQ} or {SEQ:0N} (zero-padded counter).
When a pattern has a year token, the counter restarts every year; otherwise it never restarts.
"""

from __future__ import annotations

import re
from datetime import date

_TOKEN = re.compile(r"\{([A-Z]+)(?::0(\d))?\}")
_ALLOWED = {"YYYY", "YY", "MM", "SEQ"}
_LITERAL = re.compile(r"^[A-Za-z0-9/_.#-]*$")


class PatternError(ValueError):
    pass


def validate_pattern(pattern: str) -> str:
    tokens = _TOKEN.findall(pattern)
    names = [t[0] for t in tokens]
    if names.count("SEQ") != 1:
        raise PatternError("the pattern needs exactly one {SEQ} or {SEQ:0N} token")
    unknown = set(names) - _ALLOWED
    if unknown:
        raise PatternError(f"unknown token(s): {', '.join(sorted(unknown))}")
    for name, width in tokens:
        if width and name != "SEQ":
            raise PatternError("only {SEQ} takes a width")
    literal = _TOKEN.sub("", pattern)
    if "{" in literal or "}" in literal or not _LITERAL.match(literal):
        raise PatternError("literal parts may only contain letters, digits and / _ . # -")
    if "MM" in names and "YYYY" not in names and "YY" not in names:
        raise PatternError("{MM} needs a year token as well")
    return pattern


def period_for(pattern: str, issue_date: date) -> str:
    """The counter period: the counter restarts per year (or per month) when the pattern shows it."""
    names = {t[0] for t in _TOKEN.findall(pattern)}
    if "MM" in names:
        return f"{issue_date.year:04d}-{issue_date.month:02d}"
    if "YYYY" in names or "YY" in names:
        return f"{issue_date.year:04d}"
    return ""


def format_number(pattern: str, issue_date: date, seq: int) -> str:
    def repl(match: re.Match[str]) -> str:
        name, width = match.group(1), match.group(2)
        if name == "YYYY":
            return f"{issue_date.year:04d}"
        if name == "YY":
            return f"{issue_date.year % 100:02d}"
        if name == "MM":
            return f"{issue_date.month:02d}"
        return str(seq).zfill(int(width)) if width else str(seq)

    return _TOKEN.sub(repl, pattern)


def split_pattern(pattern: str, issue_date: date) -> tuple[str, int, str]:
    """(text before the counter, counter width, text after it), with the date tokens filled in.

    Lets the database format the number in the same statement that takes the counter.
    """
    match = next(m for m in _TOKEN.finditer(pattern) if m.group(1) == "SEQ")
    width = int(match.group(2)) if match.group(2) else 0
    before = format_number(pattern[: match.start()], issue_date, 0)
    after = format_number(pattern[match.end() :], issue_date, 0)
    return before, width, after
