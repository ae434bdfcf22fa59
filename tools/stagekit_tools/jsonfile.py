"""Reading a JSON document and writing a text file, with errors that name the file.

Every reader of the tools (benchmark results, conformance results) goes through `read_json`, so a
missing, unreadable or malformed file is reported the same way everywhere.  Standard library only.
"""
import json


def read_json(path, error):
    """The JSON document at path; raises `error` (an Exception class) with a message naming the
    file when it is absent, unreadable or not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON: {exc}") from None


def write_json(path, doc):
    """Write doc as indented JSON with a final newline (--json outputs of the commands)."""
    write_text(path, json.dumps(doc, indent=2) + "\n")


def write_text(path, text):
    """Write text (UTF-8) to path; OSError propagates to the caller, which names the path."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
