"""Who wrote a log file, from its path: Kubernetes node layouts, a configured pattern, or the file name.

Pure string work, so the mapping can be tested without files. The kubelet keeps each container's output
in `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`, and links it as
`/var/log/containers/<pod>_<namespace>_<container>-<container id>.log`. Both give service = container
name (the same program in every pod), instance = pod name (one process), and the namespace as an
attribute (`k8s.namespace.name` on otel_logs rows).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# Pod and namespace names are DNS labels/subdomains (no '_'), so '_' separates the fields safely.
_PODS = re.compile(r"/pods/(?P<namespace>[^_/]+)_(?P<pod>[^_/]+)_(?P<uid>[^_/]+)/(?P<container>[^/]+)/[^/]+$")
_CONTAINERS = re.compile(
    r"/containers/(?P<pod>[^_/]+)_(?P<namespace>[^_/]+)_(?P<container>[^/]+)-(?P<id>[0-9a-f]{64})\.log$"
)


@dataclass(frozen=True)
class FileIdentity:
    service: str
    instance: str
    attributes: dict[str, str] = field(default_factory=dict)


def identify(path: str, *, service: str = "", instance: str = "", pattern: str = "",
             host: str | None = None) -> FileIdentity:
    """The identity of `path`: configured values win, then `pattern`, then Kubernetes layouts, then names."""
    attrs: dict[str, str] = {}
    found_service = found_instance = ""
    m = re.search(pattern, path) if pattern else None
    if m is not None:
        groups = m.groupdict()
        found_service = groups.get("service") or ""
        found_instance = groups.get("instance") or ""
        if groups.get("namespace"):
            attrs["k8s.namespace.name"] = groups["namespace"]
    else:
        k8s = _PODS.search(path) or _CONTAINERS.search(path)
        if k8s is not None:
            groups = k8s.groupdict()
            found_service, found_instance = groups["container"], groups["pod"]
            attrs = {"k8s.namespace.name": groups["namespace"], "k8s.pod.name": groups["pod"],
                     "k8s.container.name": groups["container"]}
            if groups.get("uid"):
                attrs["k8s.pod.uid"] = groups["uid"]
    if not found_service:
        name = PurePosixPath(path).name
        found_service = name.split(".", 1)[0] or name
    if not found_instance:
        found_instance = host if host is not None else socket.gethostname()
    return FileIdentity(service or found_service, instance or found_instance, attrs)
