"""crossdock's pure core: no Docker, no subprocess, no environment, no network.

``platforms`` (the platform table), ``settings`` (every knob, its parser and precedence), ``references``
(image references and manifests), ``project`` (Cargo manifests), ``buildx`` (build plans as data),
``tags`` and ``guards`` (release rules), ``checks`` and ``elf`` (smoke-test checks), ``report`` (tables
and JSON), ``errors`` (the one error type every task turns into a clean exit).
"""
