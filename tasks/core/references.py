"""Image references and manifests, in one place. Pure.

Reference grammar: the distribution project's (``reference/regexp.go``), as Docker and buildx apply it:
``[domain[:port]/]path-component[/path-component...][:tag][@digest]``, with lowercase path components
and tags of at most 128 characters. Manifests: the platforms of an index, an image's size, a digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from .errors import CrossdockError

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
TAG = r"[\w][\w.-]{0,127}"
DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
PATH = rf"{PATH_COMPONENT}(?:/{PATH_COMPONENT})*"
NAME_MAX = 255

_DOMAIN_RE = re.compile(rf"^{DOMAIN}$")
_PATH_RE = re.compile(rf"^{PATH}$")
_TAG_RE = re.compile(rf"^{TAG}$")
_REFERENCE_RE = re.compile(
    rf"^(?P<name>(?:(?P<domain>{DOMAIN})/)?{PATH})(?::(?P<tag>{TAG}))?(?:@(?P<digest>{DIGEST}))?$")

DOMAIN_RULE = "host[:port] (letters, digits, '-' and '.', e.g. registry.example.com or 127.0.0.1:5000)"
PATH_RULE = ("lowercase letters and digits, separated by '.', '_', '__' or '-', in components joined by '/' "
             "(e.g. team/app)")
TAG_RULE = "up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (e.g. v1.2.3)"
REFERENCE_RULE = "[host[:port]/]repository[:tag][@sha256:digest], repository in lowercase (e.g. 127.0.0.1:5000/app:1.0)"


class ReferenceError(CrossdockError):
    """Not a valid image reference (or part of one); the message says which rule it breaks."""


def is_domain(text: str) -> bool:
    return bool(_DOMAIN_RE.match(text))


def is_path(text: str) -> bool:
    return bool(_PATH_RE.match(text)) and len(text) <= NAME_MAX


def is_tag(text: str) -> bool:
    return bool(_TAG_RE.match(text))


@dataclass(frozen=True)
class Reference:
    domain: str  # "" when the reference names none (Docker Hub)
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        """``domain/path`` (or ``path``): the reference without tag and digest."""
        return f"{self.domain}/{self.path}" if self.domain else self.path


def looks_like_domain(first: str) -> bool:
    """Docker's rule: the first component is a registry when it has a '.' or ':' or is localhost
    (or has an uppercase letter, which a path component cannot)."""
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def parse_reference(text: str) -> Reference:
    """Split and validate ``[domain/]path[:tag][@digest]``."""
    m = _REFERENCE_RE.match(text)
    if not m or len(m["name"]) > NAME_MAX:
        raise ReferenceError(f"{text!r} is not a valid image reference: expected {REFERENCE_RULE}")
    name = m["name"]
    first, _, rest = name.partition("/")
    if rest and looks_like_domain(first):
        domain, path = first, rest
    else:
        domain, path = "", name
        if not is_path(name):  # e.g. an uppercase first component with no registry after it
            raise ReferenceError(f"{text!r} is not a valid image reference: expected {REFERENCE_RULE}")
    return Reference(domain=domain, path=path, tag=m["tag"] or "", digest=m["digest"] or "")


def repository_of(ref: str) -> str:
    """``reg:5000/app:tag``, ``reg:5000/app@sha256:..`` or ``reg:5000/app:tag@sha256:..`` -> ``reg:5000/app``."""
    ref = ref.split("@", 1)[0]
    head, _, last = ref.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def join_repository(registry: str, image: str) -> str:
    return f"{registry.rstrip('/')}/{image}" if registry else image


# --- manifests -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    platform: str  # os/arch[/variant]
    digest: str


def parse_index(raw: str) -> list[IndexEntry]:
    """Platforms of a manifest list / OCI index; attestation entries (``unknown/unknown``) are skipped.

    A single-platform manifest yields no entries (the caller reports "not a manifest list").
    """
    data = json.loads(raw)
    return index_entries(data)


def index_entries(data: dict) -> list[IndexEntry]:
    """``parse_index`` for a manifest already loaded from JSON."""
    entries = []
    for m in data.get("manifests", []):
        p = m.get("platform", {})
        if p.get("os") == "unknown" or p.get("architecture") == "unknown":
            continue
        if m.get("annotations", {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        name = "/".join(x for x in (p.get("os", ""), p.get("architecture", ""), p.get("variant", "")) if x)
        entries.append(IndexEntry(platform=name, digest=m["digest"]))
    return entries


ATTESTATION_TYPE = "attestation-manifest"


def attestations(data: dict) -> dict[str, str]:
    """``{image digest: attestation manifest digest}`` of an index: BuildKit's ``unknown/unknown`` entries
    that name the image they are about (``vnd.docker.reference.digest``)."""
    found = {}
    for m in data.get("manifests", []):
        notes = m.get("annotations", {})
        if notes.get("vnd.docker.reference.type") == ATTESTATION_TYPE and notes.get("vnd.docker.reference.digest"):
            found[notes["vnd.docker.reference.digest"]] = m["digest"]
    return found


def is_index(data: dict) -> bool:
    return "manifests" in data


@dataclass(frozen=True)
class Pushed:
    """What one platform's build pushed: its image manifest, and the attestation manifest beside it when the
    build pushed an index of the two (``index`` is then that index's digest, else the image's)."""

    index: str
    image: str
    attestation: str = ""


def pushed_platform(digest: str, raw: str) -> Pushed:
    """Read what a per-platform push at ``digest`` (bytes ``raw``) holds; ``ValueError`` if it is an index
    that does not hold exactly one platform image."""
    data = json.loads(raw)
    if not is_index(data):
        return Pushed(index=digest, image=digest)
    entries = index_entries(data)
    if len(entries) != 1:
        raise ValueError(f"{digest} should hold one platform image, holds {[e.platform for e in entries]}")
    image = entries[0].digest
    return Pushed(index=digest, image=image, attestation=attestations(data).get(image, ""))


def manifest_size(manifest_json: str) -> int:
    """Bytes of an image manifest's config and layers (compressed, as stored in the registry)."""
    m = json.loads(manifest_json)
    return int(m.get("config", {}).get("size", 0)) + sum(int(layer.get("size", 0)) for layer in m.get("layers", []))


def manifest_digest(raw: str) -> str:
    """The digest of a manifest as printed by ``imagetools inspect --raw`` (the registry's bytes, unchanged)."""
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest() if raw else ""
