"""A generated block kept in a text file between two marker lines (the README's case list and catch
table): rewritten in place, or checked so that a test fails when it is out of date.

Standard library only.
"""
import sys

from stagekit_tools.jsonfile import write_text


def keep_between(path, begin, end, content, *, check, what, regenerate, tool):
    """Puts `content` between the lines `begin` and `end` of the file at `path`.

    With `check`, only compares: exit status 1 (saying to run `regenerate`) when the block differs.
    Returns 0 when up to date or rewritten, 1 when out of date under `check`, 2 when the markers are
    missing. `what` names the block in the messages; `tool` prefixes the errors.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if begin not in text or end not in text:
        print(f"{tool}: error: {path} lacks the markers {begin} and {end}", file=sys.stderr)
        return 2
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    updated = head + begin + "\n" + content + end + tail
    if updated == text:
        print(f"{path}: {what} up to date")
        return 0
    if check:
        print(f"{path}: the {what} is out of date; regenerate it with\n  {regenerate}",
              file=sys.stderr)
        return 1
    write_text(path, updated)
    print(f"{path}: {what} regenerated")
    return 0
