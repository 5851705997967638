"""Static files in production: hashed names, compressed copies, and hashed ES module imports
(so browsers may cache every script for a year without serving a stale module graph)."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
