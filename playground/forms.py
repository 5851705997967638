"""The playground's two forms: a legacy completion (upstream-api.md §3.2) and embeddings (§3.4).

Fields that mirror a relay parameter keep the relay's name; absent optional fields are not sent,
so the relay's defaults apply.
"""

from typing import Any

from django import forms
from django.utils import formats
from django.utils.translation import gettext_lazy as _

DEFAULT_COMPLETION_MODEL = "gpt-3.5-turbo-instruct"
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"

PROMPT_MAX_CHARS = 100_000
STOP_MAX = 4
STOP_MAX_LENGTH = 100

EMBED_MAX_LINES = 64
EMBED_LINE_MAX_CHARS = 8_000
EMBED_TOTAL_MAX_CHARS = 100_000
DIMENSIONS_MAX = 3072


class CompletionForm(forms.Form):
    model = forms.CharField(
        label=_("Model"),
        max_length=200,
        initial=DEFAULT_COMPLETION_MODEL,
        widget=forms.TextInput(
            attrs={"list": "completion-models", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=PROMPT_MAX_CHARS,
        strip=False,  # a completion continues the text exactly: a trailing space matters
        error_messages={"required": _("Type a prompt first.")},
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("The model continues this text. Ctrl+Enter (⌘+Enter) sends it."),
    )
    max_tokens = forms.IntegerField(
        label=_("Max tokens"), min_value=1, max_value=128000, initial=256
    )
    temperature = forms.FloatField(label=_("Temperature"), required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(label=_("Top P"), required=False, min_value=0, max_value=1)
    stop = forms.CharField(
        label=_("Stop sequences"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("One per line, up to 4. Write \\n for a line break."),
    )
    echo = forms.BooleanField(
        label=_("Include the prompt in the output"), required=False, initial=False
    )

    def clean_prompt(self) -> str:
        prompt: str = self.cleaned_data["prompt"]
        if not prompt.strip():
            raise forms.ValidationError(_("Type a prompt first."))
        return prompt

    def clean_model(self) -> str:
        return str(self.cleaned_data["model"]).strip()

    def clean_stop(self) -> list[str]:
        raw: str = self.cleaned_data.get("stop") or ""
        lines = [_unescape(line) for line in raw.splitlines() if line.strip()]
        if len(lines) > STOP_MAX:
            raise forms.ValidationError(_("At most 4 stop sequences."))
        if any(len(line) > STOP_MAX_LENGTH for line in lines):
            raise forms.ValidationError(_("A stop sequence is at most 100 characters."))
        return lines

    def params(self) -> dict[str, Any]:
        """The relay parameters besides model and prompt (unset ones are left out)."""
        data = self.cleaned_data
        params: dict[str, Any] = {"max_tokens": data["max_tokens"]}
        for name in ("temperature", "top_p"):
            if data.get(name) is not None:
                params[name] = data[name]
        if data.get("stop"):
            params["stop"] = data["stop"]
        if data.get("echo"):
            params["echo"] = True
        return params


def _unescape(line: str) -> str:
    """A stop line as typed: "\\n" and "\\t" stand for a line break and a tab."""
    return line.replace("\\n", "\n").replace("\\t", "\t")


class EmbeddingForm(forms.Form):
    model = forms.CharField(
        label=_("Model"),
        max_length=200,
        initial=DEFAULT_EMBEDDING_MODEL,
        widget=forms.TextInput(
            attrs={"list": "embedding-models", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    input = forms.CharField(
        label=_("Texts"),
        max_length=EMBED_TOTAL_MAX_CHARS,
        error_messages={"required": _("Type at least one text.")},
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_(
            "One text per line, up to 64 lines; empty lines are skipped. "
            "Ctrl+Enter (⌘+Enter) sends them."
        ),
    )
    dimensions = forms.IntegerField(
        label=_("Dimensions"),
        required=False,
        min_value=1,
        max_value=DIMENSIONS_MAX,
        help_text=_("Optional; only text-embedding-3 models can shorten their vectors."),
    )

    def clean_model(self) -> str:
        return str(self.cleaned_data["model"]).strip()

    def clean_input(self) -> list[str]:
        raw: str = self.cleaned_data["input"]
        texts = [line.strip() for line in raw.splitlines() if line.strip()]
        if not texts:
            raise forms.ValidationError(_("Type at least one text."))
        if len(texts) > EMBED_MAX_LINES:
            raise forms.ValidationError(
                _("At most %(max)d texts at once; this has %(count)d.")
                % {"max": EMBED_MAX_LINES, "count": len(texts)}
            )
        too_long = [n for n, text in enumerate(texts, start=1) if len(text) > EMBED_LINE_MAX_CHARS]
        if too_long:
            raise forms.ValidationError(
                _("Text %(number)d is longer than %(max)s characters.")
                % {
                    "number": too_long[0],
                    "max": formats.number_format(EMBED_LINE_MAX_CHARS, force_grouping=True),
                }
            )
        return texts
