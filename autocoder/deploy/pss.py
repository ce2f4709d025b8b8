"""Pod Security Standards, `restricted` profile (which includes `baseline`), checked on every
pod spec in the manifests. This checker is the authoritative gate: kubernetes-validate proves
the manifests are well-formed, this proves the pods may run in a `restricted` namespace.

Each control of https://kubernetes.io/docs/concepts/security/pod-security-standards/ is one
rule code (PSS001-PSS017); `checks` counts every control evaluated on every pod spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

CONTROLS = {
    "PSS001": "HostProcess: windowsOptions.hostProcess must be unset or false",
    "PSS002": "Host namespaces: hostNetwork, hostPID and hostIPC must be unset or false",
    "PSS003": "Privileged containers: securityContext.privileged must be unset or false",
    "PSS004": "Capabilities (baseline): only the default set may be added",
    "PSS005": "HostPath volumes are forbidden",
    "PSS006": "Host ports must be unset or 0",
    "PSS007": "AppArmor: only RuntimeDefault or Localhost profiles",
    "PSS008": "SELinux: type from the allowed set, user and role unset",
    "PSS009": "/proc mount type must be Default",
    "PSS010": "Seccomp (baseline): Unconfined is forbidden",
    "PSS011": "Sysctls: only the safe set",
    "PSS012": "Volume types: only configMap, csi, downwardAPI, emptyDir, ephemeral, PVC, projected, secret",
    "PSS013": "Privilege escalation: allowPrivilegeEscalation must be false",
    "PSS014": "Running as non-root: runAsNonRoot must be true",
    "PSS015": "Running as non-root user: runAsUser must not be 0",
    "PSS016": "Seccomp (restricted): RuntimeDefault or Localhost must be set",
    "PSS017": "Capabilities (restricted): drop ALL; add only NET_BIND_SERVICE",
}


@dataclass(frozen=True)
class Violation:
    rule: str
    where: str
    message: str


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc.get("spec") or {}
    if kind == "CronJob":
        return (
            doc.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or {}
        )
    if kind in POD_TEMPLATE_KINDS:
        return doc.get("spec", {}).get("template", {}).get("spec") or {}
    return None


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or []]


def check_documents(docs: list[tuple[str, dict[str, Any]]]) -> tuple[list[Violation], int]:
    """Violations of the restricted profile in (file, document) pairs, and the number of
    controls evaluated."""
    found: list[Violation] = []
    checks = 0
    for file, doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        where = f"{file}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        annotations = _template_annotations(doc)
        found += check_pod(spec, annotations, where)
        checks += len(CONTROLS)
    return found, checks


def _template_annotations(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") == "Pod":
        return doc.get("metadata", {}).get("annotations") or {}
    return doc.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}


def check_pod(spec: dict[str, Any], annotations: dict[str, Any], where: str) -> list[Violation]:
    out: list[Violation] = []

    def bad(rule: str, detail: str) -> None:
        out.append(Violation(rule, where, f"{CONTROLS[rule]} ({detail})"))

    pod_sc = spec.get("securityContext") or {}
    containers = _containers(spec)
    contexts = [(c.get("name", "?"), c.get("securityContext") or {}) for c in containers]
    # baseline
    for name, sc in [("pod", pod_sc), *contexts]:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            bad("PSS001", name)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            bad("PSS002", key)
    for name, sc in contexts:
        if sc.get("privileged"):
            bad("PSS003", name)
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - {"NET_BIND_SERVICE"}:
            bad("PSS004", f"{name} adds {sorted(added)}")
            bad("PSS017", f"{name} adds {sorted(added)}")
        dropped = set((sc.get("capabilities") or {}).get("drop") or [])
        if "ALL" not in dropped:
            bad("PSS017", f"{name} does not drop ALL")
        if sc.get("procMount") not in (None, "Default"):
            bad("PSS009", name)
        if sc.get("allowPrivilegeEscalation") is not False:
            bad("PSS013", name)
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if "hostPath" in kinds:
            bad("PSS005", volume.get("name", "?"))
        if kinds - RESTRICTED_VOLUMES:
            bad("PSS012", f"{volume.get('name')}: {sorted(kinds - RESTRICTED_VOLUMES)}")
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("hostPort", 0) not in (0, None):
                bad("PSS006", f"{container.get('name')} hostPort {port['hostPort']}")
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/"):
            if value != "runtime/default" and not str(value).startswith("localhost/"):
                bad("PSS007", key)
    for name, sc in [("pod", pod_sc), *contexts]:
        apparmor = (sc.get("appArmorProfile") or {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            bad("PSS007", name)
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            bad("PSS008", name)
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            bad("PSS010", name)
        if sc.get("runAsUser") == 0:
            bad("PSS015", name)
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            bad("PSS011", str(sysctl.get("name")))
    # restricted: a pod-level setting covers the containers that do not set their own
    pod_non_root = pod_sc.get("runAsNonRoot")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_non_root is False:
        bad("PSS014", "pod")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        bad("PSS016", f"pod {pod_seccomp}")
    for name, sc in contexts:
        non_root = sc.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            bad("PSS014", name)
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad("PSS016", name)
    return out
