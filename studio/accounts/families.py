"""Staff's run-time settings for the relay families: which are shown to users, which relay paths
replace the defaults, family options, and the probe.

Read from the database on every call (one small query, at most a dozen rows), like the relay
allowlist, so every web process and worker sees an edit at once.
"""

from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from studio.accounts import audit
from studio.accounts.models import FamilySetting
from studio.upstream import RelayClient, paths
from studio.upstream.families import FAMILIES, OPTION_CHOICES, Family, ProbeResult, placeholders
from studio.upstream.families import probe as probe_family

MAX_PATH_CHARS = 300


def _rows() -> dict[str, FamilySetting]:
    return {row.family: row for row in FamilySetting.objects.all()}


def _enabled_by_default(slug: str) -> bool:
    configured = [item.lower() for item in settings.UPSTREAM_FAMILIES_ENABLED]
    return "all" in configured or slug in configured


def enabled_families() -> set[str]:
    rows = _rows()
    return {
        slug
        for slug in FAMILIES
        if (rows[slug].enabled if slug in rows else _enabled_by_default(slug))
    }


def is_enabled(slug: str) -> bool:
    row = FamilySetting.objects.filter(family=slug).first()
    return row.enabled if row else _enabled_by_default(slug)


def runtime_paths_and_options() -> tuple[dict[str, str], dict[str, str]]:
    """Every path override and option staff set, for `RelayCredentials`."""
    overrides: dict[str, str] = {}
    options: dict[str, str] = {}
    for row in FamilySetting.objects.all():
        overrides.update({str(k): str(v) for k, v in (row.path_overrides or {}).items()})
        options.update({str(k): str(v) for k, v in (row.options or {}).items()})
    return overrides, options


# --- validation ------------------------------------------------------------------------------


def clean_path_override(name: str, value: str) -> str:
    """An override as stored: "" (none) or a path on the relay with the default's placeholders.
    Raises ValidationError naming what is wrong."""
    value = value.strip()
    if not value:
        return ""
    default = paths.DEFAULT_PATHS[name]
    if len(value) > MAX_PATH_CHARS:
        raise ValidationError(_("A path has at most %(max)d characters.") % {"max": MAX_PATH_CHARS})
    if not value.startswith("/") or value.startswith("//") or "://" in value:
        raise ValidationError(_("A path starts with a single / and names no host."))
    if any(char.isspace() for char in value) or "\\" in value or "#" in value:
        raise ValidationError(_("A path has no spaces, backslashes or #."))
    if ".." in value.split("?")[0].split("/"):
        raise ValidationError(_("A path must not contain “..”."))
    try:
        used = placeholders(value)
    except ValueError as error:
        raise ValidationError(_("Unbalanced { or } in the path.")) from error
    unknown = used - placeholders(default)
    if unknown:
        raise ValidationError(
            _("Unknown placeholder %(names)s: this path can use %(allowed)s.")
            % {
                "names": ", ".join(f"{{{n}}}" for n in sorted(unknown)),
                "allowed": ", ".join(f"{{{n}}}" for n in sorted(placeholders(default)))
                or _("none"),
            }
        )
    missing = placeholders(default) - used
    if missing and "?" not in value:
        raise ValidationError(
            _("The path must carry %(names)s, as the default does.")
            % {"names": ", ".join(f"{{{n}}}" for n in sorted(missing))}
        )
    return "" if value == default else value


def clean_option(name: str, value: str) -> str:
    if value not in OPTION_CHOICES[name]:
        raise ValidationError(_("Choose one of the offered values."))
    return value


# --- changes ---------------------------------------------------------------------------------


def save(
    family: Family,
    *,
    enabled: bool,
    path_overrides: dict[str, str],
    options: dict[str, str],
    by: User,
) -> FamilySetting:
    """Store a family's settings (already cleaned) and audit what changed."""
    row = FamilySetting.objects.filter(family=family.slug).first() or FamilySetting(
        family=family.slug, enabled=_enabled_by_default(family.slug)
    )
    overrides = {name: path for name, path in path_overrides.items() if path}
    changes: dict[str, Any] = {}
    if row.enabled != enabled or row.pk is None:
        changes["enabled"] = enabled
    if (row.path_overrides or {}) != overrides:
        changes["paths"] = overrides
    if (row.options or {}) != options:
        changes["options"] = options
    row.enabled, row.path_overrides, row.options, row.updated_by = (
        enabled,
        overrides,
        options,
        by,
    )
    row.save()
    if changes:
        audit.record(audit.Action.FAMILY_CHANGED, actor=by, target=family.slug, data=changes)
    return row


@dataclass(frozen=True)
class FamilyView:
    """One family as the staff page shows it."""

    family: Family
    enabled: bool
    overrides: dict[str, str]
    options: dict[str, str]
    row: FamilySetting | None


def overview() -> list[FamilyView]:
    rows = _rows()
    views = []
    for slug, family in FAMILIES.items():
        row = rows.get(slug)
        views.append(
            FamilyView(
                family=family,
                enabled=row.enabled if row else _enabled_by_default(slug),
                overrides=dict(row.path_overrides or {}) if row else {},
                options=dict(row.options or {}) if row else {},
                row=row,
            )
        )
    return views


async def run_probe(family: Family, *, by: User) -> ProbeResult:
    """Probe `family` on the relay with `by`'s credentials and today's overrides; keep and
    audit the verdict. Raises accounts.services.MissingCredential without a usable key."""
    from studio.accounts.services import relay_credentials_for

    credentials = await sync_to_async(relay_credentials_for)(by)
    result = await probe_family(RelayClient(credentials), family)
    await sync_to_async(_keep_verdict)(family, result, by)
    return result


def _keep_verdict(family: Family, result: ProbeResult, by: User) -> None:
    row, _created = FamilySetting.objects.get_or_create(
        family=family.slug, defaults={"enabled": _enabled_by_default(family.slug)}
    )
    row.probed_at = timezone.now()
    row.probe_verdict = result.verdict
    row.probe_detail = f"{result.status or '—'} {result.path} · {result.detail}"[:400]
    row.save(update_fields=["probed_at", "probe_verdict", "probe_detail", "updated_at"])
    audit.record(
        audit.Action.FAMILY_PROBED,
        actor=by,
        target=family.slug,
        data={"verdict": result.verdict, "status": result.status, "path": result.path},
    )
