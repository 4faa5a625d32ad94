"""Sambung, a contact-centre engine on Asterisk.

Every module lives under this one import name: ``sambung.engine`` (the shell: settings,
logging, metrics, database, HTTP API, call dispatch), ``sambung.asterisk`` (ARI and AMI
adapters) and one package per feature (``ivr``, ``acd``, ``dialer``, ``recordings``,
``wallboard``, ``auth``, ``console``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml is the one place the version is written; the installed metadata carries it.
    __version__ = version("sambung")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
