"""invoke's entry point for crossdock (`inv build`, ...). The tasks live in the `tasks/` package.

invoke loads this file as a module named "tasks", which would hide the package of the same name.
This shim is the one place that reads `.env` (python-dotenv; the real environment wins), then drops
its own "tasks" registration so `import tasks` finds the package, re-exports its namespace, and moves
the registry password out of the environment (tasks/engine/secrets.py).
"""

import sys
from pathlib import Path

from dotenv import load_dotenv

load_dotenv(Path(__file__).with_name(".env"), override=False)
del sys.modules["tasks"]
sys.path.insert(0, str(Path(__file__).parent))

from tasks import ns  # noqa: E402  (the package, now that the name is free)
from tasks.engine.secrets import take_from_environment  # noqa: E402

take_from_environment()  # no child process (dockerd, the registry, builds) inherits the password

__all__ = ["ns"]
