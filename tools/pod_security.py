"""The Kubernetes Pod Security Standards as pure checks over pod specs (dicts as rendered by Helm or written in YAML).

    violations = restricted(pod_spec)          # [] when the pod passes the `restricted` profile
    violations = baseline(pod_spec)            # the `baseline` profile only
    for where, spec in pod_specs(obj): ...      # every pod spec an object declares (Deployment, Job, CronJob,
                                                # Pod, SeldonDeployment componentSpecs, Argo WorkflowTemplate steps)

Each check is one control of https://kubernetes.io/docs/concepts/security/pod-security-standards/ (the page's
names and allowed values, policy version v1.31); a violation names the field, the value found and the fix. Only
what the spec says is judged: a container the Seldon operator or Argo injects later is not in the spec, so its
own settings are checked separately (docs/threat-model.md, decisions 69 and 70).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

Spec = Mapping[str, Any]

# Baseline "Capabilities": what a container may add beyond the runtime's default set.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
# Baseline "SELinux": the types a pod may ask for (user and role must stay unset).
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
# Baseline "Sysctls": the safe set.
SAFE_SYSCTLS = frozenset(
    {
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
)
# Restricted "Volume Types": the only volume sources allowed.
RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def containers(spec: Spec) -> Iterator[tuple[str, Spec]]:
    """(`containers[name]` / `initContainers[name]` / `ephemeralContainers[name]`, container) for every container."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            yield f"{key}[{container.get('name', '?')}]", container


def _context(container: Spec) -> Spec:
    return container.get("securityContext") or {}


def _pod_context(spec: Spec) -> Spec:
    return spec.get("securityContext") or {}


# ------------------------------------------------------------------------------------------------- baseline
def host_process(spec: Spec) -> list[str]:
    found = []
    if (_pod_context(spec).get("windowsOptions") or {}).get("hostProcess"):
        found.append("securityContext.windowsOptions.hostProcess is true; remove it")
    for where, container in containers(spec):
        if (_context(container).get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"{where}.securityContext.windowsOptions.hostProcess is true; remove it")
    return found


def host_namespaces(spec: Spec) -> list[str]:
    return [f"{key} is true; remove it" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]


def privileged(spec: Spec) -> list[str]:
    return [
        f"{where}.securityContext.privileged is true; remove it"
        for where, container in containers(spec)
        if _context(container).get("privileged")
    ]


def capabilities_baseline(spec: Spec) -> list[str]:
    found = []
    for where, container in containers(spec):
        added = set((_context(container).get("capabilities") or {}).get("add") or [])
        extra = sorted(added - BASELINE_CAPABILITIES)
        if extra:
            found.append(f"{where}.securityContext.capabilities.add has {extra}, beyond the baseline set; remove them")
    return found


def host_path_volumes(spec: Spec) -> list[str]:
    return [
        f"volumes[{volume.get('name', '?')}] is a hostPath volume; use an emptyDir, configMap, secret or PVC"
        for volume in spec.get("volumes") or []
        if "hostPath" in volume
    ]


def host_ports(spec: Spec) -> list[str]:
    return [
        f"{where}.ports[{port.get('containerPort')}].hostPort is {port['hostPort']}; remove it"
        for where, container in containers(spec)
        for port in container.get("ports") or []
        if port.get("hostPort")
    ]


