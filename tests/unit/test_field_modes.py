"""Which job-form fields apply to which mode (JobKind.field_modes, shown and hidden by
static/js/job-form.js): every name is a real field of the kind's form and every mode a real
choice of its mode field, so renaming either fails here; and a form sent with the fields its
mode does not use left out (the page disables them) never has an error on one of them."""

from typing import Any

import pytest
from django import forms
from django.http import QueryDict

from media_jobs.kinds import JobKind, registry
from media_jobs.kinds import stability as stability_kind
from media_jobs.views import _with_unused_defaults
from studio.upstream import cogvideox, flux

KINDS = registry()
WITH_MODES = sorted(slug for slug, kind in KINDS.items() if kind.field_modes)
# The kinds whose forms have fields for some modes only, and the field that picks the mode.
EXPECTED_MODE_FIELDS = {
    "midjourney": "mode",
    "stt": "mode",
    "kling": "source",
    "luma": "mode",
    "suno": "mode",
    "flux": "model",
    "ideogram": "mode",
    "stability": "mode",
    "recraft": "mode",
    "cogvideox": "model",
    "viggle": "mode",
}


def mode_values(kind: JobKind) -> list[str]:
    field = kind.form_class.base_fields[kind.mode_field]
    assert isinstance(field, forms.ChoiceField), f"{kind.slug}: {kind.mode_field} is no choice"
    choices: Any = field.choices  # a list of (value, label) here: no groups, no callables
    return [str(value) for value, _label in choices]


def test_the_kinds_with_mode_specific_fields_declare_them():
    assert WITH_MODES == sorted(EXPECTED_MODE_FIELDS)
    for slug, mode_field in EXPECTED_MODE_FIELDS.items():
        assert KINDS[slug].mode_field == mode_field, slug


@pytest.mark.parametrize("slug", WITH_MODES)
def test_field_modes_name_real_fields_and_real_modes(slug):
    kind = KINDS[slug]
    fields = kind.form_class.base_fields
    assert kind.mode_field in fields, f"{slug}: no field {kind.mode_field!r}"
    values = mode_values(kind)
    for name, modes in kind.field_modes.items():
        assert name in fields, f"{slug}: field_modes names {name!r}, not a field of the form"
        assert name != kind.mode_field, f"{slug}: the mode field itself always shows"
        assert isinstance(modes, tuple) and modes, f"{slug}.{name}: give a non-empty tuple"
        assert all(isinstance(mode, str) for mode in modes), f"{slug}.{name}: modes are strings"
        assert len(set(modes)) == len(modes), f"{slug}.{name}: a mode listed twice"
        unknown = set(modes) - set(values)
        assert not unknown, f"{slug}.{name}: {sorted(unknown)} not choices of {kind.mode_field}"
        # A field for every mode belongs out of the mapping: it always shows.
        assert set(modes) != set(values), f"{slug}.{name}: used in every mode, leave it out"


@pytest.mark.parametrize("slug", WITH_MODES)
def test_a_required_field_that_can_be_hidden_has_a_default(slug):
    """The page does not send a hidden field; the view fills in its default, which a required
    field must have. A hidden file field is simply not uploaded, so it cannot be required."""
    kind = KINDS[slug]
    for name in kind.field_modes:
        field = kind.form_class.base_fields[name]
        if isinstance(field, forms.FileField):
            assert not field.required, f"{slug}.{name}: a mode-specific upload is required"
        elif field.required and not isinstance(field, forms.BooleanField):
            assert field.initial is not None, f"{slug}.{name}: required, with no default"


def sent_by_the_page(kind: JobKind, mode: str) -> QueryDict:
    """What the page sends in `mode` with every field left as it was drawn: the defaults of
    the fields the mode uses; the others are disabled, so missing."""
    data = QueryDict(mutable=True)
    data[kind.mode_field] = mode
    for name, field in kind.form_class.base_fields.items():
        hidden = name in kind.field_modes and mode not in kind.field_modes[name]
        if name == kind.mode_field or hidden or isinstance(field, forms.FileField):
            continue
        initial: Any = field.initial
        if isinstance(field, forms.BooleanField):
            if initial:
                data[name] = "on"
        elif initial is not None:
            data[name] = str(initial)
    return data


@pytest.mark.parametrize(
    ("slug", "mode"),
    [(slug, mode) for slug in WITH_MODES for mode in mode_values(KINDS[slug])],
)
def test_no_error_on_a_field_the_mode_does_not_use(slug, mode):
    kind = KINDS[slug]
    data = _with_unused_defaults(kind, sent_by_the_page(kind, mode))
    form = kind.form_class(data, {})
    form.is_valid()
    hidden = {name for name, modes in kind.field_modes.items() if mode not in modes}
    assert not hidden & set(form.errors), dict(form.errors)
    for name in hidden:
        field = kind.form_class.base_fields[name]
        if field.required and not isinstance(field, forms.FileField | forms.BooleanField):
            assert data[name] == str(field.initial)  # filled in with its default


def test_the_view_fills_in_only_what_is_missing():
    kind = KINDS["midjourney"]
    posted = QueryDict(mutable=True)
    posted.update({"mode": "imagine", "prompt": "A harbour", "bot_type": "MID_JOURNEY"})
    filled = _with_unused_defaults(kind, posted)
    assert filled["dimensions"] == "SQUARE"  # blend only, required: its default
    assert "images" not in filled  # an upload is never made up
    assert "dimensions" not in posted  # the request's own data is left alone
    posted["mode"], posted["dimensions"] = "blend", "PORTRAIT"
    assert _with_unused_defaults(kind, posted)["dimensions"] == "PORTRAIT"
    posted["mode"] = "imagine"  # sent anyway (a page without JavaScript): kept as sent
    assert _with_unused_defaults(kind, posted)["dimensions"] == "PORTRAIT"


def test_model_specific_fields_follow_what_the_models_take():
    assert KINDS["flux"].field_modes == {
        "steps": (flux.FLUX_PRO, flux.FLUX_DEV),
        "guidance": (flux.FLUX_PRO, flux.FLUX_DEV),
        "interval": (flux.FLUX_PRO,),
    }
    for option in ("quality", "with_audio", "size", "fps"):
        takers = {model for model in cogvideox.MODELS if cogvideox.takes(model, option)}
        assert set(KINDS["cogvideox"].field_modes[option]) == takers
    modes = KINDS["stability"].field_modes
    assert set(modes["image"]) == set(modes["strength"]) == stability_kind.IMAGE_MODES
    assert set(modes["aspect_ratio"]) == stability_kind.V2_MODES
    assert set(modes["style_preset"]) == stability_kind.STYLE_MODES
