"""The work the tasks share, one module per step of the pipeline: building every platform, smoke-testing an
index, joining per-arch reports, verifying a published image, the supply chain (SBOMs, signatures). The task
modules above (tasks/build.py, ...) only declare their flags and call these; `inv release` runs them all.
"""
