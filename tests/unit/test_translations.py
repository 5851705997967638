"""Every message in the project has a Simplified Chinese translation, and the catalogue is sound.

Most users read the site in Chinese, so an English string that slipped through untranslated is a
bug a user sees. The first test extracts the messages afresh from a copy of the source (the
checkout itself is never written to) and fails with the list of msgids that still need Chinese.
"""

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO_RELATIVE = Path("locale/zh_Hans/LC_MESSAGES/django.po")
# What makemessages should see: the code and templates that ship, not tests, benches or venvs.
SOURCE_TREES = ["studio", "chat", "media_jobs", "playground", "templates", "locale"]
SOURCE_FILES = ["manage.py"]
SKIPPED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.mo", ".venv", "var", "tests", "bench", "node_modules"
)
# makemessages calls all of these (msgattrib for --no-obsolete).
GETTEXT_TOOLS = ["xgettext", "msguniq", "msgmerge", "msgattrib"]

NAMED_PERCENT = re.compile(r"%\([^)]*\)[#0 +\-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
POSITIONAL_PERCENT = re.compile(r"%[#0 +\-]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa]")
NAMED_BRACE = re.compile(r"\{[A-Za-z_]\w*(?:\.\w+|\[\w+\])*(?:![rsa])?(?::[^{}]*)?\}")
ANY_BRACE = re.compile(r"\{\w*(?:\.\w+|\[\w+\])*(?:![rsa])?(?::[^{}]*)?\}")


def require_gettext() -> None:
    missing = [tool for tool in GETTEXT_TOOLS if shutil.which(tool) is None]
    if not missing:
        return
    message = (
        f"GNU gettext is not installed ({', '.join(missing)} not on PATH), so the messages "
        "cannot be extracted. Install it: apt-get install gettext (Debian/Ubuntu), "
        "brew install gettext (macOS)."
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def copy_project(destination: Path) -> None:
    for name in SOURCE_TREES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, destination / name, ignore=SKIPPED)
    for name in SOURCE_FILES:
        shutil.copy2(ROOT / name, destination / name)


def read_catalogue(path: Path) -> Catalog:
    with path.open("rb") as po_file:
        return read_po(po_file)


def translations(message: Message) -> tuple[str, ...]:
    strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
    return tuple(text or "" for text in strings)


def describe(message: Message) -> str:
    msgid = message.id[0] if isinstance(message.id, (tuple, list)) else message.id
    where = ", ".join(f"{file}:{line}" for file, line in message.locations[:3])
    context = f" [context {message.context!r}]" if message.context else ""
    return f"  {msgid!r}{context}  ({where})"


def placeholders(text: str, flags: set[str]) -> Counter[str]:
    """The interpolation markers in text, which a translation must keep character for character."""
    found: Counter[str] = Counter()
    percent_text = text.replace("%%", "")
    found.update(NAMED_PERCENT.findall(percent_text))
    if "python-format" in flags:
        found.update(POSITIONAL_PERCENT.findall(NAMED_PERCENT.sub("", percent_text)))
    brace_text = text.replace("{{", "").replace("}}", "")
    brace = ANY_BRACE if "python-brace-format" in flags else NAMED_BRACE
    found.update(brace.findall(brace_text))
    return found


def test_every_message_has_a_chinese_translation(tmp_path: Path) -> None:
    require_gettext()
    copy_project(tmp_path)
    env = {
        **os.environ,
        "DJANGO_DOTENV": "0",
        "DJANGO_SETTINGS_MODULE": "studio.settings",
        # manage.py's own directory comes first on sys.path, so settings (and with them
        # LOCALE_PATHS, where the catalogue is written) are the copy's, never the checkout's.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"makemessages failed:\n{result.stdout}\n{result.stderr}"

    catalogue = read_catalogue(tmp_path / PO_RELATIVE)
    untranslated = [
        message
        for message in catalogue
        if message.id and (message.fuzzy or not all(s.strip() for s in translations(message)))
    ]
    assert not untranslated, (
        f"{len(untranslated)} message(s) have no Chinese translation (or only a fuzzy one) in "
        f"{PO_RELATIVE}. Run `manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var "
        "--ignore=tests --ignore=bench`, fill in every msgstr and remove the fuzzy flags:\n"
        + "\n".join(describe(message) for message in untranslated)
    )


def test_committed_catalogue_compiles_and_keeps_placeholders() -> None:
    catalogue = read_catalogue(ROOT / PO_RELATIVE)
    assert catalogue.num_plurals == 1, "Chinese has one plural form: nplurals=1; plural=0;"
    assert str(catalogue.locale) == "zh_Hans", "the header must say Language: zh_Hans"

    write_mo(BytesIO(), catalogue)  # raises on anything Django could not load

    broken = []
    for message in catalogue:
        if not message.id:
            continue
        flags = set(message.flags)
        ids = message.id if isinstance(message.id, (tuple, list)) else (message.id,)
        singular, plural = placeholders(ids[0], flags), placeholders(ids[-1], flags)
        for index, text in enumerate(translations(message)):
            if not text:
                continue  # missing translations are the other test's business
            expected = [plural] if catalogue.num_plurals == 1 or index > 0 else [singular, plural]
            got = placeholders(text, flags)
            if got not in expected:
                broken.append(
                    f"{describe(message)}\n    expects {sorted(expected[0].elements())}, "
                    f"msgstr has {sorted(got.elements())}: {text!r}"
                )
    assert not broken, "Translations that lose or change a placeholder:\n" + "\n".join(broken)
