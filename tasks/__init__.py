"""crossdock's invoke tasks and its pure core.

Layout: ``platforms`` (the platform table), ``settings`` (every knob, its default and precedence),
``project`` (Cargo manifests), ``vcs`` (git), ``buildx`` (build plans as data), ``report`` (tables and
JSON) are the core; ``engine`` (probes) and ``build`` (the `inv build` task) touch the outside world.
"""

from __future__ import annotations

from invoke import Collection

from .build import build
from .release import release
from .settings import DEFAULTS
from .setup import setup
from .smoke import smoke

ns = Collection(build, smoke, setup, release)
ns.configure({"crossdock": dict(DEFAULTS), "run": {"echo_format": "{command}"}})
