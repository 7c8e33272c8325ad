"""crossdock's invoke tasks.

The pipeline, in the order a release runs it: ``build`` (cross-compile every platform, push, join one
manifest list; or, one CI job per architecture, ``build --no-join`` and then ``merge``), ``smoke`` (run
every platform under QEMU), ``release`` (build + smoke + publish the
tested index under its tags), ``rebuild`` (build a release again from its record and compare digests),
and ``setup`` (check and repair what they need). These task modules
only sequence work; ``core/`` is the pure part (platform table, settings, plans, rules, checks, reports)
and ``engine/`` the adapters that talk to Docker, the registry, QEMU's binfmt handlers and git.
``common`` holds what the tasks share (console output, settings resolution, turning errors into exits).
"""

from __future__ import annotations

from invoke import Collection

from .build import build
from .merge import merge
from .rebuild import rebuild
from .release import release
from .setup import setup
from .smoke import smoke
from .verify import verify

ns = Collection(build, merge, smoke, setup, release, verify, rebuild)
# No "crossdock" defaults here: invoke's config layer must hold only what a config file says, so that
# the project's Cargo metadata (below it in precedence) is not masked by copies of the defaults.
ns.configure({"run": {"echo_format": "{command}"}})
