"""Media-job tests: point the site and the test user at a running relay simulator."""

from studio.accounts.models import RelayCredential


def use_relay(settings, simulator, tmp_path, user):
    """The simulator becomes the approved relay, the user's key is saved for it, and results
    are kept under the test's own MEDIA_ROOT."""
    settings.UPSTREAM_BASE_URL = simulator.url
    settings.UPSTREAM_ALLOWED_BASE_URLS = [simulator.url]
    settings.MEDIA_ROOT = tmp_path / "media"
    credential = RelayCredential(user=user, base_url=simulator.url)
    credential.set_api_key(simulator.key)
    credential.save()
    return simulator
