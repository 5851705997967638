"""Validation of a conversation's model, system prompt and generation parameters.

The same form checks the settings panel (HTTP) and the `params` of a websocket `send` frame.
"""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

LIMITS: dict[str, tuple[float, float]] = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "max_tokens": (1, 128000),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
}
STOP_MAX = 4
STOP_MAX_LENGTH = 100
PARAM_NAMES = (*LIMITS, "stop")


class ConversationSettingsForm(forms.Form):
    model = forms.CharField(label=_("Model"), max_length=200, required=False)
    system_prompt = forms.CharField(
        label=_("System prompt"), max_length=20000, required=False, widget=forms.Textarea
    )
    temperature = forms.FloatField(label=_("Temperature"), required=False, min_value=0, max_value=2)
    top_p = forms.FloatField(label=_("Top P"), required=False, min_value=0, max_value=1)
    max_tokens = forms.IntegerField(
        label=_("Max tokens"), required=False, min_value=1, max_value=128000
    )
    presence_penalty = forms.FloatField(
        label=_("Presence penalty"), required=False, min_value=-2, max_value=2
    )
    frequency_penalty = forms.FloatField(
        label=_("Frequency penalty"), required=False, min_value=-2, max_value=2
    )
    stop = forms.CharField(
        label=_("Stop sequences"),
        required=False,
        widget=forms.Textarea,
        help_text=_("One per line, up to 4."),
    )

    def clean_stop(self) -> list[str]:
        raw: str = self.cleaned_data.get("stop") or ""
        lines = [line for line in raw.splitlines() if line.strip()]
        if len(lines) > STOP_MAX:
            raise forms.ValidationError(_("At most 4 stop sequences."))
        if any(len(line) > STOP_MAX_LENGTH for line in lines):
            raise forms.ValidationError(_("A stop sequence is at most 100 characters."))
        return lines

    def params(self) -> dict[str, Any]:
        """The generation parameters that were set (absent ones use the relay's defaults)."""
        data = self.cleaned_data
        params = {name: data[name] for name in LIMITS if data.get(name) is not None}
        if data.get("stop"):
            params["stop"] = data["stop"]
        return params


def validate_params(raw: object) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Check a `params` object from a websocket frame: (params, errors)."""
    if not isinstance(raw, dict):
        return {}, {"params": [str(_("Parameters must be an object."))]}
    data = {name: raw.get(name) for name in LIMITS if raw.get(name) not in (None, "")}
    stop = raw.get("stop")
    if isinstance(stop, list):
        data["stop"] = "\n".join(str(item) for item in stop)
    elif isinstance(stop, str):
        data["stop"] = stop
    form = ConversationSettingsForm(data)
    if not form.is_valid():
        return {}, {field: [str(e) for e in errors] for field, errors in form.errors.items()}
    return form.params(), {}
