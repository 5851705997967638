from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from studio.accounts.services import allowed_base_urls


class RelayCredentialForm(forms.Form):
    base_url = forms.ChoiceField(label=_("Relay"))
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        strip=True,
        max_length=512,
        # The key is write-only: never rendered back into the page.
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, has_key: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.has_key = has_key
        base_url = self.fields["base_url"]
        assert isinstance(base_url, forms.ChoiceField)
        base_url.choices = [(url, url) for url in allowed_base_urls()]
        if has_key:
            self.fields["api_key"].help_text = _("Leave empty to keep the saved key.")
            self.fields["api_key"].widget.attrs["placeholder"] = _("Paste a new key to replace it")
        else:
            self.fields["api_key"].widget.attrs["placeholder"] = "sk-…"

    def clean_api_key(self) -> str:
        key: str = self.cleaned_data["api_key"]
        if not key and not self.has_key:
            raise forms.ValidationError(_("Enter an API key."))
        if key and (any(ch.isspace() for ch in key) or not key.isprintable()):
            raise forms.ValidationError(_("An API key has no spaces or line breaks."))
        return key