def apparmor(spec: Spec, annotations: Mapping[str, str] | None = None) -> list[str]:
    found = []
    allowed = {"RuntimeDefault", "Localhost"}
    for key, value in (annotations or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and value != "runtime/default" and not value.startswith("localhost/"):
            found.append(f"annotation {key}={value}; use runtime/default or localhost/<profile>")
    contexts = [("securityContext", _pod_context(spec))]
    contexts += [(f"{where}.securityContext", _context(c)) for where, c in containers(spec)]
    for where, context in contexts:
        profile = (context.get("appArmorProfile") or {}).get("type")
        if profile is not None and profile not in allowed:
            found.append(f"{where}.appArmorProfile.type is {profile}; use RuntimeDefault or Localhost")
    return found


def selinux(spec: Spec) -> list[str]:
    found = []
    contexts = [("securityContext", _pod_context(spec))]
    contexts += [(f"{where}.securityContext", _context(c)) for where, c in containers(spec)]
    for where, context in contexts:
        options = context.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            found.append(f"{where}.seLinuxOptions.type is {options['type']}; use container_t or leave it unset")
        for key in ("user", "role"):
            if options.get(key):
                found.append(f"{where}.seLinuxOptions.{key} is set; leave it unset")
    return found


def proc_mount(spec: Spec) -> list[str]:
    return [
        f"{where}.securityContext.procMount is {_context(c)['procMount']}; use Default or leave it unset"
        for where, c in containers(spec)
        if _context(c).get("procMount") not in (None, "Default")
    ]


def seccomp_baseline(spec: Spec) -> list[str]:
    found = []
    if (_pod_context(spec).get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append("securityContext.seccompProfile.type is Unconfined; use RuntimeDefault")
    for where, container in containers(spec):
        if (_context(container).get("seccompProfile") or {}).get("type") == "Unconfined":
            found.append(f"{where}.securityContext.seccompProfile.type is Unconfined; use RuntimeDefault")
    return found


def sysctls(spec: Spec) -> list[str]:
    return [
        f"securityContext.sysctls has {sysctl.get('name')}, outside the safe set; remove it"
        for sysctl in _pod_context(spec).get("sysctls") or []
        if sysctl.get("name") not in SAFE_SYSCTLS
    ]


# ----------------------------------------------------------------------------------------------- restricted
def volume_types(spec: Spec) -> list[str]:
    found = []
    for volume in spec.get("volumes") or []:
        kinds = sorted(set(volume) - {"name"})
        if not set(kinds) <= RESTRICTED_VOLUMES:
            found.append(
                f"volumes[{volume.get('name', '?')}] is {kinds}; restricted allows {sorted(RESTRICTED_VOLUMES)}"
            )
    return found


def privilege_escalation(spec: Spec) -> list[str]:
    return [
        f"{where}.securityContext.allowPrivilegeEscalation is not false; set it to false"
        for where, container in containers(spec)
        if _context(container).get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(spec: Spec) -> list[str]:
    pod = _pod_context(spec).get("runAsNonRoot")
    found = []
    for where, container in containers(spec):
        own = _context(container).get("runAsNonRoot")
        if own is False:
            found.append(f"{where}.securityContext.runAsNonRoot is false; set it to true")
        elif own is None and pod is not True:
            found.append(f"{where}: runAsNonRoot is set neither on the pod nor on the container; set it to true")
    return found


def run_as_non_root_user(spec: Spec) -> list[str]:
    found = []
    if _pod_context(spec).get("runAsUser") == 0:
        found.append("securityContext.runAsUser is 0; use a non-zero user id")
    for where, container in containers(spec):
        if _context(container).get("runAsUser") == 0:
            found.append(f"{where}.securityContext.runAsUser is 0; use a non-zero user id")
    return found


def seccomp_restricted(spec: Spec) -> list[str]:
    allowed = {"RuntimeDefault", "Localhost"}
    pod = (_pod_context(spec).get("seccompProfile") or {}).get("type")
    found = []
    if pod is not None and pod not in allowed:
        found.append(f"securityContext.seccompProfile.type is {pod}; use RuntimeDefault")
    for where, container in containers(spec):
        own = (_context(container).get("seccompProfile") or {}).get("type")
        if own is not None and own not in allowed:
            found.append(f"{where}.securityContext.seccompProfile.type is {own}; use RuntimeDefault")
        elif own is None and pod not in allowed:
            found.append(f"{where}: no seccompProfile on the pod or the container; set type RuntimeDefault")
    return found


def capabilities_restricted(spec: Spec) -> list[str]:
    found = []
    for where, container in containers(spec):
        capabilities = _context(container).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where}.securityContext.capabilities.drop does not contain ALL; drop ALL")
        extra = sorted(set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"})
        if extra:
            found.append(f"{where}.securityContext.capabilities.add has {extra}; only NET_BIND_SERVICE may be added")
    return found


Check = Callable[[Spec], list[str]]
BASELINE: dict[str, Check] = {
    "HostProcess": host_process,
    "Host Namespaces": host_namespaces,
    "Privileged Containers": privileged,
    "Capabilities (baseline)": capabilities_baseline,
    "HostPath Volumes": host_path_volumes,
    "Host Ports": host_ports,
    "AppArmor": apparmor,
    "SELinux": selinux,
    "/proc Mount Type": proc_mount,
    "Seccomp (baseline)": seccomp_baseline,
    "Sysctls": sysctls,
}
RESTRICTED: dict[str, Check] = {
    **BASELINE,
    "Volume Types": volume_types,
    "Privilege Escalation": privilege_escalation,
    "Running as Non-root": run_as_non_root,
    "Running as Non-root user": run_as_non_root_user,
    "Seccomp (restricted)": seccomp_restricted,
    "Capabilities (restricted)": capabilities_restricted,
}


def _evaluate(checks: Mapping[str, Check], spec: Spec, annotations: Mapping[str, str] | None) -> list[str]:
    found = []
    for name, check in checks.items():
        problems = apparmor(spec, annotations) if check is apparmor else check(spec)
        found.extend(f"{name}: {problem}" for problem in problems)
    return found


def baseline(spec: Spec, annotations: Mapping[str, str] | None = None) -> list[str]:
    """The `baseline` profile's violations of one pod spec (annotations: the pod template's, for AppArmor)."""
    return _evaluate(BASELINE, spec, annotations)


def restricted(spec: Spec, annotations: Mapping[str, str] | None = None) -> list[str]:
    """The `restricted` profile's violations of one pod spec."""
    return _evaluate(RESTRICTED, spec, annotations)


# ------------------------------------------------------------------------------------------ where pods are
PodSpec = tuple[str, Spec, Mapping[str, str]]
_TEMPLATED = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}


def pod_specs(obj: Mapping[str, Any]) -> list[PodSpec]:
    """(where, pod spec, pod annotations) for every pod an object declares; [] for objects that declare none."""
    kind, name = obj.get("kind"), (obj.get("metadata") or {}).get("name", "?")
    spec = obj.get("spec") or {}
    where = f"{kind}/{name}"
    if kind == "Pod":
        return [(where, spec, (obj.get("metadata") or {}).get("annotations") or {})]
    if kind in _TEMPLATED:
        template = spec.get("template") or {}
        return [(where, template.get("spec") or {}, (template.get("metadata") or {}).get("annotations") or {})]
    if kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        return [(where, template.get("spec") or {}, (template.get("metadata") or {}).get("annotations") or {})]
    if kind == "SeldonDeployment":
        found = []
        for predictor in spec.get("predictors") or []:
            for index, component in enumerate(predictor.get("componentSpecs") or []):
                annotations = (component.get("metadata") or {}).get("annotations") or {}
                at = f"{where} predictors[{predictor.get('name')}].componentSpecs[{index}]"
                found.append((at, component.get("spec") or {}, annotations))
        return found
    if kind in {"WorkflowTemplate", "ClusterWorkflowTemplate", "Workflow", "CronWorkflow"}:
        workflow = spec.get("workflowSpec", spec) if kind == "CronWorkflow" else spec
        return workflow_pods(where, workflow)
    return []


def workflow_pods(where: str, workflow: Spec) -> list[PodSpec]:
    """Argo runs one pod per container/script template: the workflow's pod-level fields plus that template's
    container, init containers, sidecars and volumes (Argo's own init/wait containers come from the controller's
    executor settings, not from this spec)."""
    found = []
    pod_level = {key: workflow[key] for key in ("securityContext", "hostNetwork", "volumes") if key in workflow}
    for template in workflow.get("templates") or []:
        main = template.get("container") or template.get("script")
        if main is None:
            continue
        pod = dict(pod_level)
        if "securityContext" in template:
            pod["securityContext"] = template["securityContext"]
        pod["containers"] = [{"name": "main", **main}, *(template.get("sidecars") or [])]
        pod["initContainers"] = list(template.get("initContainers") or [])
        pod["volumes"] = [*(workflow.get("volumes") or []), *(template.get("volumes") or [])]
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        found.append((f"{where} templates[{template.get('name')}]", pod, annotations))
    return found
