"""Adapters to the outside world: the Docker engine and buildx (``docker``), the registry's HTTP API
(``registry``), QEMU binfmt handlers (``emulation``), git (``vcs``), credentials (``secrets``) and the
checks a task runs before any work (``preflight``)."""
